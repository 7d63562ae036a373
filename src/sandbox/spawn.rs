//! `run`'s kind of fork tree (`sandbox::fork`): the caller's half (the id
//! maps and cgroup it writes, the reports it reads, signals relayed) and
//! the inner process (namespaces, the rootfs, PID 1 forked, waited for and
//! cleaned up after, the exit reported).

use std::io::Write;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::entry::Entry;
use super::fork::{fork_tree, Before, GrantFailure, Keep, Middle, Tree};
use super::process::ContainerType;
use super::wire::{self, Proceed, ReportError, StartReport};
use super::{cleanup, report, Failure, RootfsChoice, RootfsMode, Spec, StartError, Step};
use crate::exit;
use crate::linux::channel::{channel, Receiver, Sender};
use crate::linux::newuser::MapsWritten;
use crate::linux::{cgroup, fuse_overlay, mount, process};

/// A container whose command is running.
#[derive(Debug)]
pub struct Started {
    /// The inner process (our child).
    pub inner: Pid,
    /// PID 1 of the container as the host sees it.
    pub pid1: Pid,
    pub rootfs: RootfsMode,
    /// On a shared network: its namespaces and the container's first
    /// address there.
    pub bridge: Option<super::link::Bridge>,
    reports: Receiver<StartReport>,
    /// Held until the caller has written what it records about the running
    /// container (see [`Started::recorded`]); the inner process waits for
    /// it before a `--rm` removal.
    record_gate: Option<Sender<MapsWritten>>,
}

impl Started {
    /// The caller is done writing into the container's directory (its
    /// record says running): from now on the inner process may remove it
    /// once PID 1 ends. Before this, a command that ended at once would
    /// have its record removed and then written again by a caller that
    /// had not yet said it runs: a `--rm` container listed after its end,
    /// or kept for good when the new file lands in a directory being
    /// removed (rmdir finds it not empty).
    ///
    /// Said by closing our end: a message sent to an inner process killed
    /// meanwhile would fail here.
    pub fn recorded(&mut self) {
        self.record_gate = None;
    }

    /// Wait for the container's exit code, relaying signals to its PID 1.
    pub fn wait_relaying_signals(mut self) -> i32 {
        self.recorded();
        let sfd = report::relay_signalfd();
        match report::wait_exit(&mut self.reports, sfd.as_ref(), self.pid1) {
            Some(code) => code,
            // The inner process died without reporting (killed): its own
            // exit status is the best we know.
            None => process::wait_exit_code(self.inner).unwrap_or(exit::BURROW),
        }
    }

    /// The channel the exit report arrives on, for a caller's poll loop.
    pub fn report_fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.reports.as_fd()
    }

    /// Read one report (call when `report_fd` is readable). Returns the
    /// container's exit code once it has ended.
    pub fn read_report(&mut self) -> Option<i32> {
        // A caller that waits for the exit writes nothing more before it.
        self.recorded();
        match report::read_exit(&mut self.reports) {
            Ok(code) => code,
            Err(_) => Some(process::wait_exit_code(self.inner).unwrap_or(exit::BURROW)),
        }
    }
}

/// Start the container described by `spec`. Returns once its command has
/// been exec'd, or with the reason it could not be.
pub fn start(spec: &Spec) -> Result<Started, StartError> {
    start_with(spec, None)
}

/// What the caller does once PID 1 exists and before it sets itself up
/// (start a network helper that targets its PID).
pub type BeforeSetup<'a> = &'a mut dyn FnMut(Pid) -> Result<(), Failure>;

