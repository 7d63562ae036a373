//! Joining a running process's namespaces: `/proc/PID/ns/*` opened through a
//! pinned `/proc/PID` directory fd (so a reused pid cannot swap the process
//! under us), and setns(2) in the order the kernel requires.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{openat, OFlag};
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;

#[derive(Debug, thiserror::Error)]
pub enum NsError {
    #[error("process {pid} is gone")]
    Gone { pid: i32 },
    #[error("process {pid} is no longer the one recorded (its pid was reused)")]
    Reused { pid: i32 },
    #[error("opening {path:?}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("joining the {kind} namespace: {source}")]
    Join {
        kind: &'static str,
        #[source]
        source: nix::Error,
    },
}

/// The order of joining: user first, so that we hold capabilities in the
/// namespace that owns the others (setns(2): joining a mount namespace needs
/// CAP_SYS_ADMIN in its owning user namespace); pid last, as it only takes
/// effect for children. A namespace that is the caller's own (the network
/// of a `--network host` container, or every one an engine's container
/// shares with its runtime) is skipped: joining it would change nothing.
const ORDER: [(&str, CloneFlags); 6] = [
    ("user", CloneFlags::CLONE_NEWUSER),
    ("mnt", CloneFlags::CLONE_NEWNS),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
];

/// The user and network namespaces only: what a port forwarder's dialer
/// joins to connect inside a container.
const NET_ONLY: [(&str, CloneFlags); 2] = [
    ("user", CloneFlags::CLONE_NEWUSER),
    ("net", CloneFlags::CLONE_NEWNET),
];

/// Open namespace files of one process, ready to join.
#[derive(Debug)]
pub struct Namespaces {
    fds: Vec<(&'static str, CloneFlags, OwnedFd)>,
    /// `/proc/PID/setgroups` says "allow": the user namespace has a full
    /// gid map written by newgidmap, so setgroups(2) works inside.
    pub setgroups_allowed: bool,
}

impl Namespaces {
    /// Open the user, mnt, uts, ipc and pid namespaces of `pid` under
    /// `proc_root`, provided it is still the process that started at
    /// `start_time` (clock ticks since boot, field 22 of /proc/PID/stat).
    ///
    /// The `/proc/PID` directory fd refers to one process for its whole
    /// life: once that process is gone, lookups through it fail instead of
    /// reaching a newer process with the same pid.
    pub fn open(proc_root: &Path, pid: i32, start_time: u64) -> Result<Self, NsError> {
        Self::open_kinds(proc_root, pid, start_time, &ORDER)
    }

    /// Like [`open`](Self::open), the user and network namespaces only.
    pub fn open_net(proc_root: &Path, pid: i32, start_time: u64) -> Result<Self, NsError> {
        Self::open_kinds(proc_root, pid, start_time, &NET_ONLY)
    }

    fn open_kinds(
        proc_root: &Path,
        pid: i32,
        start_time: u64,
        kinds: &[(&'static str, CloneFlags)],
    ) -> Result<Self, NsError> {
        let dir_path = proc_root.join(pid.to_string());
        let dir = nix::fcntl::open(
            &dir_path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            nix::Error::ENOENT | nix::Error::ESRCH => NsError::Gone { pid },
            e => NsError::Open {
                path: dir_path.clone(),
                source: e,
            },
        })?;
        let read = |name: &str| -> Result<String, NsError> {
            let fd = open_in(&dir, &dir_path, name, pid)?;
            let mut s = String::new();
            File::from(fd)
                .read_to_string(&mut s)
                .map_err(|_| NsError::Gone { pid })?;
            Ok(s)
        };
        if crate::linux::process::parse_start_time(&read("stat")?) != Some(start_time) {
            return Err(NsError::Reused { pid });
        }
        let mut fds = Vec::with_capacity(kinds.len());
        for &(kind, flag) in kinds {
            let fd = open_in(&dir, &dir_path, &format!("ns/{kind}"), pid)?;
            // One that is ours already is skipped: joining it would change
            // nothing, and setns(2) refuses a user namespace one is in
            // (EINVAL) and one owned by a user namespace we hold no
            // capability in (EPERM). burrow's own containers share only the
            // network namespace (`host`); an engine that runs its runtime
            // as root of the user namespace it gives containers (rootless
            // podman) shares that one.
            if same_as_ours(&fd, kind) {
                continue;
            }
            fds.push((kind, flag, fd));
        }
        let setgroups_allowed = read("setgroups")?.trim() == "allow";
        // The fds are open: were they still the recorded process's? A dead
        // process's directory answers nothing, so this read proves it.
        if crate::linux::process::parse_start_time(&read("stat")?) != Some(start_time) {
            return Err(NsError::Reused { pid });
        }
        Ok(Namespaces {
            fds,
            setgroups_allowed,
        })
    }

    /// The open namespace files, for a child that must keep them open
    /// while it closes everything else.
    pub fn raw_fds(&self) -> Vec<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        self.fds.iter().map(|(_, _, fd)| fd.as_raw_fd()).collect()
    }

