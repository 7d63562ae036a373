//! Containers: the record (image config copied at create time, plus the
//! user's overrides), its status, and the lifecycle operations of this slice:
//! create, start-and-wait, list, find, remove.

pub mod cgroup;
pub mod check;
pub mod commit;
pub mod copy;
mod create;
mod error;
pub mod events;
mod exec;
pub mod export;
pub mod health;
pub mod keep_id;
pub mod keeper;
pub mod lifecycle;
pub mod mounts;
mod names;
mod record;
pub mod rootfs;
pub mod security;
mod supervise;
pub mod top;
pub mod volumes;

use std::fs;
use std::path::PathBuf;

pub(crate) use create::CREATE_STAGING;
pub use create::{create, CreateOptions, NetworkOptions};
#[cfg(test)]
use create::{merge_config, merge_healthcheck};
pub use error::{ContainerError, LogError};
pub use exec::{exec, ExecOptions};
pub use names::validate as validate_name;
pub use record::{
    ContainerConfig, ContainerRecord, HostConfig, LogConfig, MonitorLock, NetworkSettings,
    RestartPolicy, State, Status, LOG_FILE,
};
pub use supervise::{supervise, Ended, Supervision, Watch};

use crate::linux::userns::IdMapping;
use crate::sandbox::{self, Process, RootfsChoice, Spec, StartError, Started, Stdio};
use crate::store::{self, Store};

pub type Result<T> = std::result::Result<T, ContainerError>;

/// The host's resolver config, as a container sharing the host's network
/// uses it; `supervise` rewrites it for the network mode at each start.
fn host_resolv_conf() -> Vec<u8> {
    fs::read("/etc/resolv.conf").unwrap_or_default()
}

/// Write the container's `/etc/hosts` and `/etc/resolv.conf` for its network
/// mode, the helper that will serve it and the resolver its network gives
/// (bound over the image's by PID 1).
fn write_etc_files(
    store: &Store,
    rec: &ContainerRecord,
    helper: Option<&crate::network::Helper>,
    resolver: Option<&str>,
) -> std::io::Result<()> {
    let host_resolv = String::from_utf8_lossy(&host_resolv_conf()).into_owned();
    let host_addr = crate::network::host_address(helper);
    let files = crate::network::etc_files(
        &rec.config.hostname,
        rec.network_mode(),
        resolver,
        host_addr.as_deref(),
        &rec.host_config.dns,
        &rec.host_config.extra_hosts,
        &host_resolv,
    );
    let dir = store.container_dir(&rec.id);
    fs::write(dir.join("hosts"), files.hosts)?;
    fs::write(dir.join("resolv.conf"), files.resolv_conf)
}

impl ContainerRecord {
    /// `--security-opt`, as stored (checked at create time; an option that
    /// no longer parses is an error when the container starts, never
    /// a reason to run it with less confinement).
    pub fn security(&self) -> std::result::Result<security::SecurityOpts, security::SecurityError> {
        security::parse(&self.host_config.security_opt)
    }

    /// The seccomp filter its processes install, compiled for this host
    /// and its bounding set before anything forks. `single_id`: the
    /// container maps one id only (see [`ContainerRecord::fakes_ids`]).
    ///
    /// Fake ids go on top of the policy: the default or a profile file.
    /// Without one (`seccomp=unconfined`, `--privileged`: no filter, as
    /// Docker gives) they apply only when `fake-ids=on` says so, and the
    /// filter then fakes those calls and allows every other.
    pub fn seccomp(&self, single_id: bool) -> sandbox::seccomp::Seccomp {
        use sandbox::seccomp::{Profile, Seccomp};
        let s = match self.security() {
            Ok(s) => s,
            Err(e) => return Seccomp::Unusable(e.to_string()),
        };
        let profile = match (self.policy(&s), s.fakes_ids(single_id, self.confined(&s))) {
            (policy, false) => policy,
            (policy, true) => Some(policy.unwrap_or_else(Profile::allow_all).with_fake_ids()),
        };
        Seccomp::build(profile.as_ref(), self.caps())
    }

