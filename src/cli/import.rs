//! `burrow import`: a rootfs tarball (file or `-` for stdin) becomes an image.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::{Ctx, Exit};
use crate::engine::images::{self, ImportRequest};
use crate::exit;
use crate::util::printable::escape_controls;

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  burrow import busybox.tar busybox --change 'CMD [\"sh\"]'\n  zstd -dc rootfs.tar.zst | burrow import - myimage:1.0\n  burrow import debian.tar.gz debian --change 'ENV LANG=C.UTF-8' --change 'WORKDIR /root'"
)]
pub struct ImportArgs {
    /// Apply a Dockerfile instruction (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, STOPSIGNAL, VOLUME)
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
    /// Commit message stored in the image history
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Tarball to import (plain, gzip or zstd), or - for stdin
    pub file: String,
    /// Name for the image: [registry/][project/]repo[:tag]
    pub reference: Option<String>,
}

pub fn run(root: Option<PathBuf>, a: ImportArgs) -> anyhow::Result<i32> {
    // A bad name is refused before the store is opened.
    super::optional_reference(a.reference.as_deref())?;
    let ctx = Ctx::open(root)?;
    let mut req = ImportRequest {
        changes: a.changes,
        reference: a.reference,
        comment: a
            .message
            .unwrap_or_else(|| format!("imported from {}", a.file)),
        total_bytes: None,
    };
    let imported = if a.file == "-" {
        images::import(&ctx, std::io::stdin().lock(), req)
    } else {
        let f = std::fs::File::open(&a.file)
            .map_err(|e| Exit::new(exit::BURROW, format!("open {}: {e}", a.file)))?;
        req.total_bytes = f.metadata().ok().map(|m| m.len());
        images::import(&ctx, f, req)
    }
    .with_context(|| format!("importing {}", a.file))?;
    for n in &imported.notes {
        eprintln!("note: {}", escape_controls(n));
    }
    println!("{}", imported.id);
    Ok(0)
}
