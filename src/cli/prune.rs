//! `burrow container prune` (every stopped container) and `burrow image
//! prune` (unused images, layers and blobs).

use std::path::PathBuf;

use clap::Args;

use super::Ctx;
use crate::engine::catalog::{self, ImagesPruned, Removed};
use crate::engine::containers;
use crate::engine::filters::Filters;
use crate::util::human;

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
    for id in containers::prune(&ctx, &Filters::new())?.deleted {
        println!("{id}");
    }
    Ok(0)
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  burrow image prune\n  burrow image prune -a -f")]
pub struct ImagePruneArgs {
    /// Remove every image no container uses, not only untagged ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask for confirmation (burrow never asks; accepted for Docker habits)
    #[arg(short, long)]
    pub force: bool,
}

/// `burrow image prune`: unused images, then layers and blobs nothing needs.
pub fn run_images(root: Option<PathBuf>, a: ImagePruneArgs) -> anyhow::Result<i32> {
    let ctx = Ctx::open(root)?;
    let pruned = catalog::prune(&ctx, a.all, &Filters::new())?;
    print_images(&pruned);
    println!("Total reclaimed space: {}", human::size(pruned.space));
    Ok(0)
}

/// Docker's lines for what an image prune removed.
pub fn print_images(pruned: &ImagesPruned) {
    if !pruned.removed.is_empty() {
        println!("Deleted Images:");
        for r in &pruned.removed {
            match r {
                Removed::Untagged(t) => println!("untagged: {t}"),
                Removed::Deleted(id) => println!("deleted: {id}"),
            }
        }
        println!();
    }
}
