//! `burrow stop`, `kill`, `restart` and `wait`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{Ctx, Exit};
use crate::container::{self, lifecycle};
use crate::exit;
use crate::monitor;
use crate::util::signal::parse_signal;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  burrow stop web\n  burrow stop -t 2 web db")]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "time", default_value_t = 10)]
    pub time: u64,
    /// Signal to send first [default: the image's StopSignal, else SIGTERM]
    #[arg(short = 's', long)]
    pub signal: Option<String>,
    /// Containers (names or ids)
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  burrow kill web\n  burrow kill -s HUP web")]
pub struct KillArgs {
    /// Signal to send
    #[arg(short = 's', long, default_value = "KILL")]
    pub signal: String,
    /// Containers (names or ids)
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  burrow wait web")]
pub struct WaitArgs {
    /// Containers (names or ids)
    #[arg(required = true)]
    pub containers: Vec<String>,
}

fn signal_arg(s: &str) -> anyhow::Result<nix::sys::signal::Signal> {
    parse_signal(s).map_err(|e| Exit::new(exit::BURROW, e).into())
}

/// Apply `f` to each container found by name or id, printing the name.
fn each(
    ctx: &Ctx,
    keys: &[String],
    what: &str,
    mut f: impl FnMut(&container::ContainerRecord) -> container::Result<()>,
) -> anyhow::Result<i32> {
    super::each(keys, what, |key| {
        f(&container::find(&ctx.store, key)?)?;
        Ok(vec![key.to_string()])
    })
}

pub fn run_stop(root: Option<PathBuf>, a: StopArgs) -> anyhow::Result<i32> {
    let sig = a.signal.as_deref().map(signal_arg).transpose()?;
    let ctx = Ctx::open(root)?;
    each(&ctx, &a.containers, "stops", |rec| {
        lifecycle::stop(&ctx.store, rec, Duration::from_secs(a.time), sig)
    })
}

pub fn run_restart(root: Option<PathBuf>, a: StopArgs) -> anyhow::Result<i32> {
    let sig = a.signal.as_deref().map(signal_arg).transpose()?;
    let ctx = Ctx::open(root)?;
    each(&ctx, &a.containers, "restarts", |rec| {
        lifecycle::stop(&ctx.store, rec, Duration::from_secs(a.time), sig)?;
        let rec = container::find(&ctx.store, &rec.id)?;
        monitor::launch(&ctx.store, &rec, false)?;
        Ok(())
    })
}

pub fn run_kill(root: Option<PathBuf>, a: KillArgs) -> anyhow::Result<i32> {
    let sig = signal_arg(&a.signal)?;
    let ctx = Ctx::open(root)?;
    each(&ctx, &a.containers, "kills", |rec| {
        lifecycle::signal(&ctx.store, rec, sig)
    })
}

pub fn run_wait(root: Option<PathBuf>, a: WaitArgs) -> anyhow::Result<i32> {
    let ctx = Ctx::open(root)?;
    super::each(&a.containers, "waits", |key| {
        let rec = container::find(&ctx.store, key)?;
        let code = lifecycle::wait(&ctx.store, &rec.id)?;
        if let Ok(ended) = container::ContainerRecord::load(&ctx.store, &rec.id) {
            super::start::report_exit_problems(&ctx, &ended);
        }
        Ok(vec![code.to_string()])
    })
}
