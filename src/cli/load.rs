//! `burrow load`: images from a docker-archive, an OCI archive or an OCI
//! layout directory.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::{Ctx, Exit};
use crate::engine::archives;
use crate::exit;
use crate::image::archive::LoadSource;
use crate::util::printable::escape_controls;

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  burrow load -i busybox.tar\n  docker save alpine | burrow load\n  burrow load -i app.oci.tar.zst\n  burrow load -i ./oci-layout-dir"
)]
pub struct LoadArgs {
    /// Archive to read (docker-archive or OCI archive; plain, gzip or zstd),
    /// or an OCI layout directory [default: stdin]
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Accepted for Docker compatibility (load shows no progress)
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(root: Option<PathBuf>, a: LoadArgs) -> anyhow::Result<i32> {
    let source = match &a.input {
        Some(p) if p.as_os_str() != "-" => LoadSource::Path(p.clone()),
        _ => {
            if std::io::stdin().is_terminal() {
                return Err(Exit::new(
                    exit::BURROW,
                    "requested load from stdin, but stdin is a terminal: use -i FILE or redirect",
                )
                .into());
            }
            LoadSource::Stdin
        }
    };
    let shown = match &source {
        LoadSource::Path(p) => p.display().to_string(),
        LoadSource::Stdin => "stdin".to_string(),
    };
    let ctx = Ctx::open(root)?;
    let report = archives::load(&ctx, &source).with_context(|| format!("loading {shown}"))?;
    for n in &report.notes {
        eprintln!("note: {}", escape_controls(n));
    }
    for img in &report.images {
        if img.tags.is_empty() {
            println!("Loaded image ID: {}", img.id);
        }
        for t in &img.tags {
            println!("Loaded image: {}", t.short());
        }
    }
    Ok(0)
}
