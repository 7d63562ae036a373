//! cgroup detection: which hierarchy the host has (v2, v1, hybrid), our own
//! cgroup, and which v2 controllers are delegated to us. Limits come later.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CgroupInfo {
    /// "v2", "hybrid" or "v1".
    pub mode: String,
    /// Our cgroup's directory in the v2 hierarchy, if there is one.
    pub own_v2_dir: Option<PathBuf>,
    /// Controllers available in our v2 cgroup.
    pub controllers: Vec<String>,
    /// Whether we may create child cgroups there (delegation).
    pub writable: bool,
}

/// Inspect `sys_cgroup` (normally /sys/fs/cgroup) and `proc_self_cgroup`.
pub fn detect(sys_cgroup: &Path, proc_self_cgroup: &Path) -> CgroupInfo {
    let v2_root = if sys_cgroup.join("cgroup.controllers").exists() {
        Some((sys_cgroup.to_path_buf(), "v2"))
    } else if sys_cgroup.join("unified/cgroup.controllers").exists() {
        Some((sys_cgroup.join("unified"), "hybrid"))
    } else {
        None
    };
    let own = std::fs::read_to_string(proc_self_cgroup)
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("0::").map(|p| p.trim().to_string()))
        });
    match v2_root {
        Some((root, mode)) => {
            let dir = own.map(|p| root.join(p.trim_start_matches('/')));
            let controllers = dir
                .as_ref()
                .and_then(|d| std::fs::read_to_string(d.join("cgroup.controllers")).ok())
                .map(|s| s.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default();
            let writable = dir.as_ref().is_some_and(|d| {
                nix::unistd::access(d.as_path(), nix::unistd::AccessFlags::W_OK).is_ok()
            });
            CgroupInfo {
                mode: mode.into(),
                own_v2_dir: dir,
                controllers,
                writable,
            }
        }
        None => CgroupInfo {
            mode: "v1".into(),
            own_v2_dir: None,
            controllers: Vec::new(),
            writable: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_hybrid_and_v2_layouts() {
        let d = tempfile::tempdir().unwrap();
        let sys = d.path().join("sys");
        std::fs::create_dir_all(sys.join("unified/user.slice")).unwrap();
        std::fs::write(sys.join("unified/cgroup.controllers"), "hugetlb\n").unwrap();
        std::fs::write(
            sys.join("unified/user.slice/cgroup.controllers"),
            "hugetlb\n",
        )
        .unwrap();
        let pc = d.path().join("cgroup");
        std::fs::write(&pc, "12:memory:/user.slice\n0::/user.slice\n").unwrap();
        let i = detect(&sys, &pc);
        assert_eq!(i.mode, "hybrid");
        assert_eq!(i.controllers, ["hugetlb"]);

        let sys2 = d.path().join("sys2");
        std::fs::create_dir_all(sys2.join("user.slice")).unwrap();
        std::fs::write(sys2.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        std::fs::write(sys2.join("user.slice/cgroup.controllers"), "memory pids\n").unwrap();
        let i = detect(&sys2, &pc);
        assert_eq!(i.mode, "v2");
        assert_eq!(i.controllers, ["memory", "pids"]);
        assert_eq!(detect(&d.path().join("none"), &pc).mode, "v1");
    }
}
