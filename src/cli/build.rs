//! `burrow build`: build an image from a Dockerfile (or Containerfile) and a
//! context directory.

use std::path::PathBuf;

use clap::Args;

use super::pull::RegistryArgs;
use super::{Ctx, Exit};
use crate::engine::build::{self, BuildRequest, DockerfileSource};
use crate::exit;

/// How a failed build ends, as `docker build` ends: 1, whatever failed.
pub const BUILD_FAILED: i32 = 1;

#[derive(Debug, Args)]
#[command(
    after_help = "Every RUN runs in a container of the stage so far (private network), COPY and ADD read the context minus its .dockerignore, and each step that changes files becomes a layer. A step whose inputs did not change reuses its image from the build cache (--no-cache rebuilds); cache images are untagged, so `image prune` removes them.\n\nExamples:\n  burrow build -t app .\n  burrow build -f build/Containerfile --build-arg VERSION=1.2 -t app:1.2 .\n  burrow build --target builder -t app-build ."
)]
pub struct BuildArgs {
    /// Name the image: [registry/][project/]repo[:tag] (repeatable)
    #[arg(short = 't', long = "tag", value_name = "REF")]
    pub tags: Vec<String>,
    /// The Dockerfile, `-` for stdin [default: CONTEXT/Containerfile, else CONTEXT/Dockerfile]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Set a build argument (KEY=VALUE, or KEY to take it from the environment)
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// Build up to this stage (by its AS name) and name that
    #[arg(long)]
    pub target: Option<String>,
    /// Run every step even when the cache has its result
    #[arg(long)]
    pub no_cache: bool,
    /// Pull the FROM images even when they are in the store
    #[arg(long)]
    pub pull: bool,
    /// Add a label to the image (KEY=VALUE)
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Print only the image id
    #[arg(short, long)]
    pub quiet: bool,
    /// Network of the RUN steps: private (outbound through pasta or
    /// slirp4netns), none (loopback only), host, pasta, slirp4netns
    #[arg(
        long = "network",
        alias = "net",
        value_name = "MODE",
        default_value = "private"
    )]
    pub network: String,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// The build context: the directory COPY and ADD read from
    pub context: PathBuf,
}

pub fn run(root: Option<PathBuf>, a: BuildArgs) -> anyhow::Result<i32> {
    // A build argument named alone takes its value from this environment.
    let build_args = a
        .build_args
        .iter()
        .filter_map(|kv| match kv.split_once('=') {
            None if !kv.is_empty() => std::env::var(kv).ok().map(|v| format!("{kv}={v}")),
            _ => Some(kv.clone()),
        })
        .collect();
    let dockerfile = match &a.file {
        None => DockerfileSource::Default,
        // A context that is no directory is refused before stdin is read.
        Some(f) if f.as_os_str() == "-" && !a.context.is_dir() => {
            DockerfileSource::Text(String::new())
        }
        Some(f) if f.as_os_str() == "-" => {
            DockerfileSource::Text(std::io::read_to_string(std::io::stdin()).map_err(|e| {
                Exit::new(
                    exit::BURROW,
                    format!("reading the Dockerfile from stdin: {e}"),
                )
            })?)
        }
        Some(f) => DockerfileSource::Path(f.clone()),
    };
    let req = BuildRequest {
        context: a.context.clone(),
        dockerfile,
        tags: a.tags.clone(),
        build_args,
        labels: a.labels.clone(),
        target: a.target.clone(),
        pull: a.pull,
        no_cache: a.no_cache,
        quiet: a.quiet,
        // RUN steps write to the terminal themselves, as `run` does.
        forward_output: false,
        network: a.network.clone(),
        registry: a.registry.client(),
        rootfs: None,
    };
    // Everything the command line says is checked before the store is opened.
    let plan = build::plan(&req).map_err(exit_of)?;
    let ctx = Ctx::open(root)?;
    let rootfs = crate::engine::run::rootfs(&ctx, Some(&mut ctx.stderr()));
    let plan = plan.with_rootfs(rootfs);
    let id = build::run(&ctx, &plan, &mut ctx.stderr()).map_err(exit_of)?;
    println!("{}", crate::store::hex_of(&id));
    Ok(0)
}

/// A failed build ends burrow with 1, as `docker build` ends.
fn exit_of(e: crate::engine::Error) -> anyhow::Error {
    match e {
        crate::engine::Error::Build(e) => Exit::new(BUILD_FAILED, e.to_string()).into(),
        e => e.into(),
    }
}
