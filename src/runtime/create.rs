//! `create`: the process tree of an OCI bundle's process, up to init
//! blocked on the exec FIFO.
//!
//! ```text
//! burrow-runc create (engine's child)   reads the bundle, compiles seccomp,
//!                                       writes id maps, the pid file, state
//!  └─ setup process                     rlimits, umask; user namespace (new
//!                                       or joined), other namespaces joined
//!                                       by path, the rest unshared; exits
//!                                       once init is forked
//!      └─ init (PID 1 of a new pid ns)  sandbox's `ContainerType::Bundle`:
//!                                       the bundle's entry (mounts,
//!                                       pivot_root, hostname), user, caps,
//!                                       seccomp; says Ready, blocks on the
//!                                       exec FIFO until `start`, execs
//! ```
//!
//! The tree is the sandbox's (`sandbox::fork`), as for `run` and `exec`:
//! what is the bundle's own is the setup process's work and init's entry.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::unistd::Pid;

use super::bundle::{self, Config, Plan, ProcessPlan, UserNs};
use super::hooks::run_hook;
use super::state::{self, Dir, Saved, Status};
use super::{CreateArgs, Log};
use crate::linux::channel::ChannelError;
use crate::linux::newuser::AsksForMaps;
use crate::linux::{process, userns};
use crate::sandbox::fork::{fork_tree, Before, GrantFailure, Keep, Middle, Tree};
use crate::sandbox::seccomp::Seccomp;
use crate::sandbox::wire::{ReportError, SetupReport};
use crate::sandbox::{self, Entry, Failure, Process, Stdio, Step};

/// The setup process → `create`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
enum Report {
    /// Its new user namespace is unshared: map it.
    IdMapsRequested,
    /// Init is forked, with this host pid.
    Pid(i32),
    /// A step failed; nothing more follows.
    Failed(Failure),
}

crate::sandbox::wire::tree_report!(Report);

impl AsksForMaps for Report {
    fn maps_requested() -> Self {
        Report::IdMapsRequested
    }
    fn is_maps_request(&self) -> bool {
        matches!(self, Report::IdMapsRequested)
    }
}

/// What the container's process gets as stdout and stderr when no
/// terminal is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Output {
    /// Ours, as runc passes them through: an engine's shim hands `create`
    /// the pipes it reads the container's output from.
    Inherit,
    /// /dev/null: our stdout and stderr are the caller's capture of this
    /// command's own output (see [`caller_reads_our_output`]).
    Null,
}

/// Whether stdout and stderr are one pipe: a caller collecting what the
/// `create` command says and reading it until end of file (Slurm's
/// slurmstepd runs `RunTimeCreate` so, a `cmd 2>&1 | ...` pipeline or a
/// popen-style call likewise). Handed to the container, that pipe would
/// stay open in its waiting process and the caller would wait for ever
/// before it ran `start`. Engines that want the container's output
/// (containerd's shim, conmon) pass separate pipes for stdout and stderr,
/// or a terminal through the console socket.
pub(super) fn caller_reads_our_output() -> bool {
    let meta = |fd: std::os::fd::BorrowedFd| nix::sys::stat::fstat(fd).ok();
    let (Some(out), Some(err)) = (
        meta(std::io::stdout().as_fd()),
        meta(std::io::stderr().as_fd()),
    ) else {
        return false;
    };
    let is_pipe = |m: &nix::sys::stat::FileStat| (m.st_mode & libc::S_IFMT) == libc::S_IFIFO;
    is_pipe(&out) && out.st_dev == err.st_dev && out.st_ino == err.st_ino
}

/// `create`: everything up to init blocked on the exec FIFO.
pub(super) fn create(root: &Path, log: &Log, a: &CreateArgs, output: Output) -> Result<Saved> {
    let dir = Dir::new(root, &a.id)?;
    let bundle = match &a.bundle {
        Some(b) => std::path::absolute(b)?,
        None => std::env::current_dir()?,
    };
    let cfg = Config::read_file(&bundle.join(&a.config))?;
    let plan = bundle::plan(&cfg, &bundle)?;
    if a.init.no_pivot {
        log.debug("--no-pivot: burrow-runc always uses pivot_root");
    }
    if let Some(linux) = cfg.spec.linux() {
        if let Some(p) = linux.cgroups_path() {
            log.debug(&format!(
                "cgroupsPath {} and linux.resources ignored: burrow-runc places no container in a cgroup (rootless, as crun does without delegation)",
                p.display()
            ));
        }
        if !plan.skipped_devices.is_empty() {
            log.debug(&format!(
                "linux.devices not bound (a user namespace cannot mknod, and the host has no such device at that path): {:?}",
                plan.skipped_devices
            ));
        }
    }
    if !root.exists() {
        std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
        // The exec FIFOs below are writable by anyone who reaches them.
        let _ = std::fs::set_permissions(root, std::os::unix::fs::PermissionsExt::from_mode(0o700));
    }
    dir.make()?;
    let c = Creating {
        dir: &dir,
        log,
        a,
        cfg: &cfg,
        plan: &plan,
        bundle: &bundle,
    };
    match create_in(&c, output) {
        Ok(s) => Ok(s),
        Err(e) => {
            let _ = dir.remove();
            Err(e)
        }
    }
}

