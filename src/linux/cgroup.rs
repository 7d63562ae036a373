//! cgroup v2: detection (which hierarchy the host has: v2, v1 or hybrid; our
//! own cgroup; which controllers are delegated to us) and the few file
//! operations a container's cgroup needs: find a delegated subtree, make it
//! able to hold children, create a cgroup, write limits, move processes,
//! freeze, kill, read statistics, remove.
//!
//! These are plain reads and writes of the interface files described in the
//! kernel's Documentation/admin-guide/cgroup-v2.rst, as crun does them.
//! Every function takes the directory it works on (never a hard-coded
//! /sys/fs/cgroup), so the unit tests run on fixture directories.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where the cgroup hierarchy is mounted on a normal host.
pub const SYS_FS_CGROUP: &str = "/sys/fs/cgroup";

/// The leaf a delegated cgroup's own processes move into, so the cgroup
/// may enable controllers for its children: the kernel's "no internal
/// processes" rule forbids both in one cgroup. podman uses the same name,
/// and tests/vm starts its command in `<delegated>/init`.
pub const INIT_LEAF: &str = "init";

/// A cgroup file operation that failed, naming the step and the path.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("{step} {path:?}: {source}")]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// There is no cgroup we may manage; the text says why.
    #[error("{0}")]
    NotDelegated(String),
    #[error("the {controller} controller is not available in {path:?} (it has: {available})")]
    NoController {
        controller: String,
        path: PathBuf,
        available: String,
    },
}

fn io(step: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CgroupError {
    let path = path.to_path_buf();
    move |source| CgroupError::Io { step, path, source }
}

pub type Result<T> = std::result::Result<T, CgroupError>;

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

/// Our cgroup's path in the v2 hierarchy ("/user.slice/..."), from the
/// `0::` line of /proc/self/cgroup.
pub fn own_path(proc_self_cgroup: &Path) -> Option<String> {
    std::fs::read_to_string(proc_self_cgroup)
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("0::").map(|p| p.trim().to_string()))
        })
}

/// A subtree of a pure cgroup v2 hierarchy that we may manage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegation {
    /// The hierarchy's mount point.
    pub root: PathBuf,
    /// The delegated cgroup whose children we create.
    pub base: PathBuf,
    /// Controllers the base has (its `cgroup.controllers`).
    pub controllers: Vec<String>,
}

/// Write access to a cgroup's directory and to the two files that move
/// processes and hand controllers down: what `Delegate=yes` chowns.
pub fn writable(dir: &Path) -> bool {
    let w = |p: &Path| nix::unistd::access(p, nix::unistd::AccessFlags::W_OK).is_ok();
    w(dir) && w(&dir.join("cgroup.procs")) && w(&dir.join("cgroup.subtree_control"))
}

/// Find the delegated subtree we are in: our own cgroup when it is writable,
/// or its parent when we sit in an `init` leaf of a writable parent (a layout
/// made by us, by podman, or by tests/vm). Never the hierarchy's root.
pub fn find_delegation(sys_cgroup: &Path, proc_self_cgroup: &Path) -> Result<Delegation> {
    if !sys_cgroup.join("cgroup.controllers").exists() {
        let why = if sys_cgroup.join("unified/cgroup.controllers").exists() {
            let c = read_list(&sys_cgroup.join("unified"), "cgroup.controllers").join(" ");
            format!(
                "this host has a hybrid cgroup v1/v2 layout: its cgroup v2 hierarchy ({}) has only [{c}], and burrow does not manage cgroup v1",
                sys_cgroup.join("unified").display()
            )
        } else {
            "this host has no cgroup v2 hierarchy".to_string()
        };
        return Err(CgroupError::NotDelegated(why));
    }
    let own = own_path(proc_self_cgroup).ok_or_else(|| {
        CgroupError::NotDelegated(format!(
            "{} has no cgroup v2 line",
            proc_self_cgroup.display()
        ))
    })?;
    let rel = own.trim_start_matches('/');
    if rel.is_empty() {
        return Err(CgroupError::NotDelegated(
            "burrow runs in the root cgroup, which it does not manage".into(),
        ));
    }
    let own_dir = sys_cgroup.join(rel);
    let parent = own_dir.parent().filter(|p| *p != sys_cgroup);
    let base = match parent {
        Some(p) if own_dir.file_name().is_some_and(|n| n == INIT_LEAF) && writable(p) => {
            p.to_path_buf()
        }
        _ if writable(&own_dir) => own_dir,
        _ => {
            return Err(CgroupError::NotDelegated(format!(
                "your cgroup {own} is not delegated to you"
            )))
        }
    };
    Ok(Delegation {
        root: sys_cgroup.to_path_buf(),
        controllers: read_list(&base, "cgroup.controllers"),
        base,
    })
}

