//! `burrow import`: a rootfs tarball (file or `-` for stdin) becomes an image.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::{Ctx, Exit};
use crate::exit;
use crate::image::import::{import_tar, ImportOptions};
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
    let reference = super::optional_reference(a.reference.as_deref())?;
    let ctx = Ctx::open(root)?;
    let comment = a
        .message
        .unwrap_or_else(|| format!("imported from {}", a.file));
    let mut opts = ImportOptions {
        changes: a.changes,
        reference,
        comment,
        ..Default::default()
    };
    let imported = if a.file == "-" {
        import_tar(&ctx.store, &ctx.mapping, std::io::stdin().lock(), &opts)
    } else {
        let f = std::fs::File::open(&a.file)
            .map_err(|e| Exit::new(exit::BURROW, format!("open {}: {e}", a.file)))?;
        opts.total_bytes = f.metadata().ok().map(|m| m.len());
        import_tar(&ctx.store, &ctx.mapping, f, &opts)
    }
    .with_context(|| format!("importing {}", a.file))?;
    for n in &imported.notes {
        eprintln!("note: {}", escape_controls(n));
    }
    println!("{}", imported.id);
    Ok(0)
}
