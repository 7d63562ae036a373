//! The runc verbs over the sandbox's process path.
//!
//! ```text
//! burrow-runc create (engine's child)   reads the bundle, compiles seccomp,
//!                                       writes id maps, the pid file, state
//!  └─ setup process                     rlimits, umask; user namespace (new
//!                                       or joined), other namespaces joined
//!                                       by path, the rest unshared; exits
//!                                       once init is forked
//!      └─ init (PID 1 of a new pid ns)  sandbox::enter_bundle: the bundle's
//!                                       mounts, pivot_root, hostname, user,
//!                                       caps, seccomp; says Done, blocks on
//!                                       the exec FIFO until `start`, execs
//! ```
//!
//! Neither burrow process stays init's parent: once both have exited, the
//! kernel hands init to the nearest subreaper, the engine's shim (conmon,
//! containerd-shim), which reaps it and reads its exit status. `run`
//! without `--detach` makes itself that subreaper.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::unistd::Pid;

use super::bundle::{self, Config, Plan, ProcessPlan, UserNs};
use super::state::{self, Dir, Saved, Status};
use super::{CreateArgs, ExecArgs, Log, Verb};
use crate::linux::channel::{channel, ChannelError, Message, Receiver, Sender};
use crate::linux::newuser::{self, GrantError};
use crate::linux::{process, userns};
use crate::sandbox::seccomp::Seccomp;
use crate::sandbox::{self, Failure, Process, Stdio, Step};

