//! `burrow start` and `burrow attach`: start containers under a monitor, and
//! connect a terminal (or pipes) to one.

use std::path::PathBuf;

use clap::Args;

use super::{Ctx, Exit};
use crate::container::{self, ContainerError, ContainerRecord};
use crate::exit;
use crate::monitor::{self, attach};

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  burrow start web\n  burrow start -ai shell")]
pub struct StartArgs {
    /// Attach stdout/stderr and forward signals
    #[arg(short, long)]
    pub attach: bool,
    /// Attach stdin
    #[arg(short, long)]
    pub interactive: bool,
    /// Containers (names or ids)
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  burrow attach web        (detach with Ctrl-P Ctrl-Q)")]
pub struct AttachArgs {
    /// Do not attach stdin
    #[arg(long)]
    pub no_stdin: bool,
    /// Container (name or id)
    pub container: String,
}

pub fn run_start(root: Option<PathBuf>, a: StartArgs) -> anyhow::Result<i32> {
    let ctx = Ctx::open(root)?;
    // The monitor starts it; the user hears here if it gets a copy.
    crate::engine::run::rootfs(&ctx, Some(&mut ctx.stderr()));
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            return Err(Exit::new(
                exit::BURROW,
                "you cannot start and attach multiple containers at once",
            )
            .into());
        }
        let rec = container::find(&ctx.store, &a.containers[0])?;
        if rec.is_up(&ctx.store) {
            return attach_running(&ctx, &rec, a.interactive);
        }
        return attach_new_with(&ctx, &rec, a.interactive);
    }
    super::each(&a.containers, "starts", |key| {
        crate::engine::containers::start(&ctx, key)?;
        Ok(vec![key.to_string()])
    })
}

/// Start `rec` under a monitor, attached from its first byte of output
/// (`run -it`, `start -a`). Returns the container's exit code.
pub fn attach_new(ctx: &Ctx, rec: &ContainerRecord) -> anyhow::Result<i32> {
    attach_new_with(ctx, rec, rec.config.open_stdin)
}

fn attach_new_with(ctx: &Ctx, rec: &ContainerRecord, stdin: bool) -> anyhow::Result<i32> {
    let launched = monitor::launch(&ctx.store, rec, true).map_err(ContainerError::from)?;
    let sock = launched
        .attached
        .ok_or_else(|| Exit::new(exit::BURROW, "the monitor did not accept the attach"))?;
    finish(ctx, attach::client(sock, stdin, rec.config.tty)?, rec)
}

fn attach_running(ctx: &Ctx, rec: &ContainerRecord, stdin: bool) -> anyhow::Result<i32> {
    let sock = monitor::connect(&ctx.store, &rec.id).map_err(|e| {
        Exit::new(
            exit::BURROW,
            format!("cannot attach to {}: {e} (was it started with a monitor? foreground `run` containers cannot be attached)", rec.name),
        )
    })?;
    finish(ctx, attach::client(sock, stdin, rec.config.tty)?, rec)
}

fn finish(ctx: &Ctx, end: attach::End, rec: &ContainerRecord) -> anyhow::Result<i32> {
    match end {
        attach::End::Exited(code) => {
            crate::engine::run::settle(ctx, rec, &mut ctx.stderr());
            Ok(code)
        }
        attach::End::Detached => {
            eprintln!("\r\ndetached from {}", rec.name);
            Ok(0)
        }
        attach::End::Lost => Err(Exit::new(
            exit::BURROW,
            format!("lost the connection to {}'s monitor", rec.name),
        )
        .into()),
    }
}

pub fn run_attach(root: Option<PathBuf>, a: AttachArgs) -> anyhow::Result<i32> {
    let ctx = Ctx::open(root)?;
    let rec = container::find(&ctx.store, &a.container)?;
    if !rec.is_up(&ctx.store) {
        return Err(ContainerError::NotRunning(rec.name.clone()).into());
    }
    attach_running(&ctx, &rec, !a.no_stdin && rec.config.open_stdin)
}
