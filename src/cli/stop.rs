//! `burrow stop`, `kill`, `restart` and `wait`.

use std::path::PathBuf;

use clap::Args;

use super::Ctx;
use crate::container::{self, lifecycle};
use crate::engine::containers::{self, StopRequest};

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
    // A bad signal is said once, before any container is touched.
    a.signal.as_deref().map(containers::signal).transpose()?;
    let ctx = Ctx::open(root)?;
    let req = stop_request(&a);
    super::each(&a.containers, "stops", |key| {
        containers::stop_with(&ctx, key, &req)?;
        Ok(vec![key.to_string()])
    })
}

fn stop_request(a: &StopArgs) -> StopRequest {
    StopRequest {
        timeout: Some(a.time),
        signal: a.signal.clone(),
    }
}

pub fn run_restart(root: Option<PathBuf>, a: StopArgs) -> anyhow::Result<i32> {
    a.signal.as_deref().map(containers::signal).transpose()?;
    let ctx = Ctx::open(root)?;
    let req = stop_request(&a);
    super::each(&a.containers, "restarts", |key| {
        containers::restart_with(&ctx, key, &req)?;
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
