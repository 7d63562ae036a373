//! The fork tree every container process is started through, for `run`'s
//! PID 1, an `exec`'d process and an OCI bundle's init alike:
//!
//! ```text
//! caller            makes the channels, forks the middle, writes its id
//!  │                maps, reads the container process's pid, then the
//!  │                setup channel (EOF: exec'd; or Ready; or a failure)
//!  └─ middle        `run`'s inner process, `exec`'s joiner, a bundle's
//!      │            setup process: unshares (or joins) the namespaces,
//!      │            waits for its maps, forks the container's process
//!      └─ process   enters the container as its `ContainerType` says
//!                   (`sandbox::process`) and execs
//! ```
//!
//! The three kinds differ in data: what the middle does between its fork
//! and the container process's (its own function), which descriptors it
//! keeps, whether the caller maps a new user namespace, and the
//! `ContainerType` the process enters as. The channels, the unshare that
//! makes the user namespace (with the fix to name when it is refused), the
//! id-map handshake, loopback up in a new network namespace, the fork of
//! the process (its steps planned here, see `sandbox::process`) and the
//! reports that hand it off are all here, once.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::process::{enter_and_exec, plan, ContainerType, Process};
use super::wire::{self, Proceed, ReportError, SetupReport, TreeReport};
use super::{Failure, Step};
use crate::exit;
use crate::linux::channel::{channel, Receiver, Sender};
use crate::linux::newuser::{self, AsksForMaps, GrantError, MapsWritten};
use crate::linux::process::{self, ForkError};
use crate::linux::vfork;

