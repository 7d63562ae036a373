//! The runc verbs over the sandbox's process path: the dispatch, and the
//! verbs over a container's recorded state (`start`, `run`, `delete`,
//! `kill`, `pause`, `list`, `features`); `create` is in `create.rs`, `exec`
//! in `exec.rs`, the hooks in `hooks.rs`.
//!
//! Neither burrow process stays init's parent: once both have exited, the
//! kernel hands init to the nearest subreaper, the engine's shim (conmon,
//! containerd-shim), which reaps it and reads its exit status. `run`
//! without `--detach` makes itself that subreaper.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nix::fcntl::OFlag;
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::unistd::Pid;

use super::bundle::{self, Config};
use super::create::{caller_reads_our_output, create, Output};
use super::exec::exec;
use super::hooks::run_hook;
use super::state::{self, Dir, Saved, Status};
use super::{CreateArgs, Log, Verb};
use crate::linux::process;

pub(super) fn dispatch(root: &Path, log: &Log, verb: Verb, rootless: bool) -> Result<i32> {
    match verb {
        Verb::Create(a) => {
            let output = if caller_reads_our_output() {
                Output::Null
            } else {
                Output::Inherit
            };
            create(root, log, &a, output).map(|_| 0)
        }
        Verb::Start { id } => start(root, log, &id).map(|()| 0),
        Verb::Run {
            create: a,
            detach,
            keep,
        } => run(root, log, &a, detach, keep),
        Verb::State { id } => {
            let dir = Dir::new(root, &id)?;
            let s = dir.load()?;
            let json = state::state_json(&s, dir.status(&s));
            println!("{}", serde_json::to_string_pretty(&json)?);
            Ok(0)
        }
        Verb::Kill { all, id, signal } => signal_container(root, &id, signal.as_deref(), all),
        Verb::Delete {
            force,
            regex: false,
            id,
        } => delete(root, log, &id, force).map(|()| 0),
        Verb::Delete {
            force,
            regex: true,
            id: pattern,
        } => delete_matching(root, log, &pattern, force).map(|()| 0),
        Verb::Exec(a) => exec(root, log, &a),
        Verb::List { format, quiet } => list(root, &format, quiet),
        Verb::Ps { format, id, .. } => {
            let dir = Dir::new(root, &id)?;
            let s = dir.load()?;
            let pids = if dir.status(&s) == Status::Stopped {
                Vec::new()
            } else {
                container_pids(&s)
            };
            if format == "json" {
                println!("{}", serde_json::to_string(&pids)?);
            } else {
                println!("PID");
                for p in pids {
                    println!("{p}");
                }
            }
            Ok(0)
        }
        Verb::Pause { id } => pause(root, &id, true).map(|()| 0),
        Verb::Resume { id } => pause(root, &id, false).map(|()| 0),
        Verb::Update(a) => super::update::update(root, &a)
            .map(|()| 0)
            .map_err(|e| e.context("update")),
        Verb::Checkpoint(a) => {
            Dir::new(root, &a.id)?.load()?;
            bail!("checkpoint is not supported by burrow: it has no CRIU support; stop the container and start it again instead")
        }
        Verb::Mounts { id, .. } => {
            Dir::new(root, &id)?.load()?;
            bail!("mounts is not supported by burrow: a running container's mount tree is never changed; give the mount in the bundle and create the container again")
        }
        Verb::Restore { checkpoint: a, .. } => {
            bail!("restore is not supported by burrow: it has no CRIU support, so there is no checkpoint of {} to restore", a.id)
        }
        Verb::Spec { bundle } => {
            let dir = bundle.unwrap_or_else(|| PathBuf::from("."));
            let path = dir.join("config.json");
            if path.exists() {
                bail!("{} exists: remove it first", path.display());
            }
            let v = bundle::default_config(
                rootless,
                nix::unistd::Uid::effective().as_raw(),
                nix::unistd::Gid::effective().as_raw(),
            );
            std::fs::write(&path, serde_json::to_string_pretty(&v)? + "\n")
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(0)
        }
        Verb::Features => {
            println!("{}", serde_json::to_string_pretty(&features())?);
            Ok(0)
        }
    }
}

