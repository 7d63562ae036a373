//! `burrow stats`: CPU, memory, pids and block IO of running containers,
//! refreshed every second like `docker stats`. Numbers come from the
//! container's cgroup (cpu.stat, memory.current, pids.current, io.stat);
//! a container without a cgroup is measured from /proc (its processes' CPU
//! time and resident memory).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;

use super::format::Format;
use super::{table, Ctx};
use crate::container::{self, ContainerRecord, Status};
use crate::linux::{cgroup, process};

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  burrow stats\n  burrow stats --no-stream web\n  burrow stats --no-stream --format json"
)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Print one result and exit instead of refreshing every second
    #[arg(long)]
    pub no_stream: bool,
    /// table, json (one object per line), a Go template ('{{.Name}} {{.CPUPerc}}'), or 'table TEMPLATE'
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Containers (names or ids) [default: all running]
    pub containers: Vec<String>,
}

/// One reading of a container's counters.
#[derive(Debug, Clone, Default)]
struct Reading {
    at: Option<Instant>,
    cpu_usec: Option<u64>,
    /// What Docker shows: usage minus inactive page cache.
    mem: u64,
    /// memory.current as the kernel reports it (None without a cgroup).
    mem_current: Option<u64>,
    mem_limit: u64,
    pids: u64,
    io: Option<(u64, u64)>,
}

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

fn read(rec: &ContainerRecord, up: bool, host_mem: u64) -> Reading {
    if !up {
        return Reading {
            mem_limit: host_mem,
            ..Default::default()
        };
    }
    let now = Some(Instant::now());
    if let Some(dir) = rec.cgroup.as_ref().filter(|d| d.exists()) {
        let s = cgroup::stats(dir);
        let current = s.memory_current.unwrap_or(0);
        return Reading {
            at: now,
            cpu_usec: s.cpu_usec,
            mem: current.saturating_sub(s.inactive_file.unwrap_or(0)),
            mem_current: s.memory_current,
            mem_limit: s.memory_max.unwrap_or(host_mem).min(host_mem.max(1)),
            pids: s.pids_current.unwrap_or(0),
            io: s.io_read.zip(s.io_write),
        };
    }
    // No cgroup: the processes of the container's pid namespace.
    let tick = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as u64;
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
    Reading {
        at: now,
        cpu_usec: Some(ticks * 1_000_000 / tick.max(1)),
        mem: rss,
        mem_current: None,
        mem_limit: host_mem,
        pids: n,
        io: None,
    }
}

/// Docker's binary units for memory: 1.5MiB, 7.8GiB.
fn binary(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.4}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .chars()
            .take(5)
            .collect::<String>()
            .trim_end_matches('.')
            .to_string()
            + UNITS[i]
    }
}

/// Docker's SI units for IO: 1.2MB, 0B.
fn decimal(bytes: u64) -> String {
    crate::util::human::size(bytes)
}

struct Row {
    rec: ContainerRecord,
    cpu_pct: f64,
    now: Reading,
}

fn cpu_percent(before: &Reading, now: &Reading) -> f64 {
    match (before.at, now.at, before.cpu_usec, now.cpu_usec) {
        (Some(t0), Some(t1), Some(c0), Some(c1)) if t1 > t0 => {
            let wall = (t1 - t0).as_micros() as f64;
            c1.saturating_sub(c0) as f64 / wall * 100.0
        }
        _ => 0.0,
    }
}

