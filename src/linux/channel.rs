//! The one wire format between burrow's forked processes: typed messages,
//! one JSON line each, over close-on-exec pipes, with a named method for
//! every message a process sends or waits for.
//!
//! Every fork site uses it: the id-map handshake of a new user namespace,
//! the sandbox's inner process and PID 1 (rootfs ready, pid, failed,
//! exited), `exec`'s joiner, a monitor telling its launcher how the start
//! went, and `cp`'s workers. A failure always travels as a [`Failure`]: the
//! step that failed, the path it failed on and the errno, so the caller can
//! say "mounting /dev/pts: Operation not permitted" rather than a bare
//! "Permission denied".
//!
//! Pipes, not socket pairs: each direction has exactly one writer, and EOF
//! is itself a message (the pipe of a process that exec'd successfully is
//! closed by the kernel, pipe(7) with O_CLOEXEC). Lines stay far below
//! PIPE_BUF, so a write is never interleaved with another.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What a process can tell another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// A child has unshared its user namespace and asks for its id maps.
    IdMapsRequested,
    /// The parent has written them: the child may go on.
    IdMapsWritten,
    /// The container's root filesystem is mounted: overlayfs (`fuse`: served
    /// by fuse-overlayfs), or (neither) a private full copy.
    RootfsReady { overlay: bool, fuse: bool },
    /// The host pid of the process that now runs (a container's PID 1, an
    /// exec'd process).
    Pid(i32),
    /// A monitor's attach socket accepts clients.
    Listening,
    /// The caller has done what had to happen before PID 1 sets itself up
    /// (a network helper configured its namespace): go on.
    Proceed,
    /// A step failed; nothing more follows.
    Failed(Failure),
    /// The supervised process ended with this shell-style exit code.
    Exited(i32),
    /// A worker finished its job (a user-namespace helper, a `cp` worker).
    Done,
}

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
}

/// Why a message did not arrive.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The sender is gone (exited, exec'd or killed) without sending it.
    #[error("the other process closed the channel")]
    Closed,
    #[error("reading the channel: {0}")]
    Io(#[from] io::Error),
    #[error("garbled message {0:?}")]
    Garbled(String),
    #[error("expected {expected}, got {got:?}")]
    Unexpected {
        expected: &'static str,
        got: Message,
    },
    /// The other process sent why it failed instead.
    #[error(transparent)]
    Failed(Failure),
}

/// A new channel: the sending and the receiving end of one close-on-exec
/// pipe.
pub fn channel() -> io::Result<(Sender, Receiver)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    Ok((Sender::from(w), Receiver::from(r)))
}

/// The writing end.
#[derive(Debug)]
pub struct Sender {
    file: File,
}

impl From<OwnedFd> for Sender {
    fn from(fd: OwnedFd) -> Self {
        Sender {
            file: File::from(fd),
        }
    }
}

impl AsRawFd for Sender {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

impl Sender {
    /// Send one message. An error means the receiver is gone, and there is
    /// nobody left to tell: callers that cannot act on it ignore it.
    pub fn send(&mut self, m: &Message) -> io::Result<()> {
        let mut line = serde_json::to_string(m).map_err(io::Error::other)?;
        line.push('\n');
        self.file.write_all(line.as_bytes())
    }

    pub fn request_id_maps(&mut self) -> io::Result<()> {
        self.send(&Message::IdMapsRequested)
    }

    pub fn id_maps_written(&mut self) -> io::Result<()> {
        self.send(&Message::IdMapsWritten)
    }

    pub fn rootfs_ready(&mut self, overlay: bool, fuse: bool) {
        let _ = self.send(&Message::RootfsReady { overlay, fuse });
    }

    pub fn pid(&mut self, pid: i32) {
        let _ = self.send(&Message::Pid(pid));
    }

    pub fn listening(&mut self) {
        let _ = self.send(&Message::Listening);
    }

    pub fn proceed(&mut self) -> io::Result<()> {
        self.send(&Message::Proceed)
    }

    pub fn failed(&mut self, f: Failure) {
        let _ = self.send(&Message::Failed(f));
    }

    pub fn exited(&mut self, code: i32) {
        let _ = self.send(&Message::Exited(code));
    }

    pub fn done(&mut self) {
        let _ = self.send(&Message::Done);
    }
}

/// The reading end.
#[derive(Debug)]
pub struct Receiver {
    reader: BufReader<File>,
}

impl From<OwnedFd> for Receiver {
    fn from(fd: OwnedFd) -> Self {
        Receiver {
            reader: BufReader::new(File::from(fd)),
        }
    }
}

impl AsRawFd for Receiver {
    fn as_raw_fd(&self) -> RawFd {
        self.reader.get_ref().as_raw_fd()
    }
}

impl AsFd for Receiver {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.reader.get_ref().as_fd()
    }
}

