//! `burrow cp`: copy files between the host and a container (running or not).

use std::io::Seek;
use std::os::fd::AsFd;
use std::path::PathBuf;

use clap::Args;

use super::{Ctx, Exit};
use crate::engine::copy::{self, Direction};
use crate::exit;

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  burrow cp ./config.json web:/etc/app/\n  burrow cp web:/var/log/app.log .\n  burrow cp build:/out ./out\n  burrow cp web:/etc - | tar -t      (- is a tar stream on stdout or stdin)"
)]
pub struct CpArgs {
    /// Source: a host path, CONTAINER:PATH, or - (a tar stream on stdin)
    pub src: String,
    /// Destination: a host path, CONTAINER:PATH, or - (a tar stream on stdout)
    pub dst: String,
}

/// `name:/path` names a container path; a host path may contain ':' only
/// after a '/' (`./a:b`), as in Docker.
fn container_part(s: &str) -> Option<(&str, &str)> {
    let (c, p) = s.split_once(':')?;
    (!c.is_empty() && !c.contains('/') && !c.starts_with('.')).then_some((c, p))
}

pub fn run(root: Option<PathBuf>, a: CpArgs) -> anyhow::Result<i32> {
    let bad = |m: &str| Exit::new(exit::BURROW, m.to_string());
    let (name, dir) = match (container_part(&a.src), container_part(&a.dst)) {
        (Some(_), Some(_)) => return Err(bad("copying between containers is not supported").into()),
        (None, None) => return Err(bad("one of SRC and DST must be CONTAINER:PATH").into()),
        (Some((c, p)), None) => (
            c,
            Direction::Out {
                container: absolute(p),
                host: PathBuf::from(&a.dst),
            },
        ),
        (None, Some((c, p))) => (
            c,
            Direction::In {
                host: PathBuf::from(&a.src),
                container: absolute(p),
            },
        ),
    };
    let ctx = Ctx::open(root)?;
    match &dir {
        // `-` is a tar stream, as in Docker: out on stdout, in from stdin
        // (unpacked into a directory).
        Direction::Out { container, host } if host.as_os_str() == "-" => {
            let out = std::io::stdout().as_fd().try_clone_to_owned()?;
            copy::archive(&ctx, name, container, out.into())?;
        }
        Direction::In { host, container } if host.as_os_str() == "-" => {
            let mut input = copy::scratch_file(&ctx)?;
            std::io::copy(&mut std::io::stdin().lock(), &mut input)?;
            input.rewind()?;
            copy::extract(&ctx, name, container, input, false)?;
        }
        _ => copy::copy(&ctx, name, &dir)?,
    }
    Ok(0)
}

/// Container paths are relative to its root (Docker also resolves them
/// against the working directory; the root is the common case).
fn absolute(p: &str) -> String {
    if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    }
}