impl Delegation {
    /// Make the base able to hold child cgroups with `wanted` controllers:
    /// move the processes in it (burrow itself, and whatever shares its
    /// cgroup) into the `init` leaf, then enable the controllers in its
    /// `cgroup.subtree_control`. Controllers in `required` must be there;
    /// the others are enabled when available (for `stats`).
    pub fn prepare(&self, wanted: &[&str], required: &[&str]) -> Result<()> {
        for c in required {
            if !self.controllers.iter().any(|h| h == c) {
                return Err(CgroupError::NoController {
                    controller: c.to_string(),
                    path: self.base.clone(),
                    available: self.controllers.join(" "),
                });
            }
        }
        let enabled = read_list(&self.base, "cgroup.subtree_control");
        let missing: Vec<&str> = wanted
            .iter()
            .chain(required)
            .copied()
            .filter(|c| self.controllers.iter().any(|h| h == c))
            .filter(|c| !enabled.iter().any(|e| e == c))
            .collect();
        // A process may arrive between the move and the enable (another
        // burrow starting): retry a few times.
        let mut last = None;
        for _ in 0..5 {
            self.evacuate()?;
            let mut failed = None;
            for c in &missing {
                let r = write(&self.base, "cgroup.subtree_control", &format!("+{c}"));
                if let Err(e) = r {
                    if required.contains(c) {
                        failed = Some(e);
                    } else {
                        tracing::debug!("cannot enable {c} in {:?}", self.base);
                    }
                }
            }
            match failed {
                None => return Ok(()),
                Some(e) => last = Some(e),
            }
        }
        Err(last.expect("a failure was recorded"))
    }

    /// Move every process of the base into its `init` leaf.
    fn evacuate(&self) -> Result<()> {
        let pids = procs(&self.base)?;
        if pids.is_empty() {
            return Ok(());
        }
        let leaf = self.base.join(INIT_LEAF);
        mkdir(&leaf)?;
        for pid in pids {
            match move_pid(&leaf, pid) {
                Ok(()) => {}
                // Gone meanwhile.
                Err(CgroupError::Io { source, .. })
                    if source.raw_os_error() == Some(libc::ESRCH) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Remove empty `prefix*` cgroups older than `min_age` (left by a
    /// supervisor that was killed). Younger ones may be another burrow's
    /// container that is just starting.
    pub fn collect_garbage(&self, prefix: &str, min_age: Duration) {
        let Ok(entries) = std::fs::read_dir(&self.base) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            if !name.to_string_lossy().starts_with(prefix) {
                continue;
            }
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= min_age);
            if old && !populated(&e.path()) {
                let _ = std::fs::remove_dir(e.path());
            }
        }
    }
}

/// A whitespace-separated list file (`cgroup.controllers`, ...).
pub fn read_list(dir: &Path, file: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join(file))
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// Write `value` to `dir/file` in one write(2), as the kernel expects.
pub fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let p = dir.join(file);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&p)
        .map_err(io("opening", &p))?;
    f.write_all(value.as_bytes()).map_err(io("writing", &p))
}

/// Create a cgroup (an existing one is fine).
pub fn mkdir(dir: &Path) -> Result<()> {
    match std::fs::create_dir(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            Err(io("creating cgroup", dir)(e))
        }
        _ => Ok(()),
    }
}

/// crun's conversion of cgroup v1 cpu.shares (2..262144) to cpu.weight
/// (1..10000): the default 1024 becomes 39... as in crun and runc.
pub fn shares_to_weight(shares: i64) -> u64 {
    let s = shares.clamp(2, 262_144) as u64;
    1 + ((s - 2) * 9999) / 262_142
}

