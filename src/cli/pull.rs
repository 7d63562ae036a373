//! `burrow pull`, and the registry flags `run`/`create` share with it.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::{Ctx, Exit};
use crate::exit;
use crate::image::manifest::Platform;
use crate::image::pull::{self, PullOptions, Pulled};
use crate::image::reference::Reference;
use crate::image::registry::credentials::AuthFiles;
use crate::image::registry::ClientOptions;

/// How to reach registries, for every verb that talks to one.
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// Require HTTPS with a verified certificate (false also allows plain HTTP);
    /// loopback registries may always use plain HTTP
    #[arg(long = "tls-verify", value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub tls_verify: bool,
}

impl RegistryArgs {
    pub fn client(&self) -> ClientOptions {
        ClientOptions {
            insecure: !self.tls_verify,
        }
    }
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  burrow pull alpine\n  burrow pull --platform linux/arm64 debian:12\n  burrow pull localhost:5000/team/app:1.0\n  burrow pull alpine@sha256:<digest>"
)]
pub struct PullArgs {
    /// Print only the image's name when done
    #[arg(short, long)]
    pub quiet: bool,
    /// Platform to pull from a multi-platform image: os/arch[/variant]
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Image: [registry/][project/]repo[:tag|@digest]
    pub image: String,
}

/// `--platform`, or the host's.
pub fn platform(flag: Option<&str>) -> anyhow::Result<Platform> {
    match flag {
        None => Ok(Platform::host()),
        Some(p) => Platform::parse(p).map_err(|e| Exit::new(exit::BURROW, e.to_string()).into()),
    }
}

pub fn run(root: Option<PathBuf>, a: PullArgs) -> anyhow::Result<i32> {
    let reference =
        Reference::parse(&a.image).map_err(|e| Exit::new(exit::BURROW, e.to_string()))?;
    let platform = platform(a.platform.as_deref())?;
    let ctx = Ctx::open(root)?;
    let opts = PullOptions {
        platform,
        client: a.registry.client(),
        auth_files: AuthFiles::from_process(),
        progress: PullOptions::progress_for(a.quiet, false),
        to_stderr: false,
    };
    pull_image(&ctx, &reference, &opts)?;
    super::no_range_notice(&ctx);
    println!("{reference}");
    Ok(0)
}

/// Pull with the error said the way Docker users expect.
pub fn pull_image(ctx: &Ctx, reference: &Reference, opts: &PullOptions) -> anyhow::Result<Pulled> {
    pull::pull(&ctx.store, &ctx.mapping, reference, opts)
        .with_context(|| format!("pulling {}", reference.short()))
}

/// `--pull` of `run` and `create`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PullPolicy {
    /// Pull when the image is not in the store
    Missing,
    /// Pull every time
    Always,
    /// Never pull: fail when the image is not in the store
    Never,
}

impl From<PullPolicy> for crate::engine::images::PullPolicy {
    fn from(p: PullPolicy) -> Self {
        use crate::engine::images::PullPolicy as P;
        match p {
            PullPolicy::Missing => P::Missing,
            PullPolicy::Always => P::Always,
            PullPolicy::Never => P::Never,
        }
    }
}
