//! User namespaces: the caller's subordinate id ranges, writing given
//! uid/gid map lines (directly for a single id, through newuidmap/newgidmap
//! for a range), and running a closure as root of a fresh user namespace.
//! The lines are the caller's to choose (how much of a range, where its own
//! id sits inside); the plain layout is the default.

use std::fmt::Display;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::sched::CloneFlags;
use nix::unistd::{Gid, Pid, Uid};

use serde::{Deserialize, Serialize};

use super::channel;
use super::newuser::{self, disabled_message, GrantError, Report};
use super::process;

/// A contiguous range of subordinate ids from /etc/subuid or /etc/subgid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub start: u32,
    pub count: u32,
}

/// One line of a uid or gid map: (inside, outside, count).
pub type MapLine = (u32, u32, u32);

/// The caller's ids and subordinate ranges, and the map lines a new user
/// namespace gets from them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMapping {
    pub uid: u32,
    pub gid: u32,
    /// The caller's subordinate ranges as /etc/subuid and /etc/subgid give
    /// them; mapped only when the setuid helpers are installed too.
    pub sub_uids: Option<IdRange>,
    pub sub_gids: Option<IdRange>,
    pub newuidmap: Option<PathBuf>,
    pub newgidmap: Option<PathBuf>,
    /// The lines written for a new namespace: ids of a subordinate range
    /// among them only when [`IdMapping::is_range`].
    pub uid_map: Vec<MapLine>,
    pub gid_map: Vec<MapLine>,
}

