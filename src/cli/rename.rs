//! `burrow rename` and `burrow diff`: a container's name and its filesystem
//! changes.

use std::path::PathBuf;

use clap::Args;

use super::Ctx;
use crate::engine::containers;
use crate::util::printable::escape_controls;

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  burrow rename happy_otter web\n  burrow container rename web web-old"
)]
pub struct RenameArgs {
    /// The container (name or id)
    pub container: String,
    /// Its new name
    pub new_name: String,
}

#[derive(Debug, Args)]
#[command(
    after_help = "A: added, C: changed, D: deleted, against the container's image.\n\nExamples:\n  burrow diff web\n  burrow container diff web"
)]
pub struct DiffArgs {
    /// The container (name or id)
    pub container: String,
}

/// A container by name or id; one that does not exist is Docker's exit 1.
pub fn find(ctx: &Ctx, key: &str) -> anyhow::Result<crate::container::ContainerRecord> {
    Ok(containers::find(ctx, key)?)
}

pub fn run_rename(root: Option<PathBuf>, a: RenameArgs) -> anyhow::Result<i32> {
    let ctx = Ctx::open(root)?;
    containers::rename(&ctx, &a.container, &a.new_name)?;
    Ok(0)
}

pub fn run_diff(root: Option<PathBuf>, a: DiffArgs) -> anyhow::Result<i32> {
    let ctx = Ctx::open(root)?;
    for c in crate::engine::changes::diff(&ctx, &a.container)? {
        // A file name is the container's: escaped, so it can neither drive
        // the terminal nor fake another line of the list.
        println!("{} {}", c.kind.letter(), escape_controls(&c.path));
    }
    Ok(0)
}
