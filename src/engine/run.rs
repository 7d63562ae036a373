//! A container run attached to the front end's own terminal (`run` without
//! `-d`, `start -a`): which way it runs, running it in this process, and
//! settling the store after its end. The terminal itself (raw mode, the
//! attach client) stays in the front end.

use std::time::Duration;

use super::{Engine, Error, Event, Result, Sink};
use crate::container::{self, ContainerRecord};
use crate::monitor;
use crate::sandbox::RootfsChoice;

/// How a foreground run is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// Under a monitor the front end attaches to before it starts the
    /// container: a pty, a timer, published ports, health probes and a
    /// restart policy all need a process that outlives a single wait.
    Monitor,
    /// In this process, which copies the output to the terminal and to the
    /// log: the container is kept after it ends, so `logs` must show it.
    Copy,
    /// In this process, the container writing straight to the terminal:
    /// nothing is kept, so nothing is copied (the fastest way).
    Direct,
}

/// The way `rec` runs in the foreground.
pub fn way(rec: &ContainerRecord) -> Way {
    let hc = &rec.host_config;
    if rec.config.tty
        || hc.timeout.is_some()
        || !hc.port_bindings.is_empty()
        || hc.publish_all_ports
        || !hc.restart_policy.is_none()
        || container::health::Schedule::of(rec).is_some()
    {
        Way::Monitor
    } else if !hc.auto_remove && hc.log_config.keeps_output() {
        Way::Copy
    } else {
        Way::Direct
    }
}

/// How this store's containers get their root filesystem: the front end's
/// `BURROW_ROOTFS` when it chose one, else the store's probed mode. When
/// they get a copy (or a fuse-overlayfs mount), a `Note` to `tell` says so
/// once per store (a monitor, whose stderr is no terminal, tells no one).
pub fn rootfs(engine: &Engine, tell: Option<&mut dyn Sink>) -> RootfsChoice {
    let choice = engine.settings.rootfs;
    if choice != RootfsChoice::Auto {
        return choice;
    }
    let Some(answer) = container::rootfs::probe(&engine.store, &engine.mapping) else {
        return choice;
    };
    if let Some(sink) = tell {
        if container::rootfs::tell_once(&engine.store, &answer) {
            sink.event(Event::Note(copy_notice(&answer)));
        }
    }
    answer.choice()
}

/// The line said once when a store's containers get a copy of their image,
/// or a fuse-overlayfs mount.
fn copy_notice(answer: &container::rootfs::StoreRootfs) -> String {
    if answer.mode == crate::sandbox::RootfsMode::FuseOverlayfs {
        return format!(
            "burrow: overlayfs cannot be mounted on this store's file system ({}) from a user namespace, so containers get a fuse-overlayfs mount instead (fast to create; file access is slower than overlayfs); `burrow info` shows the reason",
            answer.fs_name()
        );
    }
    format!(
        "burrow: overlayfs cannot be mounted on this store's file system ({}) from a user namespace, so each container gets a full copy of its image (slower to create, uses more disk); `burrow info` shows the reason",
        answer.fs_name()
    )
}

/// Run `rec` in this process the way `way` says (`Copy` or `Direct`; a
/// `Monitor` way is the front end's attach), returning its exit code. What
/// could not be written while it ran is said after, and a `--rm` container
/// takes its anonymous volumes with it, as in Docker.
pub fn here(
    engine: &Engine,
    rec: &mut ContainerRecord,
    way: Way,
    rootfs: RootfsChoice,
    sink: &mut dyn Sink,
) -> Result<i32> {
    // Both supervise in this process; `Copy` also copies the output to the log.
    let run = match way {
        Way::Copy => monitor::foreground::run,
        Way::Direct => container::run_foreground,
        Way::Monitor => {
            return Err(Error::invalid(
                "a container that needs a monitor runs under one, not in the caller's process",
            ))
        }
    };
    let s = &engine.settings;
    let code = run(
        &engine.store,
        rec,
        &engine.mapping,
        rootfs,
        s.systemd,
        s.network_access(),
    )?;
    if !rec.host_config.auto_remove {
        exit_problems(engine, rec, sink);
    }
    if rec.host_config.auto_remove {
        container::remove_anonymous_volumes(&engine.store, &engine.mapping, rec).map_err(
            |source| Error::RemoveVolumes {
                container: rec.name.clone(),
                source,
            },
        )?;
    }
    Ok(code)
}

/// After the end of a container the front end was attached to: return once
/// `inspect` and `ps` say it ended too (its monitor sends the exit code
/// before it records it), as `docker run` does. A `--rm` container is
/// gone by then; one with a restart policy runs again instead.
pub fn settle(engine: &Engine, rec: &ContainerRecord, sink: &mut dyn Sink) {
    if rec.host_config.auto_remove {
        let gone =
            container::lifecycle::wait_removed(&engine.store, &rec.id, Duration::from_secs(2));
        if !gone {
            sink.event(Event::Note(format!(
                "burrow: container {} was not removed after it ended: `burrow rm {}` removes it",
                rec.name, rec.name
            )));
        }
    } else if rec.host_config.restart_policy.is_none() {
        if let Some(ended) =
            container::lifecycle::wait_recorded(&engine.store, &rec.id, Duration::from_secs(10))
        {
            exit_problems(engine, &ended, sink);
        }
    }
}

/// What could not be written while the container ran (its log, its
/// record: a full disk), one line each.
pub fn exit_problems(engine: &Engine, rec: &ContainerRecord, sink: &mut dyn Sink) {
    for p in rec.exit_problems(&engine.store) {
        sink.event(Event::Note(format!("burrow: container {}: {p}", rec.name)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_way_follows_what_the_container_needs() {
        let (_d, e) = crate::engine::containers::tests::engine();
        let mut rec = crate::engine::containers::tests::stored(&e, "web", 1, None, &[]);
        rec.host_config.log_config = monitor::log::config(None, &[]).unwrap();
        assert_eq!(way(&rec), Way::Copy);
        rec.host_config.auto_remove = true;
        assert_eq!(way(&rec), Way::Direct);
        rec.host_config.timeout = Some(3);
        assert_eq!(way(&rec), Way::Monitor);
        rec.host_config.timeout = None;
        rec.config.tty = true;
        assert_eq!(way(&rec), Way::Monitor);
        rec.config.tty = false;
        rec.host_config.auto_remove = false;
        rec.host_config.log_config = monitor::log::config(Some("none"), &[]).unwrap();
        assert_eq!(way(&rec), Way::Direct);
    }
}
