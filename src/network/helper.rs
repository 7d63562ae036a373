//! The user-mode network helper that gives a container's private network
//! namespace outbound access: pasta (Debian package `passt`) when
//! installed, else slirp4netns. It is started by the supervisor once PID 1
//! exists and before PID 1 sets itself up, targets PID 1 by pid (Debian's
//! AppArmor profile for pasta allows `/proc/PID/ns/net`, not arbitrary
//! namespace paths), and dies with the supervisor (PR_SET_PDEATHSIG) or
//! when the container ends (`Running::stop`).

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::{Mode, NetworkError};
use crate::linux::process::ForkError;
use crate::linux::tap::{self, TunProblem, TUN_PATH};
use crate::linux::{net, process};

/// How long a helper may take to configure the namespace.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pasta,
    Slirp4netns,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Pasta => "pasta",
            Kind::Slirp4netns => "slirp4netns",
        }
    }

    /// The Debian package that installs it.
    pub fn package(self) -> &'static str {
        match self {
            Kind::Pasta => "passt",
            Kind::Slirp4netns => "slirp4netns",
        }
    }

    /// The resolver the container's /etc/resolv.conf names: pasta forwards
    /// queries sent to the address given with `--dns-forward` (pasta(1),
    /// podman uses 169.254.0.1); slirp4netns answers on 10.0.2.3
    /// (slirp4netns(1), "--configure").
    pub fn dns_address(self) -> &'static str {
        match self {
            Kind::Pasta => "169.254.0.1",
            Kind::Slirp4netns => "10.0.2.3",
        }
    }
}

/// An installed helper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Helper {
    pub kind: Kind,
    pub path: PathBuf,
}

/// What a container on a private network gets for outbound access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// This helper, installed and able to start.
    Helper(Helper),
    /// Loopback only (published ports still work), and why.
    LoopbackOnly(Why),
}

/// Why a private network has loopback only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// The host has no default route: there is nowhere to go out to, and
    /// pasta refuses to start without one.
    Offline { installed: Option<Kind> },
    /// Neither pasta nor slirp4netns is installed.
    NotInstalled,
    /// The installed helper cannot open the tun device.
    NoTun { helper: Kind, problem: TunProblem },
}

impl Why {
    /// The one line a user is told (once per session), or None where
    /// loopback only is all the host allows.
    pub fn notice(&self) -> Option<String> {
        match self {
            Why::Offline { .. } => None,
            Why::NotInstalled => Some(
                "burrow: neither pasta nor slirp4netns is installed: containers get loopback only (published ports still work); for outbound access: apt-get install passt".into(),
            ),
            Why::NoTun { helper, problem } => Some(format!(
                "burrow: {} cannot start: {}: containers get loopback only (published ports still work); fix: {}, or --network none to say you meant it",
                helper.name(),
                tun_problem(problem),
                tun_fix(problem)
            )),
        }
    }

    /// A short name for the reason, to remember that it was said.
    pub fn key(&self) -> &'static str {
        match self {
            Why::Offline { .. } => "offline",
            Why::NotInstalled => "not-installed",
            Why::NoTun { .. } => "no-tun",
        }
    }
}

/// What is wrong with the tun device, in a user's words.
pub fn tun_problem(p: &TunProblem) -> String {
    match p {
        TunProblem::Missing => format!("there is no {TUN_PATH}"),
        TunProblem::Mode { mode, owner: 0 } => format!("{TUN_PATH} is mode {mode:04o}"),
        TunProblem::Mode { mode, owner } => {
            format!("{TUN_PATH} is mode {mode:04o} and owned by uid {owner}")
        }
        TunProblem::Refused(e) => format!("{TUN_PATH} cannot be opened ({})", e.desc()),
    }
}

