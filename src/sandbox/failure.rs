//! Why one of the sandbox's forked processes could not do its job: the
//! step, the path and the errno, with the exit code Docker would use. The
//! start, exec, monitor, runtime, copy and network protocols carry it as
//! their failure, so the caller can say "mounting /dev/pts: Operation not
//! permitted" rather than a bare "Permission denied".

use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::linux::newuser::{self, AwaitError};

/// Where a forked process can fail. Shown at the front of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    Fork,
    Pipe,
    Unshare,
    IdMaps,
    Cgroup,
    Overlay,
    CopyRootfs,
    MakeDir,
    MakeFile,
    MountFs,
    Bind,
    RemountReadonly,
    Symlink,
    ResolveTarget,
    PivotRoot,
    Hostname,
    Loopback,
    Network,
    Terminal,
    Stdio,
    User,
    Workdir,
    Seccomp,
    CapBounding,
    CapSets,
    Signals,
    Exec,
    OpenNamespaces,
    JoinNamespaces,
    /// The container's PID 1 has exited: nothing can join it any more.
    ContainerGone,
    Monitor,
    Copy,
    /// The job a user-namespace helper was given.
    Helper,
    NoNewPrivs,
    MaskPath,
    /// Waiting for an engine's `start` (an OCI runtime's exec FIFO).
    StartGate,
    Sysctl,
    Rlimit,
    /// Making a process that enters a container non-dumpable.
    Dumpable,
}

impl Step {
    fn text(self) -> &'static str {
        match self {
            Step::Fork => "forking",
            Step::Pipe => "creating a pipe",
            Step::Unshare => "creating namespaces",
            Step::IdMaps => "writing id maps",
            Step::Cgroup => "joining the container's cgroup",
            Step::Overlay => "mounting the overlay",
            Step::CopyRootfs => "copying the image into the container",
            Step::MakeDir => "creating directory",
            Step::MakeFile => "creating file",
            Step::MountFs => "mounting",
            Step::Bind => "binding",
            Step::RemountReadonly => "making read-only",
            Step::Symlink => "creating symlink",
            Step::ResolveTarget => "resolving mount target",
            Step::PivotRoot => "pivoting into",
            Step::Hostname => "setting the hostname",
            Step::Loopback => "bringing up loopback",
            Step::Network => "setting up the network",
            Step::Terminal => "setting up the terminal",
            Step::Stdio => "setting up stdio",
            Step::User => "switching user",
            Step::Workdir => "entering working directory",
            Step::Seccomp => "installing the seccomp filter",
            Step::CapBounding => "dropping capabilities from the bounding set",
            Step::CapSets => "setting capabilities",
            Step::Signals => "setting up signals",
            Step::Exec => "exec",
            Step::OpenNamespaces => "opening the container's namespaces",
            Step::JoinNamespaces => "joining the container's namespaces",
            Step::ContainerGone => "the container is not running",
            Step::Monitor => "starting the monitor",
            Step::Copy => "copying",
            Step::Helper => "user namespace helper",
            Step::NoNewPrivs => "setting no_new_privs",
            Step::MaskPath => "masking",
            Step::StartGate => "waiting for start",
            Step::Sysctl => "setting sysctl",
            Step::Rlimit => "setting rlimit",
            Step::Dumpable => "making the process non-dumpable",
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text())
    }
}

/// Why a forked process could not do its job:
/// `STEP [PATH][: DETAIL][: ERRNO]`, with the exit code Docker would use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub struct Failure {
    pub step: Step,
    /// The path the step acted on (a mount target, a working directory).
    pub path: Option<PathBuf>,
    /// What the errno alone does not say (Docker's wording for exec errors,
    /// the fix for a disabled user namespace).
    pub detail: String,
    pub errno: Option<i32>,
    pub code: i32,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.step)?;
        if let Some(p) = &self.path {
            write!(f, " {}", p.display())?;
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        if let Some(e) = self.errno {
            write!(f, ": {}", nix::Error::from_raw(e).desc())?;
        }
        Ok(())
    }
}

impl Failure {
    /// A failure with an explanation and no errno.
    pub fn new(step: Step, detail: impl Into<String>, code: i32) -> Self {
        Failure {
            step,
            path: None,
            detail: detail.into(),
            errno: None,
            code,
        }
    }

    /// A failed system call.
    pub fn sys(step: Step, errno: nix::Error, code: i32) -> Self {
        Failure {
            step,
            path: None,
            detail: String::new(),
            errno: Some(errno as i32),
            code,
        }
    }

    /// A failed I/O call; its errno is kept when it has one.
    pub fn io(step: Step, e: &io::Error, code: i32) -> Self {
        match e.raw_os_error() {
            Some(n) => Failure::sys(step, nix::Error::from_raw(n), code),
            None => Failure::new(step, e.to_string(), code),
        }
    }

    /// The same failure, naming the path it happened on.
    pub fn at(mut self, path: impl Into<PathBuf>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// unshare(2) refused `errno`; when that means user namespaces are
    /// off, the failure names the fix.
    pub fn unshare(errno: nix::Error, code: i32) -> Self {
        let mut f = Failure::sys(Step::Unshare, errno, code);
        if let Some(hint) = newuser::unshare_hint(errno) {
            f.detail = hint;
        }
        f
    }

    /// The child's half of the id-map handshake failed.
    pub fn id_maps(e: AwaitError, code: i32) -> Self {
        match e {
            AwaitError::Ask(e) => Failure::io(Step::IdMaps, &e, code),
            e @ AwaitError::NoAnswer => Failure::new(Step::IdMaps, e.to_string(), code),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_name_step_path_and_errno() {
        let f = Failure::sys(Step::MountFs, nix::Error::EPERM, 125).at("/dev/pts");
        assert_eq!(f.to_string(), "mounting /dev/pts: Operation not permitted");
        let exec = Failure::new(Step::Exec, "\"x\": executable file not found in $PATH", 127);
        assert_eq!(
            exec.to_string(),
            "exec: \"x\": executable file not found in $PATH"
        );
    }
}
