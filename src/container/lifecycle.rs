//! Lifecycle operations on a running container from outside its monitor:
//! stop (signal, timeout, SIGKILL; `cgroup.kill` when the container has a
//! cgroup), kill, pause/unpause (the cgroup v2 freezer, or SIGSTOP/SIGCONT
//! to every process without a cgroup), waiting for the recorded exit, and
//! renaming.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{ContainerError, ContainerRecord, Result, Status};
use crate::linux::process;
use crate::store::Store;
use crate::util::signal::parse_signal;

/// The signal `stop` sends first: the image's StopSignal, else SIGTERM.
pub fn stop_signal(rec: &ContainerRecord) -> Signal {
    rec.config
        .stop_signal
        .as_deref()
        .and_then(|s| parse_signal(s).ok())
        .unwrap_or(Signal::SIGTERM)
}

fn pid1(store: &Store, rec: &ContainerRecord) -> Option<Pid> {
    (rec.is_up(store) && rec.state.pid > 0).then(|| Pid::from_raw(rec.state.pid))
}

/// Send `sig` to PID 1. A paused container is woken for it, as Docker does
/// for stop and kill, so the signal can act.
pub fn signal(store: &Store, rec: &ContainerRecord, sig: Signal) -> Result<()> {
    let pid = pid1(store, rec).ok_or_else(|| ContainerError::NotRunning(rec.name.clone()))?;
    // A kill that ends the container is a manual stop: no restart after it.
    if sig == Signal::SIGKILL || sig == stop_signal(rec) {
        rec.mark_manual_stop(store);
    }
    kill(pid, sig).map_err(|source| ContainerError::Signal {
        name: rec.name.clone(),
        source,
    })?;
    Ok(())
}

/// Docker's stop: the stop signal, then SIGKILL after `timeout`. SIGKILL to
/// PID 1 makes the kernel kill every process in its pid namespace. Returns
/// once the monitor has recorded the exit; for a container with a restart
/// policy, once its monitor has ended (it may have been between two runs,
/// or starting the next one just as the stop came).
pub fn stop(
    store: &Store,
    rec: &ContainerRecord,
    timeout: Duration,
    sig: Option<Signal>,
) -> Result<()> {
    rec.mark_manual_stop(store);
    stop_once(store, rec, timeout, sig);
    if rec.host_config.restart_policy.is_none() {
        return Ok(());
    }
    for _ in 0..3 {
        let gone =
            crate::util::poll::until(Duration::from_secs(2), Duration::from_millis(20), || {
                (!rec.monitor_alive(store)).then_some(())
            });
        if gone.is_some() {
            break;
        }
        match ContainerRecord::load(store, &rec.id) {
            Ok(latest) => stop_once(store, &latest, timeout, sig),
            Err(_) => break,
        }
    }
    Ok(())
}

fn stop_once(store: &Store, rec: &ContainerRecord, timeout: Duration, sig: Option<Signal>) {
    let Some(pid) = pid1(store, rec) else {
        return;
    };
    let _ = kill(pid, sig.unwrap_or_else(|| stop_signal(rec)));
    if rec.live_status(store) == Status::Paused {
        resume(rec, pid);
    }
    if !wait_gone(pid, timeout) {
        // The whole cgroup at once (a fork bomb cannot outrun it), else
        // PID 1, whose death takes its pid namespace with it.
        if !super::cgroup::kill(rec.cgroup.as_ref()) {
            let _ = kill(pid, Signal::SIGKILL);
        }
        if !wait_gone(pid, Duration::from_secs(10)) {
            let _ = kill(pid, Signal::SIGKILL);
            wait_gone(pid, Duration::from_secs(10));
        }
    }
    wait_recorded(store, &rec.id, Duration::from_secs(10));
}

fn wait_gone(pid: Pid, timeout: Duration) -> bool {
    crate::util::poll::until(timeout, Duration::from_millis(20), || {
        kill(pid, None).is_err().then_some(())
    })
    .is_some()
}

/// Wait until a `--rm` container's record is gone (the sandbox removes it
/// before it reports the exit, so this is at once unless that failed):
/// `docker run --rm` returns once `ps -a` no longer lists it (the CLI
/// waits for the "removed" condition). False when it is still there.
pub fn wait_removed(store: &Store, id: &str, timeout: Duration) -> bool {
    crate::util::poll::until(timeout, Duration::from_millis(20), || {
        matches!(
            ContainerRecord::load(store, id),
            Err(super::ContainerError::NoSuch(_))
        )
        .then_some(())
    })
    .is_some()
}

