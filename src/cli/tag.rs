//! `burrow tag` and `burrow rmi`.

use std::path::PathBuf;

use clap::Args;

use super::{Ctx, Exit};
use crate::container;
use crate::exit;
use crate::image::catalog;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  burrow tag busybox localhost:5000/tools/busybox:1.36")]
pub struct TagArgs {
    /// Existing image (name or id)
    pub source: String,
    /// New name
    pub target: String,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  burrow rmi busybox\n  burrow rmi -f 3f2a9c1d0b7e")]
pub struct RmiArgs {
    /// Remove even if containers use the image
    #[arg(short, long)]
    pub force: bool,
    /// Images (names or ids)
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub fn run_tag(root: Option<PathBuf>, a: TagArgs) -> anyhow::Result<i32> {
    let ctx = Ctx::open(root)?;
    catalog::tag(&ctx.store, &a.source, &a.target)
        .map_err(|e| Exit::new(exit::BURROW, e.to_string()))?;
    Ok(0)
}

pub fn run_rmi(root: Option<PathBuf>, a: RmiArgs) -> anyhow::Result<i32> {
    let ctx = Ctx::open(root)?;
    // Listed under the store lock: a container created meanwhile counts.
    let users = || -> anyhow::Result<Vec<(String, String, Vec<String>)>> {
        Ok(container::list(&ctx.store)?
            .into_iter()
            .map(|r| (r.id, r.image, r.layers))
            .collect())
    };
    super::each(&a.images, "image removals", |name| {
        Ok(catalog::remove(&ctx.store, &ctx.mapping, name, a.force, users)?.lines)
    })
}
