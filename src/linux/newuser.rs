//! A child's new user namespace: the fix to name when the kernel refuses
//! to unshare it, and the id-map handshake with the parent that maps it
//! (a process cannot map more than its own ids itself).

use std::io;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::channel::{ChannelError, Receiver, Sender};

/// How to turn unprivileged user namespaces on, when unshare(2)'s `errno`
/// means they are off (EPERM, ENOSPC, EINVAL).
pub fn unshare_hint(errno: nix::Error) -> Option<String> {
    matches!(
        errno,
        nix::Error::EPERM | nix::Error::ENOSPC | nix::Error::EINVAL
    )
    .then(disabled_message)
}

/// A message type of a child's reports that has a word for "my user
/// namespace is unshared: map it".
pub trait AsksForMaps: Serialize + DeserializeOwned {
    fn maps_requested() -> Self;
    fn is_maps_request(&self) -> bool;
}

/// The parent's answer: the maps are written, the child may go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapsWritten;

/// The reports of a child that unshares its user namespace, is mapped, and
/// then does one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Report<E> {
    MapsRequested,
    /// The job is done.
    Done,
    /// The job (or the way to it) failed; nothing more follows.
    Failed(E),
}

impl<E: Serialize + DeserializeOwned> AsksForMaps for Report<E> {
    fn maps_requested() -> Self {
        Report::MapsRequested
    }
    fn is_maps_request(&self) -> bool {
        matches!(self, Report::MapsRequested)
    }
}

/// Why the child's half did not complete.
#[derive(Debug, thiserror::Error)]
pub enum AwaitError {
    /// The request could not be sent.
    #[error(transparent)]
    Ask(io::Error),
    /// The parent closed its end (or died) without writing them.
    #[error("the runtime did not write the id maps")]
    NoAnswer,
}

/// The child's half of the handshake, once it has unshared: ask on `up`,
/// then wait on `down` until the parent has written the maps.
pub fn await_maps<U: AsksForMaps>(
    up: &mut Sender<U>,
    down: &mut Receiver<MapsWritten>,
) -> Result<(), AwaitError> {
    up.send(&U::maps_requested()).map_err(AwaitError::Ask)?;
    down.recv()
        .map(|MapsWritten| ())
        .map_err(|_| AwaitError::NoAnswer)
}

/// Why the parent's half did not complete.
#[derive(Debug)]
pub enum GrantError<U, E> {
    /// No request came: the child died, or the channel broke.
    Request(ChannelError),
    /// The child sent this instead (why it failed).
    Instead(U),
    /// Writing the maps failed.
    Write(E),
    /// The maps are written, but the child is gone and cannot be told.
    Tell(io::Error),
}

/// The parent's half: wait for the child's request on `up`, write its maps
/// (and whatever else must be in place first) with `write`, and tell it on
/// `down`.
pub fn grant_maps<U: AsksForMaps, E>(
    up: &mut Receiver<U>,
    down: &mut Sender<MapsWritten>,
    write: impl FnOnce() -> Result<(), E>,
) -> Result<(), GrantError<U, E>> {
    match up.recv() {
        Ok(m) if m.is_maps_request() => {}
        Ok(m) => return Err(GrantError::Instead(m)),
        Err(e) => return Err(GrantError::Request(e)),
    }
    write().map_err(GrantError::Write)?;
    down.send(&MapsWritten).map_err(GrantError::Tell)
}