/// The command that lets an unprivileged user open the tun device.
pub fn tun_fix(p: &TunProblem) -> String {
    use nix::errno::Errno;
    match p {
        TunProblem::Missing => format!(
            "sudo mkdir -p /dev/net && sudo mknod -m 0666 {TUN_PATH} c 10 200 (in a job container: pass the device in, e.g. --device {TUN_PATH})"
        ),
        TunProblem::Mode { .. } => format!("sudo chmod 0666 {TUN_PATH} (Debian's default mode)"),
        TunProblem::Refused(Errno::ENODEV | Errno::ENXIO) => "sudo modprobe tun".into(),
        TunProblem::Refused(Errno::EPERM) => {
            "allow the tun device (c 10:200 rw) in this host's device cgroup".into()
        }
        TunProblem::Refused(_) => format!("let your user open {TUN_PATH} for reading and writing"),
    }
}

/// Outbound access for `--network private`, searched in `path_var` (a
/// `PATH` value): pasta, else slirp4netns, when the host has a default
/// route and the helper can open the tun device.
pub fn outbound(path_var: &str) -> Outbound {
    let installed = find_installed(path_var);
    if !net::route_table_has_default(Path::new("/proc/net/route")) {
        return Outbound::LoopbackOnly(Why::Offline {
            installed: installed.map(|h| h.kind),
        });
    }
    let Some(helper) = installed else {
        return Outbound::LoopbackOnly(Why::NotInstalled);
    };
    match tap::check_tun_access() {
        Ok(()) => Outbound::Helper(helper),
        Err(problem) => Outbound::LoopbackOnly(Why::NoTun {
            helper: helper.kind,
            problem,
        }),
    }
}

/// The helper `mode` uses: `private` takes what `outbound` finds (none:
/// loopback only); `pasta`/`slirp4netns` insist on that one, and a user
/// network on the tun device its members' TAP devices are made with, so
/// those fail with the fix when it cannot be had.
pub fn find(mode: Mode, path_var: &str) -> Result<Option<Helper>, NetworkError> {
    let unusable = |user: String, problem: TunProblem| NetworkError::TunUnusable {
        user,
        problem: tun_problem(&problem),
        fix: tun_fix(&problem),
    };
    match mode {
        Mode::None | Mode::Host => Ok(None),
        Mode::Private => Ok(match outbound(path_var) {
            Outbound::Helper(h) => Some(h),
            Outbound::LoopbackOnly(_) => None,
        }),
        Mode::User => {
            tap::check_tun_access()
                .map_err(|p| unusable("a user network's TAP device".into(), p))?;
            find(Mode::Private, path_var)
        }
        Mode::Via(kind) => {
            let helper = lookup(kind, path_var).ok_or(NetworkError::HelperMissing {
                kind: kind.name(),
                package: kind.package(),
            })?;
            tap::check_tun_access().map_err(|p| unusable(kind.name().into(), p))?;
            Ok(Some(helper))
        }
    }
}

/// The first of pasta and slirp4netns installed in `path_var`.
fn find_installed(path_var: &str) -> Option<Helper> {
    lookup(Kind::Pasta, path_var).or_else(|| lookup(Kind::Slirp4netns, path_var))
}

fn lookup(kind: Kind, path_var: &str) -> Option<Helper> {
    crate::linux::fs::executable_in(path_var.as_ref(), kind.name())
        .map(|path| Helper { kind, path })
}

/// What `burrow info` says about outbound access for `--network private`.
pub fn describe(outbound: &Outbound) -> String {
    match outbound {
        Outbound::Helper(h) => format!("{} ({})", h.kind.name(), h.path.display()),
        Outbound::LoopbackOnly(Why::Offline {
            installed: Some(kind),
        }) => format!(
            "none: the host has no default route ({} is installed); loopback only",
            kind.name()
        ),
        Outbound::LoopbackOnly(Why::Offline { installed: None } | Why::NotInstalled) => {
            "none: loopback only (apt-get install passt)".into()
        }
        Outbound::LoopbackOnly(Why::NoTun { helper, problem }) => format!(
            "{} (unusable: {}; containers get loopback only; fix: {})",
            helper.name(),
            tun_problem(problem),
            tun_fix(problem)
        ),
    }
}

/// A helper serving one container.
#[derive(Debug)]
pub struct Running {
    pid: Pid,
    kind: Kind,
}