/// The pids in a cgroup (not its children).
pub fn procs(dir: &Path) -> Result<Vec<i32>> {
    let p = dir.join("cgroup.procs");
    Ok(std::fs::read_to_string(&p)
        .map_err(io("reading", &p))?
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect())
}

/// Move process `pid` (all its threads) into `dir`.
pub fn move_pid(dir: &Path, pid: i32) -> Result<()> {
    write(dir, "cgroup.procs", &pid.to_string())
}

/// The value of `key` in a flat-keyed file ("key value" lines).
pub fn keyed(dir: &Path, file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join(file)).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// A single-value file: a number, or None for "max" or a missing file.
pub fn single(dir: &Path, file: &str) -> Option<u64> {
    std::fs::read_to_string(dir.join(file))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Does the cgroup (or a descendant) still have processes?
pub fn populated(dir: &Path) -> bool {
    keyed(dir, "cgroup.events", "populated").is_some_and(|v| v != 0)
}

/// Freeze (`true`) or thaw the cgroup, and wait until `cgroup.events` says
/// so (a frozen cgroup reports `frozen 1` once every task has stopped).
/// Returns whether the state was reached within `timeout`.
pub fn freeze(dir: &Path, frozen: bool, timeout: Duration) -> Result<bool> {
    write(dir, "cgroup.freeze", if frozen { "1" } else { "0" })?;
    let want = u64::from(frozen);
    let reached = crate::util::poll::until(timeout, Duration::from_millis(5), || {
        (keyed(dir, "cgroup.events", "frozen") == Some(want)).then_some(())
    });
    Ok(reached.is_some())
}

/// SIGKILL every process in the cgroup at once with `cgroup.kill` (Linux
/// 5.14); on older kernels, signal each pid until none is left (a fork bomb
/// may add some between the read and the kill, hence the loop).
pub fn kill(dir: &Path) -> Result<()> {
    if dir.join("cgroup.kill").exists() {
        return write(dir, "cgroup.kill", "1");
    }
    for _ in 0..100 {
        let pids = procs(dir)?;
        if pids.is_empty() {
            break;
        }
        for p in pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// Remove a cgroup once its processes are gone, waiting up to `timeout`
/// for them to be reaped. A missing cgroup is fine.
pub fn remove(dir: &Path, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(io("removing cgroup", dir)(e)),
        }
    }
}

/// Did the kernel's OOM killer kill a process in this cgroup?
pub fn oom_killed(dir: &Path) -> bool {
    keyed(dir, "memory.events", "oom_kill").is_some_and(|n| n > 0)
}

/// What `stats` shows, read from the interface files (absent ones are None).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// cpu.stat usage_usec: CPU time used, in microseconds.
    pub cpu_usec: Option<u64>,
    /// memory.current, in bytes.
    pub memory_current: Option<u64>,
    /// memory.stat inactive_file: page cache the kernel may drop first
    /// (Docker's CLI subtracts it from the usage).
    pub inactive_file: Option<u64>,
    /// memory.max, None when "max".
    pub memory_max: Option<u64>,
    pub pids_current: Option<u64>,
    /// io.stat rbytes and wbytes summed over devices.
    pub io_read: Option<u64>,
    pub io_write: Option<u64>,
}

