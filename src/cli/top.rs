//! `burrow top CONTAINER [ps OPTIONS]`: the container's processes as the
//! host's `ps` shows them (`-ef` by default), filtered to the container's
//! pids and laid out as Docker's CLI lays them out.

use std::path::PathBuf;

use clap::Args;

use super::{Ctx, Exit};
use crate::container::ContainerError;
use crate::engine::containers::{self, Top};
use crate::engine::Error;

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  burrow top web\n  burrow top web aux\n  burrow top web -o pid,user,comm"
)]
pub struct TopArgs {
    /// Container (name or id)
    pub container: String,
    /// Options for ps [default: -ef]
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

/// Docker's CLI writes top through a tabwriter (minimum width 20, padding
/// 3): every column but the last as wide as its widest cell plus three,
/// at least twenty.
fn render(t: &Top) -> String {
    let n = t.titles.len();
    let mut widths = vec![0; n];
    for row in std::iter::once(&t.titles).chain(&t.processes) {
        for (i, c) in row.iter().enumerate().take(n - 1) {
            widths[i] = widths[i].max((c.chars().count() + 3).max(20));
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&t.titles).chain(&t.processes) {
        for (i, c) in row.iter().enumerate() {
            if i + 1 < n {
                out.push_str(&format!("{c:<w$}", w = widths[i]));
            } else {
                out.push_str(c);
            }
        }
        out.push('\n');
    }
    out
}

pub fn run(root: Option<PathBuf>, a: TopArgs) -> anyhow::Result<i32> {
    let ctx = Ctx::open(root)?;
    let top = match containers::top(&ctx, &a.container, &a.ps_args) {
        Ok(t) => t,
        // Docker's CLI ends with 1 for this, like any daemon error.
        Err(Error::Container(e @ ContainerError::NotRunning(_))) => {
            return Err(Exit::new(1, e.to_string()).into())
        }
        Err(e) => return Err(e.into()),
    };
    print!("{}", render(&top));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laid_out_as_docker_does() {
        let t = Top {
            titles: ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
                .map(String::from)
                .to_vec(),
            processes: vec![[
                "400000",
                "4242",
                "4240",
                "0",
                "10:01",
                "?",
                "00:00:00",
                "sh -c sleep 100",
            ]
            .map(String::from)
            .to_vec()],
        };
        let text = render(&t);
        let first = text.lines().next().unwrap();
        assert!(
            first.starts_with("UID                 PID                 PPID"),
            "{first:?}"
        );
        assert!(first.ends_with("TIME                CMD"));
        assert!(text
            .lines()
            .nth(1)
            .unwrap()
            .ends_with("00:00:00            sh -c sleep 100"));
    }
}
