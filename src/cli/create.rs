//! `burrow create` and the hidden `burrow __monitor`.

use std::path::PathBuf;

use clap::Args;

use super::run::{create_container, RunArgs};
use super::{Ctx, Exit};
use crate::exit;

/// `create`: the container record with the image config copied in; nothing
/// runs, no CPU or memory is used until `start`.
pub fn run_create(root: Option<PathBuf>, a: RunArgs) -> anyhow::Result<i32> {
    if a.detach {
        return Err(Exit::new(exit::BURROW, "create does not take -d (use start)").into());
    }
    let (_ctx, rec) = create_container(root, a)?;
    println!("{}", rec.id);
    Ok(0)
}

#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// Wait for one attach client before starting the container
    #[arg(long)]
    pub attach_first: bool,
    pub id: String,
}

pub fn run_monitor(root: Option<PathBuf>, a: MonitorArgs) -> anyhow::Result<i32> {
    let ctx = Ctx::open(root)?;
    Ok(crate::monitor::main(
        &ctx.store,
        &ctx.mapping,
        &a.id,
        a.attach_first,
        crate::engine::run::rootfs(&ctx, None),
        ctx.settings.systemd,
        ctx.settings.network_access(),
    ))
}
