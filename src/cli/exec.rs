//! `burrow exec`: run a command in a running container (being written).

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Container (name or id)
    pub container: String,
    /// Command and arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub cmd: Vec<String>,
}

pub fn run(_root: Option<PathBuf>, _a: ExecArgs) -> anyhow::Result<i32> {
    Err(super::Exit::new(crate::exit::BURROW, "exec is not implemented yet").into())
}
