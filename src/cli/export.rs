//! `burrow export` / `burrow container export`: a container's filesystem as a tar archive.

use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::path::PathBuf;

use clap::Args;

use super::{Ctx, Exit};
use crate::engine::changes;
use crate::exit;
use crate::util::printable::escape_controls;

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  burrow export web > web.tar\n  burrow export -o web.tar web\n  burrow export web | burrow import - web-flat"
)]
pub struct ExportArgs {
    /// Write to this file instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Container (name or id)
    pub container: String,
}

pub fn run(root: Option<PathBuf>, a: ExportArgs) -> anyhow::Result<i32> {
    if a.output.is_none() && std::io::stdout().is_terminal() {
        return Err(Exit::new(
            exit::BURROW,
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        )
        .into());
    }
    let ctx = Ctx::open(root)?;
    let notes = match &a.output {
        Some(path) => changes::export_to_path(&ctx, &a.container, path)?,
        None => {
            let out = std::io::stdout().as_fd().try_clone_to_owned()?;
            changes::export(&ctx, &a.container, out.into())?
        }
    };
    for n in &notes {
        eprintln!("note: {}", escape_controls(n));
    }
    Ok(0)
}
