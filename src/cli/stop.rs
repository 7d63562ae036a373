//! `burrow stop`, `kill`, `restart` and `wait`.

use std::path::PathBuf;

use clap::Args;

use super::Ctx;
use crate::container::{self, lifecycle};
use crate::engine::containers::{self, StopRequest};
use crate::engine::{self, Engine};

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

pub fn run_stop(root: Option<PathBuf>, a: StopArgs) -> anyhow::Result<i32> {
    each_stop(root, a, "stops", containers::stop_with)
}

pub fn run_restart(root: Option<PathBuf>, a: StopArgs) -> anyhow::Result<i32> {
    each_stop(root, a, "restarts", containers::restart_with)
}

/// `stop` (or `restart`, which stops first) of each container alike.
fn each_stop(
    root: Option<PathBuf>,
    a: StopArgs,
    what: &str,
    stop: impl Fn(&Engine, &str, &StopRequest) -> Result<(), engine::Error>,
) -> anyhow::Result<i32> {
    // A bad signal is said once, before any container is touched.
    a.signal.as_deref().map(containers::signal).transpose()?;
    let ctx = Ctx::open(root)?;
    let req = StopRequest {
        timeout: Some(a.time),
        signal: a.signal,
    };
    super::each(&a.containers, what, |key| {
        stop(&ctx, key, &req)?;
        Ok(vec![key.to_string()])
    })
}

pub fn run_kill(root: Option<PathBuf>, a: KillArgs) -> anyhow::Result<i32> {
    containers::signal(&a.signal)?;
    let ctx = Ctx::open(root)?;
    super::each(&a.containers, "kills", |key| {
        containers::kill(&ctx, key, Some(&a.signal))?;
        Ok(vec![key.to_string()])
    })
}

pub fn run_wait(root: Option<PathBuf>, a: WaitArgs) -> anyhow::Result<i32> {
    let ctx = Ctx::open(root)?;
    super::each(&a.containers, "waits", |key| {
        let rec = container::find(&ctx.store, key)?;
        let code = lifecycle::wait(&ctx.store, &rec.id)?;
        if let Ok(ended) = container::ContainerRecord::load(&ctx.store, &rec.id) {
            crate::engine::run::exit_problems(&ctx, &ended, &mut ctx.stderr());
        }
        Ok(vec![code.to_string()])
    })
}
