//! PID 1 of the container: the setup steps in order, top to bottom, then exec.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sys::signal::Signal;

use super::report;
use super::{Report, Spec, StartError};
use crate::exit;
use crate::linux::{mount, process};

/// Docker's PATH when the image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Host device nodes bound into the container's /dev (what Docker and
/// podman give an unprivileged container).
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// Runs in the forked PID 1; returns only on failure (the exit code).
pub(super) fn pid1_main(spec: &Spec, root: &Path, rep: &mut File) -> i32 {
    match setup_and_exec(spec, root) {
        Ok(never) => match never {},
        Err(e) => {
            let code = e.code;
            report::send(rep, &Report::Failed(e));
            code
        }
    }
}

fn fail(step: &str, message: impl Into<String>, code: i32) -> StartError {
    StartError::new(step, message, code)
}

fn setup_err(e: impl std::fmt::Display) -> StartError {
    fail(
        "setup",
        format!("setting up the container: {e}"),
        exit::BURROW,
    )
}

pub(super) enum Never {}

fn setup_and_exec(spec: &Spec, root: &Path) -> Result<Never, StartError> {
    // Die with the inner process, so nothing outlives its supervisor.
    let _ = process::set_parent_death_signal(Signal::SIGKILL);

    // /proc: a fresh procfs for our pid namespace.
    let proc_dir = ensure_dir(root, "proc")?;
    mount::special(
        "proc",
        &proc_dir,
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None,
    )
    .map_err(setup_err)?;

    // /dev: a small tmpfs with the host's harmless devices bound in.
    setup_dev(spec, root)?;

    // /sys: sysfs can only be mounted in a new network namespace; bind the
    // host's read-only instead.
    let sys_dir = ensure_dir(root, "sys")?;
    mount::bind_readonly(Path::new("/sys"), &sys_dir, true).map_err(setup_err)?;

    // /etc/hosts, /etc/hostname, /etc/resolv.conf: the container's own files.
    ensure_dir(root, "etc")?;
    for f in ["hosts", "hostname", "resolv.conf"] {
        let src = spec.dir.join(f);
        if src.exists() {
            let target = ensure_file(root, &format!("etc/{f}"))?;
            mount::bind(&src, &target, false).map_err(setup_err)?;
        }
    }

    // -v, --mount, --tmpfs, in the order given.
    for m in &spec.mounts {
        add_mount(root, m)?;
    }

    // --read-only: the root itself becomes read-only; the mounts above
    // (/proc, /dev, /etc files, volumes, tmpfs) keep their own modes.
    if spec.readonly_rootfs {
        mount::remount_readonly(root).map_err(setup_err)?;
    }

    // The switch: the rootfs becomes /, the host's tree is detached.
    mount::pivot_into(root).map_err(setup_err)?;

    nix::unistd::sethostname(&spec.hostname).map_err(setup_err)?;

    // stdio: the monitor's pipes or pty when given; a terminal becomes our
    // controlling terminal in a session of our own. stdin is /dev/null
    // unless -i (Docker closes it too).
    if let Some(sock) = spec.console {
        // A pty from the container's devpts; its master goes to the monitor.
        let (master, slave) =
            crate::linux::tty::open_pty_in(Path::new("/dev/pts")).map_err(setup_err)?;
        crate::linux::tty::send_fd(sock, master.as_raw_fd()).map_err(setup_err)?;
        drop(master);
        for target in 0..3 {
            process::dup_onto(slave.as_raw_fd(), target).map_err(setup_err)?;
        }
        nix::unistd::setsid().map_err(setup_err)?;
        crate::linux::tty::set_controlling_terminal(0).map_err(setup_err)?;
    } else if let Some(fds) = spec.stdio {
        for (target, fd) in fds.into_iter().enumerate() {
            if fd != target as i32 {
                process::dup_onto(fd, target as i32).map_err(setup_err)?;
            }
        }
        if spec.tty {
            nix::unistd::setsid().map_err(setup_err)?;
            crate::linux::tty::set_controlling_terminal(0).map_err(setup_err)?;
        }
    }
    if !spec.stdin {
        if let Ok(null) = File::open("/dev/null") {
            let _ = nix::unistd::dup2_stdin(&null);
        }
    }

    // User and groups, resolved in the container's own /etc/passwd.
    let ids = super::user::resolve(&spec.user, Path::new("/etc"))
        .map_err(|e| fail("user", e, exit::CANNOT_RUN))?;
    let mut env = spec.env.clone();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", ids.home));
    }

    // Working directory: created if missing, as Docker does.
    let cwd = if spec.cwd.is_empty() { "/" } else { &spec.cwd };
    if !Path::new(cwd).is_dir() {
        let _ = std::fs::create_dir_all(cwd);
    }
    // seccomp: while we still hold CAP_SYS_ADMIN in the container's user
    // namespace, so no_new_privs is not needed (setuid programs keep working).
    // With CAP_SYS_ADMIN granted, new user namespaces stay allowed (Docker).
    if spec.seccomp {
        crate::linux::seccomp::install(spec.caps & (1 << 21) != 0).map_err(setup_err)?;
    }
    // Capabilities: the bounding set first (it needs CAP_SETPCAP, which a
    // non-root user loses at setuid), the process's own sets after.
    crate::linux::caps::drop_bounding(spec.caps).map_err(setup_err)?;
    ids.apply(spec.mapping.is_range())
        .map_err(|e| fail("user", e, exit::CANNOT_RUN))?;
    crate::linux::caps::set_sets(spec.caps).map_err(setup_err)?;
    enter_workdir(cwd)?;

    if spec.init {
        return run_init(&spec.argv, &env);
    }
    exec(&spec.argv, &env)
}