pub(super) fn dispatch(root: &Path, log: &Log, verb: Verb, rootless: bool) -> Result<i32> {
    match verb {
        Verb::Create(a) => create(root, log, &a).map(|_| 0),
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
        Verb::Delete { force, id } => delete(root, log, &id, force).map(|()| 0),
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
        Verb::Update { id, .. } => {
            Dir::new(root, &id)?.load()?;
            bail!("update: burrow-runc manages no cgroup for {id}, so its resources cannot be changed")
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

/// `create`: everything up to init blocked on the exec FIFO.
fn create(root: &Path, log: &Log, a: &CreateArgs) -> Result<Saved> {
    let dir = Dir::new(root, &a.id)?;
    let bundle = match &a.bundle {
        Some(b) => std::path::absolute(b)?,
        None => std::env::current_dir()?,
    };
    let cfg = Config::read_file(&bundle.join(&a.config))?;
    let plan = bundle::plan(&cfg, &bundle)?;
    if a.no_pivot {
        log.debug("--no-pivot: burrow-runc always uses pivot_root");
    }
    if let Some(linux) = cfg.spec.linux() {
        if let Some(p) = linux.cgroups_path() {
            log.debug(&format!(
                "cgroupsPath {} and linux.resources ignored: burrow-runc places no container in a cgroup (rootless, as crun does without delegation)",
                p.display()
            ));
        }
        if linux.devices().as_ref().is_some_and(|d| !d.is_empty()) {
            log.debug("linux.devices ignored: only the default devices are bound");
        }
    }
    if !root.exists() {
        std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
        // The exec FIFOs below are writable by anyone who reaches them.
        let _ = std::fs::set_permissions(root, std::os::unix::fs::PermissionsExt::from_mode(0o700));
    }
    dir.make()?;
    match create_in(&dir, log, a, &cfg, &plan, &bundle) {
        Ok(s) => Ok(s),
        Err(e) => {
            let _ = dir.remove();
            Err(e)
        }
    }
}

fn create_in(
    dir: &Dir,
    log: &Log,
    a: &CreateArgs,
    cfg: &Config,
    plan: &Plan,
    bundle: &Path,
) -> Result<Saved> {
    let fifo = dir.fifo();
    // Writable by the container's user, whoever that is (as runc's); the
    // state directory keeps everyone else out.
    nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o622))
        .and_then(|()| {
            nix::sys::stat::fchmodat(
                nix::fcntl::AT_FDCWD,
                &fifo,
                Mode::from_bits_truncate(0o622),
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            )
        })
        .with_context(|| format!("creating {}", fifo.display()))?;
    let gate = nix::fcntl::open(&fifo, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .with_context(|| format!("opening {}", fifo.display()))?;

    // The console socket: init sends the master of a pty it opens in the
    // container's devpts.
    let console = if plan.process.terminal {
        let path = a
            .console_socket
            .as_ref()
            .ok_or_else(|| anyhow!("process.terminal is set: --console-socket is required"))?;
        Some(
            std::os::unix::net::UnixStream::connect(path)
                .with_context(|| format!("connecting to console socket {}", path.display()))?,
        )
    } else {
        None
    };
    let stdio = match &console {
        Some(s) => Stdio::ConsoleSocket(s.as_raw_fd()),
        None => Stdio::Inherit,
    };
    let profile = cfg.seccomp_profile()?;
    let proc = to_process(
        &plan.process,
        Seccomp::build(profile.as_ref(), plan.process.caps.bounding),
        stdio,
        true,
    );
    if let Seccomp::Unusable(why) = &proc.seccomp {
        bail!("linux.seccomp: {why}");
    }

    let pipe = |e: std::io::Error| anyhow!("creating a pipe: {e}");
    let (up_tx, mut up_rx) = channel().map_err(pipe)?;
    let (mut down_tx, down_rx) = channel().map_err(pipe)?;
    let (exec_tx, mut exec_rx) = channel().map_err(pipe)?;
    let mut keep = vec![
        up_tx.as_raw_fd(),
        down_rx.as_raw_fd(),
        exec_tx.as_raw_fd(),
        gate.as_raw_fd(),
    ];
    keep.extend(console.as_ref().map(|c| c.as_raw_fd()));
    // --preserve-fds: the engine's descriptors 3..3+N reach the process.
    keep.extend((0..a.preserve_fds as i32).map(|i| 3 + i));
    let gate_fd = gate.as_raw_fd();
    let preserve_fds = a.preserve_fds;
    let setup = process::fork_child(|| {
        process::close_fds_except(&keep);
        setup_main(plan, &proc, gate_fd, preserve_fds, up_tx, down_rx, exec_tx)
    })
    .map_err(|e| anyhow!("forking: {e}"))?;
    drop(gate);
    drop(console);

    let early = |e: ChannelError| -> anyhow::Error {
        let code = process::wait_exit_code(setup).unwrap_or(1);
        match e {
            ChannelError::Failed(f) => anyhow!("{f}"),
            ChannelError::Closed => {
                anyhow!("setting up the container ended early (exit code {code})")
            }
            e => anyhow!("setting up the container: {e}"),
        }
    };
    if plan.user_ns == UserNs::Create {
        let granted = newuser::grant_maps(&mut up_rx, &mut down_tx, || {
            userns::write_given_maps(setup, &plan.uid_map, &plan.gid_map)
        });
        match granted {
            // Gone after its maps were written: its own report says why.
            Ok(()) | Err(GrantError::Tell(_)) => {}
            Err(GrantError::Request(e)) => return Err(early(e)),
            Err(GrantError::Write(e)) => {
                let _ = kill(setup, Signal::SIGKILL);
                let _ = process::wait_exit_code(setup);
                return Err(e.into());
            }
        }
    }
    drop(down_tx);
    let pid = up_rx.wait_pid(|_| {}).map_err(early)?;
    let _ = process::wait_exit_code(setup);
    let init = Pid::from_raw(pid);
    let fail = |e: anyhow::Error| {
        let _ = kill(init, Signal::SIGKILL);
        e
    };
    match exec_rx.recv() {
        Ok(Message::Done) => {}
        Ok(Message::Failed(f)) => return Err(fail(anyhow!("{f}"))),
        Ok(m) => return Err(fail(anyhow!("unexpected report from init: {m:?}"))),
        Err(_) => return Err(fail(anyhow!("init ended while setting up the container"))),
    }

    let start_time = process::start_time(Path::new("/proc"), pid)
        .ok_or_else(|| anyhow!("init (pid {pid}) is gone"))?;
    let saved = Saved {
        id: dir.id.clone(),
        pid,
        start_time,
        bundle: bundle.to_path_buf(),
        rootfs: plan.root.clone(),
        created: humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string(),
        owner: String::new(),
        annotations: cfg
            .spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
    };
    if let Some(hooks) = cfg.spec.hooks() {
        #[allow(deprecated)]
        let prestart = hooks.prestart().clone().unwrap_or_default();
        let create_runtime = hooks.create_runtime().clone().unwrap_or_default();
        let state = state::state_json(&saved, Status::Created);
        for h in &prestart {
            run_hook("prestart", h, &state).map_err(fail)?;
        }
        for h in &create_runtime {
            run_hook("createRuntime", h, &state).map_err(fail)?;
        }
        if hooks
            .create_container()
            .as_ref()
            .is_some_and(|v| !v.is_empty())
            || hooks
                .start_container()
                .as_ref()
                .is_some_and(|v| !v.is_empty())
        {
            log.debug("createContainer and startContainer hooks are not run");
        }
    }
    if let Some(p) = &a.pid_file {
        write_pid_file(p, pid).map_err(fail)?;
    }
    dir.save(&saved).map_err(|e| fail(e.into()))?;
    Ok(saved)
}

/// The setup process (see the module comment). Returns its exit code.
fn setup_main(
    plan: &Plan,
    proc: &Process,
    gate: std::os::fd::RawFd,
    preserve_fds: u32,
    mut up: Sender,
    down: Receiver,
    exec_tx: Sender,
) -> i32 {
    match setup(plan, proc, (gate, preserve_fds), &mut up, down, exec_tx) {
        Ok(()) => 0,
        Err(f) => {
            up.failed(f);
            1
        }
    }
}

fn setup(
    plan: &Plan,
    proc: &Process,
    (gate, preserve_fds): (std::os::fd::RawFd, u32),
    up: &mut Sender,
    mut down: Receiver,
    mut exec_tx: Sender,
) -> Result<(), Failure> {
    // Inherited by init: rlimits, umask, OOM score.
    for (name, soft, hard) in &plan.process.rlimits {
        let Some(res) = rlimit_resource(name) else {
            return Err(Failure::new(
                Step::Rlimit,
                format!("unknown rlimit {name}"),
                1,
            ));
        };
        if let Err(e) = nix::sys::resource::setrlimit(res, *soft, *hard) {
            return Err(Failure::new(
                Step::Rlimit,
                format!("{name} soft {soft} hard {hard}: {e}"),
                1,
            ));
        }
    }
    if let Some(m) = plan.process.umask {
        nix::sys::stat::umask(Mode::from_bits_truncate(m));
    }
    if let Some(adj) = plan.process.oom_score_adj {
        // Lowering it needs CAP_SYS_RESOURCE in the initial namespace;
        // rootless, the engine's value stands where it may.
        let _ = std::fs::write("/proc/self/oom_score_adj", adj.to_string());
    }
    let setns = |flag: CloneFlags, path: &Path| -> Result<(), Failure> {
        let f = std::fs::File::open(path)
            .map_err(|e| Failure::io(Step::JoinNamespaces, &e, 1).at(path))?;
        nix::sched::setns(f.as_fd(), flag)
            .map_err(|e| Failure::sys(Step::JoinNamespaces, e, 1).at(path))
    };

    // The user namespace first: it owns whatever is created after it.
    match &plan.user_ns {
        UserNs::Inherit => {}
        UserNs::Join(p) => {
            setns(CloneFlags::CLONE_NEWUSER, p)?;
        }
        UserNs::Create => {
            newuser::unshare(CloneFlags::CLONE_NEWUSER, 1)?;
            newuser::await_maps(up, &mut down, 1)?;
        }
    }
    drop(down);
    // Not dumpable from here until init execs the container's program: a
    // process already in namespaces we join must not trace init or read it
    // (runc's CVE-2016-9962). Until the id maps were written we had to be:
    // the runtime writes them through our /proc/PID files.
    process::set_dumpable(false).map_err(|e| Failure::sys(Step::Dumpable, e, 1))?;
    for (flag, path) in &plan.join {
        setns(*flag, path)?;
    }
    if let Err(e) = nix::sched::unshare(plan.create) {
        return Err(Failure::sys(Step::Unshare, e, 1));
    }
    if plan.create.contains(CloneFlags::CLONE_NEWNET) {
        if let Err(e) = crate::linux::net::loopback_up() {
            return Err(Failure::sys(Step::Loopback, e, 1));
        }
    }
    // setgroups(2) works unless it was denied for a single-id map.
    let groups_allowed = std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() == "allow")
        .unwrap_or(false);

    let up_fd = up.as_raw_fd();
    let init = process::fork_child(|| {
        let _ = nix::unistd::close(up_fd);
        let init = sandbox::BundleInit {
            root: &plan.root,
            mounts: &plan.ops,
            hostname: plan.hostname.as_deref(),
            domainname: plan.domainname.as_deref(),
            start_gate: gate,
            preserve_fds,
        };
        sandbox::enter_bundle(&init, proc, groups_allowed, &mut exec_tx)
    });
    let pid = init.map_err(|e| Failure::sys(Step::Fork, e.errno(), 1))?;
    drop(exec_tx);
    up.pid(pid.as_raw());
    Ok(())
}

/// `start`: open the FIFO init is blocked on and take its byte.
fn start(root: &Path, log: &Log, id: &str) -> Result<()> {
    let dir = Dir::new(root, id)?;
    let s = dir.load()?;
    match dir.status(&s) {
        Status::Created => {}
        Status::Stopped => bail!("cannot start a container that has stopped"),
        _ => bail!("cannot start an already running container"),
    }
    let fifo = dir.fifo();
    let fd = nix::fcntl::open(
        &fifo,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("opening {}", fifo.display()))?;
    let mut byte = [0u8; 1];
    loop {
        // Whether init lives is sampled before the read, never after: init
        // may write its byte, exec and exit (a short command on a loaded
        // machine) between the two, and a byte is a start however soon
        // the process ended. Only an empty read after init was seen dead
        // proves it never got that far.
        let was_alive = state::alive(&s);
        match nix::unistd::read(&fd, &mut byte) {
            Ok(1) => break,
            Ok(_) | Err(nix::Error::EAGAIN) | Err(nix::Error::EINTR) => {}
            Err(e) => bail!("reading {}: {e}", fifo.display()),
        }
        if !was_alive {
            bail!("the container's init exited before it was started");
        }
        let mut fds = [nix::poll::PollFd::new(
            fd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(20u8));
        // POLLHUP before the writer came would spin: pace it.
        std::thread::sleep(Duration::from_millis(1));
    }
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
    let saved = create(root, log, a)?;
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

/// `exec`: a process in the running container, through the same joiner
/// and `enter_and_exec` as `burrow exec`.
fn exec(root: &Path, log: &Log, a: &ExecArgs) -> Result<i32> {
    let dir = Dir::new(root, &a.id)?;
    let s = dir.load()?;
    if dir.status(&s) == Status::Stopped {
        bail!("cannot exec in a stopped container");
    }
    let cfg = Config::read(&s.bundle).ok();
    let mut pp: ProcessPlan = match &a.process {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let p: oci_spec::runtime::Process = serde_json::from_slice(&bytes)
                .with_context(|| format!("parsing {}", path.display()))?;
            bundle::process_plan(&p)?
        }
        None => {
            let base = cfg
                .as_ref()
                .and_then(|c| c.spec.process().as_ref())
                .ok_or_else(|| anyhow!("no process in the bundle, and no --process"))?;
            let mut p = bundle::process_plan(base)?;
            if a.command.is_empty() {
                bail!("exec needs a command, or --process");
            }
            p.argv = a.command.clone();
            p.terminal = a.tty;
            p
        }
    };
    if let Some(c) = &a.cwd {
        pp.cwd = c.clone();
    }
    for kv in &a.env {
        let key = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
        pp.env
            .retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
        pp.env.push(kv.clone());
    }
    for c in &a.cap {
        let n = crate::linux::caps::number(c).ok_or_else(|| anyhow!("unknown capability {c}"))?;
        // Bounding, effective and permitted, as runc and crun add it.
        let b = crate::linux::caps::bit(n);
        pp.caps.bounding |= b;
        pp.caps.effective |= b;
        pp.caps.permitted |= b;
    }
    if let Some(u) = &a.user {
        let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
        pp.uid = uid.parse().with_context(|| format!("--user {u}"))?;
        pp.gid = gid.parse().with_context(|| format!("--user {u}"))?;
    }
    pp.no_new_privs |= a.no_new_privs;
    if a.preserve_fds > 0 {
        log.debug("--preserve-fds: only stdio reaches the process");
    }
    let console = match (pp.terminal || a.tty, &a.console_socket) {
        (true, Some(path)) => Some(
            std::os::unix::net::UnixStream::connect(path)
                .with_context(|| format!("connecting to console socket {}", path.display()))?,
        ),
        _ => None,
    };
    let stdio = match (&console, pp.terminal || a.tty) {
        (Some(c), _) => Stdio::ConsoleSocket(c.as_raw_fd()),
        (None, true) => Stdio::Pty,
        (None, false) => Stdio::Inherit,
    };
    let profile = match &cfg {
        Some(c) => c.seccomp_profile()?,
        None => None,
    };
    let seccomp = Seccomp::build(profile.as_ref(), pp.caps.bounding);
    let spec = sandbox::exec::ExecSpec {
        pid1: s.pid,
        pid1_start: s.start_time,
        process: to_process(&pp, seccomp, stdio, a.detach),
        cgroup: None,
        relay_signals: true,
    };
    let execd = sandbox::exec::exec(&spec).map_err(|e| anyhow!("{e}"))?;
    drop(console);
    if let Some(p) = &a.pid_file {
        write_pid_file(p, execd.pid.as_raw())?;
    }
    if a.detach {
        return Ok(0);
    }
    Ok(execd.wait_relaying_signals())
}

/// The sandbox's process for a bundle's (or `exec`'s) process object.
fn to_process(p: &ProcessPlan, seccomp: Seccomp, stdio: Stdio, outlives_parent: bool) -> Process {
    Process {
        argv: p.argv.clone(),
        env: p.env.clone(),
        cwd: p.cwd.clone(),
        user: format!("{}:{}", p.uid, p.gid),
        caps: p.caps.bounding,
        seccomp,
        fake_ids: false,
        // The engine decides what stdin is (a pipe, /dev/null).
        stdin: true,
        stdio,
        init: false,
        init_program: None,
        no_new_privs: p.no_new_privs,
        groups: Some(p.groups.clone()),
        outlives_parent,
        cap_sets: Some(p.caps),
    }
}

/// runc writes the bare number, through a temp file and a rename.
fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let path = std::path::absolute(path)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, pid.to_string())
        .and_then(|()| std::fs::rename(&tmp, &path))
        .with_context(|| format!("writing pid file {}", path.display()))
}