pub fn stats(dir: &Path) -> Stats {
    let (mut r, mut w, mut any) = (0u64, 0u64, false);
    if let Ok(text) = std::fs::read_to_string(dir.join("io.stat")) {
        any = true;
        for field in text.split_whitespace() {
            if let Some(v) = field.strip_prefix("rbytes=") {
                r += v.parse::<u64>().unwrap_or(0);
            } else if let Some(v) = field.strip_prefix("wbytes=") {
                w += v.parse::<u64>().unwrap_or(0);
            }
        }
    }
    Stats {
        cpu_usec: keyed(dir, "cpu.stat", "usage_usec"),
        memory_current: single(dir, "memory.current"),
        inactive_file: keyed(dir, "memory.stat", "inactive_file"),
        memory_max: single(dir, "memory.max"),
        pids_current: single(dir, "pids.current"),
        io_read: any.then_some(r),
        io_write: any.then_some(w),
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

    fn touch(dir: &Path, files: &[(&str, &str)]) {
        std::fs::create_dir_all(dir).unwrap();
        for (f, v) in files {
            std::fs::write(dir.join(f), v).unwrap();
        }
    }

    #[test]
    fn finds_the_delegated_subtree() {
        let d = tempfile::tempdir().unwrap();
        let pc = d.path().join("cgroup");
        // Hybrid: refused with a reason naming the layout.
        let hy = d.path().join("hy");
        touch(&hy.join("unified"), &[("cgroup.controllers", "hugetlb\n")]);
        std::fs::write(&pc, "0::/user.slice\n").unwrap();
        let e = find_delegation(&hy, &pc).unwrap_err().to_string();
        assert!(e.contains("hybrid") && e.contains("hugetlb"), "{e}");

        let sys = d.path().join("sys");
        let cg = [
            ("cgroup.controllers", "cpu memory pids\n"),
            ("cgroup.procs", ""),
            ("cgroup.subtree_control", ""),
        ];
        touch(&sys, &cg);
        // The root cgroup is never managed.
        std::fs::write(&pc, "0::/\n").unwrap();
        assert!(find_delegation(&sys, &pc).is_err());
        // In an init leaf of a writable parent: the parent (tests/vm).
        touch(&sys.join("deleg/init"), &cg);
        touch(&sys.join("deleg"), &cg);
        std::fs::write(&pc, "0::/deleg/init\n").unwrap();
        let del = find_delegation(&sys, &pc).unwrap();
        assert_eq!(del.base, sys.join("deleg"));
        assert_eq!(del.controllers, ["cpu", "memory", "pids"]);
        // Elsewhere: our own cgroup.
        touch(&sys.join("scope"), &cg);
        std::fs::write(&pc, "0::/scope\n").unwrap();
        assert_eq!(find_delegation(&sys, &pc).unwrap().base, sys.join("scope"));

        // prepare: the processes move to init, then controllers are enabled.
        std::fs::write(sys.join("scope/cgroup.procs"), "4242\n").unwrap();
        touch(&sys.join("scope/init"), &[("cgroup.procs", "")]);
        let del = find_delegation(&sys, &pc).unwrap();
        // (A fixture file keeps what was written: the pid moved stays listed,
        // so prepare moves it again at each try; the writes are what count.)
        del.prepare(&["cpu", "io"], &["memory"]).unwrap();
        assert_eq!(
            std::fs::read_to_string(sys.join("scope/init/cgroup.procs")).unwrap(),
            "4242"
        );
        assert_eq!(
            std::fs::read_to_string(sys.join("scope/cgroup.subtree_control")).unwrap(),
            "+memory"
        );
        let e = del.prepare(&[], &["cpuset"]).unwrap_err().to_string();
        assert!(e.contains("cpuset") && e.contains("cpu memory pids"), "{e}");
    }

    #[test]
    fn reads_stats_and_events() {
        let d = tempfile::tempdir().unwrap();
        let c = d.path();
        touch(
            c,
            &[
                ("cpu.stat", "usage_usec 1500\nuser_usec 1000\n"),
                ("memory.current", "4096\n"),
                ("memory.max", "max\n"),
                ("memory.stat", "anon 1\ninactive_file 1024\n"),
                ("memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n"),
                ("pids.current", "3\n"),
                (
                    "io.stat",
                    "8:0 rbytes=10 wbytes=20 rios=1\n8:16 rbytes=1 wbytes=2\n",
                ),
                ("cgroup.events", "populated 1\nfrozen 0\n"),
                ("cgroup.freeze", "0\n"),
            ],
        );
        let s = stats(c);
        assert_eq!(s.cpu_usec, Some(1500));
        assert_eq!(s.memory_current, Some(4096));
        assert_eq!(s.memory_max, None);
        assert_eq!(s.inactive_file, Some(1024));
        assert_eq!(s.pids_current, Some(3));
        assert_eq!((s.io_read, s.io_write), (Some(11), Some(22)));
        assert!(oom_killed(c));
        assert!(populated(c));
        // The fixture never says frozen: freeze reports the timeout.
        assert!(!freeze(c, true, Duration::from_millis(20)).unwrap());
        assert_eq!(
            std::fs::read_to_string(c.join("cgroup.freeze")).unwrap(),
            "1"
        );
    }
}
