//! `burrow build`: build an image from a Dockerfile (or Containerfile) and a
//! context directory.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;

use super::pull::RegistryArgs;
use super::{Ctx, Exit};
use crate::build::{self, BuildOptions, RunEnv};
use crate::exit;
use crate::image::catalog;
use crate::image::pull::PullOptions;
use crate::image::reference::Reference;
use crate::image::registry::credentials::AuthFiles;
use crate::store::StoreError;

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

fn usage(msg: String) -> anyhow::Error {
    Exit::new(exit::BURROW, msg).into()
}

pub fn run(root: Option<PathBuf>, a: BuildArgs) -> anyhow::Result<i32> {
    // Everything the command line says is checked before the store is opened.
    let mut tags = Vec::new();
    for t in &a.tags {
        tags.push(Reference::parse(t).map_err(|e| usage(format!("invalid tag {t:?}: {e}")))?);
    }
    let mut build_args = BTreeMap::new();
    for kv in &a.build_args {
        match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                build_args.insert(k.to_string(), v.to_string());
            }
            None if !kv.is_empty() => {
                if let Ok(v) = std::env::var(kv) {
                    build_args.insert(kv.clone(), v);
                }
            }
            _ => return Err(usage(format!("--build-arg {kv:?}: expected KEY=VALUE"))),
        }
    }
    let mut labels = Vec::new();
    for kv in &a.labels {
        match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => labels.push((k.to_string(), v.to_string())),
            _ => return Err(usage(format!("--label {kv:?}: expected KEY=VALUE"))),
        }
    }
    if !a.context.is_dir() {
        return Err(usage(format!(
            "the build context {} is not a directory",
            a.context.display()
        )));
    }
    let file = match &a.file {
        Some(f) => f.clone(),
        None => ["Containerfile", "Dockerfile"]
            .iter()
            .map(|n| a.context.join(n))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                usage(format!(
                    "no Containerfile or Dockerfile in {} (name one with -f)",
                    a.context.display()
                ))
            })?,
    };
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| usage(format!("reading the Dockerfile from stdin: {e}")))?
    } else {
        std::fs::read_to_string(&file)
            .map_err(|e| usage(format!("reading {}: {e}", file.display())))?
    };
    let dockerfile = build::dockerfile::parse(&text)
        .map_err(|e| Exit::new(BUILD_FAILED, format!("{}: {}", file.display(), e)))?;
    let rootfs = super::rootfs_choice().map_err(|e| usage(e.to_string()))?;
    let network = crate::network::Mode::parse(&a.network)
        .map_err(|e| usage(e.to_string()))?
        .name()
        .to_string();
    let mut opts = BuildOptions {
        context: a.context.clone(),
        tags,
        build_args,
        target: a.target.clone(),
        no_cache: a.no_cache,
        labels,
        quiet: a.quiet,
        run: RunEnv {
            rootfs,
            scopes: super::systemd_scopes(),
            helper_path: super::helper_path(),
            network,
        },
    };
    let ctx = Ctx::open(root)?;
    opts.run.rootfs = super::store_rootfs(&ctx, true).map_err(|e| usage(e.to_string()))?;
    // RUN steps that download need the outbound helper: say once when it
    // is missing, as `run` does.
    crate::engine::create::helper_notice(&ctx, &opts.run.network, &mut ctx.stderr());
    super::no_range_notice(&ctx);
    // RUN steps read no input, as in `docker build`: their stdin is
    // /dev/null, not the terminal burrow was started from.
    let null =
        std::fs::File::open("/dev/null").map_err(|e| usage(format!("opening /dev/null: {e}")))?;
    crate::linux::process::dup_onto(std::os::fd::AsRawFd::as_raw_fd(&null), 0)
        .map_err(|e| usage(format!("redirecting stdin: {e}")))?;
    let (pull, registry, quiet) = (a.pull, a.registry.clone(), a.quiet);
    let mut resolve = |name: &str| -> anyhow::Result<String> {
        let reference = Reference::parse(name)?;
        if !pull {
            match catalog::resolve(&ctx.store, name) {
                Ok(id) => return Ok(id),
                Err(StoreError::NoSuchImage(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let opts = PullOptions {
            platform: super::pull::platform(None)?,
            client: registry.client(),
            auth_files: AuthFiles::from_process(),
            progress: PullOptions::progress_for(quiet, true),
            to_stderr: true,
        };
        Ok(super::pull::pull_image(&ctx, &reference, &opts)?.id)
    };
    let id = build::build(&ctx.store, &ctx.mapping, &opts, &dockerfile, &mut resolve)
        .map_err(|e| Exit::new(BUILD_FAILED, e.to_string()))?;
    println!("{}", crate::store::hex_of(&id));
    Ok(0)
}
