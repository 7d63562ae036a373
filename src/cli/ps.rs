//! `burrow ps`: list containers with Docker's columns.

use std::path::PathBuf;

use clap::Args;

use super::{table, Ctx};
use crate::container;
use crate::util::human;

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  burrow ps\n  burrow ps -a\n  burrow ps -aq\n  burrow ps -a -f status=exited -f name=web"
)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Only display container ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Output format: table or json (one object per line)
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Filter: name=SUBSTRING, status=created|running|paused|exited, id=PREFIX, ancestor=IMAGE
    #[arg(short, long = "filter", value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
}

/// One `-f` filter. Filters on the same key are alternatives; different
/// keys must all match (Docker's rule).
fn parse_filters(fs: &[String]) -> Result<Vec<(String, String)>, String> {
    fs.iter()
        .map(|f| match f.split_once('=') {
            Some((k @ ("name" | "status" | "id" | "ancestor"), v)) => {
                Ok((k.to_string(), v.to_string()))
            }
            _ => Err(format!(
                "invalid filter {f:?}: use name=, status=, id= or ancestor="
            )),
        })
        .collect()
}

fn matches(filters: &[(String, String)], key: &str, value: impl Fn(&str) -> bool) -> bool {
    let mine: Vec<&String> = filters
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v)
        .collect();
    mine.is_empty() || mine.iter().any(|v| value(v))
}

pub fn run(root: Option<PathBuf>, a: PsArgs) -> anyhow::Result<i32> {
    super::check_format(&a.format, &["table", "json"])?;
    let filters = parse_filters(&a.filter).map_err(|e| super::Exit::new(crate::exit::BURROW, e))?;
    let ctx = Ctx::open(root)?;
    let recs: Vec<_> = container::list(&ctx.store)?
        .into_iter()
        .filter(|r| a.all || r.is_up(&ctx.store) || filters.iter().any(|(k, _)| k == "status"))
        .filter(|r| {
            let status = format!("{:?}", r.live_status(&ctx.store)).to_lowercase();
            matches(&filters, "name", |v| r.name.contains(v))
                && matches(&filters, "status", |v| v == status)
                && matches(&filters, "id", |v| r.id.starts_with(v))
                && matches(&filters, "ancestor", |v| {
                    r.config.image == v || r.image.contains(v)
                })
        })
        .collect();
    if a.quiet {
        for r in &recs {
            println!("{}", if a.no_trunc { &r.id[..] } else { &r.id[..12] });
        }
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = recs
        .iter()
        .map(|r| {
            let command = quote_command(&r.config.argv(), !a.no_trunc);
            vec![
                if a.no_trunc {
                    r.id.clone()
                } else {
                    r.id[..12].to_string()
                },
                r.config.image.clone(),
                command,
                human::ago(&r.created),
                r.status_text(&ctx.store),
                r.ports_text(),
                r.name.clone(),
            ]
        })
        .collect();
    if a.format == "json" {
        for row in rows {
            let obj = serde_json::json!({
                "ID": row[0], "Image": row[1], "Command": row[2], "CreatedAt": row[3],
                "Status": row[4], "Ports": row[5], "Names": row[6],
            });
            println!("{obj}");
        }
        return Ok(0);
    }
    table::print(
        &[
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES",
        ],
        &rows,
    );
    Ok(0)
}

/// Docker shows `"sh -c 'echo hi'"`, cut to 20 characters with an ellipsis.
fn quote_command(argv: &[String], trunc: bool) -> String {
    let joined = argv.join(" ");
    let shown = if trunc && joined.chars().count() > 20 {
        let cut: String = joined.chars().take(19).collect();
        format!("{cut}…")
    } else {
        joined
    };
    format!("\"{shown}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_column() {
        assert_eq!(quote_command(&["sh".into()], true), "\"sh\"");
        let long: Vec<String> = ["sh", "-c", "while true; do echo hi; done"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(quote_command(&long, true), "\"sh -c while true; d…\"");
        assert_eq!(
            quote_command(&long, false),
            "\"sh -c while true; do echo hi; done\""
        );
    }
}
