//! A container's cgroup: the resource limits (Docker's flags, parsed and
//! checked before anything starts), where the cgroup goes (a delegated
//! cgroup v2 subtree, or none), what is written into it, and what is read
//! back and removed when the container ends. The file operations themselves
//! are in `linux::cgroup`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::linux::cgroup::{self, CgroupError, Delegation};
use crate::linux::systemd::{self, Manager};
use crate::sandbox::{Failure, Placement, Spec, StartError, Step};
use crate::util::poll;

/// How to get a cgroup burrow may manage; ends every "cannot enforce" error.
pub const DELEGATION_HINT: &str = "limits need a delegated cgroup v2 subtree: run burrow inside one, e.g. `systemd-run --user --scope -p Delegate=yes burrow run ...`";

/// Prefix of a container's cgroup name (`burrow-<id>`).
const PREFIX: &str = "burrow-";

/// Docker's resource fields of `HostConfig` (flattened into it, so `inspect`
/// shows `HostConfig.Memory`, `HostConfig.NanoCpus`, ... as Docker does).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Resources {
    /// `-m`: bytes; 0 = no limit.
    pub memory: i64,
    /// `--memory-swap`: memory plus swap in bytes; 0 = Docker's default
    /// (as much swap as memory), -1 = unlimited swap.
    pub memory_swap: i64,
    /// `--cpus` × 10⁹.
    pub nano_cpus: i64,
    /// `--cpu-shares` (cgroup v1 units, 2..262144; converted as crun does).
    pub cpu_shares: i64,
    /// `--cpu-weight`: cgroup v2's cpu.weight (1..10000). Not a Docker field.
    #[serde(skip_serializing_if = "is_zero")]
    pub cpu_weight: u64,
    /// `--cpuset-cpus`: "0-2,4".
    pub cpuset_cpus: String,
    /// `--pids-limit`; None or <= 0 = no limit.
    pub pids_limit: Option<i64>,
    /// `--blkio-weight` (10..1000; 0 = unset).
    pub blkio_weight: u16,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// One interface file to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitWrite {
    pub controller: &'static str,
    pub file: &'static str,
    pub value: String,
    /// Skipped (not an error) when the file does not exist: Docker's
    /// implied swap limit on a kernel without swap accounting.
    pub optional: bool,
}

impl Resources {
    /// The flags that ask for a limit, as the user typed them.
    pub fn flags(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.memory > 0 {
            v.push("--memory");
        }
        if self.memory_swap != 0 {
            v.push("--memory-swap");
        }
        if self.nano_cpus > 0 {
            v.push("--cpus");
        }
        if self.cpu_shares > 0 {
            v.push("--cpu-shares");
        }
        if self.cpu_weight > 0 {
            v.push("--cpu-weight");
        }
        if !self.cpuset_cpus.is_empty() {
            v.push("--cpuset-cpus");
        }
        if self.pids_limit.is_some_and(|p| p > 0) {
            v.push("--pids-limit");
        }
        if self.blkio_weight > 0 {
            v.push("--blkio-weight");
        }
        v
    }

    pub fn is_empty(&self) -> bool {
        self.flags().is_empty()
    }

