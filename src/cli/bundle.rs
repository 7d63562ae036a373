//! `burrow bundle`: an image as an OCI runtime bundle, for engines that take
//! bundles (Slurm's `srun --container`, `burrow-runc`, runc, crun).

use std::path::PathBuf;

use clap::Args;

use super::Ctx;
use crate::engine::bundle::{self, BundleRequest};

#[derive(Debug, Args)]
#[command(
    after_help = "The bundle is rootless: a user namespace maps root to you (and your subordinate ids to 1 and up), and it keeps the host's network.\n\nExamples:\n  burrow bundle busybox ./bb-bundle && burrow-runc run --bundle ./bb-bundle bb1\n  srun --container=$PWD/bb-bundle id -u      # with Slurm's oci.conf pointing at burrow-runc"
)]
pub struct BundleArgs {
    /// A local image (name or id; `burrow pull` fetches one)
    pub image: String,
    /// The bundle's directory: new, or empty
    pub dir: PathBuf,
}

pub fn run(root: Option<PathBuf>, a: BundleArgs) -> anyhow::Result<i32> {
    let ctx = Ctx::open(root)?;
    let dir = std::path::absolute(&a.dir)?;
    bundle::bundle(
        &ctx,
        &BundleRequest {
            image: a.image,
            dir: dir.clone(),
        },
    )?;
    println!("{}", dir.display());
    Ok(0)
}
