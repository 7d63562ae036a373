//! `update`: a running container's resource limits, from runc's flags or
//! an OCI `LinuxResources` object (`--resources FILE`, or `-` for stdin, as
//! containerd's shim sends it), written into the container's cgroup v2
//! files (memory.max, memory.low, memory.swap.max, cpu.max, cpu.weight,
//! cpuset.cpus, cpuset.mems, pids.max) as runc converts them. Only a cgroup
//! that holds nothing but the container's processes is written: burrow-runc
//! places no container in a cgroup of its own, so when the engine did not
//! either, the limits would land on the engine too, and the update is
//! refused. What cannot be applied is refused before anything is written.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Map, Value};

use super::state::{Dir, Status};
use super::UpdateArgs;
use crate::linux::cgroup::{self, shares_to_weight};
use crate::linux::process;
use crate::util::human::ram_in_bytes;

/// The fields of `LinuxResources` burrow-runc applies; any other field that
/// asks for something is refused.
const APPLIED: [&str; 9] = [
    "memory.limit",
    "memory.reservation",
    "memory.swap",
    "cpu.shares",
    "cpu.quota",
    "cpu.period",
    "cpu.cpus",
    "cpu.mems",
    "pids.limit",
];

pub(super) fn update(root: &Path, a: &UpdateArgs) -> Result<()> {
    let dir = Dir::new(root, &a.id)?;
    let s = dir.load()?;
    let resources = match &a.resources {
        Some(r) => {
            let text = if r.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).context("reading resources from stdin")?
            } else {
                std::fs::read_to_string(r)
                    .with_context(|| format!("reading resources from {}", r.display()))?
            };
            serde_json::from_str(&text).map_err(|e| anyhow!("the resources JSON: {e}"))?
        }
        None => from_flags(a)?,
    };
    let writes = writes(&resources)?;
    if writes.is_empty() {
        return Ok(());
    }
    if dir.status(&s) == Status::Stopped {
        bail!("container {} is not running", a.id);
    }
    let cg = own_cgroup(s.pid, &process::descendants(Path::new("/proc"), s.pid))?;
    for (file, _) in &writes {
        if !cg.join(file).exists() {
            let controller = file.split('.').next().unwrap_or(file);
            bail!(
                "the {controller} controller is not enabled in the container's cgroup {} (it has: {})",
                cg.display(),
                cgroup::read_list(&cg, "cgroup.controllers").join(" ")
            );
        }
    }
    for (file, value) in &writes {
        cgroup::write(&cg, file, value)?;
    }
    Ok(())
}

/// runc's flags as the `LinuxResources` object they stand for.
fn from_flags(a: &UpdateArgs) -> Result<Value> {
    let size = |flag: &str, v: &Option<String>| -> Result<Value> {
        Ok(match v.as_deref() {
            None => Value::Null,
            Some("-1") => json!(-1),
            Some(s) => json!(ram_in_bytes(s).ok_or_else(|| anyhow!(
                "--{flag}: invalid size {s:?}: use a number with an optional unit b, k, m or g (512m, 1.5g)"
            ))?),
        })
    };
    let int = |flag: &str, v: &Option<String>| -> Result<Value> {
        Ok(match v.as_deref() {
            None => Value::Null,
            Some(s) => json!(s
                .parse::<i64>()
                .map_err(|_| anyhow!("--{flag}: {s:?} is not a number"))?),
        })
    };
    let text = |v: &Option<String>| v.as_ref().map_or(Value::Null, |s| json!(s));
    Ok(json!({
        "memory": {
            "limit": size("memory", &a.memory)?,
            "reservation": size("memory-reservation", &a.memory_reservation)?,
            "swap": size("memory-swap", &a.memory_swap)?,
            "kernel": size("kernel-memory", &a.kernel_memory)?,
            "kernelTCP": size("kernel-memory-tcp", &a.kernel_memory_tcp)?,
        },
        "cpu": {
            "shares": int("cpu-share", &a.cpu_share)?,
            "quota": int("cpu-quota", &a.cpu_quota)?,
            "period": int("cpu-period", &a.cpu_period)?,
            "realtimePeriod": int("cpu-rt-period", &a.cpu_rt_period)?,
            "realtimeRuntime": int("cpu-rt-runtime", &a.cpu_rt_runtime)?,
            "idle": int("cpu-idle", &a.cpu_idle)?,
            "cpus": text(&a.cpuset_cpus),
            "mems": text(&a.cpuset_mems),
        },
        "pids": {"limit": int("pids-limit", &a.pids_limit)?},
        "blockIO": {"weight": int("blkio-weight", &a.blkio_weight)?},
        "intelRdt": {
            "l3CacheSchema": text(&a.l3_cache_schema),
            "memBwSchema": text(&a.mem_bw_schema),
        },
    }))
}

/// Whether a value asks for something: runc leaves what is absent, null,
/// zero or empty as it is.
fn is_set(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => o.values().any(is_set),
    }
}

/// The set leaves of `v`, by dotted path.
fn set_leaves(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(o) => {
            for (k, child) in o {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                set_leaves(&path, child, out);
            }
        }
        _ if is_set(v) => out.push((prefix.to_string(), v.clone())),
        _ => {}
    }
}