    /// The controllers the limits need.
    pub fn required_controllers(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = self.writes(None).iter().map(|w| w.controller).collect();
        v.dedup();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The files to write in the container's cgroup `dir` (None: just the
    /// list, for checks), converted as crun converts Docker's values.
    pub fn writes(&self, dir: Option<&Path>) -> Vec<LimitWrite> {
        let mut v = Vec::new();
        let mut w = |controller, file, value: String, optional| {
            v.push(LimitWrite {
                controller,
                file,
                value,
                optional,
            })
        };
        if self.memory > 0 {
            w("memory", "memory.max", self.memory.to_string(), false);
            // Docker: --memory-swap is memory + swap; unset means as much
            // swap as memory, -1 means unlimited.
            match self.memory_swap {
                0 => w("memory", "memory.swap.max", self.memory.to_string(), true),
                -1 => w("memory", "memory.swap.max", "max".into(), false),
                total => w(
                    "memory",
                    "memory.swap.max",
                    (total - self.memory).max(0).to_string(),
                    false,
                ),
            }
        }
        if self.nano_cpus > 0 {
            // quota/period in microseconds, with Docker's 100 ms period; the
            // kernel's minimum quota is 1 ms.
            let quota = (self.nano_cpus / 10_000).max(1000);
            w("cpu", "cpu.max", format!("{quota} 100000"), false);
        }
        if self.cpu_shares > 0 {
            w(
                "cpu",
                "cpu.weight",
                shares_to_weight(self.cpu_shares).to_string(),
                false,
            );
        }
        if self.cpu_weight > 0 {
            w("cpu", "cpu.weight", self.cpu_weight.to_string(), false);
        }
        if !self.cpuset_cpus.is_empty() {
            w("cpuset", "cpuset.cpus", self.cpuset_cpus.clone(), false);
        }
        if let Some(p) = self.pids_limit.filter(|p| *p > 0) {
            w("pids", "pids.max", p.to_string(), false);
        }
        if self.blkio_weight > 0 {
            // BFQ takes Docker's 10..1000 as is; io.weight is 1..10000.
            if dir.is_some_and(|d| d.join("io.bfq.weight").exists()) {
                w("io", "io.bfq.weight", self.blkio_weight.to_string(), false);
            } else {
                let weight = 1 + (u64::from(self.blkio_weight) - 10) * 9999 / 990;
                w("io", "io.weight", format!("default {weight}"), false);
            }
        }
        v
    }
}

pub use crate::linux::cgroup::shares_to_weight;

/// A limit value that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("invalid size {0:?}: use a number with an optional unit b, k, m or g (512m, 1.5g)")]
    Size(String),
    #[error("invalid --cpuset-cpus {0:?}: use a list like 0-2,4")]
    Cpuset(String),
    #[error(
        "--cpuset-cpus {list}: requested CPUs are not available (this host has CPUs 0-{last})"
    )]
    CpusUnavailable { list: String, last: usize },
}

/// Docker's size syntax (see [`crate::util::human::ram_in_bytes`]).
pub fn parse_size(s: &str) -> Result<i64, ValueError> {
    crate::util::human::ram_in_bytes(s).ok_or_else(|| ValueError::Size(s.to_string()))
}

/// A cpu list as cpuset.cpus takes it ("0-3,6"), every cpu below `online`
/// when that is known.
pub fn parse_cpuset(s: &str, online: Option<usize>) -> Result<String, ValueError> {
    let bad = || ValueError::Cpuset(s.to_string());
    if s.is_empty() {
        return Err(bad());
    }
    for part in s.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let a: usize = a.parse().map_err(|_| bad())?;
        let b: usize = b.parse().map_err(|_| bad())?;
        if a > b {
            return Err(bad());
        }
        if let Some(n) = online {
            if b >= n {
                return Err(ValueError::CpusUnavailable {
                    list: s.to_string(),
                    last: n.saturating_sub(1),
                });
            }
        }
    }
    Ok(s.to_string())
}

/// Why the limits cannot be enforced, or a cgroup operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    #[error("cannot enforce {flags}: {reason}; {DELEGATION_HINT}")]
    Unenforceable {
        flags: String,
        reason: Box<NoCgroup>,
    },
    #[error("setting up the container's cgroup: {0}")]
    Setup(#[from] CgroupError),
}

/// Why a container's limits have no cgroup to go in. The causes are fields,
/// not sources: the message goes on after them.
#[derive(Debug, thiserror::Error)]
pub enum NoCgroup {
    /// No delegated subtree of our own (and systemd may not be asked), or
    /// one without a controller the limits need.
    #[error("{0}")]
    Cgroup(CgroupError),
    #[error("{own}, and no systemd user manager answered ({manager})")]
    NoManager {
        own: CgroupError,
        manager: Box<crate::linux::dbus::DbusError>,
    },
    #[error("{own}, and {scope}")]
    NoScope {
        own: CgroupError,
        scope: Box<ScopeError>,
    },
    #[error("the {controller} controller is not delegated to {holder} (it has: {})", has.join(" "))]
    NotDelegated {
        controller: &'static str,
        holder: String,
        has: Vec<String>,
    },
}

fn unenforceable(res: &Resources, reason: NoCgroup) -> PlaceError {
    PlaceError::Unenforceable {
        flags: res.flags().join(", "),
        reason: Box::new(reason),
    }
}