/// Wait until the container's exit is recorded. Its supervisor writes the
/// exit code right after PID 1 ends and only then removes the pid file, so
/// a dead PID 1 with the pid file still there means "not recorded yet", and
/// with it gone, "the supervisor died" (then 137 is the best answer).
pub fn wait_recorded(store: &Store, id: &str, timeout: Duration) -> Option<ContainerRecord> {
    let deadline = Instant::now() + timeout;
    loop {
        match ContainerRecord::load(store, id) {
            Ok(r) if matches!(r.state.status, Status::Exited | Status::Created) => return Some(r),
            Ok(r) if !r.is_up(store) && !store.pid_file(id).exists() => {
                return Some(r.with_live_state(store))
            }
            Err(_) => return None,
            Ok(_) if Instant::now() >= deadline => return None,
            Ok(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Block until the container is no longer up; its exit code.
pub fn wait(store: &Store, id: &str) -> Result<i32> {
    loop {
        let rec = ContainerRecord::load(store, id)?;
        if !rec.is_up(store) {
            // The monitor records the exit a moment after PID 1 goes.
            return Ok(wait_recorded(store, id, Duration::from_secs(5))
                .unwrap_or_else(|| rec.with_live_state(store))
                .state
                .exit_code);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The container's cgroup, when it has one that still exists.
fn cgroup_dir(rec: &ContainerRecord) -> Option<&std::path::PathBuf> {
    rec.cgroup
        .as_ref()
        .filter(|d| d.join("cgroup.freeze").exists())
}

/// Pause with the cgroup v2 freezer (`cgroup.freeze`: every task stops,
/// and none can escape by forking) when the container has a cgroup.
/// Without one: SIGSTOP PID 1 first (so it cannot fork), then
/// every descendant, repeating until no new process appears. In a pid
/// namespace every process descends from PID 1 (orphans are reparented to
/// it), and the namespace's owner may signal them all.
pub fn pause(store: &Store, rec: &mut ContainerRecord) -> Result<()> {
    let pid = pid1(store, rec).ok_or_else(|| ContainerError::NotRunning(rec.name.clone()))?;
    if rec.live_status(store) == Status::Paused {
        return Err(ContainerError::AlreadyPaused(rec.name.clone()));
    }
    if let Some(dir) = cgroup_dir(rec) {
        let frozen =
            crate::linux::cgroup::freeze(dir, true, Duration::from_secs(10)).map_err(|source| {
                ContainerError::Pause {
                    name: rec.name.clone(),
                    source,
                }
            })?;
        if !frozen {
            let _ = crate::linux::cgroup::freeze(dir, false, Duration::ZERO);
            return Err(ContainerError::NotFrozen(rec.name.clone()));
        }
        rec.state.pause("freezer");
        return rec.save(store);
    }
    let mut stopped = std::collections::BTreeSet::new();
    for _ in 0..50 {
        let all = process::descendants(Path::new("/proc"), pid.as_raw());
        let new: Vec<i32> = all.into_iter().filter(|p| !stopped.contains(p)).collect();
        if new.is_empty() {
            break;
        }
        for p in new {
            let _ = kill(Pid::from_raw(p), Signal::SIGSTOP);
            stopped.insert(p);
        }
    }
    // A process stops when it next runs, which on a loaded machine can be
    // a while after the signal: return once every one has (or is gone), as
    // the freezer path returns once the cgroup reports frozen. One stuck in
    // the kernel stops on its way out; the signal stays pending.
    crate::util::poll::until(Duration::from_secs(10), Duration::from_millis(5), || {
        stopped
            .iter()
            .all(|&p| {
                !matches!(
                    process::state(Path::new("/proc"), p),
                    Some('R' | 'S' | 'D' | 'I' | 'W' | 'P')
                )
            })
            .then_some(())
    });
    rec.state.pause("SIGSTOP");
    rec.save(store)
}

pub fn unpause(store: &Store, rec: &mut ContainerRecord) -> Result<()> {
    let pid = pid1(store, rec).ok_or_else(|| ContainerError::NotRunning(rec.name.clone()))?;
    if rec.live_status(store) != Status::Paused {
        return Err(ContainerError::NotPaused(rec.name.clone()));
    }
    resume(rec, pid);
    rec.state.unpause();
    rec.save(store)
}

/// Undo `pause`, whichever way it was done.
fn resume(rec: &ContainerRecord, pid: Pid) {
    if let Some(dir) = cgroup_dir(rec) {
        if let Err(e) = crate::linux::cgroup::freeze(dir, false, Duration::from_secs(5)) {
            tracing::warn!("thawing {}: {e}", rec.name);
        }
        if rec.state.pause_method == "freezer" {
            return;
        }
    }
    resume_all(pid);
}

fn resume_all(pid: Pid) {
    for p in process::descendants(Path::new("/proc"), pid.as_raw()) {
        let _ = kill(Pid::from_raw(p), Signal::SIGCONT);
    }
}

/// Give the container another name. The new name is reserved first (the
/// atomic `names/NEW` symlink), so no other container can take it and the
/// container is never without a name; the old one is released last. A
/// running container can be renamed; whoever records its exit later must
/// read the record again first (the monitor does), or the old name returns.
pub fn rename(store: &Store, rec: &ContainerRecord, new: &str) -> Result<()> {
    super::names::validate(new)?;
    if new == rec.name {
        return Err(ContainerError::SameName);
    }
    super::names::reserve(store, new, &rec.id)?;
    let saved = ContainerRecord::load(store, &rec.id).and_then(|mut latest| {
        latest.name = new.to_string();
        latest.save(store)
    });
    if let Err(e) = saved {
        super::names::release(store, new, &rec.id);
        return Err(e);
    }
    super::names::release(store, &rec.name, &rec.id);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::State;

    /// How the exit of a container last seen up is awaited, by what its
    /// record and pid file say.
    #[test]
    fn an_exit_is_recorded_pending_or_guessed_from_a_dead_supervisor() {
        let me = std::process::id() as i32;
        // The stored state, its pid file (None: none; Some(true): a live
        // PID 1; Some(false): one that ended); then the exit code waited
        // for, None while the exit is not recorded.
        #[derive(Debug, Clone, Copy)]
        enum Stored {
            Created,
            Running,
            Exited,
            Removed,
        }
        let cases = [
            (Stored::Created, None, Some(0)),
            (Stored::Exited, None, Some(3)),
            (Stored::Running, Some(true), None),
            (Stored::Running, Some(false), None),
            (Stored::Running, None, Some(137)),
            (Stored::Removed, None, None),
        ];
        for (stored, pid_file, code) in cases {
            let (_d, store) = crate::store::temp_store();
            let mut rec = ContainerRecord::saved_for_test(&store, "awaited");
            match stored {
                Stored::Created => {}
                Stored::Running => rec.state = State::running(me),
                Stored::Exited => {
                    rec.state = State::running(me);
                    rec.state.finish(3);
                }
                Stored::Removed => {
                    std::fs::remove_dir_all(store.container_dir(&rec.id)).unwrap();
                }
            }
            if !matches!(stored, Stored::Removed) {
                rec.save(&store).unwrap();
            }
            match pid_file {
                Some(true) => rec.write_pid_file(&store).unwrap(),
                Some(false) => {
                    std::fs::write(store.pid_file(&rec.id), format!("{me} 1\n")).unwrap()
                }
                None => {}
            }
            let got = wait_recorded(&store, &rec.id, Duration::from_millis(60));
            let case = format!("{stored:?} with pid file {pid_file:?}");
            assert_eq!(got.map(|r| r.state.exit_code), code, "{case}");
            if let Some(code) = code {
                assert_eq!(wait(&store, &rec.id).unwrap(), code, "{case}");
            }
        }
    }

    /// What each operation refuses, by the container's live status; none
    /// of these sends a signal or changes the record.
    #[test]
    fn pause_unpause_and_signals_refuse_what_the_status_forbids() {
        let me = std::process::id() as i32;
        let (_d, store) = crate::store::temp_store();
        let refusal = |rec: &mut ContainerRecord| {
            let saved = ContainerRecord::load(&store, &rec.id).unwrap();
            let got = [
                pause(&store, rec).err(),
                unpause(&store, rec).err(),
                signal(&store, rec, Signal::SIGKILL).err(),
            ];
            let after = ContainerRecord::load(&store, &rec.id).unwrap();
            assert_eq!(after.state.status, saved.state.status);
            got.map(|e| e.map(|e| e.to_string()))
        };
        let not_running = Some(ContainerError::NotRunning("idle".into()).to_string());
        let mut created = ContainerRecord::saved_for_test(&store, "idle");
        let mut exited = created.clone();
        exited.state = State::running(me);
        exited.state.finish(0);
        exited.save(&store).unwrap();
        for rec in [&mut created, &mut exited] {
            assert_eq!(
                refusal(rec),
                [
                    not_running.clone(),
                    not_running.clone(),
                    not_running.clone()
                ]
            );
        }
        let mut paused = ContainerRecord::saved_for_test(&store, "still");
        paused.state = State::running(me);
        paused.state.pause("SIGSTOP");
        paused.save(&store).unwrap();
        paused.write_pid_file(&store).unwrap();
        assert_eq!(
            pause(&store, &mut paused).unwrap_err().to_string(),
            ContainerError::AlreadyPaused("still".into()).to_string()
        );
        let mut running = ContainerRecord::saved_for_test(&store, "busy");
        running.state = State::running(me);
        running.save(&store).unwrap();
        running.write_pid_file(&store).unwrap();
        assert_eq!(
            unpause(&store, &mut running).unwrap_err().to_string(),
            ContainerError::NotPaused("busy".into()).to_string()
        );
    }
}
