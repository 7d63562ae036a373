//! The user's systemd manager (`systemd --user`), over the D-Bus session
//! bus: a transient scope with `Delegate=yes` for a process, as podman and
//! crun ask for one on a systemd host, and the manager's own cgroup (whose
//! controllers are the ones such a scope can get). Methods and properties:
//! org.freedesktop.systemd1(5).

use super::dbus::{self, Bus, Value, Writer};

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
