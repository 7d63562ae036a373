//! The caller's half (fork the inner process, write its id maps, read its
//! reports, relay signals) and the inner process (mount the rootfs, fork
//! PID 1, wait for it, clean up, report the exit).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::{child, cleanup, report, Report, RootfsChoice, RootfsMode, Spec, StartError};
use crate::exit;
use crate::linux::{cgroup, mount, process, userns};

/// A container whose command is running.
#[derive(Debug)]
pub struct Started {
    /// The inner process (our child).
    pub inner: Pid,
    /// PID 1 of the container as the host sees it.
    pub pid1: Pid,
    pub rootfs: RootfsMode,
    reports: BufReader<File>,
}

impl Started {
    /// Wait for the container's exit code, relaying signals to its PID 1.
    pub fn wait_relaying_signals(mut self) -> i32 {
        let sfd = report::relay_signalfd();
        match report::wait_exit(&mut self.reports, sfd.as_ref(), self.pid1) {
            Some(code) => code,
            // The inner process died without reporting (killed): its own
            // exit status is the best we know.
            None => process::wait_exit_code(self.inner).unwrap_or(exit::BURROW),
        }
    }

    /// The pipe the exit report arrives on, for a caller's poll loop.
    pub fn report_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.reports.get_ref().as_fd()
    }

    /// Read one report line (call when `report_fd` is readable). Returns the
    /// container's exit code once it has ended.
    pub fn read_report(&mut self) -> Option<i32> {
        match report::read_exit(&mut self.reports) {
            Ok(code) => code,
            Err(()) => Some(process::wait_exit_code(self.inner).unwrap_or(exit::BURROW)),
        }
    }
}

fn fail(step: &str, message: impl Into<String>, code: i32) -> StartError {
    StartError::new(step, message, code)
}

