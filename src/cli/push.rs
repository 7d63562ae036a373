//! `burrow push`: an image to a registry.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::pull::RegistryArgs;
use super::{Ctx, Exit};
use crate::exit;
use crate::image::catalog;
use crate::image::push::{push, PushOptions};
use crate::image::reference::Reference;
use crate::image::registry::credentials::AuthFiles;

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  burrow tag busybox localhost:5000/tools/busybox:1.36\n  burrow push localhost:5000/tools/busybox:1.36\n  burrow push busybox localhost:5000/tools/busybox:latest"
)]
pub struct PushArgs {
    /// Print only the pushed manifest's digest
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Local image (name or id)
    pub image: String,
    /// Where to push it [default: the image's name]
    pub destination: Option<String>,
}

pub fn run(root: Option<PathBuf>, a: PushArgs) -> anyhow::Result<i32> {
    let dest_name = a.destination.as_deref().unwrap_or(&a.image);
    let dest = Reference::parse(dest_name).map_err(|e| Exit::new(exit::BURROW, e.to_string()))?;
    let ctx = Ctx::open(root)?;
    let id = catalog::resolve(&ctx.store, &a.image)
        .map_err(|e| Exit::new(exit::BURROW, e.to_string()))?;
    let opts = PushOptions {
        client: a.registry.client(),
        auth_files: AuthFiles::from_process(),
        quiet: a.quiet,
    };
    let pushed =
        push(&ctx.store, &id, &dest, &opts).with_context(|| format!("pushing {}", dest.short()))?;
    if a.quiet {
        println!("{}", pushed.digest);
    }
    Ok(0)
}