    /// Whether it has a seccomp policy: not `seccomp=unconfined`, and not
    /// `--privileged` without a profile of the user's (Docker's rule:
    /// privileged drops the default filter, not a profile the user gave).
    fn confined(&self, s: &security::SecurityOpts) -> bool {
        match s.seccomp {
            security::SeccompChoice::Unconfined => false,
            security::SeccompChoice::Default => !self.host_config.privileged,
            security::SeccompChoice::Profile(_) => true,
        }
    }

    /// The seccomp policy, None for none.
    fn policy(&self, s: &security::SecurityOpts) -> Option<sandbox::seccomp::Profile> {
        match &s.seccomp {
            _ if !self.confined(s) => None,
            security::SeccompChoice::Profile(p) => Some((**p).clone()),
            _ => Some(sandbox::seccomp_default::profile()),
        }
    }

    /// Whether its processes fake changes of ids and owners: by default
    /// when it maps one id (`single_id`) and has a seccomp policy;
    /// `--security-opt fake-ids=on|off` decides otherwise.
    pub fn fakes_ids(&self, single_id: bool) -> bool {
        self.security()
            .is_ok_and(|s| s.fakes_ids(single_id, self.confined(&s)))
    }

    /// `--security-opt no-new-privileges`.
    pub fn no_new_privs(&self) -> bool {
        self.security().is_ok_and(|s| s.no_new_privs)
    }

    /// `--security-opt mask=` and `unmask=`.
    pub fn path_rules(&self) -> sandbox::PathRules {
        let s = self.security().unwrap_or_default();
        let (unmask_all, unmask) = match s.unmask {
            security::Unmask::None => (false, Vec::new()),
            security::Unmask::All => (true, Vec::new()),
            security::Unmask::Paths(p) => (false, p),
        };
        sandbox::PathRules {
            mask: s.mask,
            unmask_all: unmask_all || self.host_config.privileged,
            unmask,
            writable_sys: self.host_config.privileged,
        }
    }

    /// The capability mask its processes keep (names were validated at
    /// create time).
    pub fn caps(&self) -> u64 {
        if self.host_config.privileged {
            // All of them, in the container's own user namespace: they act
            // on what that namespace owns, never on the host's.
            return crate::linux::caps::ALL;
        }
        sandbox::caps::resolve(&self.host_config.cap_add, &self.host_config.cap_drop)
            .unwrap_or_else(|_| sandbox::caps::mask(&sandbox::caps::DEFAULT))
    }
}

impl ContainerConfig {
    /// The command line PID 1 runs: Entrypoint followed by Cmd.
    pub fn argv(&self) -> Vec<String> {
        let mut v = self.entrypoint.clone().unwrap_or_default();
        v.extend(self.cmd.clone().unwrap_or_default());
        v
    }
}

/// Start a created container and wait for it, streaming its output to ours
/// (the foreground `run`). Returns the container's exit code.
pub fn run_foreground(
    store: &Store,
    rec: &mut ContainerRecord,
    mapping: &IdMapping,
    rootfs: RootfsChoice,
    scopes: cgroup::SystemdScopes,
    net: crate::network::Access,
) -> Result<i32> {
    if rec.is_up(store) {
        return Err(ContainerError::AlreadyRunning(rec.id.clone()));
    }
    /// The caller's terminal is the container's: relay signals and wait.
    struct Foreground;
    impl Watch for Foreground {
        fn wait(&mut self, started: Started, _rec: &ContainerRecord) -> Ended {
            Ended {
                code: started.wait_relaying_signals(),
                error: None,
                problems: Vec::new(),
            }
        }
    }
    let how = Supervision {
        rootfs,
        scopes,
        stdio: Stdio::Inherit,
        list_running: !rec.host_config.auto_remove,
        net,
    };
    supervise(store, rec, mapping, how, &mut Foreground)
}

/// The environment a container's processes start with: HOSTNAME, the
/// container's Env, and TERM for a terminal.
fn container_env(rec: &ContainerRecord, tty: bool) -> Vec<String> {
    let mut env = vec![format!("HOSTNAME={}", rec.config.hostname)];
    env.extend(rec.config.env.iter().cloned());
    if tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    env
}

