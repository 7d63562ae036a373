//! `burrow push`: an image to a registry.

use std::path::PathBuf;

use clap::Args;

use super::pull::{Out, RegistryArgs, Render};
use super::{Ctx, Exit};
use crate::engine::{self, images::PushRequest};
use crate::exit;
use crate::image::reference::Reference;

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
    let req = PushRequest {
        image: a.image.clone(),
        destination: dest,
        registry: a.registry.client(),
    };
    let mut sink = ctx.stderr();
    sink.render = Render::new(Out::Stdout);
    sink.render.quiet = a.quiet;
    let pushed = engine::images::push(&ctx, &req, &mut sink).map_err(|e| match e {
        // burrow's own failure, as before the engine said Docker's 404.
        engine::Error::NotFound(m) => Exit::new(exit::BURROW, m.to_string()).into(),
        e => anyhow::Error::new(e),
    })?;
    drop(sink);
    if a.quiet {
        println!("{}", pushed.digest);
    }
    Ok(0)
}
