//! A child's new user namespace: unsharing it (naming the fix when the
//! kernel refuses) and the id-map handshake with the parent that maps it
//! (a process cannot map more than its own ids itself).

use std::io;

use nix::sched::CloneFlags;

use super::channel::{ChannelError, Failure, Receiver, Sender, Step};

/// unshare(2) `flags`, `CLONE_NEWUSER` among them. A refusal that means
/// unprivileged user namespaces are off (EPERM, ENOSPC, EINVAL) carries how
/// to turn them on; `code` is the exit code the failure carries.
pub fn unshare(flags: CloneFlags, code: i32) -> Result<(), Failure> {
    nix::sched::unshare(flags).map_err(|e| {
        let mut f = Failure::sys(Step::Unshare, e, code);
        if matches!(
            e,
            nix::Error::EPERM | nix::Error::ENOSPC | nix::Error::EINVAL
        ) {
            f.detail = disabled_message();
        }
        f
    })
}

/// The child's half of the handshake, once it has unshared: ask on `up`,
/// then wait on `down` until the parent has written the maps.
pub fn await_maps(up: &mut Sender, down: &mut Receiver, code: i32) -> Result<(), Failure> {
    up.request_id_maps()
        .map_err(|e| Failure::io(Step::IdMaps, &e, code))?;
    down.wait_id_maps_written()
        .map_err(|_| Failure::new(Step::IdMaps, "the runtime did not write the id maps", code))
}

/// Why the parent's half did not complete.
#[derive(Debug)]
pub enum GrantError<E> {
    /// No request came: the child sent why it failed instead, or died.
    Request(ChannelError),
    /// Writing the maps failed.
    Write(E),
    /// The maps are written, but the child is gone and cannot be told.
    Tell(io::Error),
}

/// The parent's half: wait for the child's request on `up`, write its maps
/// (and whatever else must be in place first) with `write`, and tell it on
/// `down`.
pub fn grant_maps<E>(
    up: &mut Receiver,
    down: &mut Sender,
    write: impl FnOnce() -> Result<(), E>,
) -> Result<(), GrantError<E>> {
    up.wait_id_map_request().map_err(GrantError::Request)?;
    write().map_err(GrantError::Write)?;
    down.id_maps_written().map_err(GrantError::Tell)
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