/// Column titles of `--format 'table ...'`, Docker's.
const HEADERS: &[(&str, &str)] = &[
    ("Container", "CONTAINER"),
    ("ID", "CONTAINER ID"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];

fn print_rows(rows: &[Row], format: &Format, clear: bool) -> anyhow::Result<()> {
    let mut out = String::new();
    if clear {
        // Docker's refresh: clear the screen, cursor home.
        out.push_str("\x1b[2J\x1b[H");
    }
    print!("{out}");
    if !format.is_default() {
        let mut items = Vec::new();
        for r in rows {
            let n = &r.now;
            let mem_pct = if n.mem_limit > 0 {
                n.mem as f64 / n.mem_limit as f64 * 100.0
            } else {
                0.0
            };
            let v = serde_json::json!({
                "BlockIO": block_io(n),
                "CPUPerc": format!("{:.2}%", r.cpu_pct),
                "Container": &r.rec.id[..12],
                "ID": r.rec.id,
                "MemPerc": format!("{mem_pct:.2}%"),
                "MemUsage": format!("{} / {}", binary(n.mem), binary(n.mem_limit)),
                "Name": r.rec.name,
                "NetIO": "--",
                "PIDs": n.pids.to_string(),
                // Raw numbers, for scripts (not in Docker's output).
                "CPUPercent": r.cpu_pct,
                "CPUUsageUsec": n.cpu_usec,
                "MemoryBytes": n.mem,
                "MemoryCurrent": n.mem_current,
                "MemoryLimit": n.mem_limit,
                "Cgroup": r.rec.cgroup,
            });
            items.push(v);
        }
        format.print(&items, HEADERS)?;
    } else {
        let table_rows: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                let n = &r.now;
                let mem_pct = if n.mem_limit > 0 {
                    n.mem as f64 / n.mem_limit as f64 * 100.0
                } else {
                    0.0
                };
                vec![
                    r.rec.id[..12].to_string(),
                    r.rec.name.clone(),
                    format!("{:.2}%", r.cpu_pct),
                    format!("{} / {}", binary(n.mem), binary(n.mem_limit)),
                    format!("{mem_pct:.2}%"),
                    // Containers share the host's network in this version.
                    "--".into(),
                    block_io(n),
                    n.pids.to_string(),
                ]
            })
            .collect();
        table::print(
            &[
                "CONTAINER ID",
                "NAME",
                "CPU %",
                "MEM USAGE / LIMIT",
                "MEM %",
                "NET I/O",
                "BLOCK I/O",
                "PIDS",
            ],
            &table_rows,
        );
    }
    let _ = std::io::stdout().flush();
    Ok(())
}

fn block_io(n: &Reading) -> String {
    match n.io {
        Some((r, w)) => format!("{} / {}", decimal(r), decimal(w)),
        None => "--".into(),
    }
}

pub fn run(root: Option<PathBuf>, a: StatsArgs) -> anyhow::Result<i32> {
    let format = Format::parse(&a.format, &["table"])?;
    let ctx = Ctx::open(root)?;
    let host_mem = host_memory();
    // Named containers are looked up once (an unknown name is an error);
    // otherwise the running ones are listed again at every refresh.
    let named: Vec<String> = a
        .containers
        .iter()
        .map(|k| container::find(&ctx.store, k).map(|r| r.id))
        .collect::<Result<_, _>>()?;
    let current = |store: &crate::store::Store| -> anyhow::Result<Vec<ContainerRecord>> {
        if named.is_empty() {
            Ok(container::list(store)?
                .into_iter()
                .filter(|r| a.all || r.is_up(store))
                .collect())
        } else {
            Ok(named
                .iter()
                .filter_map(|id| ContainerRecord::load(store, id).ok())
                .collect())
        }
    };
    let mut last: BTreeMap<String, Reading> = BTreeMap::new();
    let sample = |recs: &[ContainerRecord], last: &mut BTreeMap<String, Reading>| {
        recs.iter()
            .map(|rec| {
                let up = rec.is_up(&ctx.store);
                let now = read(rec, up, host_mem);
                let paused = rec.live_status(&ctx.store) == Status::Paused;
                let cpu_pct = match last.get(&rec.id) {
                    Some(before) if !paused => cpu_percent(before, &now),
                    _ => 0.0,
                };
                last.insert(rec.id.clone(), now.clone());
                Row {
                    rec: rec.clone(),
                    cpu_pct,
                    now,
                }
            })
            .collect::<Vec<Row>>()
    };
    // A first reading, so that the first CPU % shown covers a real interval.
    let recs = current(&ctx.store)?;
    let _ = sample(&recs, &mut last);
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let recs = current(&ctx.store)?;
        let rows = sample(&recs, &mut last);
        print_rows(
            &rows,
            &format,
            !a.no_stream && !matches!(format, Format::Json),
        )?;
        if a.no_stream {
            return Ok(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_like_docker() {
        assert_eq!(binary(0), "0B");
        assert_eq!(binary(1536), "1.5KiB");
        assert_eq!(binary(64 << 20), "64MiB");
        assert_eq!(binary(1_234_567_890), "1.149GiB");
        let r0 = Reading {
            at: Some(Instant::now()),
            cpu_usec: Some(0),
            ..Default::default()
        };
        let r1 = Reading {
            at: r0.at.map(|t| t + Duration::from_secs(1)),
            cpu_usec: Some(500_000),
            ..Default::default()
        };
        assert!((cpu_percent(&r0, &r1) - 50.0).abs() < 0.01);
    }
}