/// The sandbox spec for a record: what to mount and what to run, with
/// `stdio` as PID 1's stdin/stdout/stderr.
pub fn build_spec(
    store: &Store,
    rec: &ContainerRecord,
    mapping: &IdMapping,
    rootfs: RootfsChoice,
    stdio: Stdio,
) -> Spec {
    let lowers = rec.lowers(store);
    let apt = apt_without_sandbox(store, rec, mapping, &lowers);
    // A container that ran keeps the mode its files were written in: a
    // copy's changes are in its copy, and fuse-overlayfs's upper dir marks
    // deletions in a way only it reads (a copy made instead would silently
    // start from the image again).
    let rootfs = match rec.rootfs_mode {
        Some(m @ (sandbox::RootfsMode::Copy | sandbox::RootfsMode::FuseOverlayfs)) => {
            RootfsChoice::Force(m)
        }
        _ => rootfs,
    };
    Spec {
        dir: store.container_dir(&rec.id),
        mount_point: store.mount_point(),
        lowers,
        rootfs,
        hostname: rec.config.hostname.clone(),
        mapping: export::container_mapping(rec, mapping),
        mounts: apt
            .into_iter()
            .chain(
                rec.host_config
                    .mounts
                    .iter()
                    .map(|m| match m.kind.as_str() {
                        "tmpfs" => sandbox::Mount::Tmpfs {
                            target: m.destination.clone(),
                            options: m.options.clone(),
                        },
                        _ => sandbox::Mount::Bind {
                            source: PathBuf::from(&m.source),
                            target: m.destination.clone(),
                            readonly: !m.rw,
                        },
                    }),
            )
            .collect(),
        readonly_rootfs: rec.host_config.readonly_rootfs,
        private_network: rec.network_mode().private_namespace(),
        process: Process {
            argv: rec.config.argv(),
            env: container_env(rec, rec.config.tty),
            cwd: rec.config.working_dir.clone(),
            user: rec.config.user.clone(),
            caps: rec.caps(),
            seccomp: rec.seccomp(!mapping.is_range()),
            fake_ids: rec.fakes_ids(!mapping.is_range()),
            // With -t the terminal is stdin as well, even without -i (as
            // Docker): `tty` names it, and nothing is typed into it.
            stdin: rec.config.open_stdin || rec.config.tty,
            stdio,
            init: rec.host_config.init,
            init_program: None,
            no_new_privs: rec.no_new_privs(),
            groups: None,
            outlives_parent: false,
            cap_sets: None,
        },
        // Record and name go before the exit is reported, so a finished
        // --rm container is never listed; the directory goes after.
        remove_after: if rec.host_config.auto_remove {
            vec![
                store.container_dir(&rec.id).join(record::RECORD_FILE),
                store.names_dir().join(&rec.name),
            ]
        } else {
            Vec::new()
        },
        remove_dir_after: rec.host_config.auto_remove,
        cgroup: None,
        paths: rec.path_rules(),
        join: None,
    }
}

/// Where apt reads the setting that keeps it from dropping to its sandbox
/// user, in a container with fake ids (see [`apt_without_sandbox`]).
pub const APT_NO_SANDBOX: &str = "etc/apt/apt.conf.d/99burrow-fake-ids";

/// With fake ids, apt's download methods drop to `_apt` and then check
/// that getgid(2) and getuid(2) say they did (apt-pkg/contrib/fileutl.cc,
/// `DropPrivileges`, whatever `APT::Sandbox::Verify` says), which no
/// seccomp filter can answer: the faked switch left the ids at 0, and
/// the method dies ("Could not switch group"). So a container with fake
/// ids whose image has apt gets `APT::Sandbox::User "root"` (apt's own
/// setting for running without its sandbox, which Charliecloud's seccomp
/// mode passes on apt's command line) in a file bound read-only into
/// /etc/apt/apt.conf.d; a commit leaves its empty mount point out. Not
/// with `--read-only`, where the mount point cannot be made.
fn apt_without_sandbox(
    store: &Store,
    rec: &ContainerRecord,
    mapping: &IdMapping,
    lowers: &[PathBuf],
) -> Option<sandbox::Mount> {
    let has_apt = lowers.iter().any(|l| l.join("etc/apt/apt.conf.d").is_dir());
    if !rec.fakes_ids(!mapping.is_range()) || !has_apt || rec.host_config.readonly_rootfs {
        return None;
    }
    let source = store.container_dir(&rec.id).join("apt-no-sandbox.conf");
    let text = "// burrow: ids are faked in this container (--security-opt fake-ids), so apt\n// cannot drop to its sandbox user; see burrow's README.\nAPT::Sandbox::User \"root\";\n";
    fs::write(&source, text).ok()?;
    Some(sandbox::Mount::Bind {
        source,
        target: format!("/{APT_NO_SANDBOX}"),
        readonly: true,
    })
}

