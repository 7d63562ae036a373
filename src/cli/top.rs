//! `burrow top CONTAINER [ps OPTIONS]`: the container's processes as the
//! host's `ps` shows them (`-ef` by default), filtered to the container's
//! pids and laid out as Docker's CLI lays them out.

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::Args;

use super::{Ctx, Exit, Missing};
use crate::container;
use crate::exit;
use crate::util::printable::escape_controls;

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

/// `ps` output as a title row and rows, each row cut into as many fields
/// as there are titles (the last, the command, keeps its spaces).
#[derive(Debug, PartialEq, Eq)]
struct PsTable {
    titles: Vec<String>,
    rows: Vec<Vec<String>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
enum PsError {
    #[error("ps printed nothing")]
    Empty,
    #[error("Couldn't find PID field in ps output")]
    NoPid,
}

/// Keep the rows of `out` whose PID column is one of `pids`.
fn filter(out: &str, pids: &BTreeSet<i32>) -> Result<PsTable, PsError> {
    let mut lines = out.lines();
    let titles: Vec<String> = lines
        .next()
        .ok_or(PsError::Empty)?
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let at = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or(PsError::NoPid)?;
    let mut rows = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < titles.len() {
            continue;
        }
        let keep = fields[at].parse::<i32>().is_ok_and(|p| pids.contains(&p));
        if keep {
            // The container's processes name themselves: escaped
            // (`util::printable`), whatever this host's ps does.
            let mut row: Vec<String> = fields[..titles.len() - 1]
                .iter()
                .map(|f| escape_controls(f).into_owned())
                .collect();
            row.push(escape_controls(&fields[titles.len() - 1..].join(" ")).into_owned());
            rows.push(row);
        }
    }
    Ok(PsTable { titles, rows })
}

/// Docker's CLI writes top through a tabwriter (minimum width 20, padding
/// 3): every column but the last as wide as its widest cell plus three,
/// at least twenty.
fn render(t: &PsTable) -> String {
    let n = t.titles.len();
    let mut widths = vec![0; n];
    for row in std::iter::once(&t.titles).chain(&t.rows) {
        for (i, c) in row.iter().enumerate().take(n - 1) {
            widths[i] = widths[i].max((c.chars().count() + 3).max(20));
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&t.titles).chain(&t.rows) {
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
    let rec = container::find(&ctx.store, &a.container).map_err(|e| match e {
        container::ContainerError::NoSuch(_) => anyhow::Error::from(Missing(e.to_string())),
        e => e.into(),
    })?;
    let pids: BTreeSet<i32> = match container::top::pids(&ctx.store, &rec) {
        Ok(p) => p.into_iter().collect(),
        // Docker's CLI ends with 1 for this, like any daemon error.
        Err(e @ container::ContainerError::NotRunning(_)) => {
            return Err(Exit::new(1, e.to_string()).into())
        }
        Err(e) => return Err(e.into()),
    };
    let args = if a.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        a.ps_args
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| Exit::new(exit::BURROW, format!("running ps: {e}")))?;
    if !out.status.success() {
        return Err(Exit::new(
            exit::BURROW,
            format!(
                "ps {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        )
        .into());
    }
    let table = filter(&String::from_utf8_lossy(&out.stdout), &pids)
        .map_err(|e| Exit::new(exit::BURROW, e.to_string()))?;
    print!("{}", render(&table));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PS: &str = "\
UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 10:00 ?        00:00:01 /sbin/init
400000      4242    4240  0 10:01 ?        00:00:00 sh -c sleep 100
400000      4243    4242  0 10:01 ?        00:00:00 sleep 100
";

    #[test]
    fn only_the_container_and_the_command_whole() {
        let t = filter(PS, &BTreeSet::from([4242, 4243])).unwrap();
        assert_eq!(t.titles.len(), 8);
        assert_eq!(t.rows.len(), 2);
        assert_eq!(t.rows[0][7], "sh -c sleep 100");
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
        assert_eq!(
            filter("USER COMMAND\nx y\n", &BTreeSet::new()),
            Err(PsError::NoPid)
        );
    }
}