/// `start`: write the byte init is blocked reading from the FIFO.
fn start(root: &Path, log: &Log, id: &str) -> Result<()> {
    let dir = Dir::new(root, id)?;
    let s = dir.load()?;
    match dir.status(&s) {
        Status::Created => {}
        Status::Stopped => bail!("cannot start a container that has stopped"),
        _ => bail!("cannot start an already running container"),
    }
    let fifo = dir.fifo();
    // Init holds the only reader (see `create`): without it, opening for
    // writing fails at once (fifo(7)) instead of blocking.
    let fd = match nix::fcntl::open(
        &fifo,
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(nix::Error::ENXIO) => bail!("the container's init exited before it was started"),
        Err(e) => bail!("opening {}: {e}", fifo.display()),
    };
    nix::unistd::write(&fd, &[0u8]).with_context(|| format!("writing {}", fifo.display()))?;
    let _ = std::fs::remove_file(&fifo);
    // A failing poststart hook fails the start and removes the container,
    // as runc does.
    if let Ok(cfg) = Config::read(&s.bundle) {
        if let Some(hooks) = cfg.spec.hooks() {
            let state = state::state_json(&s, Status::Running);
            for h in hooks.poststart().clone().unwrap_or_default() {
                if let Err(e) = run_hook("poststart", &h, &state) {
                    let _ = delete(root, log, id, true);
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

/// `run`: create and start; in the foreground, we are the subreaper that
/// inherits init, wait for it and remove the container.
fn run(root: &Path, log: &Log, a: &CreateArgs, detach: bool, keep: bool) -> Result<i32> {
    if !detach {
        nix::sys::prctl::set_child_subreaper(true)
            .map_err(|e| anyhow!("becoming a subreaper: {e}"))?;
    }
    let saved = create(root, log, a, Output::Inherit)?;
    if let Err(e) = start(root, log, &a.id) {
        let _ = delete(root, log, &a.id, true);
        return Err(e);
    }
    if detach {
        return Ok(0);
    }
    let code = process::wait_exit_code(Pid::from_raw(saved.pid)).unwrap_or(1);
    if !keep {
        delete(root, log, &a.id, true)?;
    }
    Ok(code)
}

/// `delete --regex`: every container whose id `pattern` matches; each
/// failure is reported, and any fails the command.
fn delete_matching(root: &Path, log: &Log, pattern: &str, force: bool) -> Result<()> {
    let re = regex::Regex::new(pattern).map_err(|e| {
        anyhow::anyhow!(
            "invalid regular expression {pattern:?}: {}",
            e.to_string().lines().last().unwrap_or("")
        )
    })?;
    let mut failed = 0;
    for id in state::list(root).into_iter().filter(|id| re.is_match(id)) {
        if let Err(e) = delete(root, log, &id, force) {
            log.error(&format!("deleting {id}: {e:#}"));
            failed += 1;
        }
    }
    if failed > 0 {
        bail!("{failed} of the containers matching {pattern:?} were not deleted");
    }
    Ok(())
}

fn delete(root: &Path, log: &Log, id: &str, force: bool) -> Result<()> {
    let dir = Dir::new(root, id)?;
    let s = match dir.load() {
        // As runc: --force makes deleting what is gone a success (engines
        // clean up after a failed create with it).
        Err(state::StateError::Missing(_)) if force => {
            let _ = dir.remove();
            return Ok(());
        }
        r => r?,
    };
    match dir.status(&s) {
        Status::Stopped => {}
        // A created container never ran its command: runc deletes it too.
        Status::Created => kill_and_wait(&s),
        _ if force => kill_and_wait(&s),
        st => bail!(
            "cannot delete container {id} that is not stopped: {}",
            st.as_str()
        ),
    }
    if let Ok(cfg) = Config::read(&s.bundle) {
        if let Some(hooks) = cfg.spec.hooks() {
            let state = state::state_json(&s, Status::Stopped);
            for h in hooks.poststop().clone().unwrap_or_default() {
                // Only a warning: the container is gone either way.
                if let Err(e) = run_hook("poststop", &h, &state) {
                    log.error(&e.to_string());
                }
            }
        }
    }
    dir.remove()?;
    Ok(())
}

/// SIGKILL init (its pid namespace dies with it) and wait until its
/// reaper has it, at most ten seconds.
fn kill_and_wait(s: &Saved) {
    // Only the recorded process (same start time), never a reused pid.
    if state::alive(s) {
        let _ = kill(Pid::from_raw(s.pid), Signal::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while state::alive(s) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn signal_container(root: &Path, id: &str, signal: Option<&str>, all: bool) -> Result<i32> {
    let dir = Dir::new(root, id)?;
    let s = dir.load()?;
    let sig = crate::util::signal::parse_signal(signal.unwrap_or("SIGTERM"))
        .map_err(|e| anyhow!("{e}"))?;
    if dir.status(&s) == Status::Stopped {
        bail!("container not running");
    }
    let pids = if all { container_pids(&s) } else { vec![s.pid] };
    for p in pids {
        match kill(Pid::from_raw(p), sig) {
            Ok(()) | Err(nix::Error::ESRCH) => {}
            Err(e) => bail!("sending {sig} to {p}: {e}"),
        }
    }
    Ok(0)
}

fn pause(root: &Path, id: &str, paused: bool) -> Result<()> {
    let dir = Dir::new(root, id)?;
    let s = dir.load()?;
    match (dir.status(&s), paused) {
        (Status::Running, true) | (Status::Paused, false) => {}
        (st, _) => bail!("container {id} is {}", st.as_str()),
    }
    let sig = if paused {
        Signal::SIGSTOP
    } else {
        Signal::SIGCONT
    };
    for p in container_pids(&s) {
        let _ = kill(Pid::from_raw(p), sig);
    }
    dir.set_paused(paused)?;
    Ok(())
}

/// Init and everything it forked (`descendants` lists init first).
fn container_pids(s: &Saved) -> Vec<i32> {
    process::descendants(Path::new("/proc"), s.pid)
}

fn list(root: &Path, format: &str, quiet: bool) -> Result<i32> {
    let mut rows = Vec::new();
    for id in state::list(root) {
        let dir = Dir::new(root, &id)?;
        if let Ok(s) = dir.load() {
            let st = dir.status(&s);
            rows.push((s.clone(), st));
        }
    }
    if quiet {
        for (s, _) in &rows {
            println!("{}", s.id);
        }
    } else if format == "json" {
        let v: Vec<_> = rows
            .iter()
            .map(|(s, st)| state::state_json(s, *st))
            .collect();
        println!("{}", serde_json::to_string(&v)?);
    } else {
        println!("ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER");
        for (s, st) in &rows {
            let pid = if *st == Status::Stopped { 0 } else { s.pid };
            println!(
                "{}\t{}\t{}\t{}\t{}\t{}",
                s.id,
                pid,
                st.as_str(),
                s.bundle.display(),
                s.created,
                s.owner
            );
        }
    }
    Ok(0)
}

/// `features` (runtime-spec features.md): what a caller may ask for.
fn features() -> serde_json::Value {
    let caps: Vec<String> = crate::linux::caps::NAMES
        .iter()
        .map(|n| format!("CAP_{n}"))
        .collect();
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.0.2-dev",
        "hooks": ["prestart", "createRuntime", "poststart", "poststop"],
        "mountOptions": ["async", "atime", "bind", "copy-symlink", "dest-nofollow", "dev",
            "diratime", "dirsync", "exec",
            "mand", "noatime", "nodev", "nodiratime", "noexec", "nomand", "norelatime",
            "nostrictatime", "nosuid", "private", "rbind", "relatime", "ro", "rprivate",
            "rro", "rrw", "rshared", "rslave", "runbindable", "rw", "shared", "slave",
            "src-nofollow", "strictatime",
            "suid", "sync", "unbindable"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": false, "v2": false, "systemd": false, "systemdUser": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL",
                    "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG",
                    "SCMP_ACT_TRAP", "SCMP_ACT_TRACE"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE",
                    "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"]
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false}
        },
        "annotations": {"org.opencontainers.runc.version": env!("CARGO_PKG_VERSION")}
    })
}
