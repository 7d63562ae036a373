//! `burrow events`: what happened to containers, images, networks and
//! volumes, as `docker events` prints it, replayed with `--since` and
//! followed until `--until` or Ctrl-C.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use clap::Args;
use serde_json::Value;

use super::format::Format;
use super::Ctx;
use crate::engine::events::{self, EventsRequest, Step};
use crate::engine::filters::Filters;
use crate::util::printable::escape_controls;

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  burrow events\n  burrow events --since 10m --until 0s\n  burrow events --filter type=container --filter event=die --format json"
)]
pub struct EventsArgs {
    /// Show events since a time (RFC 3339, Unix timestamp, or a duration like 10m)
    #[arg(long)]
    pub since: Option<String>,
    /// Stop once this time has passed
    #[arg(long)]
    pub until: Option<String>,
    /// Filter (type, event, container, image, label, network, volume): KEY=VALUE
    #[arg(short, long = "filter")]
    pub filter: Vec<String>,
    /// Format: json, or a Go template
    #[arg(long, default_value = "")]
    pub format: String,
}

/// Docker's line: time, type, action, actor, its attributes sorted.
fn line(v: &Value) -> String {
    let nanos = v["timeNano"].as_u64().unwrap_or(0);
    let time = humantime::format_rfc3339_nanos(UNIX_EPOCH + Duration::from_nanos(nanos));
    let actor = &v["Actor"];
    let mut out = format!(
        "{time} {} {} {}",
        v["Type"].as_str().unwrap_or(""),
        v["Action"].as_str().unwrap_or(""),
        actor["ID"].as_str().unwrap_or("")
    );
    if let Some(attrs) = actor["Attributes"].as_object().filter(|a| !a.is_empty()) {
        let mut pairs: Vec<String> = attrs
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect();
        pairs.sort();
        out.push_str(&format!(" ({})", pairs.join(", ")));
    }
    escape_controls(&out).into_owned()
}

pub fn run(root: Option<PathBuf>, a: EventsArgs) -> anyhow::Result<i32> {
    let format = Format::parse(&a.format, &[])?;
    let filters = Filters::from_flags(&a.filter)?;
    let req = EventsRequest::parse(a.since.as_deref(), a.until.as_deref(), filters)?;
    let ctx = Ctx::open(root)?;
    let mut reader = events::open(&ctx, &req);
    let mut stdout = std::io::stdout();
    loop {
        match reader.step() {
            Step::Events(records) => {
                let text = if format.is_default() {
                    records.iter().map(|v| line(v) + "\n").collect()
                } else {
                    format.render(&records, &[])?
                };
                stdout.write_all(text.as_bytes())?;
                stdout.flush()?;
            }
            Step::Idle => std::thread::sleep(Duration::from_millis(200)),
            Step::End => return Ok(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_dockers() {
        let v = serde_json::json!({
            "Type": "container", "Action": "die",
            "Actor": {"ID": "abc", "Attributes": {"name": "web", "exitCode": "0", "image": "busybox"}},
            "timeNano": 1_700_000_000_000_000_001u64,
        });
        assert_eq!(
            line(&v),
            "2023-11-14T22:13:20.000000001Z container die abc (exitCode=0, image=busybox, name=web)"
        );
        let bare = serde_json::json!({"Type": "network", "Action": "create",
            "Actor": {"ID": "n", "Attributes": {}}, "timeNano": 0});
        assert_eq!(
            line(&bare),
            "1970-01-01T00:00:00.000000000Z network create n"
        );
    }
}