/// What `create` works from: the container's directory, the command's
/// arguments, the bundle, its config and its plan.
struct Creating<'a> {
    dir: &'a Dir,
    log: &'a Log,
    a: &'a CreateArgs,
    cfg: &'a Config,
    plan: &'a Plan,
    bundle: &'a Path,
}

fn create_in(c: &Creating, output: Output) -> Result<Saved> {
    let Creating {
        dir, log, a, plan, ..
    } = *c;
    let fifo = dir.fifo();
    // Only ours: init never reopens it (below), so the container's user
    // needs no access.
    nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600))
        .with_context(|| format!("creating {}", fifo.display()))?;
    // Opened for reading and writing, which never blocks on a FIFO
    // (fifo(7)), and handed to init, which reads `start`'s byte from it
    // after pivot_root: no reopening through /proc, which a bundle need not
    // mount. Init's descriptor is the only reader, so `start` finds init
    // gone when opening the FIFO for writing fails (ENXIO).
    let gate = nix::fcntl::open(&fifo, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
        .with_context(|| format!("opening {}", fifo.display()))?;

    // The console socket: init sends the master of a pty it opens in the
    // container's devpts.
    let console = if plan.process.terminal {
        let path = a
            .init
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
    let null_output = console.is_none() && output == Output::Null;
    if null_output {
        log.debug("stdout and stderr are one pipe, the caller's capture of this command's output: the container's stdout and stderr are /dev/null");
    }
    let (proc, preserve_fds) = container_process(a, c.cfg, plan, stdio)?;
    // A memory policy is inherited by every child and kept across execve:
    // set here, it reaches init and the container's program.
    if let Some((mode, nodes)) = &plan.mempolicy {
        process::set_mempolicy(*mode, nodes)
            .map_err(|e| anyhow!("linux.memoryPolicy: set_mempolicy: {e}"))?;
    }
    let mut keep = vec![gate.as_raw_fd()];
    keep.extend(console.as_ref().map(|c| c.as_raw_fd()));
    // --preserve-fds: the engine's descriptors 3..3+N reach the process.
    keep.extend((0..preserve_fds as i32).map(|i| 3 + i));
    let gate_fd = gate.as_fd();
    let entry = plan.entry();
    let maps = plan.user_ns == UserNs::Create;
    let tree = fork_tree(Keep::Only(&keep), maps, 1, |mut middle: Middle<Report>| {
        // Before anything that may write there: from here on, no process
        // of the container's holds the caller's pipe.
        if null_output {
            if let Err(e) = null_stdout_stderr() {
                return middle.fail(Failure::io(Step::Stdio, &e, 1).at(Path::new("/dev/null")));
            }
        }
        match setup(plan, &entry, &proc, (gate_fd, preserve_fds), &mut middle) {
            Ok(()) => 0,
            Err(f) => middle.fail(f),
        }
    })
    .map_err(|e| anyhow!("{}", e.into_failure(1)))?;
    drop(gate);
    drop(console);
    let pid = start_init(tree, plan)?;
    record(c, pid)
}

/// The bundle's process as the sandbox runs it, and how many of the
/// engine's descriptors from 3 up it keeps.
fn container_process(
    a: &CreateArgs,
    cfg: &Config,
    plan: &Plan,
    stdio: Stdio,
) -> Result<(Process, u32)> {
    let profile = cfg.seccomp_profile()?;
    let mut proc = to_process(
        &plan.process,
        Seccomp::build(profile.as_ref(), plan.process.caps.bounding),
        stdio,
        true,
    );
    if let Seccomp::Unusable(why) = &proc.seccomp {
        bail!("linux.seccomp: {why}");
    }
    // Socket activation passes through, as runc and crun pass it: the
    // sockets stay at 3.. and the container's pid 1 is the process they
    // are for.
    let listen_fds = listen_fds(
        std::env::var("LISTEN_FDS").ok().as_deref(),
        std::env::var("LISTEN_PID").ok().as_deref(),
        std::process::id(),
    );
    if listen_fds > 0 {
        proc.env
            .retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
        proc.env.push(format!("LISTEN_FDS={listen_fds}"));
        proc.env.push("LISTEN_PID=1".into());
    }
    Ok((proc, a.preserve_fds.max(listen_fds)))
}

/// The caller's half of the tree: map a new user namespace, read init's
/// pid, wait until it is set up (blocked on the exec FIFO). Returns init's
/// pid.
fn start_init(mut tree: Tree<Report>, plan: &Plan) -> Result<Pid> {
    let early = |tree: &Tree<Report>, e: ReportError| -> anyhow::Error {
        let code = tree.reap();
        match e {
            ReportError::Failed(f) => anyhow!("{f}"),
            ReportError::Channel(ChannelError::Closed) => {
                anyhow!("setting up the container ended early (exit code {code})")
            }
            e => anyhow!("setting up the container: {e}"),
        }
    };
    let setup = tree.middle;
    match tree.grant_maps(|| userns::write_given_maps(setup, &plan.uid_map, &plan.gid_map)) {
        Ok(()) => {}
        Err(GrantFailure::Early(e)) => return Err(early(&tree, e)),
        Err(GrantFailure::Write(e)) => return Err(e.into()),
    }
    tree.maps = None;
    let init = match tree.wait_pid(|_| {}) {
        Ok(pid) => pid,
        Err(e) => return Err(early(&tree, e)),
    };
    tree.reap();
    let fail = killing(init);
    match tree.setup.recv() {
        Ok(SetupReport::Ready) => Ok(init),
        Ok(SetupReport::Failed(f)) => Err(fail(anyhow!("{f}"))),
        Err(_) => Err(fail(anyhow!("init ended while setting up the container"))),
    }
}

/// An error that also kills init, which must not outlive a failed create.
fn killing(init: Pid) -> impl Fn(anyhow::Error) -> anyhow::Error + Copy {
    move |e| {
        let _ = kill(init, Signal::SIGKILL);
        e
    }
}

/// Init is set up: run the create hooks, write the pid file and the
/// container's state. Init is killed when any of that fails.
fn record(c: &Creating, init: Pid) -> Result<Saved> {
    let Creating {
        dir,
        log,
        a,
        cfg,
        plan,
        bundle,
    } = *c;
    let pid = init.as_raw();
    let fail = killing(init);
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
    if let Some(p) = &a.init.pid_file {
        write_pid_file(p, pid).map_err(fail)?;
    }
    dir.save(&saved).map_err(|e| fail(e.into()))?;
    Ok(saved)
}

/// /dev/null as stdout and stderr of this process and what it forks.
fn null_stdout_stderr() -> std::io::Result<()> {
    let null = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
    for target in [1, 2] {
        process::dup_onto(null.as_raw_fd(), target).map_err(std::io::Error::from)?;
    }
    Ok(())
}

/// The setup process (see the module comment), up to init forked.
fn setup(
    plan: &Plan,
    entry: &Entry,
    proc: &Process,
    (gate, preserve_fds): (BorrowedFd<'_>, u32),
    middle: &mut Middle<Report>,
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
        UserNs::Create => middle.unshare_mapped(CloneFlags::CLONE_NEWUSER)?,
    }
    drop(middle.take_maps_channel());
    // Not dumpable from here until init execs the container's program: a
    // process already in namespaces we join must not trace init or read it
    // (runc's CVE-2016-9962). Until the id maps were written we had to be:
    // the runtime writes them through our /proc/PID files.
    process::set_dumpable(false).map_err(|e| Failure::sys(Step::Dumpable, e, 1))?;
    for (flag, path) in &plan.join {
        setns(*flag, path)?;
    }
    // The rest, with loopback up in a new network namespace.
    middle.unshare(plan.create)?;
    // setgroups(2) works unless it was denied for a single-id map.
    let groups_allowed = std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() == "allow")
        .unwrap_or(false);

    let init = sandbox::BundleInit {
        root: &plan.root,
        entry,
        start_gate: gate,
        preserve_fds,
    };
    let kind = sandbox::ContainerType::Bundle(&init);
    let pid = middle.fork_process(kind, proc, groups_allowed, Before::Nothing)?;
    middle.report_pid(pid);
    Ok(())
}