/// Which of the caller's descriptors the middle keeps (besides its ends
/// of the tree's channels; the caller's ends it never keeps).
#[derive(Debug, Clone, Copy)]
pub enum Keep<'a> {
    /// Every one but these (the caller's own ends of other channels): an
    /// exec'd process's stdio and pipes pass through as they are.
    AllBut(&'a [RawFd]),
    /// Only these: none of the caller's other descriptors (a monitor's
    /// pipe ends, sockets, its log) may be held open by the middle or
    /// reach the container.
    Only(&'a [RawFd]),
}

/// Why the tree could not be started.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("creating a channel: {0}")]
    Channel(#[source] io::Error),
    #[error(transparent)]
    Fork(#[from] ForkError),
}

impl TreeError {
    /// As a failure with exit code `code`.
    pub fn into_failure(self, code: i32) -> Failure {
        match self {
            TreeError::Channel(e) => Failure::io(Step::Pipe, &e, code),
            TreeError::Fork(e) => Failure::sys(Step::Fork, e.errno(), code),
        }
    }
}

/// The caller's half of a started tree.
#[derive(Debug)]
pub struct Tree<U> {
    /// The middle process (our child).
    pub middle: Pid,
    /// The middle's reports.
    pub reports: Receiver<U>,
    /// Our answer to the id-map request (when the tree has the handshake);
    /// kept open afterwards, its EOF is one more word the middle may wait
    /// for.
    pub maps: Option<Sender<MapsWritten>>,
    /// The container process's setup channel: a failure, a bundle's
    /// `Ready`, or EOF once it exec'd.
    pub setup: Receiver<SetupReport>,
    /// The exit code failures of the tree carry.
    code: i32,
}

/// The middle's half: its ends of the channels.
#[derive(Debug)]
pub struct Middle<U> {
    pub up: Sender<U>,
    maps: Option<Receiver<MapsWritten>>,
    setup: Option<Sender<SetupReport>>,
    code: i32,
}

/// Make the channels and fork the middle, which keeps what `keep` says and
/// runs `middle`; its return value is the middle's exit code. `maps`: the
/// middle makes a user namespace we map (see [`Tree::grant_maps`]).
/// Failures of the tree carry the exit code `code`.
pub fn fork_tree<U, F>(keep: Keep, maps: bool, code: i32, middle: F) -> Result<Tree<U>, TreeError>
where
    U: TreeReport,
    F: FnOnce(Middle<U>) -> i32,
{
    let (up_tx, up_rx) = channel().map_err(TreeError::Channel)?;
    let (down_tx, down_rx) = match maps {
        true => {
            let (tx, rx) = channel().map_err(TreeError::Channel)?;
            (Some(tx), Some(rx))
        }
        false => (None, None),
    };
    let (setup_tx, setup_rx) = channel().map_err(TreeError::Channel)?;
    let ours: Vec<RawFd> = [up_rx.as_raw_fd(), setup_rx.as_raw_fd()]
        .into_iter()
        .chain(down_tx.as_ref().map(|t| t.as_raw_fd()))
        .collect();
    let theirs: Vec<RawFd> = [up_tx.as_raw_fd(), setup_tx.as_raw_fd()]
        .into_iter()
        .chain(down_rx.as_ref().map(|r| r.as_raw_fd()))
        .collect();
    let pid = process::fork_child(|| {
        match keep {
            Keep::AllBut(others) => {
                for &fd in ours.iter().chain(others) {
                    let _ = nix::unistd::close(fd);
                }
            }
            Keep::Only(kept) => {
                let kept: Vec<RawFd> = theirs.iter().chain(kept).copied().collect();
                process::close_fds_except(&kept);
            }
        }
        middle(Middle {
            up: up_tx,
            maps: down_rx,
            setup: Some(setup_tx),
            code,
        })
    })?;
    Ok(Tree {
        middle: pid,
        reports: up_rx,
        maps: down_tx,
        setup: setup_rx,
        code,
    })
}

/// Why the caller's half of the id-map handshake did not complete.
#[derive(Debug)]
pub enum GrantFailure<E> {
    /// The middle failed (or died) before it asked: its report, if any.
    Early(ReportError),
    /// Writing the maps failed; the middle has been killed and reaped.
    Write(E),
}

impl<U: TreeReport> Tree<U> {
    /// The caller's half of the id-map handshake: wait for the middle's
    /// request, do `write` (the maps, and whatever must be in place before
    /// the middle goes on), and say so. A middle gone after its maps were
    /// written is no failure here: its own report says why.
    pub fn grant_maps<E>(
        &mut self,
        write: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), GrantFailure<E>>
    where
        U: AsksForMaps,
    {
        let Some(down) = self.maps.as_mut() else {
            return Ok(());
        };
        match newuser::grant_maps(&mut self.reports, down, write) {
            Ok(()) | Err(GrantError::Tell(_)) => Ok(()),
            Err(GrantError::Request(e)) => Err(GrantFailure::Early(e.into())),
            Err(GrantError::Instead(m)) => {
                Err(GrantFailure::Early(wire::instead(m, "an id map request")))
            }
            Err(GrantError::Write(e)) => {
                self.kill();
                Err(GrantFailure::Write(e))
            }
        }
    }

    /// The container process's host pid, passing every report before it to
    /// `early`.
    pub fn wait_pid(&mut self, early: impl FnMut(U)) -> Result<Pid, ReportError> {
        wire::wait_pid(&mut self.reports, early).map(Pid::from_raw)
    }

    /// The middle's exit code once it has ended.
    pub fn reap(&self) -> i32 {
        process::wait_exit_code(self.middle).unwrap_or(self.code)
    }

    /// `e` (the middle failed or died before the process ran) as a failure
    /// of `step`, once the middle has ended.
    pub fn ended_early(&self, e: ReportError, step: Step) -> Failure {
        let code = self.reap();
        e.into_failure(step, || code)
    }

    /// Kill the middle and reap it.
    pub fn kill(&self) {
        let _ = nix::sys::signal::kill(self.middle, Signal::SIGKILL);
        let _ = process::wait_exit_code(self.middle);
    }
}

impl<U: TreeReport> Middle<U> {
    /// Say why we fail; the exit code to end with.
    pub fn fail(&mut self, f: Failure) -> i32 {
        let code = f.code;
        self.up.tell(U::failed(f));
        code
    }

    /// unshare(2) `flags` (CLONE_NEWUSER among them, unless a user
    /// namespace was joined): a refusal names the fix when it means user
    /// namespaces are off. Then, with the handshake, ask the caller for our
    /// id maps and wait until they are written; then what a new network
    /// namespace needs (see [`Middle::unshare`]).
    pub fn unshare_mapped(&mut self, flags: CloneFlags) -> Result<(), Failure>
    where
        U: AsksForMaps,
    {
        nix::sched::unshare(flags).map_err(|e| Failure::unshare(e, self.code))?;
        if let Some(down) = self.maps.as_mut() {
            newuser::await_maps(&mut self.up, down).map_err(|e| Failure::id_maps(e, self.code))?;
        }
        self.loopback_if_new(flags)
    }

    /// unshare(2) `flags` in a user namespace already made (or joined)
    /// and mapped. A new network namespace has loopback down: it is
    /// brought up (we hold CAP_NET_ADMIN in the user namespace that owns
    /// it).
    pub fn unshare(&mut self, flags: CloneFlags) -> Result<(), Failure> {
        nix::sched::unshare(flags).map_err(|e| Failure::sys(Step::Unshare, e, self.code))?;
        self.loopback_if_new(flags)
    }

    fn loopback_if_new(&self, flags: CloneFlags) -> Result<(), Failure> {
        if flags.contains(CloneFlags::CLONE_NEWNET) {
            crate::linux::net::loopback_up()
                .map_err(|e| Failure::sys(Step::Loopback, e, self.code))?;
        }
        Ok(())
    }

    /// The caller's answer channel, which stays open after the maps are
    /// written: its EOF says the caller is done (see `spawn`).
    pub fn take_maps_channel(&mut self) -> Option<Receiver<MapsWritten>> {
        self.maps.take()
    }

    /// Fork the container's process (see [`fork_process`]); it keeps no copy
    /// of our report channel, and we none of its setup channel.
    pub fn fork_process(
        &mut self,
        kind: ContainerType,
        p: &Process,
        groups_allowed: bool,
        before: Before,
    ) -> Result<Pid, Failure> {
        let Some(mut setup) = self.setup.take() else {
            return Err(Failure::new(Step::Fork, "forked already", self.code));
        };
        let ours = [self.up.as_raw_fd()];
        let how = How::Copy { code: self.code };
        fork_process(kind, p, groups_allowed, &ours, &mut setup, before, how)
    }

    /// The container process is forked: say its pid.
    pub fn report_pid(&mut self, pid: Pid) {
        self.up.tell(U::pid(pid.as_raw()));
    }
}

/// What the container's process does before it enters the container.
pub enum Before<'a> {
    Nothing,
    /// Wait for the caller's go-ahead (its network helper has configured
    /// our namespace); a gate closed without it means the start failed.
    Gate(Receiver<Proceed>),
    /// Move itself into a cgroup through its `cgroup.procs`.
    JoinCgroup(BorrowedFd<'a>),
}

/// How the container's process is forked.
pub enum How<'a> {
    /// A copy of the forking process; a fork failure carries `code`.
    Copy { code: i32 },
    /// A child that shares the forking process's memory until its exec
    /// (see `linux::vfork`), on `stack`.
    Shared { stack: &'a mut vfork::Stack },
}

/// Fork the container's process, which closes `close` (the forking
/// process's channels), does `before`, enters the container as `kind`
/// says and execs `p`, saying why it could not on `setup`. A process
/// joining a container whose PID 1 has exited finds its pid namespace
/// taking no new members: ENOMEM (pid_namespaces(7)).
pub fn fork_process(
    kind: ContainerType,
    p: &Process,
    groups_allowed: bool,
    close: &[RawFd],
    setup: &mut Sender<SetupReport>,
    mut before: Before,
    how: How,
) -> Result<Pid, Failure> {
    let joining = matches!(kind, ContainerType::Joined { .. });
    // Planned here, so a process that shares our memory until its exec
    // allocates none of it (what it leaves in our heap is never freed).
    let plan = plan(kind, p, groups_allowed);
    let child = || {
        for &fd in close {
            let _ = nix::unistd::close(fd);
        }
        match &mut before {
            Before::Nothing => {}
            // The helpers open our namespaces through /proc/PID/ns, so we
            // stay dumpable while we wait (`enter` ends that): nothing else
            // is in our pid namespace yet to take advantage of it, and the
            // inner process, dumpable too, is in none a container process
            // sees.
            Before::Gate(g) => {
                if g.recv().is_err() {
                    return exit::BURROW;
                }
            }
            // "0": ourselves.
            Before::JoinCgroup(procs) => {
                if let Err(e) = nix::unistd::write(*procs, b"0") {
                    setup.tell(SetupReport::Failed(Failure::sys(
                        Step::Cgroup,
                        e,
                        exit::BURROW,
                    )));
                    return exit::BURROW;
                }
            }
        }
        enter_and_exec(&plan, setup)
    };
    let (forked, code) = match how {
        How::Shared { stack } => (vfork::spawn(stack, child), exit::BURROW),
        How::Copy { code } => (process::fork_child(child), code),
    };
    forked.map_err(|e| match e.errno() {
        nix::Error::ENOMEM if joining => {
            Failure::new(Step::ContainerGone, "its PID 1 has exited", exit::BURROW)
        }
        errno => Failure::sys(Step::Fork, errno, code),
    })
}
