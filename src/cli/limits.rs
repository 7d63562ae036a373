//! The resource-limit flags of `run` and `create` (Docker's names), parsed
//! into `container::cgroup::Resources` and checked against what this host
//! can enforce, before anything is created or forked.

use clap::Args;

use super::Exit;
use crate::container::cgroup::{self, parse_cpuset, parse_size, Resources};
use crate::exit;

const HEADING: &str = "Resource limits (need a delegated cgroup v2 subtree)";

#[derive(Debug, Args, Default)]
pub struct LimitArgs {
    /// Memory limit (e.g. 512m, 1g); the container is OOM-killed above it
    #[arg(short = 'm', long, help_heading = HEADING, value_name = "SIZE")]
    pub memory: Option<String>,
    /// Memory plus swap (e.g. 1g); -1 for unlimited swap [default: twice --memory]
    #[arg(long, help_heading = HEADING, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Number of CPUs (e.g. 0.5, 1.5): a CPU time quota
    #[arg(long, help_heading = HEADING, value_name = "N", allow_hyphen_values = true)]
    pub cpus: Option<String>,
    /// CPU shares, relative weight (2-262144; default 1024)
    #[arg(long, help_heading = HEADING, value_name = "N")]
    pub cpu_shares: Option<String>,
    /// cgroup v2 cpu.weight (1-10000; default 100), instead of --cpu-shares
    #[arg(long, help_heading = HEADING, value_name = "N")]
    pub cpu_weight: Option<String>,
    /// CPUs the container may run on (e.g. 0-1, 0,2)
    #[arg(long, help_heading = HEADING, value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// Maximum number of processes (-1 or 0: unlimited)
    #[arg(long, help_heading = HEADING, value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<String>,
    /// Block IO weight, relative (10-1000)
    #[arg(long, help_heading = HEADING, value_name = "N")]
    pub blkio_weight: Option<String>,
}

fn err(msg: String) -> anyhow::Error {
    Exit::new(exit::BURROW, msg).into()
}

fn int(flag: &str, v: &str) -> anyhow::Result<i64> {
    v.trim()
        .parse::<i64>()
        .map_err(|_| err(format!("invalid value {v:?} for {flag}: not an integer")))
}

fn online_cpus() -> Option<usize> {
    std::thread::available_parallelism().ok().map(|n| n.get())
}

impl LimitArgs {
    /// The limits asked for: every value checked (exit 125 with one line),
    /// then whether this host can enforce them.
    /// The values of the flags, checked on their own; whether this host
    /// can enforce them is the engine's check at create.
    pub fn values(&self) -> anyhow::Result<Resources> {
        self.parse()
    }

    pub fn resources(&self) -> anyhow::Result<Resources> {
        let r = self.parse()?;
        cgroup::check(&r, super::systemd_scopes()).map_err(|e| err(e.to_string()))?;
        Ok(r)
    }

    fn parse(&self) -> anyhow::Result<Resources> {
        let mut r = Resources::default();
        if let Some(m) = &self.memory {
            r.memory = parse_size(m).map_err(|e| err(format!("--memory: {e}")))?;
            // Docker's floor: below this the container cannot even start.
            if r.memory < 6 << 20 {
                return Err(err(format!(
                    "invalid --memory {m}: the minimum memory limit allowed is 6MB"
                )));
            }
        }
        if let Some(s) = &self.memory_swap {
            r.memory_swap = if s.trim() == "-1" {
                -1
            } else {
                parse_size(s).map_err(|e| err(format!("--memory-swap: {e}")))?
            };
            if r.memory == 0 {
                return Err(err(
                    "--memory-swap needs --memory: you should always set the memory limit when using the memory-swap limit".into(),
                ));
            }
            if r.memory_swap != -1 && r.memory_swap < r.memory {
                return Err(err(format!(
                    "invalid --memory-swap {s}: it is memory plus swap, so it must be at least --memory"
                )));
            }
        }
        if let Some(c) = &self.cpus {
            let n: f64 = c.trim().parse().map_err(|_| {
                err(format!(
                    "invalid value {c:?} for --cpus: not a number (e.g. 0.5)"
                ))
            })?;
            let max = online_cpus().unwrap_or(1024) as f64;
            if !n.is_finite() || n < 0.01 || n > max {
                return Err(err(format!(
                    "invalid --cpus {c}: the range of CPUs is from 0.01 to {max:.2}, as there are only {max} CPUs available"
                )));
            }
            r.nano_cpus = (n * 1e9).round() as i64;
        }
        if let Some(s) = &self.cpu_shares {
            let v = int("--cpu-shares", s)?;
            if !(2..=262_144).contains(&v) {
                return Err(err(format!(
                    "invalid --cpu-shares {v}: it must be between 2 and 262144"
                )));
            }
            r.cpu_shares = v;
        }
        if let Some(w) = &self.cpu_weight {
            let v = int("--cpu-weight", w)?;
            if !(1..=10_000).contains(&v) {
                return Err(err(format!(
                    "invalid --cpu-weight {v}: it must be between 1 and 10000"
                )));
            }
            if r.cpu_shares > 0 {
                return Err(err(
                    "--cpu-shares and --cpu-weight set the same thing: give one".into(),
                ));
            }
            r.cpu_weight = v as u64;
        }
        if let Some(c) = &self.cpuset_cpus {
            r.cpuset_cpus =
                parse_cpuset(c.trim(), online_cpus()).map_err(|e| err(e.to_string()))?;
        }
        if let Some(p) = &self.pids_limit {
            r.pids_limit = Some(int("--pids-limit", p)?);
        }
        if let Some(b) = &self.blkio_weight {
            let v = int("--blkio-weight", b)?;
            if v != 0 && !(10..=1000).contains(&v) {
                return Err(err(format!(
                    "invalid --blkio-weight {v}: it must be between 10 and 1000"
                )));
            }
            r.blkio_weight = v as u16;
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(f: impl FnOnce(&mut LimitArgs)) -> anyhow::Result<Resources> {
        let mut a = LimitArgs::default();
        f(&mut a);
        a.parse()
    }

    #[test]
    fn flags_are_validated() {
        let r = parse(|a| {
            a.memory = Some("64m".into());
            a.memory_swap = Some("-1".into());
            a.cpus = Some("0.5".into());
            a.pids_limit = Some("64".into());
        })
        .unwrap();
        assert_eq!(r.memory, 64 << 20);
        assert_eq!(r.memory_swap, -1);
        assert_eq!(r.nano_cpus, 500_000_000);
        assert_eq!(r.pids_limit, Some(64));

        let e = parse(|a| a.memory = Some("12x".into()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--memory: invalid size") && e.contains("12x"),
            "{e}"
        );
        assert!(parse(|a| a.memory = Some("1m".into()))
            .unwrap_err()
            .to_string()
            .contains("6MB"));
        assert!(parse(|a| a.memory_swap = Some("1g".into()))
            .unwrap_err()
            .to_string()
            .contains("needs --memory"));
        assert!(parse(|a| a.cpus = Some("abc".into())).is_err());
        assert!(parse(|a| a.cpus = Some("0".into())).is_err());
        assert!(parse(|a| a.cpus = Some("100000".into())).is_err());
        assert!(parse(|a| a.pids_limit = Some("many".into())).is_err());
        assert!(parse(|a| a.cpu_shares = Some("1".into())).is_err());
        assert!(parse(|a| a.blkio_weight = Some("5".into())).is_err());
        assert!(parse(|a| {
            a.cpu_shares = Some("512".into());
            a.cpu_weight = Some("50".into());
        })
        .is_err());
    }
}