    /// Join every namespace, user first. Must be called by a single-threaded
    /// process that shares no fs_struct (setns(2) refuses CLONE_NEWUSER
    /// otherwise): a freshly forked child of burrow is one. Joining the mount
    /// namespace sets root and cwd to that namespace's root; joining the pid
    /// namespace applies to children forked afterwards.
    pub fn join(&self) -> Result<(), NsError> {
        for (kind, flag, fd) in &self.fds {
            nix::sched::setns(fd.as_fd(), *flag).map_err(|e| NsError::Join { kind, source: e })?;
        }
        Ok(())
    }
}

/// Set the NIS domain name of our UTS namespace (setdomainname(2); nix
/// has only the hostname's call).
pub fn set_domainname(name: &str) -> nix::Result<()> {
    // SAFETY: the kernel reads `len` bytes from the pointer, which borrows
    // `name` for the duration of the call.
    let r = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    if r == 0 {
        Ok(())
    } else {
        Err(nix::Error::last())
    }
}

/// Whether the namespace `fd` is the one this process is in (same device and
/// inode as `/proc/self/ns/KIND`, namespaces(7)).
fn same_as_ours(fd: &OwnedFd, kind: &str) -> bool {
    let theirs = nix::sys::stat::fstat(fd);
    let ours = nix::sys::stat::stat(format!("/proc/self/ns/{kind}").as_str());
    matches!((theirs, ours), (Ok(a), Ok(b)) if a.st_dev == b.st_dev && a.st_ino == b.st_ino)
}

fn open_in(dir: &OwnedFd, dir_path: &Path, name: &str, pid: i32) -> Result<OwnedFd, NsError> {
    openat(dir, name, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).map_err(|e| match e {
        nix::Error::ENOENT | nix::Error::ESRCH => NsError::Gone { pid },
        e => NsError::Open {
            path: dir_path.join(name),
            source: e,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_our_own_namespaces_and_refuses_a_wrong_start_time() {
        let proc_root = Path::new("/proc");
        let me = std::process::id() as i32;
        let start = crate::linux::process::start_time(proc_root, me).unwrap();
        let ns = Namespaces::open(proc_root, me, start).unwrap();
        // Every namespace of our own is skipped: joining is a no-op.
        assert!(ns.fds.is_empty(), "{:?}", ns.fds);
        ns.join().unwrap();
        assert!(matches!(
            Namespaces::open(proc_root, me, start + 1),
            Err(NsError::Reused { .. })
        ));
        assert!(matches!(
            Namespaces::open(proc_root, i32::MAX, start),
            Err(NsError::Gone { .. })
        ));
    }

    #[test]
    fn start_time_survives_odd_command_names() {
        let mut stat = String::from("42 (a) b (c)) S");
        for n in 4..=21 {
            stat.push_str(&format!(" {n}"));
        }
        stat.push_str(" 777 23 24");
        assert_eq!(crate::linux::process::parse_start_time(&stat), Some(777));
        assert_eq!(crate::linux::process::parse_start_time("garbage"), None);
    }
}