/// chdir into the working directory, failing as Docker does (126).
pub(super) fn enter_workdir(cwd: &str) -> Result<(), StartError> {
    nix::unistd::chdir(cwd).map_err(|e| {
        fail(
            "cwd",
            format!("cannot enter working directory {cwd:?}: {e}"),
            exit::CANNOT_RUN,
        )
    })
}

/// `--init`: fork the command and stay PID 1. Signals sent to the container
/// are forwarded to the command; orphans reparented to us are reaped; we end
/// with the command's exit code. Blocked signals reach a namespace's init
/// even without a handler (the kernel only ignores unblocked default ones),
/// so a signalfd sees them, as tini's sigtimedwait does.
fn run_init(argv: &[String], env: &[String]) -> Result<Never, StartError> {
    use nix::sys::signal::SigSet;
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};

    let all = SigSet::all();
    all.thread_block().map_err(setup_err)?;
    let sfd = SignalFd::with_flags(&all, SfdFlags::SFD_CLOEXEC).map_err(setup_err)?;
    // The command reports its own exec failure on our exec pipe (fd still
    // open in it until exec), then we see it exit.
    let child = process::fork_child(|| match exec(argv, env) {
        Ok(never) => match never {},
        Err(e) => {
            eprintln!("burrow: {}", e.message);
            e.code
        }
    })
    .map_err(setup_err)?;
    // From here on nobody reads the exec pipe's failure reports: close ours
    // so the caller sees exec "succeeded" (the command runs under us).
    process::close_fds_except(&[sfd.as_raw_fd()]);
    loop {
        let Ok(Some(info)) = sfd.read_signal() else {
            continue;
        };
        let sig = info.ssi_signo as i32;
        if sig == Signal::SIGCHLD as i32 {
            loop {
                match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::Exited(p, code)) if p == child => process::exit_now(code),
                    Ok(WaitStatus::Signaled(p, s, _)) if p == child => {
                        process::exit_now(128 + s as i32)
                    }
                    Ok(WaitStatus::StillAlive) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        } else if let Ok(s) = Signal::try_from(sig) {
            let _ = nix::sys::signal::kill(child, s);
        }
    }
}

fn setup_dev(spec: &Spec, root: &Path) -> Result<(), StartError> {
    let dev = ensure_dir(root, "dev")?;
    mount::special(
        "tmpfs",
        &dev,
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )
    .map_err(setup_err)?;
    for d in DEVICES {
        let target = dev.join(d);
        File::create(&target).map_err(setup_err)?;
        mount::bind(&Path::new("/dev").join(d), &target, false).map_err(setup_err)?;
    }
    let pts = dev.join("pts");
    std::fs::create_dir(&pts).map_err(setup_err)?;
    // gid=5 (tty) exists only when a gid range is mapped.
    let pts_opts = if spec.mapping.is_range() {
        "newinstance,ptmxmode=0666,mode=0620,gid=5"
    } else {
        "newinstance,ptmxmode=0666,mode=0620"
    };
    mount::special(
        "devpts",
        &pts,
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some(pts_opts),
    )
    .map_err(setup_err)?;
    let shm = dev.join("shm");
    std::fs::create_dir(&shm).map_err(setup_err)?;
    mount::special(
        "tmpfs",
        &shm,
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=1777,size=65536k"),
    )
    .map_err(setup_err)?;
    for (link, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("core", "/proc/kcore"),
    ] {
        std::os::unix::fs::symlink(target, dev.join(link)).map_err(setup_err)?;
    }
    Ok(())
}

