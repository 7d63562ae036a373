//! Starting a container someone waits to attach to, and waiting for a
//! container's end: what a front end that attaches and waits on separate
//! connections (the API) needs beside the plain verbs.
//!
//! An attach to a container that is not running binds a rendezvous socket,
//! `RUNTIME/<short id>.attach`; a start finds it and lets the attaching
//! process start the monitor with `attach_first`, so no output is missed,
//! even from a container that ends at once.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::{Engine, Error, Result};
use crate::container::{ContainerError, ContainerRecord};
use crate::monitor;

/// Named by the short id beside the monitors' sockets: a socket's path
/// must fit in `sun_path` (108 bytes).
fn rendezvous_path(engine: &Engine, id: &str) -> PathBuf {
    engine
        .store
        .paths
        .runtime
        .join(format!("{}.attach", &id[..id.len().min(12)]))
}

fn launch_error(e: crate::sandbox::StartError) -> Error {
    Error::Container(ContainerError::Start(e))
}

/// Start `rec` under its monitor; when an attach waits for this start,
/// the attaching process starts it, connected from the first byte. A
/// container that is up already is left as it is.
pub fn start(engine: &Engine, rec: &ContainerRecord) -> Result<()> {
    if rec.is_up(&engine.store) || rec.is_restarting(&engine.store) {
        return Ok(());
    }
    let path = rendezvous_path(engine, &rec.id);
    if let Ok(mut s) = UnixStream::connect(&path) {
        if s.write_all(b"S").is_ok() {
            let mut answer = Vec::new();
            let _ = s.read_to_end(&mut answer);
            return match answer.split_first() {
                Some((0, _)) => Ok(()),
                Some((_, msg)) => Err(Error::AttachedStart(
                    String::from_utf8_lossy(msg).into_owned(),
                )),
                None => Err(Error::AttachedGone),
            };
        }
    }
    monitor::launch(&engine.store, rec, false).map_err(launch_error)?;
    Ok(())
}

/// An attach waiting for its container's start.
pub struct Pending {
    listener: UnixListener,
    path: PathBuf,
    id: String,
}

impl Drop for Pending {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What a pending attach saw.
pub enum Seen {
    /// Connected to the container's monitor (we started it, attached
    /// first, or someone else did).
    Attached(UnixStream),
    /// The start failed, or the container went away.
    Over,
    /// Nothing yet.
    Nothing,
}

/// Wait to be asked to start `rec` (which is not running); `None` when
/// another attach waits already.
pub fn expect_start(engine: &Engine, rec: &ContainerRecord) -> Option<Pending> {
    let path = rendezvous_path(engine, &rec.id);
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).ok()?;
    let _ = listener.set_nonblocking(true);
    Some(Pending {
        listener,
        path,
        id: rec.id.clone(),
    })
}

impl Pending {
    /// The socket to poll for a start.
    pub fn listener(&self) -> &UnixListener {
        &self.listener
    }

    /// Look once: a start that came (then start the container attached),
    /// or a container someone else started.
    pub fn look(&self, engine: &Engine) -> Seen {
        if let Ok((mut starter, _)) = self.listener.accept() {
            let _ = starter.set_nonblocking(false);
            let mut b = [0u8; 1];
            if starter.read_exact(&mut b).is_ok() {
                let Ok(rec) = crate::container::find(&engine.store, &self.id) else {
                    return Seen::Over;
                };
                return match monitor::launch(&engine.store, &rec, true) {
                    Ok(launched) => {
                        let _ = starter.write_all(&[0]);
                        launched.attached.map_or(Seen::Over, Seen::Attached)
                    }
                    Err(e) => {
                        let mut msg = vec![1];
                        msg.extend_from_slice(
                            crate::util::message::one_line_of(&launch_error(e)).as_bytes(),
                        );
                        let _ = starter.write_all(&msg);
                        Seen::Over
                    }
                };
            }
        }
        match crate::container::find(&engine.store, &self.id) {
            Ok(r) if r.is_up(&engine.store) => {
                monitor::connect(&engine.store, &self.id).map_or(Seen::Over, Seen::Attached)
            }
            Ok(_) => Seen::Nothing,
            Err(_) => Seen::Over,
        }
    }
}

/// Docker's wait conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Not running now (at once for a created or exited container).
    NotRunning,
    /// The next exit after the wait began.
    NextExit,
    /// Removed (`--rm`, or `rm`).
    Removed,
}

impl std::str::FromStr for Condition {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "" | "not-running" => Ok(Condition::NotRunning),
            "next-exit" => Ok(Condition::NextExit),
            "removed" => Ok(Condition::Removed),
            other => Err(Error::invalid(format!("invalid condition: {other:?}"))),
        }
    }
}

/// How long to wait before looking again: often at first (a short
/// container's `docker run` waits on this), then less often.
pub fn pause_for(since: Instant) -> Duration {
    match since.elapsed() {
        d if d < Duration::from_millis(200) => Duration::from_millis(2),
        d if d < Duration::from_secs(2) => Duration::from_millis(20),
        _ => Duration::from_millis(100),
    }
}

/// Wait until `condition` holds for `rec`; its exit code. `pause` waits
/// the given time between looks and returns false to give up (a client
/// that went away): then `None`.
pub fn wait(
    engine: &Engine,
    rec: &ContainerRecord,
    condition: Condition,
    pause: &mut dyn FnMut(Duration) -> bool,
) -> Option<i32> {
    let finished_before = rec.state.finished_at.clone();
    let since = Instant::now();
    loop {
        match crate::container::find(&engine.store, &rec.id) {
            Err(_) => return removed_exit_code(engine, &rec.id, pause),
            Ok(now) => {
                let now = now.with_live_state(&engine.store);
                let running = now.is_up(&engine.store) || now.is_restarting(&engine.store);
                let done = match condition {
                    Condition::NextExit => !running && now.state.finished_at != finished_before,
                    Condition::Removed => false,
                    Condition::NotRunning => !running,
                };
                if done {
                    return recorded_exit(engine, &rec.id, now.state.exit_code, pause);
                }
            }
        }
        if !pause(pause_for(since)) {
            return None;
        }
    }
}

/// The exit code as recorded: the live state is a guess (137) while the
/// monitor has not recorded the exit yet, and a monitor that is alive
/// will (a pid file not written yet says nothing: a container may end
/// before its monitor writes it).
fn recorded_exit(
    engine: &Engine,
    id: &str,
    guess: i32,
    pause: &mut dyn FnMut(Duration) -> bool,
) -> Option<i32> {
    use crate::container::Status;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match crate::container::find(&engine.store, id) {
            Err(_) => return removed_exit_code(engine, id, pause),
            Ok(r) if r.state.status == Status::Exited => return Some(r.state.exit_code),
            Ok(r) if !r.monitor_alive(&engine.store) && !engine.store.pid_file(id).exists() => {
                return Some(r.with_live_state(&engine.store).state.exit_code)
            }
            Ok(_) if Instant::now() >= deadline => return Some(guess),
            Ok(_) => {}
        }
        if !pause(Duration::from_millis(5)) {
            return None;
        }
    }
}

/// The exit code a removed `--rm` container's monitor left (it writes it
/// a moment after the record goes); 0 when none comes.
fn removed_exit_code(
    engine: &Engine,
    id: &str,
    pause: &mut dyn FnMut(Duration) -> bool,
) -> Option<i32> {
    let file = engine.store.removed_exit_file(id);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(code) = std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            return Some(code);
        }
        if !pause(Duration::from_millis(5)) {
            return None;
        }
    }
    Some(0)
}
