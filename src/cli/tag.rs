//! `burrow tag` and `burrow rmi`.

use std::path::PathBuf;

use clap::Args;

use super::{Ctx, Exit};
use crate::engine::catalog::{self, Removed};
use crate::exit;

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
    catalog::tag(&ctx, &a.source, &a.target).map_err(|e| Exit::new(exit::BURROW, e.to_string()))?;
    Ok(0)
}

pub fn run_rmi(root: Option<PathBuf>, a: RmiArgs) -> anyhow::Result<i32> {
    let ctx = Ctx::open(root)?;
    super::each(&a.images, "image removals", |name| {
        Ok(catalog::remove(&ctx, name, a.force, true)?
            .iter()
            .map(|r| match r {
                Removed::Untagged(t) => format!("Untagged: {t}"),
                Removed::Deleted(id) => format!("Deleted: {id}"),
            })
            .collect())
    })
}
