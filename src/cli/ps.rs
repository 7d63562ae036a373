//! `burrow ps`: list containers with Docker's columns.

use std::path::PathBuf;

use clap::Args;

use super::format::Format;
use super::{table, Ctx};
use crate::container;
use crate::image::changes;
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

/// One `-f` filter. Filters on the same key are alternatives; different
/// keys must all match (Docker's rule).
fn parse_filters(fs: &[String]) -> Result<Vec<(String, String)>, String> {
    fs.iter()
        .map(|f| match f.split_once('=') {
            Some((k @ ("name" | "status" | "id" | "ancestor" | "label"), v)) => {
                Ok((k.to_string(), v.to_string()))
            }
            _ => Err(format!(
                "invalid filter {f:?}: use name=, status=, id=, ancestor= or label="
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
    let filters = parse_filters(&a.filter).map_err(|e| super::Exit::new(crate::exit::BURROW, e))?;
    let ctx = Ctx::open(root)?;
    // -n and -l pick among every container, as Docker's do.
    let last = if a.latest { Some(1) } else { a.last };
    let all = a.all || last.is_some();
    let recs: Vec<_> = container::list(&ctx.store)?
        .into_iter()
        .filter(|r| {
            all || r.is_up(&ctx.store)
                || r.is_restarting(&ctx.store)
                || filters.iter().any(|(k, _)| k == "status")
        })
        .filter(|r| {
            let status = format!("{:?}", r.live_status(&ctx.store)).to_lowercase();
            matches(&filters, "name", |v| r.name.contains(v))
                && matches(&filters, "status", |v| v == status)
                && matches(&filters, "id", |v| r.id.starts_with(v))
                && matches(&filters, "ancestor", |v| {
                    r.config.image == v || r.image.contains(v)
                })
                // Label filters must all match (Docker's rule for labels).
                && filters
                    .iter()
                    .filter(|(k, _)| k == "label")
                    .all(|(_, v)| match v.split_once('=') {
                        Some((k, val)) => r.config.labels.get(k).is_some_and(|l| l == val),
                        None => r.config.labels.contains_key(v),
                    })
        })
        .take(last.unwrap_or(usize::MAX))
        .collect();
    if a.quiet {
        for r in &recs {
            println!("{}", if a.no_trunc { &r.id[..] } else { &r.id[..12] });
        }
        return Ok(0);
    }
    // Size is only measured when asked for: it walks every upper dir.
    let want_size = a.size || format_mentions(&a.format, ".Size");
    let items: Vec<serde_json::Value> = recs
        .iter()
        .map(|r| item(&ctx, r, a.no_trunc, want_size))
        .collect();
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
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|v| {
            keys[..headers.len()]
                .iter()
                .map(|k| v[k].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .collect();
    table::print(&headers, &rows);
    Ok(0)
}

fn format_mentions(format: &str, field: &str) -> bool {
    format == "json" || format.contains(field)
}

/// One container as Docker's `ps --format` sees it (all strings).
fn item(
    ctx: &Ctx,
    r: &container::ContainerRecord,
    no_trunc: bool,
    want_size: bool,
) -> serde_json::Value {
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
    let size = if want_size {
        let upper = changes::size_as(&ctx.store.container_dir(&r.id).join("upper"), &ctx.mapping);
        let image: u64 = r.layers.iter().map(|l| ctx.store.layer_size(l)).sum();
        format!(
            "{} (virtual {})",
            human::size(upper),
            human::size(upper + image)
        )
    } else {
        String::new()
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
        "State": format!("{:?}", r.live_status(&ctx.store)).to_lowercase(),
        "Status": r.status_text(&ctx.store),
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
