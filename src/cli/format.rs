//! `--format` as Docker reads it: the command's own table (`table` or
//! nothing), `json` (one object per line), a Go template printed once per
//! item, or `table TEMPLATE`: the template's cells aligned under upper-case
//! headers. Text from images and containers is escaped in all of them
//! (`util::printable`).

use serde_json::Value;

use super::template::Template;
use super::Exit;
use crate::exit;
use crate::util::printable::{escape_controls, json_text};

#[derive(Debug, Clone)]
pub enum Format {
    /// The command's usual output.
    Default,
    Json,
    Template {
        template: Template,
        table: bool,
    },
}

impl Format {
    /// `default_words` name the command's usual output (`table`, or `text`
    /// for `info` and `version`); checked before anything else runs.
    pub fn parse(s: &str, default_words: &[&str]) -> anyhow::Result<Format> {
        let s = s.trim();
        if s.is_empty() || default_words.contains(&s) {
            return Ok(Format::Default);
        }
        if s == "json" {
            return Ok(Format::Json);
        }
        // Docker turns a typed `\t` or `\n` into the character, so that
        // `--format 'table {{.ID}}\t{{.Names}}'` works from any shell.
        let (body, table) = match s.strip_prefix("table") {
            Some(rest) if rest.starts_with(char::is_whitespace) => (rest.trim_start(), true),
            _ => (s, false),
        };
        let body = body.replace("\\t", "\t").replace("\\n", "\n");
        let template = Template::parse(&body).map_err(|e| {
            Exit::new(
                exit::BURROW,
                format!("invalid --format template {s:?}: {e}"),
            )
        })?;
        Ok(Format::Template { template, table })
    }

    pub fn is_default(&self) -> bool {
        matches!(self, Format::Default)
    }

    /// Print `items` as json lines or through the template. `headers` maps
    /// a field to its column title for `table`; other fields are titled by
    /// their upper-cased name. The default format is the caller's to print.
    pub fn print(&self, items: &[Value], headers: &[(&str, &str)]) -> anyhow::Result<()> {
        print!("{}", self.render(items, headers)?);
        Ok(())
    }

    pub fn render(&self, items: &[Value], headers: &[(&str, &str)]) -> anyhow::Result<String> {
        let mut out = String::new();
        match self {
            Format::Default => {}
            Format::Json => {
                for v in items {
                    out.push_str(&json_text(&serde_json::to_string(v)?));
                    out.push('\n');
                }
            }
            Format::Template { template, table } => {
                // The data's text is escaped, not the template's: a user's
                // `\t` or `{{join .Names "\n"}}` keeps its meaning.
                let items: Vec<Value> = items.iter().map(escaped).collect();
                let items = &items[..];
                let render = |v: &Value| {
                    template.render(v).map_err(|e| {
                        anyhow::Error::from(Exit::new(
                            exit::BURROW,
                            format!("executing --format template: {e}"),
                        ))
                    })
                };
                let mut lines = String::new();
                if *table {
                    lines.push_str(&render(&header_object(items, headers))?);
                    lines.push('\n');
                }
                for v in items {
                    lines.push_str(&render(v)?);
                    lines.push('\n');
                }
                if *table {
                    out.push_str(&super::table::align(&lines));
                } else {
                    out.push_str(&lines);
                }
            }
        }
        Ok(out)
    }
}

/// `v` with control characters escaped in every string, keys included.
fn escaped(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(escape_controls(s).into_owned()),
        Value::Array(a) => Value::Array(a.iter().map(escaped).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (escape_controls(k).into_owned(), escaped(v)))
                .collect(),
        ),
        v => v.clone(),
    }
}

/// What `.Field` shows in a table's header row: the title Docker gives it.
fn header_object(items: &[Value], headers: &[(&str, &str)]) -> Value {
    let mut m = serde_json::Map::new();
    for item in items {
        if let Value::Object(o) = item {
            for k in o.keys() {
                m.insert(k.clone(), Value::from(k.to_uppercase()));
            }
        }
    }
    for (k, h) in headers {
        m.insert(k.to_string(), Value::from(*h));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_templates_get_headers_and_alignment() {
        let f = Format::parse(r"table {{.ID}}\t{{.Names}}", &["table"]).unwrap();
        let items = [
            json!({"ID": "1f3a9c2b7d10", "Names": "hi"}),
            json!({"ID": "2", "Names": "a-longer-name"}),
        ];
        let out = f.render(&items, &[("ID", "CONTAINER ID")]).unwrap();
        assert_eq!(
            out,
            "CONTAINER ID   NAMES\n1f3a9c2b7d10   hi\n2              a-longer-name\n"
        );
        // Header only, when there is nothing to list.
        assert_eq!(
            f.render(&[], &[("ID", "CONTAINER ID"), ("Names", "NAMES")])
                .unwrap(),
            "CONTAINER ID   NAMES\n"
        );
    }

    #[test]
    fn plain_json_and_default() {
        let items = [json!({"ID": "a"}), json!({"ID": "b"})];
        let f = Format::parse("{{.ID}}", &["table"]).unwrap();
        assert_eq!(f.render(&items, &[]).unwrap(), "a\nb\n");
        let j = Format::parse("json", &["table"]).unwrap();
        assert_eq!(
            j.render(&items, &[]).unwrap(),
            "{\"ID\":\"a\"}\n{\"ID\":\"b\"}\n"
        );
        assert!(Format::parse("table", &["table"]).unwrap().is_default());
        assert!(Format::parse("", &["table"]).unwrap().is_default());
        assert!(Format::parse("{{.ID", &["table"]).is_err());
    }
}