/// [`start`], running `before_setup` with PID 1's host pid while PID 1
/// waits: what it does is in place before the container's command runs.
pub fn start_with(spec: &Spec, before_setup: Option<BeforeSetup>) -> Result<Started, StartError> {
    // The tree's channels: the inner process → us (id map request, rootfs,
    // pid, exit or failure); us → it (id maps written; later, by its EOF,
    // the record written: it waits for that before a `--rm` removal);
    // PID 1 → us (why it could not exec; EOF when it did). And us → PID 1:
    // proceed, once `before_setup` is done.
    let gate = match before_setup {
        Some(_) => {
            Some(channel::<Proceed>().map_err(|e| Failure::io(Step::Pipe, &e, exit::BURROW))?)
        }
        None => None,
    };
    let (mut gate_tx, gate_rx) = match gate {
        Some((tx, rx)) => (Some(tx), Some(rx)),
        None => (None, None),
    };
    let entry = Entry::for_spec(spec);
    // Keep only the channels and PID 1's stdio.
    let mut keep: Vec<_> = gate_rx
        .as_ref()
        .map(|g| g.as_raw_fd())
        .into_iter()
        .collect();
    keep.extend(spec.process.stdio.passed_fds());
    keep.extend(spec.join.iter().flat_map(|j| j.raw_fds()));
    let mut tree = fork_tree(Keep::Only(&keep), true, exit::BURROW, |middle| {
        inner_main(spec, &entry, middle, gate_rx)
    })
    .map_err(|e| e.into_failure(exit::BURROW))?;
    // The inner process failed (or died) before PID 1 runs.
    let early = |tree: &Tree<StartReport>, e: ReportError, step: Step| {
        StartError::from(tree.ended_early(e, step))
    };

    // Step 1: the inner process has unshared its user namespace; map it.
    let inner = tree.middle;
    let granted = tree.grant_maps(|| -> Result<(), Failure> {
        // A shared user namespace is mapped already.
        if spec.join.is_none() {
            spec.mapping
                .apply(inner)
                .map_err(|e| Failure::new(Step::IdMaps, e.to_string(), exit::BURROW))?;
        }
        // The container's cgroup: the inner process enters it before it
        // mounts anything, so PID 1 and all it forks are born inside; we
        // (the monitor) stay outside.
        if let Some(cg) = &spec.cgroup {
            cgroup::move_pid(&cg.dir, inner.as_raw())
                .map_err(|e| Failure::new(Step::Cgroup, e.to_string(), exit::BURROW).at(&cg.dir))?;
        }
        Ok(())
    });
    match granted {
        Ok(()) => {}
        Err(GrantFailure::Early(e)) => return Err(early(&tree, e, Step::Unshare)),
        Err(GrantFailure::Write(f)) => return Err(f.into()),
    }

    // Step 2: the inner process mounts the rootfs and forks PID 1.
    let mut rootfs = RootfsMode::Overlay;
    let pid1 = tree.wait_pid(|m| match m {
        StartReport::RootfsReady { overlay, fuse } => {
            rootfs = match (overlay, fuse) {
                (_, true) => RootfsMode::FuseOverlayfs,
                (true, false) => RootfsMode::Overlay,
                (false, false) => RootfsMode::Copy,
            }
        }
        m => tracing::warn!("unexpected report from sandbox: {m:?}"),
    });
    let pid1 = pid1.map_err(|e| early(&tree, e, Step::Fork))?;
    let mut exec_rx = tree.setup;
    let started = Started {
        inner,
        pid1,
        rootfs,
        bridge: spec.join.as_ref().and_then(|j| {
            Some(super::link::Bridge {
                namespaces: j.namespaces.clone(),
                address: j.links.first()?.address,
            })
        }),
        reports: tree.reports,
        record_gate: tree.maps,
    };

    // Step 3: what must be in place before PID 1 sets itself up; PID 1
    // waits for it on the gate (and ends if the gate closes unopened).
    if let (Some(hook), Some(mut tx)) = (before_setup, gate_tx.take()) {
        if let Err(failure) = hook(started.pid1).and_then(|()| {
            tx.send(&Proceed)
                .map_err(|e| Failure::io(Step::Pipe, &e, exit::BURROW))
        }) {
            drop(tx);
            let _ = nix::sys::signal::kill(started.pid1, Signal::SIGKILL);
            let _ = started.wait_relaying_signals();
            return Err(StartError {
                failure,
                cleaned_up: !spec.remove_after.is_empty(),
            });
        }
    }

    // Step 4: PID 1 sets itself up; EOF on the exec channel means it exec'd.
    match wire::wait_exec(&mut exec_rx) {
        Ok(()) => Ok(started),
        Err(e) => {
            let failure = e.into_failure(Step::Exec, || exit::BURROW);
            // Let the inner process finish its cleanup (--rm) first.
            let _ = started.wait_relaying_signals();
            Err(StartError {
                failure,
                cleaned_up: !spec.remove_after.is_empty(),
            })
        }
    }
}