impl Helper {
    /// The command line for the container whose PID 1 is `pid1`.
    fn args(&self, pid1: i32) -> Vec<String> {
        let mut a: Vec<String> = match self.kind {
            // -f: stay our child so that we can stop it and it dies with us;
            // no port forwarding of its own (`-t none ...`: burrow's
            // forwarder publishes ports); --no-map-gw: the gateway address
            // must not reach the host's loopback.
            Kind::Pasta => [
                "--config-net",
                "--quiet",
                "--foreground",
                "--no-map-gw",
                "-t",
                "none",
                "-u",
                "none",
                "-T",
                "none",
                "-U",
                "none",
                "--dns-forward",
                Kind::Pasta.dns_address(),
            ]
            .map(String::from)
            .to_vec(),
            // -r 3: writes "1" on descriptor 3 once tap0 is configured.
            // It parses every packet the container sends, so it runs as
            // podman runs it: --enable-sandbox (its own mount namespace,
            // pivot_root'ed into a tmpfs holding only the host's /etc and
            // /run) and --enable-seccomp (a syscall filter), slirp4netns(1).
            Kind::Slirp4netns => [
                "--configure",
                "--mtu=65520",
                "--disable-host-loopback",
                "--enable-sandbox",
                "--enable-seccomp",
                "-r",
                "3",
            ]
            .map(String::from)
            .to_vec(),
        };
        // Started by root, pasta changes to nobody, who may not enter the
        // namespaces of root's container: it stays root instead (pasta(1),
        // --runas).
        if self.kind == Kind::Pasta && nix::unistd::geteuid().is_root() {
            a.extend(["--runas".to_string(), "0".to_string()]);
        }
        a.push(pid1.to_string());
        if self.kind == Kind::Slirp4netns {
            a.push("tap0".into());
        }
        a
    }

    /// Start the helper for the namespace of `pid1` and wait until it has
    /// configured it. Its messages go to `log`.
    pub fn start(&self, pid1: i32, log: &Path) -> Result<Running, NetworkError> {
        let fail = |detail: HelperFailure| NetworkError::Helper {
            kind: self.kind.name(),
            detail,
        };
        let log_file = File::create(log).map_err(|source| {
            fail(HelperFailure::Log {
                path: log.to_path_buf(),
                source,
            })
        })?;
        let null = File::options()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|e| fail(HelperFailure::Null(e)))?;
        let (ready_r, ready_w) = process::pipe().map_err(|e| fail(HelperFailure::Pipe(e)))?;
        let args = self.args(pid1);
        let parent = nix::unistd::getpid();
        let child = process::fork_child(|| {
            // Never outlive the supervisor (prctl(2) PR_SET_PDEATHSIG; it
            // survives execve of a program without set-user-id bits).
            let _ = process::set_parent_death_signal(Signal::SIGKILL);
            if nix::unistd::getppid() != parent {
                return 1;
            }
            for (fd, target) in [
                (null.as_raw_fd(), 0),
                (null.as_raw_fd(), 1),
                (log_file.as_raw_fd(), 2),
                (ready_w.as_raw_fd(), 3),
            ] {
                if process::dup_onto(fd, target).is_err() {
                    return 1;
                }
            }
            process::close_fds_except(&[3]);
            process::reset_signals();
            use std::os::unix::process::CommandExt;
            let _ = std::process::Command::new(&self.path).args(&args).exec();
            127
        })
        .map_err(|e| fail(HelperFailure::Fork(e)))?;
        drop(ready_w);
        let running = Running {
            pid: child,
            kind: self.kind,
        };
        let ready = match self.kind {
            Kind::Slirp4netns => wait_ready_fd(&ready_r),
            Kind::Pasta => wait_default_route(child, pid1),
        };
        match ready {
            Ok(()) => Ok(running),
            Err(why) => {
                running.stop();
                let mut text = String::new();
                let _ = File::open(log).and_then(|mut f| f.read_to_string(&mut text));
                let tail: Vec<&str> = text
                    .lines()
                    .filter(|l| !l.starts_with("Failed to send") && !l.trim().is_empty())
                    .collect();
                let tail = tail[tail.len().saturating_sub(3)..].join("; ");
                Err(fail(if tail.is_empty() {
                    why
                } else {
                    HelperFailure::Logged {
                        why: Box::new(why),
                        tail,
                    }
                }))
            }
        }
    }
}

