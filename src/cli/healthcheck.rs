//! `burrow healthcheck run`: podman's verb, one probe of a running
//! container now, recorded as its monitor records one.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::Ctx;
use crate::engine::containers;

#[derive(Debug, Subcommand)]
pub enum HealthcheckCommand {
    /// Run the container's health check once now: exit 0 when it passes, 1
    /// when it fails (printing "unhealthy"), 125 without a health check or
    /// when the container is not running
    Run(RunArgs),
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  burrow healthcheck run web")]
pub struct RunArgs {
    /// Container (name or id)
    pub container: String,
}

pub fn run(root: Option<PathBuf>, c: HealthcheckCommand) -> anyhow::Result<i32> {
    let HealthcheckCommand::Run(a) = c;
    let ctx = Ctx::open(root)?;
    if containers::healthcheck_run(&ctx, &a.container)? {
        Ok(0)
    } else {
        println!("unhealthy");
        Ok(1)
    }
}
