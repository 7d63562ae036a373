//! The user's systemd manager (`systemd --user`), over the D-Bus session
//! bus: a transient scope with `Delegate=yes` for a process, as podman and
//! crun ask for one on a systemd host, and the manager's own cgroup (whose
//! controllers are the ones such a scope can get). Methods and properties:
//! org.freedesktop.systemd1(5).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::cgroup;
use super::dbus::{self, Bus, Value, Writer};
use crate::util::poll;

/// How often to look whether systemd has moved a process yet: a move takes
/// well under a millisecond once systemd gets to it.
pub const MOVE_POLL: Duration = Duration::from_micros(500);

const DESTINATION: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";

/// A connection to the user's systemd.
pub struct Manager {
    bus: Bus,
}

impl Manager {
    pub fn connect() -> dbus::Result<Manager> {
        Ok(Manager {
            bus: Bus::session()?,
        })
    }

    /// Where the bus is, for messages.
    pub fn address(&self) -> &str {
        &self.bus.address
    }

    /// The manager's cgroup ("/user.slice/user-1000.slice/user@1000.service").
    pub fn control_group(&mut self) -> dbus::Result<String> {
        let mut w = Writer::default();
        w.str(MANAGER);
        w.str("ControlGroup");
        self.bus
            .call(
                DESTINATION,
                PATH,
                "org.freedesktop.DBus.Properties",
                "Get",
                "ss",
                &w.buf,
            )?
            .first()
    }

    /// Start the transient scope `unit` holding `pid`, delegated to us
    /// (Delegate=yes: we may create child cgroups and enable controllers in
    /// it). Returns the job's object path. systemd moves `pid` into the
    /// scope while it runs the job, which may finish after this returns.
    pub fn start_delegated_scope(
        &mut self,
        unit: &str,
        description: &str,
        pid: u32,
    ) -> dbus::Result<String> {
        let body = scope_request(unit, description, pid);
        self.bus
            .call(
                DESTINATION,
                PATH,
                MANAGER,
                "StartTransientUnit",
                SCOPE_REQUEST_SIGNATURE,
                &body,
            )?
            .first()
    }
}

impl Manager {
    /// Move `pids` into `subcgroup` ("/burrow-<id>") of `unit`'s cgroup.
    /// The manager may do that even for a process outside its subtree (a
    /// login session's): it asks the system's PID 1 when it cannot itself.
    pub fn attach_processes(
        &mut self,
        unit: &str,
        subcgroup: &str,
        pids: &[u32],
    ) -> dbus::Result<()> {
        let mut w = Writer::default();
        w.str(unit);
        w.str(subcgroup);
        w.array(4, |w| pids.iter().for_each(|p| w.u32(*p)));
        self.bus.call(
            DESTINATION,
            PATH,
            MANAGER,
            "AttachProcessesToUnit",
            "ssau",
            &w.buf,
        )?;
        Ok(())
    }
}

/// The unit and sub-cgroup of cgroup `dir` (under the hierarchy `root`):
/// its last `*.scope` or `*.service` component, and the path below it.
pub fn unit_of(root: &Path, dir: &Path) -> Option<(String, String)> {
    let rel = dir.strip_prefix(root).ok()?;
    let parts: Vec<&str> = rel.iter().filter_map(|c| c.to_str()).collect();
    let i = parts
        .iter()
        .rposition(|p| p.ends_with(".scope") || p.ends_with(".service"))?;
    let sub: String = parts[i + 1..].iter().map(|p| format!("/{p}")).collect();
    Some((
        parts[i].to_string(),
        if sub.is_empty() { "/".into() } else { sub },
    ))
}

/// Move this process into `dir`, a cgroup inside a unit of the user's
/// systemd, through the manager (see `attach_processes`), and wait until
/// the move is done: the manager may hand it on to PID 1 and reply first.
pub fn attach_self(root: &Path, dir: &Path, timeout: Duration) -> Result<(), AttachError> {
    let (unit, sub) = unit_of(root, dir).ok_or_else(|| AttachError::NoUnit(dir.to_path_buf()))?;
    let mut m = Manager::connect().map_err(AttachError::Connect)?;
    m.attach_processes(&unit, &sub, &[std::process::id()])
        .map_err(|source| AttachError::Attach {
            unit: unit.clone(),
            source,
        })?;
    let want = format!("/{}", dir.strip_prefix(root).unwrap_or(dir).display());
    poll::until(timeout, MOVE_POLL, || {
        (cgroup::own_path(Path::new("/proc/self/cgroup")).as_deref() == Some(want.as_str()))
            .then_some(())
    })
    .ok_or(AttachError::Slow(want))
}