/// One user mount. The target is resolved inside the rootfs (symlinks in the
/// image act as they would in the container and cannot point the mount at a
/// host path) and mounted through /proc/self/fd, as runc does.
fn add_mount(root: &Path, m: &super::Mount) -> Result<(), StartError> {
    let mount_err = |e: String| fail("mount", e, exit::BURROW);
    match m {
        super::Mount::Bind {
            source,
            target,
            readonly,
        } => {
            let want_dir = source.is_dir();
            let fd = crate::linux::fs::open_in_root(root, target, want_dir)
                .map_err(|e| mount_err(format!("mount target {target}: {e}")))?;
            let via = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
            mount::bind(source, &via, true).map_err(|e| {
                mount_err(format!(
                    "binding {} to {target}: {}",
                    source.display(),
                    e.source
                ))
            })?;
            if *readonly {
                // The old descriptor still names the directory under the new
                // mount: resolve again to reach the mount itself.
                let top = crate::linux::fs::open_in_root(root, target, want_dir)
                    .map_err(|e| mount_err(format!("mount target {target}: {e}")))?;
                let via = PathBuf::from(format!("/proc/self/fd/{}", top.as_raw_fd()));
                mount::remount_bind_readonly(source, &via)
                    .map_err(|e| mount_err(format!("making {target} read-only: {}", e.source)))?;
            }
            Ok(())
        }
        super::Mount::Tmpfs { target, options } => {
            let fd = crate::linux::fs::open_in_root(root, target, true)
                .map_err(|e| mount_err(format!("mount target {target}: {e}")))?;
            let via = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
            // Docker's defaults: noexec, nosuid, nodev, mode 1777; "exec" and
            // "ro" are flags, the rest go to tmpfs.
            let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
            let mut data: Vec<&str> = Vec::new();
            for o in options.split(',').filter(|o| !o.is_empty()) {
                match o {
                    "exec" => flags.remove(MsFlags::MS_NOEXEC),
                    "noexec" | "nosuid" | "nodev" | "rw" => {}
                    "ro" => flags |= MsFlags::MS_RDONLY,
                    other => data.push(other),
                }
            }
            if !data.iter().any(|o| o.starts_with("mode=")) {
                data.push("mode=1777");
            }
            mount::special("tmpfs", &via, flags, Some(&data.join(",")))
                .map_err(|e| mount_err(format!("tmpfs on {target}: {}", e.source)))
        }
    }
}

/// `root/rel` as a real directory. An image may ship it as a symlink (even
/// one pointing at a host path); mounting through that would land elsewhere,
/// so replace anything that is not a directory.
fn ensure_dir(root: &Path, rel: &str) -> Result<PathBuf, StartError> {
    let p = root.join(rel);
    match std::fs::symlink_metadata(&p) {
        Ok(m) if m.is_dir() => return Ok(p),
        Ok(_) => std::fs::remove_file(&p).map_err(setup_err)?,
        Err(_) => {}
    }
    std::fs::create_dir(&p).map_err(setup_err)?;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).map_err(setup_err)?;
    Ok(p)
}

/// `root/rel` as a regular file to bind over (replacing a symlink, see above).
fn ensure_file(root: &Path, rel: &str) -> Result<PathBuf, StartError> {
    let p = root.join(rel);
    match std::fs::symlink_metadata(&p) {
        Ok(m) if m.is_file() => return Ok(p),
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(&p).map_err(setup_err)?,
        Ok(_) => std::fs::remove_file(&p).map_err(setup_err)?,
        Err(_) => {}
    }
    File::create(&p).map_err(setup_err)?;
    Ok(p)
}

/// Find the program the way execvp does, but with the container's PATH, and
/// exec it. Errors carry Docker's wording and exit codes (127 not found,
/// 126 not runnable).
pub(super) fn exec(argv: &[String], env: &[String]) -> Result<Never, StartError> {
    let prog = argv
        .first()
        .ok_or_else(|| fail("exec", "no command specified", exit::BURROW))?;
    let path_var = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    let candidates: Vec<PathBuf> = if prog.contains('/') {
        vec![PathBuf::from(prog)]
    } else {
        path_var
            .split(':')
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join(prog))
            .collect()
    };
    let cstr = |s: &str| {
        CString::new(s)
            .map_err(|_| fail("exec", format!("{s:?} contains a NUL byte"), exit::BURROW))
    };
    let c_argv = argv
        .iter()
        .map(|a| cstr(a))
        .collect::<Result<Vec<_>, _>>()?;
    let c_env = env.iter().map(|e| cstr(e)).collect::<Result<Vec<_>, _>>()?;
    process::reset_signals();
    // Only stdin, stdout and stderr cross into the program.
    process::cloexec_from_3();
    let mut denied = None;
    for cand in &candidates {
        let Ok(c_path) = CString::new(cand.as_os_str().as_encoded_bytes()) else {
            continue;
        };
        match nix::unistd::execve(&c_path, &c_argv, &c_env) {
            Err(nix::Error::ENOENT) | Err(nix::Error::ENOTDIR) => continue,
            Err(e @ (nix::Error::EACCES | nix::Error::EISDIR | nix::Error::ENOEXEC)) => {
                denied.get_or_insert((cand.clone(), e));
            }
            Err(e) => {
                return Err(fail(
                    "exec",
                    format!("exec: {prog:?}: {}", e.desc()),
                    exit::CANNOT_RUN,
                ))
            }
            Ok(never) => match never {},
        }
    }
    if let Some((p, e)) = denied {
        let what = if e == nix::Error::ENOEXEC {
            "exec format error".to_string()
        } else if p.is_dir() {
            "is a directory".to_string()
        } else {
            "permission denied".to_string()
        };
        return Err(fail(
            "exec",
            format!("exec: {prog:?}: {what}"),
            exit::CANNOT_RUN,
        ));
    }
    let msg = if prog.contains('/') {
        format!("exec: {prog:?}: stat {prog}: no such file or directory")
    } else {
        format!("exec: {prog:?}: executable file not found in $PATH")
    };
    Err(fail("exec", msg, exit::NOT_FOUND))
}
