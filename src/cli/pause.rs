//! `burrow pause` and `burrow unpause`.

use std::path::PathBuf;

use clap::Args;

use super::{Ctx, Exit};
use crate::container::{self, lifecycle};
use crate::exit;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  burrow pause web\n  burrow unpause web")]
pub struct PauseArgs {
    /// Containers (names or ids)
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(root: Option<PathBuf>, a: PauseArgs, pause: bool) -> anyhow::Result<i32> {
    let ctx = Ctx::open(root)?;
    let mut failed = 0;
    for key in &a.containers {
        let r = container::find(&ctx.store, key).and_then(|mut rec| {
            if pause {
                lifecycle::pause(&ctx.store, &mut rec)
            } else {
                lifecycle::unpause(&ctx.store, &mut rec)
            }
        });
        match r {
            Ok(()) => println!("{key}"),
            Err(e) => {
                eprintln!("burrow: {e}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        return Err(Exit::new(
            exit::BURROW,
            format!("{failed} of {} container(s) failed", a.containers.len()),
        )
        .into());
    }
    Ok(0)
}
