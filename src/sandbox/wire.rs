//! What the sandbox's processes tell their callers: the messages of the
//! start protocol (the inner process and PID 1), of the exec protocol (the
//! joiner), of the setup channel every process that enters a container
//! reports on until it execs, and why a word a caller waited for did not
//! come.

use std::fmt::Debug;

use serde::{Deserialize, Serialize};

use super::{Failure, Step};
use crate::linux::channel::{ChannelError, Receiver};
use crate::linux::newuser::AsksForMaps;

/// The inner process → its caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StartReport {
    /// The user namespace is unshared: map it.
    IdMapsRequested,
    /// The container's root filesystem is mounted: overlayfs (`fuse`: served
    /// by fuse-overlayfs), or (neither) a private full copy.
    RootfsReady { overlay: bool, fuse: bool },
    /// The host pid of the container's PID 1.
    Pid(i32),
    /// A step failed; nothing more follows.
    Failed(Failure),
    /// PID 1 ended with this shell-style exit code.
    Exited(i32),
}

impl AsksForMaps for StartReport {
    fn maps_requested() -> Self {
        StartReport::IdMapsRequested
    }
    fn is_maps_request(&self) -> bool {
        matches!(self, StartReport::IdMapsRequested)
    }
}

/// `exec`'s joiner → its caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExecReport {
    /// A resident joiner is inside the container and takes requests.
    Ready,
    /// The host pid of the process it started.
    Pid(i32),
    /// A step failed; nothing more follows (for this request).
    Failed(Failure),
    /// The process ended with this shell-style exit code.
    Exited(i32),
}

/// A process that enters a container (PID 1, an exec'd process, a bundle's
/// init) → the caller, until it execs: the channel is close-on-exec, so its
/// EOF alone says the exec happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SetupReport {
    /// A bundle's init is set up and waits for the engine's `start`.
    Ready,
    /// Why it could not exec.
    Failed(Failure),
}

/// The caller → PID 1: what had to happen before PID 1 sets itself up (a
/// network helper configured its namespace) is done: go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proceed;

/// A report type that ends with an exit code.
pub trait ExitReport: serde::de::DeserializeOwned + Debug {
    fn exit_code(&self) -> Option<i32>;
}

impl ExitReport for StartReport {
    fn exit_code(&self) -> Option<i32> {
        match self {
            StartReport::Exited(code) => Some(*code),
            _ => None,
        }
    }
}

impl ExitReport for ExecReport {
    fn exit_code(&self) -> Option<i32> {
        match self {
            ExecReport::Exited(code) => Some(*code),
            _ => None,
        }
    }
}

/// Why the word a caller waited for did not come.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// The other process sent why it failed instead.
    #[error(transparent)]
    Failed(Failure),
    #[error("expected {expected}, got {got}")]
    Unexpected { expected: &'static str, got: String },
}

impl ReportError {
    /// `got` came instead of `expected`.
    pub fn unexpected(expected: &'static str, got: impl Debug) -> Self {
        ReportError::Unexpected {
            expected,
            got: format!("{got:?}"),
        }
    }

    /// As a failure of `step`. `Closed` means the other process ended
    /// without saying why; `code` gives the exit code it ended with.
    pub fn into_failure(self, step: Step, code: impl FnOnce() -> i32) -> Failure {
        match self {
            ReportError::Failed(f) => f,
            ReportError::Channel(ChannelError::Closed) => Failure::new(
                step,
                format!("ended early (exit code {}) without saying why", code()),
                crate::exit::BURROW,
            ),
            e => Failure::new(step, e.to_string(), crate::exit::BURROW),
        }
    }
}

/// The reports of a process between a caller and the container's process
/// (`run`'s inner process, `exec`'s joiner, a bundle's setup process):
/// each says the container process's pid, or why there is none.
pub trait TreeReport: serde::Serialize + serde::de::DeserializeOwned + Debug {
    fn pid(pid: i32) -> Self;
    fn failed(f: Failure) -> Self;
    fn as_pid(&self) -> Option<i32>;
    /// The failure this report says, or the report itself.
    fn into_failure(self) -> Result<Failure, Self>;
}