/// The fix for "user namespaces do not work", for the host we are on.
pub fn disabled_message() -> String {
    let mut msg = String::from(
        "cannot create a user namespace: unprivileged user namespaces are disabled on this host",
    );
    if let Ok(v) = std::fs::read_to_string("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
    {
        if v.trim() == "1" {
            msg.push_str(
                " (AppArmor restricts them: run `sudo sysctl kernel.apparmor_restrict_unprivileged_userns=0` or add an AppArmor profile for burrow)",
            );
            return msg;
        }
    }
    if let Ok(v) = std::fs::read_to_string("/proc/sys/kernel/unprivileged_userns_clone") {
        if v.trim() == "0" {
            msg.push_str(" (run `sudo sysctl kernel.unprivileged_userns_clone=1`)");
            return msg;
        }
    }
    if let Ok(v) = std::fs::read_to_string("/proc/sys/user/max_user_namespaces") {
        if v.trim() == "0" {
            msg.push_str(" (run `sudo sysctl user.max_user_namespaces=15000`)");
        }
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::super::channel::channel;
    use super::*;

    type Up = Report<String>;

    #[test]
    fn the_parent_writes_the_maps_only_on_a_request_and_then_says_so() {
        let (mut child_up, mut parent_up) = channel::<Up>().unwrap();
        let (mut parent_down, mut child_down) = channel::<MapsWritten>().unwrap();
        child_up.send(&Up::maps_requested()).unwrap();
        let mut written = false;
        grant_maps(&mut parent_up, &mut parent_down, || {
            written = true;
            Ok::<(), ()>(())
        })
        .unwrap();
        assert!(written);
        assert_eq!(child_down.recv().unwrap(), MapsWritten);
    }

    #[test]
    fn a_failure_instead_of_the_request_is_handed_back_and_nothing_is_written() {
        let (mut child_up, mut parent_up) = channel::<Up>().unwrap();
        let (mut parent_down, mut child_down) = channel::<MapsWritten>().unwrap();
        child_up.send(&Report::Failed("mount".into())).unwrap();
        let r = grant_maps(&mut parent_up, &mut parent_down, || -> Result<(), ()> {
            panic!("no maps for a child that did not ask")
        });
        assert!(matches!(r, Err(GrantError::Instead(Report::Failed(ref w))) if w == "mount"));
        drop(parent_down);
        assert!(child_down.recv().is_err(), "the child is told nothing");
    }

    #[test]
    fn a_child_gone_before_asking_and_a_failed_write_are_told_apart() {
        let (child_up, mut parent_up) = channel::<Up>().unwrap();
        let (mut parent_down, _child_down) = channel::<MapsWritten>().unwrap();
        drop(child_up);
        let r = grant_maps(&mut parent_up, &mut parent_down, || Ok::<(), ()>(()));
        assert!(matches!(r, Err(GrantError::Request(ChannelError::Closed))));

        let (mut child_up, mut parent_up) = channel::<Up>().unwrap();
        let (mut parent_down, mut child_down) = channel::<MapsWritten>().unwrap();
        child_up.send(&Up::maps_requested()).unwrap();
        let r = grant_maps(&mut parent_up, &mut parent_down, || Err("newuidmap"));
        assert!(matches!(r, Err(GrantError::Write("newuidmap"))));
        drop(parent_down);
        assert!(child_down.recv().is_err(), "no word after a failed write");
    }

    #[test]
    fn the_childs_half_asks_then_waits_for_the_answer_or_the_parents_end() {
        let (mut child_up, mut parent_up) = channel::<Up>().unwrap();
        let (mut parent_down, mut child_down) = channel::<MapsWritten>().unwrap();
        // The answer is queued first: a datagram waits for its reader.
        parent_down.send(&MapsWritten).unwrap();
        await_maps(&mut child_up, &mut child_down).unwrap();
        assert_eq!(parent_up.recv().unwrap(), Report::MapsRequested);

        drop(parent_down);
        let r = await_maps(&mut child_up, &mut child_down);
        assert!(matches!(r, Err(AwaitError::NoAnswer)));
    }

    #[test]
    fn only_the_errnos_of_disabled_user_namespaces_get_the_fix() {
        for e in [nix::Error::EPERM, nix::Error::ENOSPC, nix::Error::EINVAL] {
            let hint = unshare_hint(e).expect("a hint");
            assert!(hint.starts_with("cannot create a user namespace"), "{hint}");
        }
        assert_eq!(unshare_hint(nix::Error::ENOMEM), None);
    }
}
