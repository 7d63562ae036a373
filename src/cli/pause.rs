//! `burrow pause` and `burrow unpause`.

use std::path::PathBuf;

use clap::Args;

use super::Ctx;
use crate::container::{self, lifecycle};

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
            let mut rec = container::find(&ctx.store, key)?;
            if pause {
                lifecycle::pause(&ctx.store, &mut rec)?;
            } else {
                lifecycle::unpause(&ctx.store, &mut rec)?;
            }
            Ok(vec![key.to_string()])
        },
    )
}