/// Docker keeps a container whose command could not start as Created, with
/// the exit code and error recorded; a `--rm` one is removed.
pub fn record_start_failure(
    store: &Store,
    rec: &mut ContainerRecord,
    mapping: &IdMapping,
    e: &StartError,
) {
    rec.state.exit_code = e.code();
    rec.state.error = e.to_string();
    if !rec.host_config.auto_remove {
        let _ = rec.save(store);
    } else if !e.cleaned_up {
        let _ = remove_files(store, rec, mapping);
    }
}

/// Every container record, newest first.
pub fn list(store: &Store) -> Result<Vec<ContainerRecord>> {
    let dir = store.containers_dir();
    let mut out = Vec::new();
    for e in fs::read_dir(&dir).map_err(store::io("listing", &dir))? {
        let e = e.map_err(store::io("listing", &dir))?;
        // A directory without a record is a create in progress or debris.
        if let Ok(rec) = ContainerRecord::load(store, &e.file_name().to_string_lossy()) {
            out.push(rec);
        }
    }
    out.sort_by(|a, b| b.created.cmp(&a.created));
    Ok(out)
}

/// Container directories without a record, older than a minute (younger
/// ones may be a create in progress): debris of an interrupted removal.
pub fn orphan_dirs(store: &Store) -> Result<Vec<PathBuf>> {
    let dir = store.containers_dir();
    let mut out = Vec::new();
    for e in fs::read_dir(&dir)
        .map_err(store::io("listing", &dir))?
        .flatten()
    {
        let p = e.path();
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > std::time::Duration::from_secs(60));
        if old && !p.join(record::RECORD_FILE).exists() {
            out.push(p);
        }
    }
    Ok(out)
}

/// Find a container by name, full id or unique id prefix.
pub fn find(store: &Store, key: &str) -> Result<ContainerRecord> {
    if let Some(id) = names::lookup(store, key) {
        if let Ok(rec) = ContainerRecord::load(store, &id) {
            return Ok(rec);
        }
    }
    if !key.is_empty() && key.bytes().all(|b| b.is_ascii_hexdigit()) {
        // Only the directories whose names match are read: a lookup by id
        // (every API call names its container so) costs one record, not
        // the whole store's.
        let dir = store.containers_dir();
        let mut matches = Vec::new();
        for e in fs::read_dir(&dir).map_err(store::io("listing", &dir))? {
            let e = e.map_err(store::io("listing", &dir))?;
            let name = e.file_name();
            let Some(id) = name.to_str().filter(|id| id.starts_with(key)) else {
                continue;
            };
            // A directory without a record is a create in progress or debris.
            if let Ok(rec) = ContainerRecord::load(store, id) {
                matches.push(rec);
            }
        }
        match matches.len() {
            1 => return Ok(matches.into_iter().next().expect("one match")),
            0 => {}
            _ => return Err(ContainerError::Ambiguous(key.to_string())),
        }
    }
    Err(ContainerError::NoSuch(key.to_string()))
}