/// The inner process. Runs as the forked child; returns its exit code.
fn inner_main(
    spec: &Spec,
    entry: &Entry,
    mut middle: Middle<StartReport>,
    gate: Option<Receiver<Proceed>>,
) -> i32 {
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
    // Steps 1 to 4: namespaces, id maps, network, rootfs, what `--rm`
    // removes.
    let inside = match enter_namespaces(spec, &mut middle).and_then(|fuse| {
        let (root, daemon) = mount_rootfs_and_report(spec, fuse, &mut middle)?;
        Ok((root, daemon, prepare_removals(spec)))
    }) {
        Ok(inside) => inside,
        Err(f) => return middle.fail(f),
    };
    let (root, daemon, (removals, late)) = inside;

    // Step 5: PID 1. It reports a failure to set up or exec on the exec
    // channel, which only it holds open from here on. Once it is forked
    // (inside the container's cgroup), we leave that cgroup for the
    // caller's, so that freezing or killing the cgroup leaves us free to
    // report the exit and clean up. The file is opened now: PID 1's
    // pivot_root changes our root.
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
    let init = ContainerType::Init { root: &root, entry };
    let before = gate.map_or(Before::Nothing, Before::Gate);
    let pid1 = match middle.fork_process(init, &spec.process, spec.mapping.is_range(), before) {
        Ok(p) => p,
        Err(f) => return middle.fail(f),
    };
    if let Some(mut f) = leave {
        // "0" moves the writer (cgroup-v2.rst, cgroup.procs).
        if let Err(e) = f.write_all(b"0") {
            tracing::debug!("cannot leave the container's cgroup: {e}");
        }
    }
    // PID 1 has its own copies of the monitor's stdio; ours would keep the
    // monitor from seeing EOF.
    for fd in spec.process.stdio.passed_fds() {
        let _ = nix::unistd::close(fd);
    }
    middle.report_pid(pid1);

    // Step 6: wait for PID 1; when it ends the kernel kills the rest of the
    // pid namespace. Remove the record and name, report, then the rest.
    process::trim_heap();
    let code = process::wait_exit_code(pid1).unwrap_or(exit::BURROW);
    // The container is gone: its files are written through, the daemon
    // ends, and with it the mount namespace it alone held. Our root is the
    // mount since PID 1's pivot.
    if let Some(d) = daemon {
        d.stop(Path::new("/"));
    }
    let mut down = middle.take_maps_channel();
    if !removals.is_empty() || late.is_some() {
        // Not before the caller's last write into what we remove (its
        // record of the start): it closes its end then, or dies.
        if let Some(d) = down.as_mut() {
            let _ = d.wait_closed();
        }
    }
    drop(down);
    for r in &removals {
        r.run();
    }
    if late.is_some() {
        // The caller exits as soon as it reads our report; finish without it.
        let _ = process::set_parent_death_signal(None);
    }
    middle.up.tell(StartReport::Exited(code));
    drop(middle);
    if let Some(r) = late {
        r.run();
    }
    code
}