/// Run one hook with the state on stdin (runtime-spec config.md, Hooks).
/// Without `env` the hook inherits ours, as runc's do.
fn run_hook(kind: &str, h: &oci_spec::runtime::Hook, state: &serde_json::Value) -> Result<()> {
    let args = h.args().clone().unwrap_or_default();
    let mut c = std::process::Command::new(h.path());
    if let Some(a0) = args.first() {
        c.arg0(a0);
    }
    c.args(args.iter().skip(1));
    if let Some(env) = h.env() {
        c.env_clear();
        for kv in env {
            if let Some((k, v)) = kv.split_once('=') {
                c.env(k, v);
            }
        }
    }
    c.stdin(std::process::Stdio::piped());
    let mut child = c
        .spawn()
        .with_context(|| format!("running {kind} hook {}", h.path().display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin closes it: EPIPE, ignored
        // (SIGPIPE is ignored in the runtime for this).
        let _ = stdin.write_all(state.to_string().as_bytes());
    }
    let deadline = h
        .timeout()
        .map(|t| Instant::now() + Duration::from_secs(t.max(1) as u64));
    loop {
        if let Some(st) = child.try_wait()? {
            if st.success() {
                return Ok(());
            }
            match st.code() {
                Some(n) => bail!(
                    "{kind} hook failed with exit code {n}: {}",
                    h.path().display()
                ),
                None => bail!("{kind} hook failed ({st}): {}", h.path().display()),
            }
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{kind} hook timed out: {}", h.path().display());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn rlimit_resource(name: &str) -> Option<nix::sys::resource::Resource> {
    use nix::sys::resource::Resource as R;
    Some(match name {
        "RLIMIT_AS" => R::RLIMIT_AS,
        "RLIMIT_CORE" => R::RLIMIT_CORE,
        "RLIMIT_CPU" => R::RLIMIT_CPU,
        "RLIMIT_DATA" => R::RLIMIT_DATA,
        "RLIMIT_FSIZE" => R::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => R::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => R::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => R::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => R::RLIMIT_NICE,
        "RLIMIT_NOFILE" => R::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => R::RLIMIT_NPROC,
        "RLIMIT_RSS" => R::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => R::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => R::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => R::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => R::RLIMIT_STACK,
        _ => return None,
    })
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
        "mountOptions": ["async", "atime", "bind", "dev", "diratime", "dirsync", "exec",
            "mand", "noatime", "nodev", "nodiratime", "noexec", "nomand", "norelatime",
            "nostrictatime", "nosuid", "private", "rbind", "relatime", "ro", "rprivate",
            "rshared", "rslave", "runbindable", "rw", "shared", "slave", "strictatime",
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