/// Why this process is not in the cgroup it asked the manager for.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("{} is in no systemd unit", .0.display())]
    NoUnit(PathBuf),
    #[error(transparent)]
    Connect(dbus::DbusError),
    #[error("the user's systemd did not attach us to {unit}: {source}")]
    Attach {
        unit: String,
        source: dbus::DbusError,
    },
    #[error("the user's systemd did not move us into {0} in time")]
    Slow(String),
}

/// The signature of StartTransientUnit's arguments.
pub const SCOPE_REQUEST_SIGNATURE: &str = "ssa(sv)a(sa(sv))";

/// StartTransientUnit's arguments for a scope `unit` holding `pid`,
/// delegated to its owner, marshalled.
pub fn scope_request(unit: &str, description: &str, pid: u32) -> Vec<u8> {
    let pids = [pid];
    let properties = [
        ("Description", Value::Str(description)),
        ("PIDs", Value::U32s(&pids)),
        ("Delegate", Value::Bool(true)),
        // Not ordered against shutdown.target or pulled into slices'
        // dependencies, and collected even when it fails: as podman's
        // scopes.
        ("DefaultDependencies", Value::Bool(false)),
        ("CollectMode", Value::Str("inactive-or-failed")),
    ];
    let mut w = Writer::default();
    w.str(unit);
    w.str("fail");
    w.array(8, |w| {
        for (name, value) in &properties {
            w.open_struct();
            w.str(name);
            w.variant(value);
        }
    });
    w.array(8, |_| {}); // no auxiliary units
    w.buf
}

/// The first socket systemd passed us by socket activation (sd_listen_fds(3):
/// `LISTEN_PID` is our pid and `LISTEN_FDS` at least 1, the sockets start at
/// descriptor 3), taken once: the variables are removed so that no child
/// takes it too. `None` when we were not socket-activated or descriptor 3
/// is not a socket.
pub fn activated_socket() -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::{BorrowedFd, FromRawFd};
    let pid = std::env::var("LISTEN_PID").ok()?;
    let fds = std::env::var("LISTEN_FDS").ok()?;
    if pid.parse::<u32>().ok()? != std::process::id() || fds.parse::<u32>().ok()? < 1 {
        return None;
    }
    std::env::remove_var("LISTEN_PID");
    std::env::remove_var("LISTEN_FDS");
    std::env::remove_var("LISTEN_FDNAMES");
    const FIRST: i32 = 3;
    // SAFETY: descriptor 3 is only borrowed for the fstat below; it stays
    // open for the life of this call.
    let borrowed = unsafe { BorrowedFd::borrow_raw(FIRST) };
    let st = nix::sys::stat::fstat(borrowed).ok()?;
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return None;
    }
    // SAFETY: systemd handed descriptor 3 to this process to own, fstat just
    // showed it open and a socket, and the environment that named it is gone,
    // so nothing else in the process takes ownership of it.
    Some(unsafe { std::os::fd::OwnedFd::from_raw_fd(FIRST) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_of_cgroups() {
        let root = Path::new("/sys/fs/cgroup");
        let dir =
            root.join("user.slice/user-1.slice/user@1.service/app.slice/burrow-a-7.scope/burrow-a");
        assert_eq!(
            unit_of(root, &dir),
            Some(("burrow-a-7.scope".into(), "/burrow-a".into()))
        );
        assert_eq!(
            unit_of(root, &root.join("system.slice/x.service")),
            Some(("x.service".into(), "/".into()))
        );
        assert_eq!(unit_of(root, &root.join("burrow-test/burrow-a")), None);
        assert_eq!(unit_of(root, Path::new("/elsewhere/a.scope")), None);
    }
}