/// Steps 1 and 2 of the inner process: new user, mount, uts, ipc and pid
/// namespaces, and network unless it is shared with the host; our id maps;
/// loopback up, or our end of a shared network's link. Returns whether
/// the rootfs is served by fuse-overlayfs (the pid namespace comes later).
fn enter_namespaces(spec: &Spec, middle: &mut Middle<StartReport>) -> Result<bool, Failure> {
    // The pid namespace applies to our children: the first one becomes
    // PID 1. Mounts copied into a namespace owned by a new user namespace
    // are already slaves of the host's (mount_namespaces(7)), so nothing we
    // mount propagates back.
    let mut flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWPID;
    // fuse-overlayfs is our child too: forked after the pid namespace, it
    // would be its PID 1, and the container's PID 1 would be the next. The
    // pid namespace comes after it (step 3).
    let fuse = matches!(
        spec.rootfs,
        RootfsChoice::FuseOrCopy | RootfsChoice::Force(RootfsMode::FuseOverlayfs)
    );
    if fuse {
        flags.remove(CloneFlags::CLONE_NEWPID);
    }
    if spec.private_network {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    // A shared user namespace is joined instead, and its network namespace
    // is where our veth's other end goes: a netlink socket opened there
    // stays there after we unshare our own.
    let mut shared_net = None;
    if let Some(join) = &spec.join {
        join.namespaces
            .join()
            .map_err(|e| Failure::new(Step::JoinNamespaces, e.to_string(), exit::BURROW))?;
        let route = crate::linux::netlink::Route::open()
            .map_err(|e| Failure::io(Step::Network, &e, exit::BURROW))?;
        shared_net = Some(route);
        flags.remove(CloneFlags::CLONE_NEWUSER);
    }
    // Step 2: the caller writes our id maps; loopback comes up in a
    // private network.
    middle.unshare_mapped(flags)?;
    if let (Some(join), Some(route)) = (&spec.join, shared_net.as_mut()) {
        super::link::attach(route, &join.links)
            .map_err(|e| Failure::io(Step::Network, &e, exit::BURROW))?;
    }
    Ok(fuse)
}

/// Step 3 of the inner process: the root filesystem, said to the caller;
/// with fuse-overlayfs, the daemon is moved out of the container's cgroup
/// and the pid namespace made. Returns the directory to pivot into and
/// the daemon.
fn mount_rootfs_and_report(
    spec: &Spec,
    fuse: bool,
    middle: &mut Middle<StartReport>,
) -> Result<(PathBuf, Option<fuse_overlay::Daemon>), Failure> {
    let (mode, root, daemon) = mount_rootfs(spec)?;
    middle.up.tell(StartReport::RootfsReady {
        overlay: mode != RootfsMode::Copy,
        fuse: mode == RootfsMode::FuseOverlayfs,
    });
    if let (Some(d), Some(to)) = (
        &daemon,
        spec.cgroup.as_ref().and_then(|c| c.leave_to.as_ref()),
    ) {
        // The daemon is not the container's: its threads must not count
        // against the container's pids or memory limit, nor be frozen or
        // killed with it, as we are not.
        if let Some(pid) = d.pid() {
            if let Err(e) = std::fs::write(to.join("cgroup.procs"), pid.to_string()) {
                tracing::debug!("cannot move fuse-overlayfs out of the container's cgroup: {e}");
            }
        }
    }
    if fuse {
        // The pid namespace PID 1 is born in; and, with a daemon serving
        // the rootfs, a mount namespace of our own: PID 1's pivot_root
        // moves the root and working directory of every process in its
        // mount namespace (pivot_root(2)), and the daemon's must stay where
        // they are, off the mount it serves.
        let mut again = CloneFlags::CLONE_NEWPID;
        if daemon.is_some() {
            again |= CloneFlags::CLONE_NEWNS;
        }
        middle.unshare(again)?;
    }
    Ok((root, daemon))
}

/// Step 4 of the inner process: hold the directories `--rm` cleans up:
/// after PID 1's pivot_root in our shared mount namespace, their paths
/// are gone. Returns them, the container's directory (removed after the
/// exit report) apart.
fn prepare_removals(spec: &Spec) -> (Vec<cleanup::Removal>, Option<cleanup::Removal>) {
    let mut removals = Vec::new();
    let mut paths: Vec<PathBuf> = spec.remove_after.clone();
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
    (removals, late)
}

/// Mount the container's root filesystem in our mount namespace; returns the
/// mode used, the directory to pivot into, and the fuse-overlayfs daemon
/// serving it (fuse-overlayfs mode).
fn mount_rootfs(
    spec: &Spec,
) -> Result<(RootfsMode, std::path::PathBuf, Option<fuse_overlay::Daemon>), Failure> {
    let merged = spec.mount_point.clone();
    let empty;
    let lowers = if spec.lowers.is_empty() {
        // overlayfs needs at least one lower dir; an image may have none.
        empty = vec![spec.dir.join("empty")];
        let _ = std::fs::create_dir_all(&empty[0]);
        &empty
    } else {
        &spec.lowers
    };
    let fuse = matches!(
        spec.rootfs,
        RootfsChoice::FuseOrCopy | RootfsChoice::Force(RootfsMode::FuseOverlayfs)
    );
    if fuse {
        let (upper, work) = (spec.dir.join("upper"), spec.dir.join("work"));
        for d in [&upper, &work] {
            let _ = std::fs::create_dir_all(d);
        }
        let log = spec.dir.join("fuse-overlayfs.log");
        match fuse_overlay::Daemon::mount(lowers, Some((&upper, &work)), &merged, Some(&log)) {
            Ok(d) => return Ok((RootfsMode::FuseOverlayfs, merged, Some(d))),
            Err(e) if spec.rootfs == RootfsChoice::FuseOrCopy => {
                tracing::debug!("fuse-overlayfs failed, using a full copy: {e}");
            }
            Err(e) => {
                return Err(Failure {
                    step: Step::Overlay,
                    path: Some(merged),
                    detail: format!("{e}; try BURROW_ROOTFS=copy"),
                    errno: None,
                    code: exit::BURROW,
                })
            }
        }
    }
    let try_overlay = matches!(
        spec.rootfs,
        RootfsChoice::Auto | RootfsChoice::Force(RootfsMode::Overlay)
    );
    if try_overlay {
        match mount::overlay(
            lowers,
            &spec.dir.join("upper"),
            &spec.dir.join("work"),
            &merged,
        ) {
            Ok(()) => return Ok((RootfsMode::Overlay, merged, None)),
            Err(e) if spec.rootfs == RootfsChoice::Auto => {
                tracing::debug!("overlayfs failed, using a full copy: {e}");
            }
            Err(e) => {
                return Err(Failure {
                    step: Step::Overlay,
                    path: Some(merged),
                    detail: "try BURROW_ROOTFS=copy".into(),
                    errno: Some(e.source as i32),
                    code: exit::BURROW,
                })
            }
        }
    }
    let rootfs = spec.dir.join("rootfs");
    let marker = spec.dir.join("rootfs.complete");
    if !marker.exists() {
        copy_rootfs(spec, &rootfs)?;
        std::fs::write(&marker, b"")
            .map_err(|e| Failure::io(Step::CopyRootfs, &e, exit::BURROW).at(&marker))?;
    }
    // pivot_root needs a mount point: bind the copy onto itself.
    mount::bind(&rootfs, &rootfs, false)
        .map_err(|e| Failure::sys(Step::Bind, e.source, exit::BURROW).at(&rootfs))?;
    Ok((RootfsMode::Copy, rootfs, None))
}

/// Flatten the layers into a private copy, bottom layer first.
fn copy_rootfs(spec: &Spec, rootfs: &Path) -> Result<(), Failure> {
    let err = |e: String| Failure::new(Step::CopyRootfs, e, exit::BURROW);
    if rootfs.exists() {
        std::fs::remove_dir_all(rootfs).map_err(|e| err(e.to_string()))?;
    }
    std::fs::create_dir_all(rootfs).map_err(|e| err(e.to_string()))?;
    let bottom_up: Vec<_> = spec.lowers.iter().rev().cloned().collect();
    super::rootfs_copy::flatten_layers(&bottom_up, rootfs).map_err(|e| err(e.to_string()))
}
