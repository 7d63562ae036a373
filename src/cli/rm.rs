//! `burrow rm`: remove containers by name or id prefix, several at once.

use std::path::PathBuf;

use clap::Args;

use super::Ctx;
use crate::engine::containers::{self, RemoveRequest};

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  burrow rm web\n  burrow rm -f web db 3f2a\n  burrow rm -v web"
)]
pub struct RmArgs {
    /// Kill and remove running containers
    #[arg(short, long)]
    pub force: bool,
    /// Remove the containers' anonymous volumes too
    #[arg(short, long)]
    pub volumes: bool,
    /// Containers (names or ids)
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(root: Option<PathBuf>, a: RmArgs) -> anyhow::Result<i32> {
    let ctx = Ctx::open(root)?;
    super::each(&a.containers, "removals", |key| {
        let req = RemoveRequest {
            force: a.force,
            volumes: a.volumes,
        };
        containers::remove(&ctx, key, &req)?;
        Ok(vec![key.to_string()])
    })
}
