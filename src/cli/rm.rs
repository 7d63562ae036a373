//! `burrow rm`: remove containers by name or id prefix, several at once.

use std::path::PathBuf;

use clap::Args;

use super::{Ctx, Exit};
use crate::container;
use crate::exit;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  burrow rm web\n  burrow rm -f web db 3f2a")]
pub struct RmArgs {
    /// Kill and remove running containers
    #[arg(short, long)]
    pub force: bool,
    /// Containers (names or ids)
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(root: Option<PathBuf>, a: RmArgs) -> anyhow::Result<i32> {
    let ctx = Ctx::open(root)?;
    let mut failed = 0;
    // Like Docker: remove what can be removed, report each failure, exit
    // non-zero if any failed.
    for key in &a.containers {
        let result = container::find(&ctx.store, key)
            .and_then(|rec| container::remove(&ctx.store, &rec, &ctx.mapping, a.force));
        match result {
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
            format!(
                "{failed} of {} container(s) not removed",
                a.containers.len()
            ),
        )
        .into());
    }
    Ok(0)
}
