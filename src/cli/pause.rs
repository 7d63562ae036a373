//! `burrow pause` and `burrow unpause`.

use std::path::PathBuf;

use clap::Args;

use super::Ctx;
use crate::engine::containers;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  burrow pause web\n  burrow unpause web")]
pub struct PauseArgs {
    /// Containers (names or ids)
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(root: Option<PathBuf>, a: PauseArgs, pause: bool) -> anyhow::Result<i32> {
    let ctx = Ctx::open(root)?;
    super::each(
        &a.containers,
        if pause { "pauses" } else { "unpauses" },
        |key| {
            if pause {
                containers::pause(&ctx, key)?;
            } else {
                containers::unpause(&ctx, key)?;
            }
            Ok(vec![key.to_string()])
        },
    )
}
