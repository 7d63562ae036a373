//! `burrow save`: images to a docker-archive or an OCI archive.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::{check_format, Ctx};
use crate::engine::archives;
use crate::image::archive::{SaveFormat, SaveTarget};

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  burrow save -o busybox.tar busybox\n  burrow save --format oci-archive -o app.tar app:1.0 app:1.1\n  burrow save busybox | zstd > busybox.tar.zst"
)]
pub struct SaveArgs {
    /// Write to FILE instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Archive format: docker-archive or oci-archive
    #[arg(long, default_value = "docker-archive", value_name = "FORMAT")]
    pub format: String,
    /// Images (names or ids)
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub fn run(root: Option<PathBuf>, a: SaveArgs) -> anyhow::Result<i32> {
    check_format(&a.format, &["docker-archive", "oci-archive"])?;
    let format = if a.format == "oci-archive" {
        SaveFormat::OciArchive
    } else {
        SaveFormat::DockerArchive
    };
    let (target, shown) = match &a.output {
        Some(p) if p.as_os_str() != "-" => (SaveTarget::File(p.clone()), p.display().to_string()),
        _ => (SaveTarget::Stdout, "stdout".to_string()),
    };
    let ctx = Ctx::open(root)?;
    archives::save(&ctx, &a.images, format, &target)
        .with_context(|| format!("saving to {shown}"))?;
    Ok(0)
}
