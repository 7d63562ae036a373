//! `--change` instructions in Dockerfile syntax (CMD, ENTRYPOINT, ENV, WORKDIR,
//! USER, LABEL, EXPOSE, STOPSIGNAL, VOLUME), applied to an image's runtime config.

use super::config::ImageRuntimeConfig;

use crate::util::signal::SignalError;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid --change {input:?}: {reason}")]
pub struct ChangeError {
    pub input: String,
    pub reason: Reason,
}

/// What is wrong with a `--change` instruction (or the same instruction in
/// a Dockerfile).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum Reason {
    #[error("missing arguments")]
    MissingArguments,
    #[error(transparent)]
    Quote(#[from] UnterminatedQuote),
    #[error("{0} needs KEY=VALUE or KEY VALUE")]
    NeedsKeyValue(&'static str),
    #[error("{what} expects KEY=VALUE, got {word:?}")]
    ExpectedKeyValue { what: &'static str, word: String },
    #[error("WORKDIR must be an absolute path")]
    RelativeWorkdir,
    #[error("VOLUME paths must be absolute")]
    RelativeVolume,
    #[error("bad protocol in port {0:?}")]
    PortProtocol(String),
    #[error("bad port {0:?}")]
    Port(String),
    #[error(transparent)]
    Signal(#[from] SignalError),
    #[error("unsupported instruction {0} (supported: CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, STOPSIGNAL, VOLUME)")]
    Unsupported(String),
}

/// A quote opened and never closed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("unterminated quote")]
pub struct UnterminatedQuote;

/// Apply one Dockerfile-style instruction to `cfg`.
pub fn apply_change(cfg: &mut ImageRuntimeConfig, input: &str) -> Result<(), ChangeError> {
    let err = |reason: Reason| ChangeError {
        input: input.to_string(),
        reason,
    };
    let trimmed = input.trim();
    let (instr, args) = match trimmed.split_once(char::is_whitespace) {
        Some((i, a)) => (i, a.trim()),
        None => (trimmed, ""),
    };
    if args.is_empty() {
        return Err(err(Reason::MissingArguments));
    }
    match instr.to_ascii_uppercase().as_str() {
        "CMD" => cfg.cmd = Some(exec_or_shell(args)),
        "ENTRYPOINT" => cfg.entrypoint = Some(exec_or_shell(args)),
        "ENV" => {
            for (k, v) in key_values(args, "ENV").map_err(err)? {
                cfg.set_env(&format!("{k}={v}"));
            }
        }
        "LABEL" => {
            for (k, v) in key_values(args, "LABEL").map_err(err)? {
                cfg.labels.insert(k, v);
            }
        }
        "WORKDIR" => {
            if !args.starts_with('/') {
                return Err(err(Reason::RelativeWorkdir));
            }
            cfg.working_dir = args.to_string();
        }
        "USER" => cfg.user = args.to_string(),
        "EXPOSE" => {
            for p in args.split_whitespace() {
                cfg.exposed_ports.insert(normalize_port(p).map_err(err)?);
            }
        }
        "VOLUME" => {
            // JSON form `["/a", "/b"]` or space-separated paths.
            let paths = match serde_json::from_str::<Vec<String>>(args) {
                Ok(v) if args.starts_with('[') => v,
                _ => args.split_whitespace().map(str::to_string).collect(),
            };
            for p in paths {
                if !p.starts_with('/') {
                    return Err(err(Reason::RelativeVolume));
                }
                cfg.volumes.insert(p);
            }
        }
        "STOPSIGNAL" => {
            crate::util::signal::parse_signal(args).map_err(|e| err(e.into()))?;
            cfg.stop_signal = Some(args.to_string());
        }
        other => return Err(err(Reason::Unsupported(other.to_string()))),
    }
    Ok(())
}

/// JSON exec form `["a","b"]`, else shell form wrapped in `/bin/sh -c`.
fn exec_or_shell(args: &str) -> Vec<String> {
    if args.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(args) {
            return v;
        }
        // Docker treats malformed JSON as shell form; so do we.
    }
    vec!["/bin/sh".into(), "-c".into(), args.to_string()]
}

/// `K=V K2="v 2"` or the legacy single `K V...` form.
fn key_values(args: &str, what: &'static str) -> Result<Vec<(String, String)>, Reason> {
    let words = split_words(args)?;
    if !words[0].contains('=') {
        // Legacy `ENV KEY value with spaces`.
        let (k, v) = args
            .split_once(char::is_whitespace)
            .ok_or(Reason::NeedsKeyValue(what))?;
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(Reason::ExpectedKeyValue {
                what,
                word: w.clone(),
            }),
        })
        .collect()
}

/// Split `s` on whitespace honouring double and single quotes and the
/// escape character (a backslash, or a Dockerfile's `# escape=`), which is
/// literal inside single quotes.
pub fn words(s: &str, escape: char) -> Result<Vec<String>, UnterminatedQuote> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => cur.push(c),
            (_, c) if c == escape => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(UnterminatedQuote);
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

fn split_words(s: &str) -> Result<Vec<String>, Reason> {
    let out = words(s, '\\')?;
    if out.is_empty() {
        return Err(Reason::MissingArguments);
    }
    Ok(out)
}

fn normalize_port(p: &str) -> Result<String, Reason> {
    let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
    if !matches!(proto, "tcp" | "udp" | "sctp") {
        return Err(Reason::PortProtocol(p.to_string()));
    }
    match num.parse::<u16>() {
        Ok(n) if n > 0 => Ok(format!("{n}/{proto}")),
        _ => Err(Reason::Port(p.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(lines: &[&str]) -> ImageRuntimeConfig {
        let mut c = ImageRuntimeConfig::default();
        for l in lines {
            apply_change(&mut c, l).unwrap();
        }
        c
    }

    #[test]
    fn exec_and_shell_forms() {
        let c = applied(&[r#"CMD ["sh", "-c", "echo hi"]"#, "ENTRYPOINT echo $HOME"]);
        assert_eq!(c.cmd.unwrap(), ["sh", "-c", "echo hi"]);
        assert_eq!(c.entrypoint.unwrap(), ["/bin/sh", "-c", "echo $HOME"]);
    }

    #[test]
    fn env_label_expose_workdir_user_stopsignal() {
        let c = applied(&[
            r#"ENV A=1 B="two words""#,
            "ENV LEGACY some value",
            "ENV A=3",
            "LABEL org.x=y",
            "EXPOSE 80 53/udp",
            "WORKDIR /srv",
            "user 1000:1000",
            "STOPSIGNAL SIGINT",
            r#"VOLUME ["/data", "/logs"]"#,
            "VOLUME /cache",
        ]);
        assert_eq!(
            c.volumes.iter().map(String::as_str).collect::<Vec<_>>(),
            ["/cache", "/data", "/logs"]
        );
        assert_eq!(c.env, ["A=3", "B=two words", "LEGACY=some value"]);
        assert_eq!(c.labels["org.x"], "y");
        assert!(c.exposed_ports.contains("80/tcp") && c.exposed_ports.contains("53/udp"));
        assert_eq!(c.working_dir, "/srv");
        assert_eq!(c.user, "1000:1000");
        assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
    }

    #[test]
    fn bad_changes_are_errors() {
        let mut c = ImageRuntimeConfig::default();
        for bad in [
            "RUN apt-get update",
            "CMD",
            "WORKDIR relative",
            "EXPOSE 70000",
            "EXPOSE 80/xyz",
            "STOPSIGNAL SIGNOPE",
            "ENV A=\"unterminated",
            "ENV =x",
            "VOLUME relative",
        ] {
            assert!(apply_change(&mut c, bad).is_err(), "{bad:?} should fail");
        }
    }
}
