//! The caller's half (fork the inner process, write its id maps, read its
//! reports) and the inner process (mount the rootfs, fork PID 1, wait, clean).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, Signal};
use nix::unistd::Pid;

use super::{child, Report, RootfsChoice, RootfsMode, Spec, StartError};
use crate::exit;
use crate::linux::{mount, process, userns};

/// A container whose command is running.
#[derive(Debug)]
pub struct Started {
    /// The inner process (our child); its exit code is the container's.
    pub inner: Pid,
    /// PID 1 of the container as the host sees it.
    pub pid1: Pid,
    pub rootfs: RootfsMode,
}

impl Started {
    /// Wait for the container to end, relaying SIGINT/SIGTERM/SIGHUP/SIGQUIT
    /// to its PID 1 as `docker run` does (sig-proxy). Returns the exit code.
    pub fn wait_relaying_signals(&self) -> i32 {
        let mut set = SigSet::empty();
        for s in RELAYED {
            set.add(s);
        }
        set.add(Signal::SIGCHLD);
        // Blocked signals stay pending until sigwait takes them; a SIGCHLD
        // that came before the block is caught by the WNOHANG check below.
        let _ = set.thread_block();
        loop {
            match nix::sys::wait::waitpid(self.inner, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
                Ok(nix::sys::wait::WaitStatus::StillAlive) => {}
                Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => return code,
                Ok(nix::sys::wait::WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
                Ok(_) => {}
                Err(_) => return exit::BURROW,
            }
            match set.wait() {
                Ok(Signal::SIGCHLD) | Err(_) => {}
                Ok(sig) => {
                    let _ = nix::sys::signal::kill(self.pid1, sig);
                }
            }
        }
    }
}

const RELAYED: [Signal; 6] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

fn fail(step: &str, message: impl Into<String>, code: i32) -> StartError {
    StartError {
        step: step.into(),
        message: message.into(),
        code,
    }
}

/// Start the container described by `spec`. Returns once its command has
/// been exec'd, or with the reason it could not be.
pub fn start(spec: &Spec) -> Result<Started, StartError> {
    let sys =
        |step: &'static str| move |e: nix::Error| fail(step, format!("{step}: {e}"), exit::BURROW);
    let (ready_r, ready_w) = process::pipe().map_err(sys("creating pipe"))?;
    let (go_r, go_w) = process::pipe().map_err(sys("creating pipe"))?;
    let (report_r, report_w) = process::pipe().map_err(sys("creating pipe"))?;
    let go_w_raw = go_w.as_raw_fd();
    let inner = process::fork_child(|| {
        let _ = nix::unistd::close(go_w_raw);
        inner_main(spec, ready_w, go_r, report_w)
    })
    .map_err(sys("forking"))?;

    // Step 1: the inner process has unshared its user namespace; map it.
    let mut b = [0u8; 1];
    let ready = File::from(ready_r).read(&mut b).unwrap_or(0) == 1;
    let mut reports = BufReader::new(File::from(report_r));
    if ready {
        if let Err(e) = spec.mapping.apply(inner) {
            let _ = nix::sys::signal::kill(inner, Signal::SIGKILL);
            let _ = process::wait_exit_code(inner);
            return Err(fail("id map", e.to_string(), exit::BURROW));
        }
        let _ = File::from(go_w).write_all(b"g");
    } else {
        drop(go_w);
    }

    // Step 2: read reports until EOF (every write end closed: exec happened
    // or both children gave up).
    let mut pid1 = None;
    let mut rootfs = RootfsMode::Overlay;
    let mut failed = None;
    let mut line = String::new();
    while reports.read_line(&mut line).unwrap_or(0) > 0 {
        match serde_json::from_str::<Report>(line.trim_end()) {
            Ok(Report::Pid(p)) => pid1 = Some(Pid::from_raw(p)),
            Ok(Report::Rootfs(m)) => rootfs = m,
            Ok(Report::Failed(e)) => failed = Some(e),
            Err(e) => tracing::warn!("garbled report from sandbox: {e}: {line:?}"),
        }
        line.clear();
    }
    if let Some(e) = failed {
        let _ = process::wait_exit_code(inner);
        return Err(e);
    }
    match pid1 {
        Some(pid1) => Ok(Started {
            inner,
            pid1,
            rootfs,
        }),
        None => {
            let code = process::wait_exit_code(inner).unwrap_or(exit::BURROW);
            Err(fail(
                "start",
                format!("container setup ended early (exit code {code}) without saying why"),
                exit::BURROW,
            ))
        }
    }
}

/// Send one report line; a write error means the caller is gone and there is
/// nobody to tell.
pub(super) fn report(w: &mut File, r: &Report) {
    let mut s = serde_json::to_string(r).expect("report serializes");
    s.push('\n');
    let _ = w.write_all(s.as_bytes());
}

/// The inner process. Runs as the forked child; returns its exit code.
fn inner_main(spec: &Spec, ready_w: OwnedFd, go_r: OwnedFd, report_w: OwnedFd) -> i32 {
    let mut rep = File::from(report_w);
    let failed = |rep: &mut File, e: StartError| {
        report(rep, &Report::Failed(e));
        exit::BURROW
    };
    // If the caller dies, so do we (and PID 1 after us).
    let _ = process::set_parent_death_signal(Signal::SIGKILL);
    // Ctrl-C reaches the whole foreground process group; the caller relays it
    // to PID 1, and the inner process must survive it to clean up.
    for s in [
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGHUP,
        Signal::SIGTERM,
    ] {
        let _ = process::ignore_signal(s);
    }

    // Step 1: new user, mount, uts, ipc and pid namespaces. The pid namespace
    // applies to our children: the first one becomes PID 1.
    let flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWPID;
    if let Err(e) = nix::sched::unshare(flags) {
        let msg = if matches!(
            e,
            nix::Error::EPERM | nix::Error::ENOSPC | nix::Error::EINVAL
        ) {
            userns::disabled_message()
        } else {
            format!("creating namespaces: {e}")
        };
        return failed(&mut rep, fail("unshare", msg, exit::BURROW));
    }
    let _ = File::from(ready_w).write_all(b"r");
    // Step 2: wait until the caller has written our id maps.
    let mut b = [0u8; 1];
    if File::from(go_r).read_exact(&mut b).is_err() {
        return exit::BURROW;
    }

    // Step 3: a private view of the mount tree, then the root filesystem.
    if let Err(e) = mount::make_rslave_root() {
        return failed(&mut rep, fail("mount", e.to_string(), exit::BURROW));
    }
    let root = match mount_rootfs(spec) {
        Ok((mode, root)) => {
            report(&mut rep, &Report::Rootfs(mode));
            root
        }
        Err(e) => return failed(&mut rep, e),
    };

    // Step 4: PID 1. It reports its own failures on the same pipe.
    let pid1 = match process::fork_child(|| child::pid1_main(spec, &root, &mut rep)) {
        Ok(p) => p,
        Err(e) => {
            return failed(
                &mut rep,
                fail("fork", format!("forking PID 1: {e}"), exit::BURROW),
            )
        }
    };
    report(&mut rep, &Report::Pid(pid1.as_raw()));
    drop(rep);

    // Step 5: wait for PID 1; when it ends the kernel kills the rest of the
    // pid namespace.
    let code = process::wait_exit_code(pid1).unwrap_or(exit::BURROW);
    if spec.remove_rootfs_after {
        let _ = mount::detach(&spec.dir.join("merged"));
        let _ = std::fs::remove_file(spec.dir.join("rootfs.complete"));
        for d in ["upper", "work", "rootfs"] {
            let p = spec.dir.join(d);
            if p.exists() {
                let _ = std::fs::remove_dir_all(&p);
            }
        }
    }
    code
}

/// Mount the container's root filesystem in our mount namespace; returns the
/// mode used and the directory to pivot into.
fn mount_rootfs(spec: &Spec) -> Result<(RootfsMode, std::path::PathBuf), StartError> {
    let merged = spec.dir.join("merged");
    let try_overlay = !matches!(spec.rootfs, RootfsChoice::Force(RootfsMode::Copy));
    if try_overlay {
        let empty;
        let lowers = if spec.lowers.is_empty() {
            // overlayfs needs at least one lower dir; an image may have none.
            empty = vec![spec.dir.join("empty")];
            let _ = std::fs::create_dir_all(&empty[0]);
            &empty
        } else {
            &spec.lowers
        };
        match mount::overlay(
            lowers,
            &spec.dir.join("upper"),
            &spec.dir.join("work"),
            &merged,
        ) {
            Ok(()) => return Ok((RootfsMode::Overlay, merged)),
            Err(e) if spec.rootfs == RootfsChoice::Auto => {
                tracing::debug!("overlayfs failed, using a full copy: {e}");
            }
            Err(e) => {
                return Err(fail(
                    "overlay",
                    format!("{e} (try BURROW_ROOTFS=copy)"),
                    exit::BURROW,
                ))
            }
        }
    }
    let rootfs = spec.dir.join("rootfs");
    let marker = spec.dir.join("rootfs.complete");
    if !marker.exists() {
        copy_rootfs(spec, &rootfs)?;
        std::fs::write(&marker, b"")
            .map_err(|e| fail("copy", format!("writing {marker:?}: {e}"), exit::BURROW))?;
    }
    // pivot_root needs a mount point: bind the copy onto itself.
    mount::bind(&rootfs, &rootfs, false).map_err(|e| fail("copy", e.to_string(), exit::BURROW))?;
    Ok((RootfsMode::Copy, rootfs))
}

/// Flatten the layers into a private copy, bottom layer first.
fn copy_rootfs(spec: &Spec, rootfs: &Path) -> Result<(), StartError> {
    let err = |e: String| {
        fail(
            "copy",
            format!("copying the image into the container: {e}"),
            exit::BURROW,
        )
    };
    if rootfs.exists() {
        std::fs::remove_dir_all(rootfs).map_err(|e| err(e.to_string()))?;
    }
    std::fs::create_dir_all(rootfs).map_err(|e| err(e.to_string()))?;
    let bottom_up: Vec<_> = spec.lowers.iter().rev().cloned().collect();
    crate::image::layer::flatten_layers(&bottom_up, rootfs).map_err(|e| err(e.to_string()))
}
