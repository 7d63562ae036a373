//! burrow's D-Bus client (`linux::dbus`, used to ask the user's systemd for
//! a delegated scope) against a real `dbus-daemon` on a private socket:
//! authentication, `Hello`, arguments marshalled as the daemon validates
//! them, replies and errors. systemd itself answers in the cgroup VM test.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use burrow::linux::dbus::{Bus, DbusError, Writer};
use burrow::linux::systemd;

struct Daemon {
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    fn address(&self) -> String {
        format!("unix:path={}/bus", self.dir.path().display())
    }
}

/// A session bus of our own, or None (said loudly) without dbus-daemon.
fn daemon() -> Option<Daemon> {
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--nopidfile"])
        .arg(format!("--address=unix:path={}/bus", dir.path().display()))
        .stdout(Stdio::null())
        // It warns that it cannot raise its fd limit: noise here.
        .stderr(Stdio::null())
        .spawn();
    let Ok(child) = child else {
        common::loud("SKIPPED D-Bus client tests: dbus-daemon is not installed (apt-get install dbus-daemon; tests/run.sh does)");
        return None;
    };
    let d = Daemon { child, dir };
    let sock = d.dir.path().join("bus");
    common::wait_until("dbus-daemon's socket", Duration::from_secs(10), || {
        sock.exists()
    });
    Some(d)
}

fn call(bus: &mut Bus, member: &str, sig: &str, body: &[u8]) -> Result<String, DbusError> {
    bus.call(
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        member,
        sig,
        body,
    )?
    .first()
}

#[test]
fn talks_to_a_real_bus() {
    let Some(d) = daemon() else { return };
    let mut bus = Bus::connect(Some(&d.address()), None).expect("connect and authenticate");
    assert!(bus.unique_name.starts_with(':'), "{}", bus.unique_name);

    // The daemon knows who we are (EXTERNAL auth) and parses our arguments.
    let mut w = Writer::default();
    w.str(&bus.unique_name.clone());
    let uid = call(&mut bus, "GetConnectionUnixUser", "s", &w.buf).unwrap();
    assert_eq!(uid, nix::unistd::getuid().as_raw().to_string());
    let mut w = Writer::default();
    w.str("org.freedesktop.DBus");
    assert_eq!(
        call(&mut bus, "GetNameOwner", "s", &w.buf).unwrap(),
        "org.freedesktop.DBus"
    );

    // An error reply comes back with its name and message.
    let mut w = Writer::default();
    w.str("org.example.Nobody");
    match call(&mut bus, "GetNameOwner", "s", &w.buf) {
        Err(DbusError::Remote { name, message }) => {
            assert_eq!(name, "org.freedesktop.DBus.Error.NameHasNoOwner");
            assert!(message.contains("org.example.Nobody"), "{message}");
        }
        other => panic!("expected an error reply, got {other:?}"),
    }

    // The scope request as systemd gets it: dbus-daemon validates every
    // message's body against its signature and drops the connection on a
    // malformed one; a well-formed one to a method it lacks gets an error
    // reply, and the connection goes on.
    let body = systemd::scope_request("burrow-test.scope", "a test", std::process::id());
    match call(
        &mut bus,
        "StartTransientUnit",
        systemd::SCOPE_REQUEST_SIGNATURE,
        &body,
    ) {
        Err(DbusError::Remote { name, .. }) => {
            assert_eq!(name, "org.freedesktop.DBus.Error.UnknownMethod")
        }
        other => panic!("expected UnknownMethod, got {other:?}"),
    }
    let mut w = Writer::default();
    w.str("org.freedesktop.DBus");
    assert_eq!(
        call(&mut bus, "GetNameOwner", "s", &w.buf).unwrap(),
        "org.freedesktop.DBus"
    );
}

#[test]
fn a_missing_bus_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().to_str().unwrap();
    let e = Bus::connect(None, Some(run))
        .err()
        .expect("no socket there");
    let text = e.to_string();
    assert!(
        text.contains(&format!("unix:path={run}/bus")) && text.contains("No such file"),
        "{text}"
    );
    let e = Bus::connect(None, None).err().expect("no address at all");
    assert!(matches!(e, DbusError::NoBus), "{e}");
    let e = Bus::connect(Some("tcp:host=localhost,port=1"), None)
        .err()
        .expect("not a unix address");
    assert!(e.to_string().contains("no unix socket address"), "{e}");
}
