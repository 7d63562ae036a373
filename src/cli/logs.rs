//! `burrow logs`: a container's output, stdout and stderr kept apart.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{Ctx, Exit};
use crate::container::{self, LOG_FILE};
use crate::exit;
use crate::monitor::log::{self, Entry, Query};

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  burrow logs web\n  burrow logs -f --tail 10 web\n  burrow logs --since 10m -t web"
)]
pub struct LogsArgs {
    /// Follow the output until the container ends
    #[arg(short, long)]
    pub follow: bool,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Number of lines to show from the end ("all" for every line)
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show logs since a time (RFC 3339, Unix timestamp, or a duration like 10m)
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a time
    #[arg(long)]
    pub until: Option<String>,
    /// Container (name or id)
    pub container: String,
}

pub fn run(root: Option<PathBuf>, a: LogsArgs) -> anyhow::Result<i32> {
    let tail = match a.tail.as_str() {
        "all" => None,
        n => Some(n.parse::<usize>().map_err(|_| {
            Exit::new(
                exit::BURROW,
                format!("invalid --tail {n:?}: a number or \"all\""),
            )
        })?),
    };
    let parse = |s: &Option<String>| {
        s.as_deref()
            .map(log::parse_time)
            .transpose()
            .map_err(|e| Exit::new(exit::BURROW, e.to_string()))
    };
    let q = Query {
        tail,
        since: parse(&a.since)?,
        until: parse(&a.until)?,
    };
    let ctx = Ctx::open(root)?;
    let rec = super::rename::find(&ctx, &a.container)?;
    if !rec.host_config.log_config.keeps_output() {
        return Err(Exit::new(
            super::MISSING,
            "configured logging driver does not support reading",
        )
        .into());
    }
    let path = ctx.store.container_dir(&rec.id).join(LOG_FILE);
    let (mut reader, entries) = log::Reader::open(&path, &q)?;
    let show = |entries: &[Entry]| -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        let mut err = std::io::stderr().lock();
        for e in entries {
            let w: &mut dyn Write = if e.stream == "stderr" {
                &mut err
            } else {
                &mut out
            };
            if a.timestamps {
                write!(w, "{} ", e.time)?;
            }
            w.write_all(e.log.as_bytes())?;
        }
        out.flush()?;
        err.flush()
    };
    show(&entries)?;
    if a.follow {
        let q = Query { tail: None, ..q };
        loop {
            // Up, or between two runs of a restart policy.
            let up = container::find(&ctx.store, &rec.id)
                .is_ok_and(|r| r.is_up(&ctx.store) || r.is_restarting(&ctx.store));
            if let Ok(more) = reader.more(&q) {
                show(&more)?;
            }
            if !up {
                // One last read: the monitor flushes the log before it
                // records the exit.
                if let Ok(more) = reader.more(&q) {
                    show(&more)?;
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(0)
}