/// Case 1: the delegated subtree burrow already runs in.
fn own_delegation() -> cgroup::Result<Delegation> {
    cgroup::find_delegation(
        Path::new(cgroup::SYS_FS_CGROUP),
        Path::new("/proc/self/cgroup"),
    )
}

/// Whether burrow may ask the user's systemd for a delegated scope when it
/// has no delegated cgroup of its own. The user's setting (`BURROW_SYSTEMD`)
/// is read by the CLI and handed down, so this module never reads the
/// environment itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemdScopes {
    Ask,
    Never,
}

impl SystemdScopes {
    /// The meaning of `BURROW_SYSTEMD`'s value: `0` says never; anything
    /// else, or unset, lets burrow ask.
    pub fn from_setting(value: Option<&std::ffi::OsStr>) -> Self {
        match value {
            Some(v) if v == "0" => SystemdScopes::Never,
            _ => SystemdScopes::Ask,
        }
    }
}

/// Whether the user's systemd could give us a scope: only on a pure cgroup
/// v2 host (a hybrid host's v2 hierarchy has no controllers to delegate),
/// and not when the user said never.
fn systemd_may_help(scopes: SystemdScopes) -> bool {
    scopes == SystemdScopes::Ask
        && Path::new(cgroup::SYS_FS_CGROUP)
            .join("cgroup.controllers")
            .exists()
}

/// How long systemd may take to move us into a new scope.
const SCOPE_TIMEOUT: Duration = Duration::from_secs(10);

/// Case 2: ask the user's systemd for a transient scope with Delegate=yes
/// holding this process (the monitor, or the foreground `run`), as podman
/// does, and wait until we are in it and it is ours. The scope then is the
/// delegated subtree: its container cgroup is made as in case 1, and
/// systemd removes the scope when its last process has exited.
fn scope_delegation(id: &str) -> Result<Delegation, ScopeError> {
    let short = &id[..id.len().min(12)];
    let pid = std::process::id();
    let unit = format!("{PREFIX}{short}-{pid}.scope");
    let mut m = Manager::connect().map_err(ScopeError::Connect)?;
    m.start_delegated_scope(&unit, &format!("burrow container {short}"), pid)
        .map_err(|source| ScopeError::Refused {
            manager: m.address().to_string(),
            source,
        })?;
    let suffix = format!("/{unit}");
    poll::until(SCOPE_TIMEOUT, systemd::MOVE_POLL, || {
        let inside =
            cgroup::own_path(Path::new("/proc/self/cgroup")).is_some_and(|p| p.ends_with(&suffix));
        inside.then(own_delegation).and_then(|d| d.ok())
    })
    .ok_or(ScopeError::Slow { unit })
}

/// Why the user's systemd gave us no delegated scope.
#[derive(Debug, thiserror::Error)]
pub enum ScopeError {
    #[error(transparent)]
    Connect(crate::linux::dbus::DbusError),
    #[error("the user's systemd ({manager}) refused a scope: {source}")]
    Refused {
        manager: String,
        source: crate::linux::dbus::DbusError,
    },
    #[error("the user's systemd did not move burrow into {unit} within {}s", SCOPE_TIMEOUT.as_secs())]
    Slow { unit: String },
}

/// Controllers the cgroup at `path` (in the v2 hierarchy) has.
fn controllers_of(path: &str) -> Vec<String> {
    cgroup::read_list(
        &Path::new(cgroup::SYS_FS_CGROUP).join(path.trim_start_matches('/')),
        "cgroup.controllers",
    )
}

/// Where containers' cgroups come from on this host, found without changing
/// anything (`check`, `info`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "Kind", rename_all = "lowercase")]
pub enum Source {
    /// Case 1: the delegated subtree burrow runs in.
    Delegated {
        #[serde(rename = "Path")]
        base: PathBuf,
        #[serde(rename = "Controllers")]
        controllers: Vec<String>,
    },
    /// Case 2: scopes of the user's systemd, whose controllers are those of
    /// the manager's own cgroup.
    Systemd {
        #[serde(rename = "ManagerCgroup")]
        manager: String,
        #[serde(rename = "Controllers")]
        controllers: Vec<String>,
    },
    /// Case 3: none, and why.
    None {
        #[serde(rename = "Reason")]
        reason: String,
    },
}

pub fn source(scopes: SystemdScopes) -> Source {
    locate(scopes).unwrap_or_else(|e| Source::None {
        reason: e.to_string(),
    })
}