/// [`TreeReport`] for a report enum with `Pid(i32)` and `Failed(Failure)`.
macro_rules! tree_report {
    ($t:ident) => {
        impl $crate::sandbox::wire::TreeReport for $t {
            fn pid(pid: i32) -> Self {
                $t::Pid(pid)
            }
            fn failed(f: $crate::sandbox::Failure) -> Self {
                $t::Failed(f)
            }
            fn as_pid(&self) -> Option<i32> {
                match self {
                    $t::Pid(p) => Some(*p),
                    _ => None,
                }
            }
            fn into_failure(self) -> ::std::result::Result<$crate::sandbox::Failure, Self> {
                match self {
                    $t::Failed(f) => Ok(f),
                    m => Err(m),
                }
            }
        }
    };
}
pub(crate) use tree_report;

tree_report!(StartReport);
tree_report!(ExecReport);

/// `m`, which is not the report the caller waited for (`expected`), as the
/// error it is.
pub fn instead<U: TreeReport>(m: U, expected: &'static str) -> ReportError {
    match m.into_failure() {
        Ok(f) => ReportError::Failed(f),
        Err(m) => ReportError::unexpected(expected, m),
    }
}

/// Wait for the container process's pid, passing every report before it
/// to `early`; a failure ends the wait.
pub fn wait_pid<U: TreeReport>(
    rx: &mut Receiver<U>,
    mut early: impl FnMut(U),
) -> Result<i32, ReportError> {
    loop {
        let m = rx.recv()?;
        if let Some(p) = m.as_pid() {
            return Ok(p);
        }
        match m.into_failure() {
            Ok(f) => return Err(ReportError::Failed(f)),
            Err(m) => early(m),
        }
    }
}

/// Wait until a resident joiner is ready.
pub(super) fn wait_ready(rx: &mut Receiver<ExecReport>) -> Result<(), ReportError> {
    match rx.recv()? {
        ExecReport::Ready => Ok(()),
        m => Err(instead(m, "ready")),
    }
}

/// The exec rule: `Ok` once the process exec'd (its setup channel closed
/// without a word), else why it did not.
pub fn wait_exec(rx: &mut Receiver<SetupReport>) -> Result<(), ReportError> {
    match rx.wait_exec()? {
        None => Ok(()),
        Some(SetupReport::Failed(f)) => Err(ReportError::Failed(f)),
        Some(got) => Err(ReportError::unexpected("exec or a failure", got)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux::channel::channel;

    #[test]
    fn reports_before_the_pid_go_to_early_and_a_failure_ends_the_wait() {
        let (mut tx, mut rx) = channel().unwrap();
        tx.tell(StartReport::RootfsReady {
            overlay: false,
            fuse: false,
        });
        tx.tell(StartReport::Pid(42));
        tx.tell(StartReport::Exited(3));
        let mut early = Vec::new();
        assert_eq!(wait_pid(&mut rx, |m| early.push(m)).unwrap(), 42);
        assert_eq!(
            early,
            [StartReport::RootfsReady {
                overlay: false,
                fuse: false
            }]
        );
        assert_eq!(rx.recv().unwrap().exit_code(), Some(3));
        let f = Failure::sys(Step::MountFs, nix::Error::EPERM, 125).at("/dev/pts");
        tx.tell(StartReport::Failed(f.clone()));
        drop(tx);
        match wait_pid(&mut rx, |_: StartReport| {}) {
            Err(ReportError::Failed(got)) => assert_eq!(got, f),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn eof_on_the_setup_channel_means_exec() {
        let (tx, mut rx) = channel::<SetupReport>().unwrap();
        drop(tx);
        assert!(wait_exec(&mut rx).is_ok());
        let (mut tx, mut rx) = channel().unwrap();
        tx.tell(SetupReport::Failed(Failure::new(Step::Exec, "no", 127)));
        assert!(matches!(wait_exec(&mut rx), Err(ReportError::Failed(_))));
    }
}
