//! A running container's processes (`top`, the host's `ps` cut to the
//! container's pids) and a reading of its counters (`stats`: cgroup cpu,
//! memory, pids and I/O, network counters from its namespace).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Instant, SystemTime};

use super::containers::find;
use super::{Engine, Result};
use crate::container::{self, ContainerRecord, Status};
use crate::linux::{cgroup, process};
use crate::util::printable::escape_controls;

/// A container's processes as the host's `ps` shows them: its title row,
/// and one row per process cut into as many fields (the last, the
/// command, keeps its spaces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Top {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

/// Why `ps` gave no rows for `top`.
#[derive(Debug, thiserror::Error)]
pub enum TopError {
    #[error("running ps: {0}")]
    Run(#[source] std::io::Error),
    /// `ps` ended in failure (bad arguments): what it said.
    #[error("ps {args}: {stderr}")]
    Failed { args: String, stderr: String },
    #[error("ps printed nothing")]
    Empty,
    /// Docker's words, which clients match on.
    #[error("Couldn't find PID field in ps output")]
    NoPid,
}

/// Run `ps` (with `ps_args`, `-ef` when none) and keep the rows of the
/// container's processes. A container that is not running is a conflict.
pub fn top(engine: &Engine, key: &str, ps_args: &[String]) -> Result<Top> {
    let rec = find(engine, key)?;
    let pids: BTreeSet<i32> = container::top::pids(&engine.store, &rec)?
        .into_iter()
        .collect();
    let args = if ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        ps_args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(TopError::Run)?;
    if !out.status.success() {
        return Err(TopError::Failed {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        }
        .into());
    }
    Ok(top_rows(&String::from_utf8_lossy(&out.stdout), &pids)?)
}

/// Keep the rows of `ps` output whose PID column is one of `pids`.
fn top_rows(out: &str, pids: &BTreeSet<i32>) -> std::result::Result<Top, TopError> {
    let mut lines = out.lines();
    let titles: Vec<String> = lines
        .next()
        .ok_or(TopError::Empty)?
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let at = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or(TopError::NoPid)?;
    let mut processes = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < titles.len() {
            continue;
        }
        if fields[at].parse::<i32>().is_ok_and(|p| pids.contains(&p)) {
            // The container's processes name themselves: escaped
            // (`util::printable`), whatever this host's ps does.
            let mut row: Vec<String> = fields[..titles.len() - 1]
                .iter()
                .map(|f| escape_controls(f).into_owned())
                .collect();
            row.push(escape_controls(&fields[titles.len() - 1..].join(" ")).into_owned());
            processes.push(row);
        }
    }
    Ok(Top { titles, processes })
}

/// One reading of a container's counters: from its cgroup (cpu.stat,
/// memory.current, pids.current, io.stat), or without one from /proc (its
/// processes' CPU time and resident memory).
#[derive(Debug, Clone, Default)]
pub struct StatsReading {
    /// When it was taken (None for a container that is not up).
    pub at: Option<Instant>,
    pub read: Option<SystemTime>,
    pub up: bool,
    pub paused: bool,
    /// CPU time the container used, in nanoseconds.
    pub cpu_usage_ns: Option<u64>,
    /// CPU time the host's CPUs spent, in nanoseconds (/proc/stat).
    pub system_cpu_ns: Option<u64>,
    pub online_cpus: u32,
    /// What Docker shows: usage minus inactive page cache.
    pub memory: u64,
    /// memory.current as the kernel reports it (None without a cgroup).
    pub memory_current: Option<u64>,
    pub memory_limit: u64,
    pub pids: u64,
    /// Bytes read and written (None when not known).
    pub block_io: Option<(u64, u64)>,
    /// The counters of each interface of its own network namespace but
    /// loopback (none for one on the host's network).
    pub networks: Vec<NetCounters>,
}

/// One interface's counters, as `/proc/net/dev` has them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetCounters {
    pub interface: String,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// The interfaces of a `/proc/PID/net/dev` text, loopback left out.
