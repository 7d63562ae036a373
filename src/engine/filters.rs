//! The `filters` of list and prune operations, from either front end: the
//! CLI's `--filter KEY=VALUE` flags or the Docker API's `filters` JSON, and
//! Docker's rules for matching them (the same key given twice means either
//! value, different keys must all match, every label filter must match).

use std::collections::BTreeMap;

use super::{Error, Result};

/// Filters as ordered key/value pairs, as given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    pairs: Vec<(String, String)>,
}

impl Filters {
    /// No filter: everything matches.
    pub fn new() -> Self {
        Filters::default()
    }

    /// A filter set from pairs (tests, and callers that build their own).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Filters {
            pairs: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The CLI's `--filter KEY=VALUE` strings.
    pub fn from_flags(flags: &[String]) -> Result<Filters> {
        let mut pairs = Vec::new();
        for f in flags {
            match f.split_once('=') {
                Some((k, v)) if !k.is_empty() => pairs.push((k.to_string(), v.to_string())),
                _ => {
                    return Err(Error::invalid(format!(
                        "bad format of filter (expected name=value): {f}"
                    )))
                }
            }
        }
        Ok(Filters { pairs })
    }

    /// The Docker API's `filters` parameter: `{"label":["a=b","c"]}`, or the
    /// older map form `{"label":{"a=b":true}}`; empty means none.
    pub fn from_json(text: &str) -> Result<Filters> {
        let bad = |why: &str| Error::invalid(format!("invalid filters {text:?}: {why}"));
        if text.trim().is_empty() {
            return Ok(Filters::new());
        }
        let v: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| Error::refused(format!("invalid filters {text:?}"), e))?;
        let serde_json::Value::Object(map) = v else {
            return Err(bad("not an object"));
        };
        let mut pairs = Vec::new();
        for (key, values) in map {
            match values {
                serde_json::Value::Array(items) => {
                    for item in items {
                        match item {
                            serde_json::Value::String(s) => pairs.push((key.clone(), s)),
                            _ => return Err(bad("a value is not a string")),
                        }
                    }
                }
                serde_json::Value::Object(items) => {
                    for (value, on) in items {
                        if on.as_bool() == Some(true) {
                            pairs.push((key.clone(), value));
                        }
                    }
                }
                _ => return Err(bad("values are not a list")),
            }
        }
        Ok(Filters { pairs })
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The values given for `key`, in order.
    pub fn values<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, key: &str) -> bool {
        self.values(key).next().is_some()
    }

    /// Refuse a key the operation does not know, with Docker's message.
    pub fn check(&self, known: &[&str]) -> Result<()> {
        match self
            .pairs
            .iter()
            .find(|(k, _)| !known.contains(&k.as_str()))
        {
            Some((k, _)) => Err(Error::invalid(format!("invalid filter '{k}'"))),
            None => Ok(()),
        }
    }

    /// Whether some value of `key` satisfies `test`; true when `key` is
    /// not given.
    pub fn matches(&self, key: &str, test: impl Fn(&str) -> bool) -> bool {
        let mut given = false;
        for v in self.values(key) {
            if test(v) {
                return true;
            }
            given = true;
        }
        !given
    }

    /// Whether `labels` satisfy every `label` filter (`KEY` or
    /// `KEY=VALUE`, all of them), and none of the `label!` ones.
    pub fn labels_match(&self, labels: &BTreeMap<String, String>) -> bool {
        let has = |want: &str| match want.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|l| l == v),
            None => labels.contains_key(want),
        };
        self.values("label").all(has) && !self.values("label!").any(has)
    }

    /// A boolean filter (`dangling=true`): its last value, checked.
    pub fn boolean(&self, key: &str) -> Result<Option<bool>> {
        let mut out = None;
        for v in self.values(key) {
            out = Some(match v {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => {
                    return Err(Error::invalid(format!(
                        "invalid filter '{key}={v}': {key} is true or false"
                    )))
                }
            });
        }
        Ok(out)
    }
}

/// Whether the RFC 3339 time `a` is before `b` (the `before` and `since`
/// filters; compared as text when one does not parse).
pub fn earlier(a: &str, b: &str) -> bool {
    let t = |s: &str| humantime::parse_rfc3339_weak(s).ok();
    match (t(a), t(b)) {
        (Some(x), Some(y)) => x < y,
        _ => a < b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn flags_and_json_give_the_same_pairs() {
        let flags = Filters::from_flags(&["label=a=b".into(), "status=exited".into()]).unwrap();
        let json = Filters::from_json(r#"{"label":["a=b"],"status":["exited"]}"#).unwrap();
        let legacy =
            Filters::from_json(r#"{"label":{"a=b":true},"status":{"exited":true}}"#).unwrap();
        assert_eq!(flags, json);
        assert_eq!(json, legacy);
        assert!(Filters::from_json("").unwrap().is_empty());
        assert!(Filters::from_json("[1]").is_err());
        assert!(Filters::from_json(r#"{"label":[1]}"#).is_err());
        assert!(Filters::from_flags(&["label".into()]).is_err());
    }

    #[test]
    fn times_compare() {
        assert!(earlier("2024-01-01T00:00:00Z", "2024-01-01T00:00:00.5Z"));
        assert!(!earlier("2024-01-02T00:00:00Z", "2024-01-01T00:00:00Z"));
    }

    #[test]
    fn docker_rules() {
        let f = Filters::from_flags(&[
            "status=exited".into(),
            "status=created".into(),
            "label=a".into(),
            "label=b=c".into(),
        ])
        .unwrap();
        assert!(f.matches("status", |v| v == "created"));
        assert!(!f.matches("status", |v| v == "running"));
        assert!(f.matches("name", |_| false));
        assert!(f.labels_match(&labels(&[("a", ""), ("b", "c")])));
        assert!(!f.labels_match(&labels(&[("a", "")])));
        assert!(!f.labels_match(&labels(&[("a", ""), ("b", "d")])));
        assert_eq!(
            f.check(&["status"]).unwrap_err().to_string(),
            "invalid filter 'label'"
        );
        assert!(f.check(&["status", "label"]).is_ok());
        let d = Filters::from_flags(&["dangling=maybe".into()]).unwrap();
        assert!(d.boolean("dangling").is_err());
        let d = Filters::from_flags(&["dangling=1".into()]).unwrap();
        assert_eq!(d.boolean("dangling").unwrap(), Some(true));
    }
}