/// [`source`], with why there is none as an error.
fn locate(scopes: SystemdScopes) -> Result<Source, NoCgroup> {
    match own_delegation() {
        Ok(d) => Ok(Source::Delegated {
            base: d.base,
            controllers: d.controllers,
        }),
        Err(own) if systemd_may_help(scopes) => {
            match Manager::connect().and_then(|mut m| m.control_group()) {
                Ok(cg) => Ok(Source::Systemd {
                    controllers: controllers_of(&cg),
                    manager: cg,
                }),
                Err(manager) => Err(NoCgroup::NoManager {
                    own,
                    manager: Box::new(manager),
                }),
            }
        }
        Err(own) => Err(NoCgroup::Cgroup(own)),
    }
}

/// Check, without changing anything, that `res` can be enforced from here
/// (`create`/`run`, before the record is made).
pub fn check(res: &Resources, scopes: SystemdScopes) -> Result<(), PlaceError> {
    if res.is_empty() {
        return Ok(());
    }
    let (controllers, holder) = match locate(scopes) {
        Ok(Source::Delegated { base, controllers }) => (controllers, base.display().to_string()),
        Ok(Source::Systemd {
            manager,
            controllers,
        }) => (controllers, format!("the user's systemd ({manager})")),
        Ok(Source::None { .. }) => unreachable!("locate says why there is none as an error"),
        Err(e) => return Err(unenforceable(res, e)),
    };
    for c in res.required_controllers() {
        if !controllers.iter().any(|h| h == c) {
            return Err(unenforceable(
                res,
                NoCgroup::NotDelegated {
                    controller: c,
                    holder,
                    has: controllers,
                },
            ));
        }
    }
    Ok(())
}

/// Controllers enabled for every container cgroup when available, so
/// `stats` has numbers even without limits.
const STATS_CONTROLLERS: [&str; 4] = ["cpu", "io", "memory", "pids"];

/// Make the cgroup of container `id` as it starts (in its monitor, or the
/// foreground `run`): in the delegated subtree, with the limits written.
/// None when there is no delegation and no limit needs one.
pub fn create(
    id: &str,
    res: &Resources,
    scopes: SystemdScopes,
) -> Result<Option<Placement>, PlaceError> {
    let found = own_delegation().or_else(|own| {
        if !systemd_may_help(scopes) {
            return Err(NoCgroup::Cgroup(own));
        }
        scope_delegation(id).map_err(|scope| NoCgroup::NoScope {
            own,
            scope: Box::new(scope),
        })
    });
    let d = match found {
        Ok(d) => d,
        Err(e) if res.is_empty() => {
            tracing::debug!("no cgroup for {id}: {e}");
            return Ok(None);
        }
        Err(e) => return Err(unenforceable(res, e)),
    };
    let required = res.required_controllers();
    if let Err(e) = d.prepare(&STATS_CONTROLLERS, &required) {
        if res.is_empty() {
            tracing::debug!("no cgroup for {id}: {e}");
            return Ok(None);
        }
        return Err(match e {
            e @ CgroupError::NoController { .. } => unenforceable(res, NoCgroup::Cgroup(e)),
            e => PlaceError::Setup(e),
        });
    }
    d.collect_garbage(PREFIX, Duration::from_secs(60));
    let dir = d.base.join(format!("{PREFIX}{id}"));
    cgroup::mkdir(&dir)?;
    for w in res.writes(Some(&dir)) {
        if w.optional && !dir.join(w.file).exists() {
            continue;
        }
        if let Err(e) = cgroup::write(&dir, w.file, &w.value) {
            let _ = std::fs::remove_dir(&dir);
            return Err(e.into());
        }
    }
    // Where burrow itself is now (prepare may have moved it into the init
    // leaf): the inner process goes back there once PID 1 is forked.
    let leave_to = cgroup::own_path(Path::new("/proc/self/cgroup"))
        .map(|p| d.root.join(p.trim_start_matches('/')));
    Ok(Some(Placement { dir, leave_to }))
}

/// After PID 1 has ended: whether the OOM killer struck in the cgroup; then
/// the cgroup is removed (once its last process is reaped).
pub fn finish(dir: &Path) -> bool {
    let oom = cgroup::oom_killed(dir);
    if let Err(e) = cgroup::remove(dir, Duration::from_secs(10)) {
        tracing::warn!("{e}");
    }
    oom
}

