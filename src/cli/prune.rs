//! `burrow container prune` (every stopped container) and `burrow image
//! prune` (unused images, layers and blobs).

use std::path::PathBuf;

use clap::Args;

use super::Ctx;
use crate::container;
use crate::image::{changes, gc};
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
    for id in prune_containers(&ctx)?.0 {
        println!("{id}");
    }
    Ok(0)
}

/// Remove every stopped container; returns their ids and the bytes their
/// changes took.
pub fn prune_containers(ctx: &Ctx) -> anyhow::Result<(Vec<String>, u64)> {
    let (mut ids, mut freed) = (Vec::new(), 0);
    for rec in container::list(&ctx.store)? {
        if rec.is_up(&ctx.store) {
            continue;
        }
        let size = changes::size(&ctx.store.container_dir(&rec.id).join("upper"));
        if container::remove(&ctx.store, &rec, &ctx.mapping, false).is_ok() {
            ids.push(rec.id);
            freed += size;
        }
    }
    // Debris: directories whose record is gone (a --rm cleanup that was
    // killed half way). Not listed as containers; removed here.
    for dir in container::orphan_dirs(&ctx.store)? {
        let _ = crate::store::remove_tree(&dir, &ctx.mapping);
    }
    Ok((ids, freed))
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
    let pruned = prune_images(&ctx, a.all)?;
    print_images(&pruned);
    println!("Total reclaimed space: {}", human::size(pruned.reclaimed));
    Ok(0)
}

/// Dangling (with `all`, unused) images, then layers and blobs nothing needs.
pub fn prune_images(ctx: &Ctx, all: bool) -> anyhow::Result<gc::Pruned> {
    Ok(gc::prune(&ctx.store, &ctx.mapping, all, || {
        Ok::<_, container::ContainerError>(
            container::list(&ctx.store)?
                .into_iter()
                .map(|r| gc::ImageUser {
                    image: r.image,
                    layers: r.layers,
                })
                .collect(),
        )
    })?)
}

pub fn print_images(pruned: &gc::Pruned) {
    if !pruned.lines.is_empty() {
        println!("Deleted Images:");
        for l in &pruned.lines {
            println!("{l}");
        }
        println!();
    }
}
