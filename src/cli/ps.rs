//! `burrow ps`: list containers with Docker's columns.

use std::path::PathBuf;

use clap::Args;

use super::format::Format;
use super::{table, Ctx};
use crate::container;
use crate::engine::containers::{self, ContainerSummary, ListRequest};
use crate::engine::filters::Filters;
use crate::util::human;
use crate::util::printable::go_quote;

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  burrow ps\n  burrow ps -a\n  burrow ps -aq\n  burrow ps -a -f status=exited -f name=web\n  burrow ps -l -s\n  burrow ps --format 'table {{.ID}}\\t{{.Names}}\\t{{.Status}}'"
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
    /// Show the last N created containers (any state)
    #[arg(short = 'n', long, value_name = "N")]
    pub last: Option<usize>,
    /// Show the latest created container (any state)
    #[arg(short, long)]
    pub latest: bool,
    /// Show the size of each container's changes (and of its image)
    #[arg(short, long)]
    pub size: bool,
    /// table, json (one object per line), a Go template ('{{.Names}}'), or 'table TEMPLATE'
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Filter: name=SUBSTRING, status=created|running|paused|restarting|exited, id=PREFIX, ancestor=IMAGE, label=KEY[=VALUE]
    #[arg(short, long = "filter", value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
}

/// Column titles of `--format 'table ...'`, Docker's.
const HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Size", "SIZE"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
];

pub fn run(root: Option<PathBuf>, a: PsArgs) -> anyhow::Result<i32> {
    let format = Format::parse(&a.format, &["table"])?;
    let filters = Filters::from_flags(&a.filter)?;
    let ctx = Ctx::open(root)?;
    // Size is only measured when asked for: it walks every upper dir.
    let want_size = a.size || format_mentions(&a.format, ".Size");
    let recs = containers::list(
        &ctx,
        &ListRequest {
            all: a.all,
            filters,
            last: if a.latest { Some(1) } else { a.last },
            size: want_size && !a.quiet,
        },
    )?;
    if a.quiet {
        for r in &recs {
            let id = &r.record.id;
            println!("{}", if a.no_trunc { &id[..] } else { &id[..12] });
        }
        return Ok(0);
    }
    let items: Vec<serde_json::Value> = recs.iter().map(|r| item(r, a.no_trunc)).collect();
    if !format.is_default() {
        format.print(&items, HEADERS)?;
        return Ok(0);
    }
    let mut headers = vec![
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ];
    let keys = [
        "ID",
        "Image",
        "Command",
        "RunningFor",
        "Status",
        "Ports",
        "Names",
        "Size",
    ];
    if a.size {
        headers.push("SIZE");
    }
    table::print_fields(&headers, &keys[..headers.len()], &items);
    Ok(0)
}

fn format_mentions(format: &str, field: &str) -> bool {
    format == "json" || format.contains(field)
}

/// One container as Docker's `ps --format` sees it (all strings).
fn item(s: &ContainerSummary, no_trunc: bool) -> serde_json::Value {
    let r = &s.record;
    let labels: Vec<String> = r
        .config
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mounts: Vec<&str> = r
        .host_config
        .mounts
        .iter()
        .map(|m| {
            if m.source.is_empty() {
                m.destination.as_str()
            } else {
                m.source.as_str()
            }
        })
        .collect();
    let size = match s.size {
        Some(size) => format!(
            "{} (virtual {})",
            human::size(size.rw),
            human::size(size.root_fs)
        ),
        None => String::new(),
    };
    serde_json::json!({
        "Command": quote_command(&r.config.argv(), !no_trunc),
        "CreatedAt": human::created_at(&r.created),
        "ID": if no_trunc { r.id.clone() } else { r.id[..12].to_string() },
        "Image": r.config.image,
        "Labels": labels.join(","),
        "LocalVolumes": container::volumes::names_of(r).count().to_string(),
        "Mounts": mounts.join(","),
        "Names": r.name,
        "Networks": r.network_name(),
        "Ports": r.ports_text(),
        "RunningFor": human::ago(&r.created),
        "Size": size,
        "State": s.state,
        "Status": s.status,
    })
}

/// Docker shows `"sh -c 'echo hi'"`, cut to 20 characters with an
/// ellipsis, then quoted as Go's `strconv.Quote` does (control characters
/// from the image escaped).
fn quote_command(argv: &[String], trunc: bool) -> String {
    let joined = argv.join(" ");
    let shown = if trunc && joined.chars().count() > 20 {
        let cut: String = joined.chars().take(19).collect();
        format!("{cut}…")
    } else {
        joined
    };
    go_quote(&shown)
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