#[derive(Debug, thiserror::Error)]
pub enum UsernsError {
    #[error("{}", disabled_message())]
    Disabled(#[source] nix::Error),
    #[error("writing {what} for pid {pid}: {detail}")]
    Map {
        what: &'static str,
        pid: i32,
        #[source]
        detail: MapFailure,
    },
    /// The child failed, saying this (its words cross the process boundary
    /// as text), or ended without a word.
    #[error("in user namespace: {0}")]
    Child(String),
    /// The maps are written, but the child could not be told.
    #[error("in user namespace: {0}")]
    Tell(#[source] std::io::Error),
    /// The child's value could not be read back in this process.
    #[error("in user namespace: {0}")]
    Result(#[source] ResultError),
    #[error("{step}: {source}")]
    Sys {
        step: &'static str,
        #[source]
        source: nix::Error,
    },
}

/// Why the value a child returned could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    #[error("the child sent no result")]
    Missing,
    #[error("reading the result: {0}")]
    Read(#[source] std::io::Error),
    #[error("malformed result from the child: {0}")]
    Malformed(#[source] serde_json::Error),
}

/// Why a map could not be written.
#[derive(Debug, thiserror::Error)]
pub enum MapFailure {
    /// Writing the map file (or `setgroups`) failed with this error.
    #[error("{0}")]
    Write(std::io::Error),
    /// The map needs the setuid helper, which is not on PATH.
    #[error("not permitted directly, and {0} is not installed")]
    NoHelper(&'static str),
    #[error("cannot run {}: {error}", path.display())]
    Spawn {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{0}")]
    Wait(std::io::Error),
    /// The helper refused, saying this on its stderr.
    #[error("{0} (check /etc/subuid and /etc/subgid)")]
    Refused(String),
}

impl IdMapping {
    /// Detect the caller's mapping from `etc_dir`/subuid and subgid, with
    /// the plain map lines ([`plain_lines`]).
    pub fn detect(etc_dir: &Path) -> Self {
        let uid = Uid::current().as_raw();
        let gid = Gid::current().as_raw();
        let name = user_name(etc_dir, uid);
        let sub_uids = read_subid(&etc_dir.join("subuid"), name.as_deref(), uid);
        let sub_gids = read_subid(&etc_dir.join("subgid"), name.as_deref(), uid);
        IdMapping {
            uid,
            gid,
            sub_uids,
            sub_gids,
            newuidmap: find_in_path("newuidmap"),
            newgidmap: find_in_path("newgidmap"),
            uid_map: Vec::new(),
            gid_map: Vec::new(),
        }
        .with_maps(plain_lines)
    }

    /// The mapping that maps only the caller (what `BURROW_USERNS=single` forces).
    pub fn single(&self) -> Self {
        IdMapping {
            sub_uids: None,
            sub_gids: None,
            ..self.clone()
        }
        .with_maps(plain_lines)
    }

    /// The same ids and ranges with the map lines `lines` makes of the
    /// caller's own id and its range (none unless [`IdMapping::is_range`]).
    pub fn with_maps(self, lines: impl Fn(u32, Option<IdRange>) -> Vec<MapLine>) -> Self {
        let range = |r: Option<IdRange>| r.filter(|_| self.is_range());
        IdMapping {
            uid_map: lines(self.uid, range(self.sub_uids)),
            gid_map: lines(self.gid, range(self.sub_gids)),
            ..self
        }
    }

    /// True when ids beyond 0 inside map onto a subordinate range.
    pub fn is_range(&self) -> bool {
        self.sub_uids.is_some()
            && self.sub_gids.is_some()
            && self.newuidmap.is_some()
            && self.newgidmap.is_some()
    }

    /// Highest uid and gid that exist inside.
    pub fn max_ids(&self) -> (u32, u32) {
        let top = |lines: &[MapLine]| {
            lines
                .iter()
                .map(|&(inside, _, n)| inside + n.saturating_sub(1))
                .max()
                .unwrap_or(0)
        };
        (top(&self.uid_map), top(&self.gid_map))
    }

    /// Write the uid and gid maps of `pid`, which has just unshared its user
    /// namespace and waits for us.
    pub fn apply(&self, pid: Pid) -> Result<(), UsernsError> {
        let raw = pid.as_raw();
        match (self.is_range(), &self.newuidmap, &self.newgidmap) {
            (true, Some(nu), Some(ng)) => {
                // Both helpers are setuid programs that take a millisecond each
                // to start; run them side by side.
                let mut uid_child = spawn_map_helper(nu, raw, &self.uid_map)?;
                let mut gid_child = spawn_map_helper(ng, raw, &self.gid_map)?;
                let r1 = finish_map_helper(&mut uid_child, "uid map (newuidmap)", raw);
                let r2 = finish_map_helper(&mut gid_child, "gid map (newgidmap)", raw);
                r1.and(r2)
            }
            _ => {
                // setgroups must be denied before an unprivileged process may
                // write gid_map (user_namespaces(7), since Linux 3.19).
                write_proc(raw, "setgroups", "deny", "setgroups")?;
                write_proc(raw, "uid_map", &map_text(&self.uid_map), "uid map")?;
                write_proc(raw, "gid_map", &map_text(&self.gid_map), "gid map")
            }
        }
    }
}

/// Write maps an engine gave (an OCI bundle's `uidMappings` and
/// `gidMappings`, as (inside, outside, count) lines) for `pid`, which has
/// just unshared its user namespace: directly when we may (root of the
/// namespace above, holding CAP_SETUID/CAP_SETGID there), else through
/// newuidmap/newgidmap, else, for a map of our own id alone, directly after
/// denying setgroups (user_namespaces(7)).
pub fn write_given_maps(
    pid: Pid,
    uids: &[(u32, u32, u32)],
    gids: &[(u32, u32, u32)],
) -> Result<(), UsernsError> {
    let raw = pid.as_raw();
    let helper = |prog: &'static str, lines: &[(u32, u32, u32)], what: &'static str| {
        let path = find_in_path(prog).ok_or(UsernsError::Map {
            what,
            pid: raw,
            detail: MapFailure::NoHelper(prog),
        })?;
        let mut child = spawn_map_helper(&path, raw, lines)?;
        finish_map_helper(&mut child, what, raw)
    };
    if write_proc(raw, "uid_map", &map_text(uids), "uid map").is_err() {
        helper("newuidmap", uids, "uid map (newuidmap)")?;
    }
    if write_proc(raw, "gid_map", &map_text(gids), "gid map").is_err() {
        let own = Gid::current().as_raw();
        if gids.len() == 1 && gids[0].1 == own && gids[0].2 == 1 {
            write_proc(raw, "setgroups", "deny", "setgroups")?;
            write_proc(raw, "gid_map", &map_text(gids), "gid map")?;
        } else {
            helper("newgidmap", gids, "gid map (newgidmap)")?;
        }
    }
    Ok(())
}

/// The plain lines of a uid or gid map: the caller is 0 inside, and the
/// whole range, if any, follows from 1.
pub fn plain_lines(own: u32, range: Option<IdRange>) -> Vec<MapLine> {
    let mut v = vec![(0, own, 1)];
    v.extend(range.map(|r| (1, r.start, r.count)));
    v
}

/// Map lines as a uid_map or gid_map file takes them.
fn map_text(lines: &[MapLine]) -> String {
    lines
        .iter()
        .map(|(i, o, n)| format!("{i} {o} {n}\n"))
        .collect()
}

fn spawn_map_helper(
    prog: &Path,
    pid: i32,
    lines: &[(u32, u32, u32)],
) -> Result<std::process::Child, UsernsError> {
    let mut args = vec![pid.to_string()];
    for (i, o, n) in lines {
        args.extend([i.to_string(), o.to_string(), n.to_string()]);
    }
    Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| UsernsError::Map {
            what: "id map",
            pid,
            detail: MapFailure::Spawn {
                path: prog.to_path_buf(),
                error: e,
            },
        })
}

fn finish_map_helper(
    child: &mut std::process::Child,
    what: &'static str,
    pid: i32,
) -> Result<(), UsernsError> {
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let status = child.wait().map_err(|e| UsernsError::Map {
        what,
        pid,
        detail: MapFailure::Wait(e),
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(UsernsError::Map {
            what,
            pid,
            detail: MapFailure::Refused(err.trim().to_string()),
        })
    }
}

fn write_proc(pid: i32, file: &str, content: &str, what: &'static str) -> Result<(), UsernsError> {
    let path = format!("/proc/{pid}/{file}");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| f.write_all(content.as_bytes()))
        .map_err(|e| UsernsError::Map {
            what,
            pid,
            detail: MapFailure::Write(e),
        })
}

/// The login name of `uid` from `etc_dir`/passwd (subuid entries may name
/// the user or give the numeric uid).
fn user_name(etc_dir: &Path, uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string(etc_dir.join("passwd")).ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let _ = f.next()?;
        (f.next()?.parse::<u32>().ok()? == uid).then(|| name.to_string())
    })
}

/// The first range in a subuid/subgid file for the user (by name or number).
pub fn read_subid(path: &Path, name: Option<&str>, uid: u32) -> Option<IdRange> {
    let text = std::fs::read_to_string(path).ok()?;
    let uid_s = uid.to_string();
    text.lines().find_map(|l| {
        let mut f = l.trim().split(':');
        let who = f.next()?;
        if who != uid_s && Some(who) != name {
            return None;
        }
        let start = f.next()?.parse().ok()?;
        let count: u32 = f.next()?.parse().ok()?;
        (count > 0).then_some(IdRange { start, count })
    })
}

fn find_in_path(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

/// Run `f` as root of a new user namespace with `mapping`, in a child process.
/// The closure's error comes back to the caller as its text (it crosses a
/// process boundary). Used for work on files owned by subordinate ids:
/// extracting them, removing them.
pub fn run_in_userns<F, E>(mapping: &IdMapping, f: F) -> Result<(), UsernsError>
where
    F: FnOnce() -> Result<(), E>,
    E: Display,
{
    run_in_userns_watching(mapping, f, &mut || {})
}

/// [`run_in_userns`], with `watch` run in this process while the child
/// works (once its id maps are written, before waiting for its answer): a
/// child that streams records on a pipe of its own would stall on a full
/// pipe if this process read it only after the child was done.
pub fn run_in_userns_watching<F, E>(
    mapping: &IdMapping,
    f: F,
    watch: &mut dyn FnMut(),
) -> Result<(), UsernsError>
where
    F: FnOnce() -> Result<(), E>,
    E: Display,
{
    helper(mapping, move || f().map(|()| None), watch).map(drop)
}

/// Why a helper failed, as it tells its parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum HelperFailure {
    /// unshare(2) refused with this errno.
    Unshare(i32),
    /// The job's error, as its text.
    Job(String),
}

/// Fork a helper that unshares its user namespace, is mapped with
/// `mapping`, and runs `f`; `watch` runs here meanwhile. The descriptor
/// `f` returns, if any, comes back with its report.
fn helper<F, E>(
    mapping: &IdMapping,
    f: F,
    watch: &mut dyn FnMut(),
) -> Result<Option<OwnedFd>, UsernsError>
where
    F: FnOnce() -> Result<Option<OwnedFd>, E>,
    E: Display,
{
    let (mut up_tx, mut up_rx) =
        channel::channel::<Report<HelperFailure>>().map_err(io_sys("socketpair"))?;
    let (mut down_tx, mut down_rx) = channel::channel().map_err(io_sys("socketpair"))?;
    // The child must not keep our ends open: with our sending end in it, it
    // would never see EOF if we died before answering.
    let ours = [up_rx.as_raw_fd(), down_tx.as_raw_fd()];
    let parent = nix::unistd::getpid();
    let child = process::fork_child(move || {
        for fd in ours {
            let _ = nix::unistd::close(fd);
        }
        // A killed burrow must not leave its helper writing into a staging
        // directory the next burrow reclaims as abandoned.
        if process::set_parent_death_signal(nix::sys::signal::Signal::SIGKILL).is_err()
            || nix::unistd::getppid() != parent
        {
            return 1;
        }
        if let Err(e) = nix::sched::unshare(CloneFlags::CLONE_NEWUSER) {
            up_tx.tell(Report::Failed(HelperFailure::Unshare(e as i32)));
            return 1;
        }
        if newuser::await_maps(&mut up_tx, &mut down_rx).is_err() {
            return 1;
        }
        match f() {
            Ok(made) => {
                let fds: Vec<_> = made.iter().map(|f| f.as_fd()).collect();
                let _ = up_tx.send_with(&Report::Done, &fds);
                0
            }
            Err(e) => {
                up_tx.tell(Report::Failed(HelperFailure::Job(e.to_string())));
                1
            }
        }
    })
    .map_err(|e| UsernsError::Sys {
        step: "fork",
        source: e.errno(),
    })?;
    // The child's channel ends were moved into the closure, which fork_child
    // dropped in this process: reads below see EOF when the child is done.
    let answer = match newuser::grant_maps(&mut up_rx, &mut down_tx, || mapping.apply(child)) {
        Ok(()) => Ok(()),
        Err(GrantError::Request(_)) => Err(UsernsError::Child(String::new())),
        Err(GrantError::Instead(m)) => Err(outcome(m)),
        Err(GrantError::Write(e)) => Err(e),
        Err(GrantError::Tell(e)) => Err(UsernsError::Tell(e)),
    };
    drop(down_tx);
    let done = answer.and_then(|()| {
        watch();
        match up_rx.recv_with() {
            Ok((Report::Done, fds)) => Ok(fds.into_iter().next()),
            Ok((m, _)) => Err(outcome(m)),
            // Killed or exited without a word: the exit code says more.
            Err(_) => Err(UsernsError::Child(String::new())),
        }
    });
    let code = process::wait_exit_code(child).map_err(sys("waitpid"))?;
    match done {
        Err(UsernsError::Child(m)) if m.is_empty() => Err(UsernsError::Child(format!(
            "helper exited with code {code}"
        ))),
        other => other,
    }
}

/// What a helper's report other than `Done` means for the caller.
fn outcome(m: Report<HelperFailure>) -> UsernsError {
    match m {
        Report::Failed(HelperFailure::Unshare(errno)) => {
            UsernsError::Disabled(nix::Error::from_raw(errno))
        }
        Report::Failed(HelperFailure::Job(text)) => UsernsError::Child(text),
        // Nothing a helper sends: the exit code says more.
        _ => UsernsError::Child(String::new()),
    }
}

fn io_sys(step: &'static str) -> impl Fn(std::io::Error) -> UsernsError {
    move |e| UsernsError::Sys {
        step,
        source: nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    }
}

/// Like [`run_in_userns`], with a value back: the child writes it as JSON
/// into an anonymous file whose descriptor comes back with its report (a
/// message could fill the channel before the parent reads it).
pub fn run_in_userns_with<T, F, E>(mapping: &IdMapping, f: F) -> Result<T, UsernsError>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
    F: FnOnce() -> Result<T, E>,
    E: Display,
{
    run_in_userns_with_watching(mapping, f, &mut || {})
}

/// Why a helper with a value to return failed.
#[derive(Debug, thiserror::Error)]
enum ReturnError<E: Display> {
    #[error("{0}")]
    Job(E),
    #[error("writing the result: {0}")]
    Write(std::io::Error),
}

/// [`run_in_userns_with`], with `watch` as in [`run_in_userns_watching`].
pub fn run_in_userns_with_watching<T, F, E>(
    mapping: &IdMapping,
    f: F,
    watch: &mut dyn FnMut(),
) -> Result<T, UsernsError>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
    F: FnOnce() -> Result<T, E>,
    E: Display,
{
    use std::io::Seek;
    let fd = helper(
        mapping,
        move || {
            let value = f().map_err(ReturnError::Job)?;
            let fd = nix::sys::memfd::memfd_create(
                c"burrow-result",
                nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
            )
            .map_err(|e| ReturnError::Write(e.into()))?;
            let mut file = std::fs::File::from(fd);
            serde_json::to_writer(&mut file, &value).map_err(|e| ReturnError::Write(e.into()))?;
            Ok::<_, ReturnError<E>>(Some(OwnedFd::from(file)))
        },
        watch,
    )?;
    let mut file = std::fs::File::from(fd.ok_or(UsernsError::Result(ResultError::Missing))?);
    let mut bytes = Vec::new();
    file.rewind()
        .and_then(|()| file.read_to_end(&mut bytes))
        .map_err(|e| UsernsError::Result(ResultError::Read(e)))?;
    serde_json::from_slice(&bytes).map_err(|e| UsernsError::Result(ResultError::Malformed(e)))
}

fn sys(step: &'static str) -> impl Fn(nix::Error) -> UsernsError {
    move |source| UsernsError::Sys { step, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_maps_and_the_highest_ids_inside() {
        let r = Some(IdRange {
            start: 100000,
            count: 65536,
        });
        assert_eq!(plain_lines(1000, None), [(0, 1000, 1)]);
        assert_eq!(plain_lines(1000, r), [(0, 1000, 1), (1, 100000, 65536)]);
        let m = IdMapping {
            uid: 1000,
            gid: 1000,
            sub_uids: r,
            sub_gids: r,
            newuidmap: Some("/usr/bin/newuidmap".into()),
            newgidmap: Some("/usr/bin/newgidmap".into()),
            uid_map: Vec::new(),
            gid_map: Vec::new(),
        }
        .with_maps(plain_lines);
        assert_eq!(m.max_ids(), (65536, 65536));
        // No helpers: the range is not mapped.
        let m = IdMapping {
            newuidmap: None,
            ..m
        }
        .with_maps(plain_lines);
        assert_eq!(
            (m.uid_map.as_slice(), m.max_ids()),
            (&[(0, 1000, 1)][..], (0, 0))
        );
        assert_eq!(m.single().gid_map, [(0, 1000, 1)]);
    }

    #[test]
    fn subid_lookup_by_name_and_uid() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("subuid");
        std::fs::write(&p, "alice:100000:65536\n1001:200000:1000\nbad line\n").unwrap();
        assert_eq!(
            read_subid(&p, Some("alice"), 1000),
            Some(IdRange {
                start: 100000,
                count: 65536
            })
        );
        assert_eq!(
            read_subid(&p, Some("bob"), 1001),
            Some(IdRange {
                start: 200000,
                count: 1000
            })
        );
        assert_eq!(read_subid(&p, Some("carol"), 1002), None);
        assert_eq!(read_subid(&d.path().join("missing"), None, 1), None);
    }
}