/// The cgroup v2 files to write for `resources`, converted as runc does;
/// an error naming every field asked for that burrow-runc does not apply.
fn writes(resources: &Value) -> Result<Vec<(&'static str, String)>> {
    if !resources.is_object() {
        bail!("the resources JSON is not an object");
    }
    let mut leaves = Vec::new();
    set_leaves("", resources, &mut leaves);
    let refused: Vec<&str> = leaves
        .iter()
        .map(|(p, _)| p.as_str())
        .filter(|p| !APPLIED.contains(p))
        .collect();
    if !refused.is_empty() {
        bail!(
            "burrow-runc cannot apply {} (it applies memory limit, reservation and swap, cpu shares, quota, period, cpus and mems, and the pids limit)",
            refused.join(", ")
        );
    }
    let get: Map<String, Value> = leaves.into_iter().collect();
    let int = |p: &str| -> Result<Option<i64>> {
        match get.get(p) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| anyhow!("{p}: {v} is not an integer")),
        }
    };
    let limit_value = |n: i64| {
        if n < 0 {
            "max".to_string()
        } else {
            n.to_string()
        }
    };
    let mut w = Vec::new();
    let limit = int("memory.limit")?;
    if let Some(l) = limit {
        w.push(("memory.max", limit_value(l)));
    }
    if let Some(r) = int("memory.reservation")? {
        w.push(("memory.low", limit_value(r)));
    }
    if let Some(swap) = int("memory.swap")? {
        // OCI's swap is memory plus swap; cgroup v2's swap.max is swap alone.
        let value = match (swap, limit) {
            (-1, _) => "max".to_string(),
            (_, None) => {
                bail!("memory.swap needs memory.limit: the swap limit is memory plus swap")
            }
            (_, Some(-1)) => bail!("memory.swap needs a memory.limit that is not unlimited"),
            (s, Some(l)) if s < l => {
                bail!("memory.swap ({s}) must be at least memory.limit ({l})")
            }
            (s, Some(l)) => (s - l).to_string(),
        };
        w.push(("memory.swap.max", value));
    }
    if let Some(shares) = int("cpu.shares")? {
        w.push(("cpu.weight", shares_to_weight(shares).to_string()));
    }
    let (quota, period) = (int("cpu.quota")?, int("cpu.period")?);
    if quota.is_some() || period.is_some() {
        let mut v = match quota {
            Some(q) if q > 0 => q.to_string(),
            _ => "max".to_string(),
        };
        if let Some(p) = period {
            v += &format!(" {p}");
        }
        w.push(("cpu.max", v));
    }
    for (field, file) in [("cpu.cpus", "cpuset.cpus"), ("cpu.mems", "cpuset.mems")] {
        if let Some(v) = get.get(field) {
            let s = v
                .as_str()
                .ok_or_else(|| anyhow!("{field}: {v} is not a string"))?;
            w.push((file, s.to_string()));
        }
    }
    if let Some(p) = int("pids.limit")? {
        w.push(("pids.max", limit_value(p)));
    }
    Ok(w)
}

/// The container's cgroup v2 directory, when it holds only the container's
/// processes (`container`, init first).
fn own_cgroup(init: i32, container: &[i32]) -> Result<PathBuf> {
    let sys = Path::new(cgroup::SYS_FS_CGROUP);
    let info = cgroup::detect(sys, Path::new(&format!("/proc/{init}/cgroup")));
    let Some(dir) = info.own_v2_dir else {
        bail!("this host has no cgroup v2 hierarchy, and burrow-runc does not manage cgroup v1");
    };
    let rel = cgroup::own_path(Path::new(&format!("/proc/{init}/cgroup"))).unwrap_or_default();
    let no_own = |why: String| {
        anyhow!(
            "the container has no cgroup of its own ({why}): burrow-runc changes limits only in a cgroup that holds nothing but the container, which the engine creates (a delegated cgroup v2)"
        )
    };
    if rel.trim_start_matches('/').is_empty() {
        return Err(no_own("it is in the root cgroup".into()));
    }
    let procs = cgroup::procs(&dir)?;
    if let Some(other) = procs.iter().find(|p| !container.contains(p)) {
        return Err(no_own(format!(
            "its cgroup {rel} also holds process {other}"
        )));
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_conversions() {
        let w = writes(&json!({
            "memory": {"limit": 1048576, "swap": 3145728, "swappiness": null},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": ""},
            "pids": {"limit": -1},
            "hugepageLimits": [],
            "devices": []
        }))
        .unwrap();
        assert_eq!(
            w,
            [
                ("memory.max", "1048576".to_string()),
                ("memory.swap.max", "2097152".to_string()),
                ("cpu.weight", "39".to_string()),
                ("cpu.max", "50000 100000".to_string()),
                ("pids.max", "max".to_string()),
            ]
        );
        assert_eq!(
            writes(&json!({"cpu": {"period": 20000}})).unwrap(),
            [("cpu.max", "max 20000".to_string())]
        );
    }

    #[test]
    fn what_is_not_applied_is_refused_by_name() {
        let e = writes(&json!({
            "memory": {"limit": 1048576},
            "blockIO": {"weight": 100},
            "cpu": {"realtimeRuntime": 5}
        }))
        .unwrap_err()
        .to_string();
        assert!(e.contains("blockIO.weight, cpu.realtimeRuntime"), "{e}");
        assert!(!e.contains("memory.limit,"), "{e}");
        let e = writes(&json!({"memory": {"swap": 5}})).unwrap_err();
        assert!(e.to_string().contains("needs memory.limit"), "{e}");
    }
}