pub fn net_dev(text: &str) -> Vec<NetCounters> {
    text.lines()
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let name = name.trim();
            let f: Vec<u64> = rest
                .split_whitespace()
                .map(|v| v.parse().ok())
                .collect::<Option<_>>()?;
            if name == "lo" || f.len() < 16 {
                return None;
            }
            Some(NetCounters {
                interface: name.to_string(),
                rx_bytes: f[0],
                rx_packets: f[1],
                rx_errors: f[2],
                rx_dropped: f[3],
                tx_bytes: f[8],
                tx_packets: f[9],
                tx_errors: f[10],
                tx_dropped: f[11],
            })
        })
        .collect()
}

/// The interfaces of `rec`'s network namespace (none on the host's).
fn networks_of(rec: &ContainerRecord) -> Vec<NetCounters> {
    if rec.network_mode() == crate::network::Mode::Host || rec.state.pid <= 0 {
        return Vec::new();
    }
    std::fs::read_to_string(format!("/proc/{}/net/dev", rec.state.pid))
        .map(|t| net_dev(&t))
        .unwrap_or_default()
}

/// A reading of the container `key` names.
pub fn stats(engine: &Engine, key: &str) -> Result<StatsReading> {
    Ok(reading(engine, &find(engine, key)?))
}

/// A reading of `rec`'s counters now.
pub fn reading(engine: &Engine, rec: &ContainerRecord) -> StatsReading {
    let status = rec.live_status(&engine.store);
    let up = matches!(status, Status::Running | Status::Paused);
    let host_mem = host_memory();
    let online_cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    if !up {
        return StatsReading {
            memory_limit: host_mem,
            online_cpus,
            ..Default::default()
        };
    }
    let base = StatsReading {
        at: Some(Instant::now()),
        read: Some(SystemTime::now()),
        up,
        paused: status == Status::Paused,
        system_cpu_ns: system_cpu_ns(),
        online_cpus,
        memory_limit: host_mem,
        networks: networks_of(rec),
        ..Default::default()
    };
    if let Some(dir) = rec.cgroup.as_ref().filter(|d| d.exists()) {
        let s = cgroup::stats(dir);
        let current = s.memory_current.unwrap_or(0);
        return StatsReading {
            cpu_usage_ns: s.cpu_usec.map(|u| u * 1000),
            memory: current.saturating_sub(s.inactive_file.unwrap_or(0)),
            memory_current: s.memory_current,
            memory_limit: s.memory_max.unwrap_or(host_mem).min(host_mem.max(1)),
            pids: s.pids_current.unwrap_or(0),
            block_io: s.io_read.zip(s.io_write),
            ..base
        };
    }
    // No cgroup: the processes of the container's pid namespace.
    let tick = clock_ticks();
    let (mut ticks, mut rss, mut n) = (0u64, 0u64, 0u64);
    for pid in process::descendants(Path::new("/proc"), rec.state.pid) {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        n += 1;
        if let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            ticks += get(11) + get(12);
        }
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            rss += status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or(0)
                * 1024;
        }
    }
    StatsReading {
        cpu_usage_ns: Some(ticks * 1_000_000 / tick * 1000),
        memory: rss,
        pids: n,
        ..base
    }
}

fn clock_ticks() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100)
        .max(1) as u64
}

/// The host's memory, the limit of a container without one.
fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// The time every CPU of the host spent, from the `cpu` line of /proc/stat
/// (Docker's `system_cpu_usage`).
fn system_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: u64 = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    Some(ticks * (1_000_000_000 / clock_ticks()))
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
    fn top_keeps_the_container_and_the_command_whole() {
        let t = top_rows(PS, &BTreeSet::from([4242, 4243])).unwrap();
        assert_eq!(t.titles.len(), 8);
        assert_eq!(t.processes.len(), 2);
        assert_eq!(t.processes[0][7], "sh -c sleep 100");
        assert_eq!(
            top_rows("USER COMMAND\nx y\n", &BTreeSet::new())
                .unwrap_err()
                .to_string(),
            "Couldn't find PID field in ps output"
        );
    }

    #[test]
    fn net_dev_counters() {
        let text = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0
  eth0:    2000      20    1    2    0     0          0         0     3000      30    3    4    0     0       0          0
";
        assert_eq!(
            net_dev(text),
            [NetCounters {
                interface: "eth0".into(),
                rx_bytes: 2000,
                rx_packets: 20,
                rx_errors: 1,
                rx_dropped: 2,
                tx_bytes: 3000,
                tx_packets: 30,
                tx_errors: 3,
                tx_dropped: 4,
            }]
        );
    }
}