/// SIGKILL everything in the container's cgroup (`stop` after its timeout,
/// `rm -f`). Returns false when there is no cgroup to kill through.
pub fn kill(dir: Option<&PathBuf>) -> bool {
    match dir {
        Some(d) if d.join("cgroup.procs").exists() => {
            // A frozen cgroup still dies: SIGKILL is delivered to frozen
            // tasks (cgroup-v2.rst, "Core interface files").
            cgroup::kill(d).is_ok()
        }
        _ => false,
    }
}

/// `create` for a record about to start, as the sandbox's error type
/// (burrow's exit code 125).
pub fn for_start(
    rec: &super::ContainerRecord,
    scopes: SystemdScopes,
) -> Result<Option<Placement>, StartError> {
    create(&rec.id, &rec.host_config.resources, scopes)
        .map_err(|e| Failure::new(Step::Cgroup, e.to_string(), crate::exit::BURROW).into())
}

/// After the container ended (or failed to start): read whether the OOM
/// killer struck, and remove its cgroup. False without a cgroup.
pub fn discard(spec: &Spec) -> bool {
    spec.cgroup.as_ref().is_some_and(|p| finish(&p.dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burrow_systemd_zero_alone_refuses_scopes() {
        use std::ffi::OsStr;
        assert_eq!(SystemdScopes::from_setting(None), SystemdScopes::Ask);
        assert_eq!(
            SystemdScopes::from_setting(Some(OsStr::new("0"))),
            SystemdScopes::Never
        );
        assert_eq!(
            SystemdScopes::from_setting(Some(OsStr::new("1"))),
            SystemdScopes::Ask
        );
        assert!(!systemd_may_help(SystemdScopes::Never));
    }

    #[test]
    fn sizes_as_docker_parses_them() {
        assert_eq!(parse_size("64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("64M").unwrap(), 64 << 20);
        assert_eq!(parse_size("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_size("512kb").unwrap(), 512 << 10);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("1048576").unwrap(), 1 << 20);
        assert_eq!(parse_size("10b").unwrap(), 10);
        for bad in ["12x", "", "m", "-1m", "1..2m", "1e3", "12 mb x"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cpusets() {
        assert_eq!(parse_cpuset("0-1,3", None).unwrap(), "0-1,3");
        assert!(parse_cpuset("0-1,3", Some(2)).is_err());
        assert!(parse_cpuset("1-0", None).is_err());
        assert!(parse_cpuset("a", None).is_err());
        assert!(parse_cpuset("", None).is_err());
    }

    #[test]
    fn conversions_follow_crun() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10000);
        let r = Resources {
            memory: 32 << 20,
            nano_cpus: 500_000_000,
            pids_limit: Some(64),
            blkio_weight: 500,
            ..Default::default()
        };
        let w = r.writes(None);
        let get = |f: &str| w.iter().find(|x| x.file == f).unwrap().value.clone();
        assert_eq!(get("memory.max"), (32 << 20).to_string());
        assert_eq!(get("memory.swap.max"), (32 << 20).to_string());
        assert_eq!(get("cpu.max"), "50000 100000");
        assert_eq!(get("pids.max"), "64");
        assert_eq!(get("io.weight"), "default 4950");
        assert_eq!(r.required_controllers(), ["cpu", "io", "memory", "pids"]);
        assert_eq!(
            r.flags(),
            ["--memory", "--cpus", "--pids-limit", "--blkio-weight"]
        );
        let swap = Resources {
            memory: 100,
            memory_swap: 300,
            ..Default::default()
        };
        assert!(swap
            .writes(None)
            .iter()
            .any(|w| w.file == "memory.swap.max" && w.value == "200" && !w.optional));
        assert!(Resources::default().is_empty());
        assert!(Resources {
            pids_limit: Some(-1),
            ..Default::default()
        }
        .is_empty());
    }

    #[test]
    fn record_fields_are_dockers() {
        let r = Resources {
            memory: 1,
            ..Default::default()
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["Memory"], 1);
        assert_eq!(v["NanoCpus"], 0);
        assert!(v["PidsLimit"].is_null());
        assert!(v.get("CpuWeight").is_none());
        let back: Resources = serde_json::from_str("{}").unwrap();
        assert_eq!(back, Resources::default());
    }
}