/// Start the container described by `spec`. Returns once its command has
/// been exec'd, or with the reason it could not be.
pub fn start(spec: &Spec) -> Result<Started, StartError> {
    let sys =
        |step: &'static str| move |e: nix::Error| fail(step, format!("{step}: {e}"), exit::BURROW);
    // A forked child inherits only the forking thread, but any lock another
    // thread held (allocator, stdio) stays locked in it forever; and the
    // kernel refuses a user namespace to a multi-threaded process. Work that
    // uses threads (pulling layers) runs in a child of its own and is over
    // before a container starts.
    match process::thread_count() {
        Some(1) | None => {}
        Some(n) => {
            return Err(fail(
                "checking threads",
                format!("burrow has {n} threads; a container may only be started from a single-threaded process"),
                exit::BURROW,
            ))
        }
    }
    let (ready_r, ready_w) = process::pipe().map_err(sys("creating pipe"))?;
    let (go_r, go_w) = process::pipe().map_err(sys("creating pipe"))?;
    let (report_r, report_w) = process::pipe().map_err(sys("creating pipe"))?;
    let (exec_r, exec_w) = process::pipe().map_err(sys("creating pipe"))?;
    // The children must not hold the caller's read ends or `go`'s write end.
    let ours = [go_w.as_raw_fd(), report_r.as_raw_fd(), exec_r.as_raw_fd()];
    let inner = process::fork_child(|| {
        let _ = ours;
        // Keep only our pipe ends and PID 1's stdio: the caller's other
        // descriptors (a monitor's own pipe ends, sockets, log) must not be
        // held open by us or reach the container.
        let mut keep = vec![
            ready_w.as_raw_fd(),
            go_r.as_raw_fd(),
            report_w.as_raw_fd(),
            exec_w.as_raw_fd(),
        ];
        keep.extend(spec.stdio.iter().flatten());
        keep.extend(spec.console);
        process::close_fds_except(&keep);
        inner_main(spec, ready_w, go_r, report_w, exec_w)
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
        // The container's cgroup: the inner process enters it before it
        // mounts anything, so PID 1 and all it forks are born inside; we
        // (the monitor) stay outside.
        if let Some(cg) = &spec.cgroup {
            if let Err(e) = cgroup::move_pid(&cg.dir, inner.as_raw()) {
                let _ = nix::sys::signal::kill(inner, Signal::SIGKILL);
                let _ = process::wait_exit_code(inner);
                return Err(fail("cgroup", e.to_string(), exit::BURROW));
            }
        }
        let _ = File::from(go_w).write_all(b"g");
    } else {
        drop(go_w);
    }

    // Step 2: the inner process mounts the rootfs and forks PID 1.
    let mut rootfs = RootfsMode::Overlay;
    let mut line = String::new();
    let pid1 = loop {
        line.clear();
        if reports.read_line(&mut line).unwrap_or(0) == 0 {
            let code = process::wait_exit_code(inner).unwrap_or(exit::BURROW);
            return Err(fail(
                "start",
                format!("container setup ended early (exit code {code}) without saying why"),
                exit::BURROW,
            ));
        }
        match serde_json::from_str::<Report>(line.trim_end()) {
            Ok(Report::Rootfs(m)) => rootfs = m,
            Ok(Report::Pid(p)) => break Pid::from_raw(p),
            Ok(Report::Failed(e)) => {
                let _ = process::wait_exit_code(inner);
                return Err(e);
            }
            Ok(Report::Exited(_)) | Err(_) => {
                tracing::warn!("unexpected report from sandbox: {line:?}")
            }
        }
    };

    // Step 3: PID 1 sets itself up; EOF on the exec pipe means it exec'd.
    let mut exec_report = String::new();
    let _ = File::from(exec_r).read_to_string(&mut exec_report);
    if let Some(l) = exec_report.lines().next() {
        let mut err = match serde_json::from_str::<Report>(l) {
            Ok(Report::Failed(e)) => e,
            _ => fail(
                "exec",
                format!("garbled report from PID 1: {l:?}"),
                exit::BURROW,
            ),
        };
        // Let the inner process finish its cleanup (--rm) before returning.
        let started = Started {
            inner,
            pid1,
            rootfs,
            reports,
        };
        let _ = started.wait_relaying_signals();
        err.cleaned_up = !spec.remove_after.is_empty();
        return Err(err);
    }
    Ok(Started {
        inner,
        pid1,
        rootfs,
        reports,
    })
}

/// The inner process. Runs as the forked child; returns its exit code.
fn inner_main(
    spec: &Spec,
    ready_w: OwnedFd,
    go_r: OwnedFd,
    report_w: OwnedFd,
    exec_w: OwnedFd,
) -> i32 {
    let mut rep = File::from(report_w);
    let failed = |rep: &mut File, e: StartError| {
        report::send(rep, &Report::Failed(e));
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
    // applies to our children: the first one becomes PID 1. Mounts copied
    // into a namespace owned by a new user namespace are already slaves of
    // the host's (mount_namespaces(7)), so nothing we mount propagates back.
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

    // Step 3: the root filesystem.
    let root = match mount_rootfs(spec) {
        Ok((mode, root)) => {
            report::send(&mut rep, &Report::Rootfs(mode));
            root
        }
        Err(e) => return failed(&mut rep, e),
    };

    // Step 4: hold the directories `--rm` cleans up: after PID 1's
    // pivot_root in our shared mount namespace, their paths are gone.
    let mut removals = Vec::new();
    let mut paths: Vec<std::path::PathBuf> = spec.remove_after.clone();
    if spec.remove_dir_after {
        paths.push(spec.dir.clone());
    }
    for p in &paths {
        match cleanup::Removal::prepare(p) {
            Ok(r) => removals.push(r),
            Err(e) => tracing::debug!("cannot prepare removal of {p:?}: {e}"),
        }
    }
    let late = if spec.remove_dir_after {
        removals.pop()
    } else {
        None
    };

    // Step 5: PID 1. It reports a failure to set up or exec on the exec pipe,
    // which only it holds open from here on. Once it is forked (inside the
    // container's cgroup), we leave that cgroup for the caller's, so that
    // freezing or killing the cgroup leaves us free to report the exit and
    // clean up. The file is opened now: PID 1's pivot_root changes our root.
    let leave = spec
        .cgroup
        .as_ref()
        .and_then(|c| c.leave_to.as_ref())
        .and_then(|d| {
            std::fs::OpenOptions::new()
                .write(true)
                .open(d.join("cgroup.procs"))
                .map_err(|e| tracing::debug!("cannot leave the container's cgroup: {e}"))
                .ok()
        });
    let rep_fd = rep.as_raw_fd();
    let mut exec_file = File::from(exec_w);
    let pid1 = match process::fork_child(|| {
        // PID 1 must not keep the report pipe: the caller reads it to EOF.
        let _ = nix::unistd::close(rep_fd);
        child::pid1_main(spec, &root, &mut exec_file)
    }) {
        Ok(p) => p,
        Err(e) => {
            return failed(
                &mut rep,
                fail("fork", format!("forking PID 1: {e}"), exit::BURROW),
            )
        }
    };
    drop(exec_file);
    if let Some(mut f) = leave {
        // "0" moves the writer (cgroup-v2.rst, cgroup.procs).
        if let Err(e) = f.write_all(b"0") {
            tracing::debug!("cannot leave the container's cgroup: {e}");
        }
    }
    // PID 1 has its own copies of the monitor's stdio; ours would keep the
    // monitor from seeing EOF.
    if let Some(fds) = spec.stdio {
        for fd in fds {
            if fd > 2 {
                let _ = nix::unistd::close(fd);
            }
        }
    }
    if let Some(fd) = spec.console {
        let _ = nix::unistd::close(fd);
    }
    report::send(&mut rep, &Report::Pid(pid1.as_raw()));

    // Step 6: wait for PID 1; when it ends the kernel kills the rest of the
    // pid namespace. Remove the record and name, report, then the rest.
    let code = process::wait_exit_code(pid1).unwrap_or(exit::BURROW);
    for r in &removals {
        r.run();
    }
    if late.is_some() {
        // The caller exits as soon as it reads our report; finish without it.
        let _ = process::set_parent_death_signal(None);
    }
    report::send(&mut rep, &Report::Exited(code));
    drop(rep);
    if let Some(r) = late {
        r.run();
    }
    code
}

/// Mount the container's root filesystem in our mount namespace; returns the
/// mode used and the directory to pivot into.
fn mount_rootfs(spec: &Spec) -> Result<(RootfsMode, std::path::PathBuf), StartError> {
    let merged = spec.mount_point.clone();
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
    super::rootfs_copy::flatten_layers(&bottom_up, rootfs).map_err(|e| err(e.to_string()))
}
