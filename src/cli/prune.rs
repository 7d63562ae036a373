//! `burrow container prune`: remove every stopped container.

use std::path::PathBuf;

use clap::Args;

use super::Ctx;
use crate::container;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  burrow container prune -f")]
pub struct PruneArgs {
    /// Do not ask for confirmation (burrow never asks; accepted for Docker habits)
    #[arg(short, long)]
    pub force: bool,
}

pub fn run(root: Option<PathBuf>, _a: PruneArgs) -> anyhow::Result<i32> {
    let ctx = Ctx::open(root)?;
    println!("Deleted Containers:");
    for rec in container::list(&ctx.store)? {
        if !rec.is_up(&ctx.store)
            && container::remove(&ctx.store, &rec, &ctx.mapping, false).is_ok()
        {
            println!("{}", rec.id);
        }
    }
    // Debris: directories whose record is gone (a --rm cleanup that was
    // killed half way). Not listed as containers; removed here.
    for dir in container::orphan_dirs(&ctx.store)? {
        let _ = crate::store::remove_tree(&dir, &ctx.mapping);
    }
    Ok(0)
}
