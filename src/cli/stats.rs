//! `burrow stats`: CPU, memory, pids and block IO of running containers,
//! refreshed every second like `docker stats`. Numbers come from the
//! container's cgroup (cpu.stat, memory.current, pids.current, io.stat);
//! a container without a cgroup is measured from /proc (its processes' CPU
//! time and resident memory); the engine takes the readings, this file
//! turns two of them into CPU % and renders them.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::format::Format;
use super::{table, Ctx};
use crate::container::{self, ContainerRecord};
use crate::engine::containers::{self, StatsReading};

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
    now: StatsReading,
}

/// The CPU time used between two readings, as a share of the wall time
/// between them (100% is one CPU).
fn cpu_percent(before: &StatsReading, now: &StatsReading) -> f64 {
    match (before.at, now.at, before.cpu_usage_ns, now.cpu_usage_ns) {
        (Some(t0), Some(t1), Some(c0), Some(c1)) if t1 > t0 => {
            let wall = (t1 - t0).as_nanos() as f64;
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
            let mem_pct = if n.memory_limit > 0 {
                n.memory as f64 / n.memory_limit as f64 * 100.0
            } else {
                0.0
            };
            let v = serde_json::json!({
                "BlockIO": block_io(n),
                "CPUPerc": format!("{:.2}%", r.cpu_pct),
                "Container": &r.rec.id[..12],
                "ID": r.rec.id,
                "MemPerc": format!("{mem_pct:.2}%"),
                "MemUsage": format!("{} / {}", binary(n.memory), binary(n.memory_limit)),
                "Name": r.rec.name,
                "NetIO": "--",
                "PIDs": n.pids.to_string(),
                // Raw numbers, for scripts (not in Docker's output).
                "CPUPercent": r.cpu_pct,
                "CPUUsageUsec": n.cpu_usage_ns.map(|ns| ns / 1000),
                "MemoryBytes": n.memory,
                "MemoryCurrent": n.memory_current,
                "MemoryLimit": n.memory_limit,
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
                let mem_pct = if n.memory_limit > 0 {
                    n.memory as f64 / n.memory_limit as f64 * 100.0
                } else {
                    0.0
                };
                vec![
                    r.rec.id[..12].to_string(),
                    r.rec.name.clone(),
                    format!("{:.2}%", r.cpu_pct),
                    format!("{} / {}", binary(n.memory), binary(n.memory_limit)),
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

fn block_io(n: &StatsReading) -> String {
    match n.block_io {
        Some((r, w)) => format!("{} / {}", decimal(r), decimal(w)),
        None => "--".into(),
    }
}

pub fn run(root: Option<PathBuf>, a: StatsArgs) -> anyhow::Result<i32> {
    let format = Format::parse(&a.format, &["table"])?;
    let ctx = Ctx::open(root)?;
    // Named containers are looked up once (an unknown name is an error);
    // otherwise the running ones are listed again at every refresh.
    let named: Vec<String> = a
        .containers
        .iter()
        .map(|k| containers::find(&ctx, k).map(|r| r.id))
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
    let mut last: BTreeMap<String, StatsReading> = BTreeMap::new();
    let sample = |recs: &[ContainerRecord], last: &mut BTreeMap<String, StatsReading>| {
        recs.iter()
            .map(|rec| {
                let now = containers::reading(&ctx, rec);
                let cpu_pct = match last.get(&rec.id) {
                    Some(before) if !now.paused => cpu_percent(before, &now),
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
    use std::time::Instant;

    #[test]
    fn units_like_docker() {
        assert_eq!(binary(0), "0B");
        assert_eq!(binary(1536), "1.5KiB");
        assert_eq!(binary(64 << 20), "64MiB");
        assert_eq!(binary(1_234_567_890), "1.149GiB");
        let r0 = StatsReading {
            at: Some(Instant::now()),
            cpu_usage_ns: Some(0),
            ..Default::default()
        };
        let r1 = StatsReading {
            at: r0.at.map(|t| t + Duration::from_secs(1)),
            cpu_usage_ns: Some(500_000_000),
            ..Default::default()
        };
        assert!((cpu_percent(&r0, &r1) - 50.0).abs() < 0.01);
    }
}