/// Why a network helper did not start or configure the namespace.
#[derive(Debug, thiserror::Error)]
pub enum HelperFailure {
    #[error("creating {path:?}: {source}")]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("opening /dev/null: {0}")]
    Null(#[source] std::io::Error),
    #[error("pipe: {0}")]
    Pipe(#[source] nix::Error),
    #[error("fork: {0}")]
    Fork(#[source] ForkError),
    #[error("not ready after 10 seconds")]
    Timeout,
    #[error("waiting for it: {0}")]
    Poll(#[source] nix::Error),
    #[error("exited before configuring the namespace")]
    Exited,
    #[error("exited ({0}) before configuring the namespace")]
    ExitedWith(i32),
    #[error("ended before configuring the namespace")]
    Ended,
    /// The failure and the last lines the helper logged.
    #[error("{why}: {tail}")]
    Logged {
        why: Box<HelperFailure>,
        tail: String,
    },
}

/// slirp4netns writes "1" on its ready descriptor (`-r`) once configured.
fn wait_ready_fd(fd: &std::os::fd::OwnedFd) -> Result<(), HelperFailure> {
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    let ms = READY_TIMEOUT.as_millis() as i32;
    match poll(
        &mut fds,
        PollTimeout::try_from(ms).unwrap_or(PollTimeout::NONE),
    ) {
        Ok(0) => return Err(HelperFailure::Timeout),
        Err(e) => return Err(HelperFailure::Poll(e)),
        Ok(_) => {}
    }
    let mut b = [0u8; 1];
    match nix::unistd::read(fd.as_fd(), &mut b) {
        Ok(1) if b[0] == b'1' => Ok(()),
        _ => Err(HelperFailure::Exited),
    }
}

/// pasta in the foreground has no ready signal: it has configured the
/// namespace once the default route it adds shows there.
fn wait_default_route(helper: Pid, pid1: i32) -> Result<(), HelperFailure> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if net::has_default_route(Path::new("/proc"), pid1) {
            return Ok(());
        }
        match waitpid(helper, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(WaitStatus::Exited(_, code)) => return Err(HelperFailure::ExitedWith(code)),
            _ => return Err(HelperFailure::Ended),
        }
        if Instant::now() >= deadline {
            return Err(HelperFailure::Timeout);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

impl Running {
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// End the helper (the container is gone) and reap it.
    /// The helper's process (our child).
    pub fn pid(&self) -> Pid {
        self.pid
    }

    pub fn stop(self) {
        let _ = kill(self.pid, Signal::SIGKILL);
        let _ = process::wait_exit_code(self.pid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_prefers_pasta_and_named_helpers_must_exist() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().to_str().unwrap().to_string();
        assert_eq!(find_installed(&path), None);
        let e = find(Mode::Via(Kind::Pasta), &path).unwrap_err();
        assert!(e.to_string().contains("apt-get install passt"), "{e}");
        let make = |name: &str| {
            use std::os::unix::fs::PermissionsExt;
            let p = d.path().join(name);
            std::fs::write(&p, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        make("slirp4netns");
        assert_eq!(find_installed(&path).unwrap().kind, Kind::Slirp4netns);
        make("pasta");
        assert_eq!(find_installed(&path).unwrap().kind, Kind::Pasta);
        assert_eq!(find(Mode::None, &path).unwrap(), None);
        let h = Helper {
            kind: Kind::Slirp4netns,
            path: "/x".into(),
        };
        assert_eq!(h.args(42)[7..], ["42", "tap0"]);
        assert!(h.args(42).contains(&"--enable-sandbox".to_string()));
        assert!(h.args(42).contains(&"--enable-seccomp".to_string()));
    }
}
