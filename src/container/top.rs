//! Which host processes belong to a running container, for `top`: the pids
//! in its cgroup's `cgroup.procs` when it has one, else every process whose
//! pid namespace is PID 1's (so `exec`'d commands count too).

use std::path::Path;

use super::{ContainerError, ContainerRecord, Result};
use crate::store::Store;

/// The container's processes as host pids, ascending.
pub fn pids(store: &Store, rec: &ContainerRecord) -> Result<Vec<i32>> {
    if !rec.is_up(store) {
        return Err(ContainerError::NotRunning(rec.id.clone()));
    }
    if let Some(dir) = &rec.cgroup {
        if let Ok(mut p) = crate::linux::cgroup::procs(dir) {
            if !p.is_empty() {
                p.sort_unstable();
                return Ok(p);
            }
        }
    }
    Ok(in_pid_namespace_of(Path::new("/proc"), rec.state.pid))
}

/// Pids under `proc_root` whose `ns/pid` link names the namespace `pid1`
/// is in. A process that ends while we look is simply left out.
pub fn in_pid_namespace_of(proc_root: &Path, pid1: i32) -> Vec<i32> {
    let ns = |pid: &str| std::fs::read_link(proc_root.join(pid).join("ns/pid")).ok();
    let Some(want) = ns(&pid1.to_string()) else {
        return Vec::new();
    };
    let Ok(rd) = std::fs::read_dir(proc_root) else {
        return Vec::new();
    };
    let mut out: Vec<i32> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = name.parse::<i32>().ok()?;
            (ns(&name).as_ref() == Some(&want)).then_some(pid)
        })
        .collect();
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_namespace_only() {
        let d = tempfile::tempdir().unwrap();
        for (pid, ns) in [
            (10, "pid:[1]"),
            (11, "pid:[1]"),
            (12, "pid:[2]"),
            (20, "pid:[1]"),
        ] {
            let dir = d.path().join(pid.to_string()).join("ns");
            std::fs::create_dir_all(&dir).unwrap();
            std::os::unix::fs::symlink(ns, dir.join("pid")).unwrap();
        }
        std::fs::create_dir_all(d.path().join("self")).unwrap();
        assert_eq!(in_pid_namespace_of(d.path(), 11), [10, 11, 20]);
        assert_eq!(in_pid_namespace_of(d.path(), 12), [12]);
        assert!(in_pid_namespace_of(d.path(), 99).is_empty());
    }
}
