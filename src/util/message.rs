//! Errors as users read them: one line, context first, each cause once.

/// Context and cause on one line: "importing x.tar: layer entry ...: reason".
pub fn one_line(e: &anyhow::Error) -> String {
    join(e.chain().map(|c| c.to_string()))
}

/// [`one_line`] for any error with its `source` chain.
pub fn one_line_of(e: &(dyn std::error::Error + 'static)) -> String {
    join(std::iter::successors(Some(e), |c| c.source()).map(|c| c.to_string()))
}

fn join(causes: impl Iterator<Item = String>) -> String {
    let mut parts: Vec<String> = Vec::new();
    for s in causes {
        // thiserror's `#[error(transparent)]` and `{0}` wrappers repeat their source.
        if parts.last().is_some_and(|p| p.ends_with(&s)) {
            continue;
        }
        parts.push(s);
    }
    parts.join(": ").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn causes_join_once_on_one_line() {
        let e = anyhow::anyhow!("no such file\nor directory").context("importing x.tar");
        assert_eq!(
            super::one_line(&e),
            "importing x.tar: no such file or directory"
        );
    }
}