impl Receiver {
    /// The next message; blocks until one arrives or the sender is gone.
    pub fn recv(&mut self) -> Result<Message, ChannelError> {
        let mut line = String::new();
        loop {
            match self.reader.read_line(&mut line) {
                Ok(0) => return Err(ChannelError::Closed),
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        serde_json::from_str(line.trim_end()).map_err(|_| ChannelError::Garbled(line))
    }

    /// Messages already read from the pipe and not yet returned: poll(2)
    /// does not see them, so a poll loop must ask first.
    pub fn has_buffered(&self) -> bool {
        !self.reader.buffer().is_empty()
    }

    /// The next message, which must be `want`; a `Failed` becomes its
    /// failure.
    fn expect(&mut self, want: Message, name: &'static str) -> Result<(), ChannelError> {
        match self.recv()? {
            m if m == want => Ok(()),
            Message::Failed(f) => Err(ChannelError::Failed(f)),
            got => Err(ChannelError::Unexpected {
                expected: name,
                got,
            }),
        }
    }

    pub fn wait_id_map_request(&mut self) -> Result<(), ChannelError> {
        self.expect(Message::IdMapsRequested, "an id map request")
    }

    pub fn wait_id_maps_written(&mut self) -> Result<(), ChannelError> {
        self.expect(Message::IdMapsWritten, "id maps written")
    }

    pub fn wait_proceed(&mut self) -> Result<(), ChannelError> {
        self.expect(Message::Proceed, "proceed")
    }

    /// Wait until every holder of the writing end has closed it (or died):
    /// a word that needs no write, so none can raise SIGPIPE in a sender
    /// whose reader is gone. Messages meanwhile are passed over.
    pub fn wait_closed(&mut self) -> Result<(), ChannelError> {
        loop {
            match self.recv() {
                Err(ChannelError::Closed) => return Ok(()),
                Err(ChannelError::Garbled(_)) | Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
    }

    pub fn wait_done(&mut self) -> Result<(), ChannelError> {
        self.expect(Message::Done, "done")
    }

    /// Wait for a pid, passing every message before it to `early` (rootfs
    /// ready, listening).
    pub fn wait_pid(&mut self, mut early: impl FnMut(Message)) -> Result<i32, ChannelError> {
        loop {
            match self.recv()? {
                Message::Pid(p) => return Ok(p),
                Message::Failed(f) => return Err(ChannelError::Failed(f)),
                m => early(m),
            }
        }
    }

    /// Wait for an exit code; other messages are unexpected and skipped.
    pub fn wait_exit(&mut self) -> Result<i32, ChannelError> {
        loop {
            match self.recv()? {
                Message::Exited(code) => return Ok(code),
                Message::Failed(f) => return Err(ChannelError::Failed(f)),
                m => tracing::warn!("unexpected message while waiting for an exit: {m:?}"),
            }
        }
    }

    /// The exec-pipe rule: EOF without a message means the other process
    /// exec'd (its close-on-exec end went away); a `Failed` says why not.
    pub fn wait_exec(&mut self) -> Result<(), ChannelError> {
        match self.recv() {
            Err(ChannelError::Closed) => Ok(()),
            Ok(Message::Failed(f)) => Err(ChannelError::Failed(f)),
            Ok(got) => Err(ChannelError::Unexpected {
                expected: "exec or a failure",
                got,
            }),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_closed_returns_once_every_copy_of_the_sender_is_closed() {
        let (mut tx, mut rx) = channel().unwrap();
        let copy = tx.file.try_clone().unwrap();
        tx.proceed().unwrap();
        drop(tx);
        let waiter = std::thread::spawn(move || rx.wait_closed());
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!waiter.is_finished(), "a copy still holds the pipe open");
        drop(copy);
        waiter.join().unwrap().unwrap();
    }

    #[test]
    fn messages_arrive_in_order_and_eof_means_exec() {
        let (mut tx, mut rx) = channel().unwrap();
        tx.request_id_maps().unwrap();
        tx.rootfs_ready(false, false);
        tx.pid(42);
        tx.exited(3);
        drop(tx);
        rx.wait_id_map_request().unwrap();
        let mut early = Vec::new();
        assert_eq!(rx.wait_pid(|m| early.push(m)).unwrap(), 42);
        assert_eq!(
            early,
            [Message::RootfsReady {
                overlay: false,
                fuse: false
            }]
        );
        assert!(rx.has_buffered());
        assert_eq!(rx.wait_exit().unwrap(), 3);
        assert!(rx.wait_exec().is_ok());
    }

    #[test]
    fn failures_name_step_path_and_errno() {
        let (mut tx, mut rx) = channel().unwrap();
        let f = Failure::sys(Step::MountFs, nix::Error::EPERM, 125).at("/dev/pts");
        tx.failed(f.clone());
        drop(tx);
        match rx.wait_pid(|_| {}) {
            Err(ChannelError::Failed(got)) => {
                assert_eq!(got, f);
                assert_eq!(
                    got.to_string(),
                    "mounting /dev/pts: Operation not permitted"
                );
            }
            other => panic!("{other:?}"),
        }
        let exec = Failure::new(Step::Exec, "\"x\": executable file not found in $PATH", 127);
        assert_eq!(
            exec.to_string(),
            "exec: \"x\": executable file not found in $PATH"
        );
    }
}