/// Remove a container; `force` kills a running one first.
pub fn remove(
    store: &Store,
    rec: &ContainerRecord,
    mapping: &IdMapping,
    force: bool,
) -> Result<()> {
    // Between a run's end and its restart delay the record says exited
    // while the monitor decides (it records `restarting` before the delay):
    // wait for the decision, or a plain `rm` would remove a container that
    // is about to run again.
    let decided;
    let rec = if !force
        && !rec.host_config.restart_policy.is_none()
        && !rec.is_up(store)
        && !rec.is_restarting(store)
    {
        let settled = crate::util::poll::until(
            std::time::Duration::from_secs(5),
            std::time::Duration::from_millis(10),
            || {
                let r = ContainerRecord::load(store, &rec.id).ok()?;
                (!r.monitor_alive(store) || r.is_restarting(store) || r.is_up(store)).then_some(r)
            },
        );
        decided = settled.unwrap_or_else(|| rec.clone());
        &decided
    } else {
        rec
    };
    if rec.is_restarting(store) {
        if !force {
            return Err(ContainerError::Restarting(rec.id.clone()));
        }
        // Its monitor sees the stop between two runs and ends (waited for
        // before taking the container's lock, which a restart takes too).
        rec.mark_manual_stop(store);
        let _ = crate::util::poll::until(
            std::time::Duration::from_secs(5),
            std::time::Duration::from_millis(20),
            || (!rec.monitor_alive(store)).then_some(()),
        );
    }
    // A start in progress finishes first (see `supervise`); then the record
    // as it is now says whether the container is up (it may have started
    // again just before its monitor saw the stop).
    let Some(_lock) = store.lock_container(&rec.id)? else {
        return Err(ContainerError::NoSuch(rec.id.clone()));
    };
    let rec = &ContainerRecord::load(store, &rec.id)?;

    if rec.is_up(store) {
        if !force {
            return Err(ContainerError::Running(rec.id.clone()));
        }
        // Its monitor must not start it again.
        rec.mark_manual_stop(store);
        // The whole cgroup at once when there is one.
        cgroup::kill(rec.cgroup.as_ref());
        rec.kill_and_wait();
        // Let its supervisor finish (it removes the pid file last) before
        // the directory goes: it writes the exit into it, and would fail
        // (a foreground `run` then ends with 125, not 137) or leave a record
        // in a half-removed directory. Its published ports are free then
        // too: `rm -f` then `run -p` the same port must work.
        let pid_file = store.pid_file(&rec.id);
        let _ = crate::util::poll::until(
            std::time::Duration::from_secs(10),
            std::time::Duration::from_millis(10),
            || (!pid_file.exists()).then_some(()),
        );
    }
    if let Some(dir) = &rec.cgroup {
        let _ = crate::linux::cgroup::remove(dir, std::time::Duration::from_secs(5));
    }
    remove_files(store, rec, mapping)
}

/// The anonymous volumes of a removed container (`rm -v`, `--rm`).
pub fn remove_anonymous_volumes(
    store: &Store,
    mapping: &IdMapping,
    rec: &ContainerRecord,
) -> Result<()> {
    let all = list(store)?;
    Ok(volumes::remove_anonymous(store, mapping, rec, &all)?)
}

/// Delete the container's directory, name and pid file. Files the container
/// created may belong to subordinate ids; if plain deletion is refused,
/// delete from inside a user namespace with the same mapping.
fn remove_files(store: &Store, rec: &ContainerRecord, mapping: &IdMapping) -> Result<()> {
    let dir = store.container_dir(&rec.id);
    let _ = fs::remove_file(store.pid_file(&rec.id));
    let _ = fs::remove_file(store.monitor_lock_file(&rec.id));
    // One rename takes the whole directory out of containers/: a killed rm
    // leaves either the container or staging debris the next burrow
    // removes, never a half-deleted container. Then the name.
    let trash = store.staging_path("rm", &store::random_hex(6));
    match fs::rename(&dir, &trash) {
        Ok(()) => {}
        // Someone else removed it first.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            names::release(store, &rec.name, &rec.id);
            return Ok(());
        }
        Err(e) => {
            return Err(ContainerError::Remove {
                path: dir,
                source: e,
            })
        }
    }
    names::release(store, &rec.name, &rec.id);
    store::remove_tree(&trash, mapping).map_err(|e| ContainerError::RemoveTree {
        path: dir.clone(),
        source: Box::new(e),
    })?;
    Ok(())
}

#[cfg(test)]
mod tests;
