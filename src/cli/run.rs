//! `burrow run`: create a container from an image and run it in the foreground.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::{Ctx, Exit};
use crate::container::{self, CreateOptions};
use crate::exit;
use crate::image::import::import_builtin_hello;
use crate::image::reference::Reference;
use crate::sandbox::RootfsChoice;
use crate::store::StoreError;

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  burrow run hello-world\n  burrow run --rm busybox echo hello\n  burrow run --rm -e COLOR=blue busybox sh -c 'echo $COLOR'\n  burrow run -it --rm busybox sh"
)]
pub struct RunArgs {
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Set an environment variable (KEY=VALUE, or KEY to take the host's value)
    #[arg(short = 'e', long = "env", value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,
    /// Read environment variables from a file (KEY=VALUE lines, # comments)
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Override the image's ENTRYPOINT ("" clears it)
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// User inside the container: name|uid[:group|gid]
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Container hostname [default: the short container id]
    #[arg(long)]
    pub hostname: Option<String>,
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Keep STDIN open
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Use the caller's terminal (a private pty is a later feature)
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Image to run
    pub image: String,
    /// Command and arguments (replace the image's Cmd)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub cmd: Vec<String>,
}

pub fn run(root: Option<PathBuf>, a: RunArgs) -> anyhow::Result<i32> {
    // Every flag is checked before anything is created or forked.
    let env = collect_env(&a.env, &a.env_file)?;
    if let Some(w) = &a.workdir {
        if !w.starts_with('/') {
            return Err(Exit::new(
                exit::BURROW,
                format!("the working directory {w:?} is invalid, it needs to be an absolute path"),
            )
            .into());
        }
    }
    if let Some(n) = &a.name {
        container::validate_name(n)?;
    }
    let reference =
        Reference::parse(&a.image).map_err(|e| Exit::new(exit::BURROW, e.to_string()))?;
    let rootfs = RootfsChoice::from_env().map_err(|e| Exit::new(exit::BURROW, e))?;
    let ctx = Ctx::open(root)?;

    let image_id = find_or_fetch(&ctx, &a.image, &reference)?;
    let opts = CreateOptions {
        name: a.name,
        image: a.image.clone(),
        image_id,
        cmd: a.cmd,
        env,
        entrypoint: a.entrypoint,
        workdir: a.workdir,
        user: a.user,
        hostname: a.hostname,
        auto_remove: a.rm,
        interactive: a.interactive,
        tty: a.tty,
    };
    let mut rec = {
        let _lock = ctx.store.lock_shared()?;
        container::create(&ctx.store, &opts)?
    };
    let code = container::run_foreground(&ctx.store, &mut rec, &ctx.mapping, rootfs)
        .with_context(|| format!("container {}", rec.name))?;
    Ok(code)
}

/// The image's id; the built-in hello-world is imported on first use, as
/// Docker pulls a missing image.
fn find_or_fetch(ctx: &Ctx, name: &str, reference: &Reference) -> anyhow::Result<String> {
    match ctx.store.resolve_image(name) {
        Ok(id) => Ok(id),
        Err(StoreError::NoSuchImage(_)) => {
            eprintln!("Unable to find image '{}' locally", reference.short());
            if reference.to_string() == "docker.io/library/hello-world:latest" {
                eprintln!("Using the hello-world image built into burrow");
                let imported = import_builtin_hello(&ctx.store, &ctx.mapping)?;
                return Ok(imported.id);
            }
            Err(Exit::new(
                exit::BURROW,
                format!(
                    "image {} is not in the local store and pulling from registries is not supported yet: import it with `burrow import FILE {}`",
                    reference.short(),
                    reference.short()
                ),
            )
            .into())
        }
        Err(e) => Err(e.into()),
    }
}

/// Env from `--env-file`s then `-e`, in order; `KEY` alone takes the host's
/// value and is dropped if the host has none (Docker's rule).
pub fn collect_env(flags: &[String], files: &[PathBuf]) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f)
            .map_err(|e| Exit::new(exit::BURROW, format!("reading env file {f:?}: {e}")))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            push_env(&mut out, line)
                .map_err(|e| Exit::new(exit::BURROW, format!("{}:{}: {e}", f.display(), n + 1)))?;
        }
    }
    for e in flags {
        push_env(&mut out, e).map_err(|m| Exit::new(exit::BURROW, m))?;
    }
    Ok(out)
}

fn push_env(out: &mut Vec<String>, item: &str) -> Result<(), String> {
    let key = item.split_once('=').map_or(item, |(k, _)| k);
    if key.is_empty() || key.contains(char::is_whitespace) {
        return Err(format!("invalid environment variable {item:?}"));
    }
    if item.contains('=') {
        out.push(item.to_string());
    } else if let Ok(v) = std::env::var(key) {
        out.push(format!("{key}={v}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_then_flags() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("env");
        std::fs::write(&f, "# comment\nA=file\nB=file\n\n").unwrap();
        let env = collect_env(&["B=flag".into(), "C=x=y".into()], &[f]).unwrap();
        assert_eq!(env, ["A=file", "B=file", "B=flag", "C=x=y"]);
        assert!(collect_env(&["=x".into()], &[]).is_err());
        assert!(collect_env(&[], &[d.path().join("missing")]).is_err());
        assert!(collect_env(&["BURROW_SURELY_UNSET_VAR".into()], &[])
            .unwrap()
            .is_empty());
    }
}
