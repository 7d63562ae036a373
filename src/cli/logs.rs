//! `burrow logs`: a container's output, stdout and stderr kept apart.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{Ctx, Exit};
use crate::engine::{
    self,
    logs::{self, LogsRequest, Step},
};
use crate::monitor::log::Entry;

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
    let since = a.since.as_deref().map(logs::parse_time).transpose()?;
    let until = a.until.as_deref().map(logs::parse_time).transpose()?;
    let req = LogsRequest {
        tail: logs::parse_tail(&a.tail)?,
        since,
        until,
        follow: a.follow,
    };
    let ctx = Ctx::open(root)?;
    let rec = super::rename::find(&ctx, &a.container)?;
    let mut reader = logs::open(&ctx, &rec, &req).map_err(|e| match e {
        engine::Error::NotFound(m) => anyhow::Error::from(Exit::new(super::MISSING, m.to_string())),
        e => e.into(),
    })?;
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
    loop {
        match reader.step(&ctx)? {
            Step::Entries(entries) => show(&entries)?,
            Step::Idle => std::thread::sleep(Duration::from_millis(100)),
            Step::End => return Ok(0),
        }
    }
}