/// The sandbox's process for a bundle's (or `exec`'s) process object.
pub(super) fn to_process(
    p: &ProcessPlan,
    seccomp: Seccomp,
    stdio: Stdio,
    outlives_parent: bool,
) -> Process {
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

/// How many sockets systemd's socket activation (sd_listen_fds(3)) hands
/// the container: `LISTEN_FDS` of ours, when `LISTEN_PID` is unset (crun
/// takes it so) or names us; 0 otherwise.
fn listen_fds(fds: Option<&str>, pid: Option<&str>, own_pid: u32) -> u32 {
    let for_us = pid.is_none_or(|p| p.parse::<u32>().is_ok_and(|p| p == own_pid));
    match fds.and_then(|n| n.parse::<u32>().ok()) {
        // A bound keeps a bogus count from holding every descriptor open.
        Some(n) if for_us && n <= 1024 => n,
        _ => 0,
    }
}

/// runc writes the bare number, through a temp file and a rename.
pub(super) fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let path = std::path::absolute(path)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, pid.to_string())
        .and_then(|()| std::fs::rename(&tmp, &path))
        .with_context(|| format!("writing pid file {}", path.display()))
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

#[cfg(test)]
mod tests {
    use super::listen_fds;

    #[test]
    fn socket_activation_is_ours_when_listen_pid_is_unset_or_names_us() {
        assert_eq!(listen_fds(Some("2"), None, 40), 2);
        assert_eq!(listen_fds(Some("2"), Some("40"), 40), 2);
        assert_eq!(listen_fds(Some("2"), Some("41"), 40), 0);
        assert_eq!(listen_fds(None, Some("40"), 40), 0);
        assert_eq!(listen_fds(Some("x"), None, 40), 0);
        assert_eq!(listen_fds(Some("100000"), None, 40), 0);
    }
}
