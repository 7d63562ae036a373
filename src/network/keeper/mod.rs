//! The keeper: one user namespace and one network namespace per user (and
//! mount namespace), shared by the user's containers on the default
//! network, so that a container's start pays neither newuidmap/newgidmap
//! nor a pasta of its own.
//!
//! ```text
//! burrow __keeper (host namespaces, detached)
//!   ├─ pasta | slirp4netns ──► holder's netns: outbound (NAT by nftables)
//!   └─ holder: its own user + network namespace, bridge burrow0 10.88.0.1/16
//!        ▲ veth bwXXXXXXXX ── eth0 in each container's network namespace
//! ```
//!
//! A container joins by setns(2) into the holder's user and network
//! namespaces, unshares the rest, and makes its own veth pair from there
//! (the sandbox does it; nothing is asked of the keeper). Its address is a
//! lease: a file under `leases/` held with an exclusive flock by the
//! container's inner process, so it is free again the moment that process
//! is gone, however it ended. While a container runs its inner process also
//! holds a shared flock on `users`; the keeper exits (taking the holder and
//! the helper with it) once it has found `users` free for its idle period.
//!
//! `state.json` names the keeper and the holder by pid and start time, so
//! a keeper left from before a reboot, a reused pid, or one whose id maps
//! no longer match `/etc/subuid` is seen as stale and replaced. The keeper
//! directory is per mount and network namespace: a keeper started in
//! another mount namespace sees another `/dev/net/tun`, `/etc/resolv.conf`
//! and helper binaries, and one started in another network namespace goes
//! out through that one.
//!
//! User networks are bridges in the same namespace (named after their
//! gateway, made by their first container), kept apart from each other by
//! the holder's firewall rules; the holder answers DNS for their
//! containers' names on every gateway's port 53 (`serve`).

use std::fs::File;
use std::io::{self, Read};
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::helper::{Helper, Kind};
use crate::linux::fs::{self, FileLock};
use crate::linux::ns::{Namespaces, NsError};
use crate::linux::process;
use crate::linux::userns::IdMapping;

mod serve;
pub use serve::serve;

/// The network containers on the default network share.
pub const SUBNET: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 0);
pub const PREFIX: u8 = 16;
/// The bridge's address: the containers' default route.
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 1);
/// The bridge in the holder's network namespace.
pub const BRIDGE: &str = "burrow0";
/// The interface group of every bridge in the holder's namespace, which
/// its firewall rules match: traffic from a bridge out to the helper is
/// masqueraded, traffic routed from one bridge to another is dropped.
pub use crate::sandbox::link::BRIDGE_GROUP;
/// The MTU of the bridge's ports, as pasta's and slirp4netns' 65520.
pub const MTU: u32 = 65520;
/// A file in the keeper's directory, there when the holder can take
/// connections made from a client's address (see `serve::transparent`).
pub const TRANSPARENT: &str = "transparent";
/// The firewall mark and routing table of those connections' replies.
pub const TRANSPARENT_MARK: u32 = 0xb0;
pub const TRANSPARENT_TABLE: u8 = 176;
/// How long a keeper with no container waits before it exits.
pub const IDLE: Duration = Duration::from_secs(60);
/// How long a starter waits for a new keeper to say it is ready.
const START_PATIENCE: Duration = Duration::from_secs(15);
/// How often the keeper looks at its helper and its users.
const TICK: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum KeeperError {
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("locking {path}: {source}")]
    Lock {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("starting it: {0}")]
    Spawn(#[source] process::DetachError),
    #[error("/proc/self/exe: {0}")]
    Exe(#[source] io::Error),
    #[error("pipe: {0}")]
    Pipe(#[source] nix::Error),
    #[error("{0} (see {log})", log = .1.display())]
    Failed(String, PathBuf),
    #[error("not ready after {0:?} (see {log})", log = .1.display())]
    Timeout(Duration, PathBuf),
    #[error("joining it: {0}")]
    Join(#[from] NsError),
    #[error("no free address left in {0}")]
    NoAddress(String),
    #[error("the keeper is not running")]
    NotRunning,
}

/// A running process named by pid and start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proc {
    pub pid: i32,
    pub start: u64,
}

impl Proc {
    /// `PID:START`, as `--adopt` takes it.
    pub fn parse(s: &str) -> Option<Proc> {
        let (pid, start) = s.split_once(':')?;
        Some(Proc {
            pid: pid.parse().ok()?,
            start: start.parse().ok()?,
        })
    }

    fn of(pid: i32) -> Option<Proc> {
        process::start_time(Path::new("/proc"), pid).map(|start| Proc { pid, start })
    }

    pub fn alive(&self) -> bool {
        process::start_time(Path::new("/proc"), self.pid) == Some(self.start)
    }
}

/// What `state.json` says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub keeper: Proc,
    pub holder: Proc,
    /// The helper giving outbound access: `pasta` or `slirp4netns`.
    pub helper: String,
}

/// A network on one of the holder's bridges: the default network, or a
/// user network (its bridge made by the first container that joins it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub subnet: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub bridge: String,
}

impl Segment {
    /// The default network, `burrow0`.
    pub fn default_network() -> Segment {
        Segment {
            subnet: SUBNET,
            prefix: PREFIX,
            gateway: GATEWAY,
            bridge: BRIDGE.to_string(),
        }
    }

    /// A user network's: the bridge is named after its gateway, so a
    /// network made again with the same subnet finds its bridge ready.
    pub fn user(subnet: Ipv4Addr, prefix: u8, gateway: Ipv4Addr) -> Segment {
        Segment {
            subnet,
            prefix,
            gateway,
            bridge: format!("bu{:08x}", u32::from(gateway)),
        }
    }

    /// Where its leases are: one directory per network, named by gateway.
    fn leases(&self, dir: &Path) -> PathBuf {
        dir.join("leases").join(self.gateway.to_string())
    }
}

/// Whether a lease file is held by a running container: its inner process
/// keeps an exclusive flock on it, so a lock we can take means nobody.
fn held(path: &Path) -> bool {
    File::open(path)
        .map(|f| fs::flock_description(&f, FileLock::ExclusiveNow).is_err())
        .unwrap_or(false)
}

/// The held leases of one network directory: address, container id, names.
fn members(network: &Path) -> Vec<(Ipv4Addr, String, Vec<String>)> {
    let Ok(entries) = std::fs::read_dir(network) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(addr) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<Ipv4Addr>().ok())
        else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        if text.is_empty() || !held(&path) {
            continue;
        }
        let mut lines = text.lines();
        let id = lines.next().unwrap_or_default().to_string();
        let names = lines.filter(|l| !l.is_empty()).map(String::from).collect();
        out.push((addr, id, names));
    }
    out
}

/// The names the running containers on the asker's networks answer to,
/// for the holder's DNS responder: each lease file held names its address
/// (the file's name) and holds the container's id, name and aliases (one
/// per line). `client` must hold a lease: a query is answered from the
/// networks the asker is on (all of them, as Docker's resolver does), and
/// from nowhere else.
pub fn names_seen_by(dir: &Path, client: Ipv4Addr) -> Option<Vec<(String, Ipv4Addr)>> {
    let networks: Vec<PathBuf> = std::fs::read_dir(dir.join("leases"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    let asker = networks.iter().find_map(|n| {
        members(n)
            .into_iter()
            .find(|(a, _, _)| *a == client)
            .map(|(_, id, _)| id)
    })?;
    let mut names = Vec::new();
    for network in &networks {
        let here = members(network);
        if !here.iter().any(|(_, id, _)| *id == asker) {
            continue;
        }
        for (addr, id, aliases) in here {
            // Docker answers a container's short id too (its hostname).
            names.push((id.get(..12).unwrap_or(&id).to_string(), addr));
            names.extend(aliases.into_iter().map(|n| (n, addr)));
        }
    }
    Some(names)
}

/// The keeper directory of the caller's mount and network namespaces under
/// the per-user runtime directory `base`: a command run in another network
/// namespace expects its containers to go out through that one.
pub fn dir(base: &Path) -> PathBuf {
    let ino = |ns: &str| {
        std::fs::metadata(format!("/proc/self/ns/{ns}"))
            .map(|m| m.ino())
            .unwrap_or(0)
    };
    base.join(format!("keeper-{}-{}", ino("mnt"), ino("net")))
}

/// What `system check` says of the caller's keeper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// None runs (none started, or it went when idle).
    Absent,
    /// Running, with its helper, and the addresses leased now.
    Running {
        keeper: i32,
        helper: String,
        leased: usize,
    },
    /// Its state names processes that are gone or are not its own (a
    /// reboot, a kill, a subuid change): the next start replaces it.
    Stale,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::Absent => write!(
                f,
                "not running (the first container on the default network starts it)"
            ),
            Status::Running { keeper, helper, leased } => write!(
                f,
                "running (pid {keeper}, outbound through {helper}), {leased} containers on its network"
            ),
            Status::Stale => write!(
                f,
                "the keeper's state is stale (the next container on the default network replaces it)"
            ),
        }
    }
}

/// The keeper of the caller's mount namespace under `base`, as it is.
pub fn status(base: &Path, mapping: &IdMapping) -> Status {
    let dir = dir(base);
    let Some(state) = read_state(&dir) else {
        return Status::Absent;
    };
    if usable(&dir, mapping).is_none() {
        return Status::Stale;
    }
    // A lease file nobody holds is free; one we cannot lock is in use.
    let leased = std::fs::read_dir(dir.join("leases"))
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|net| {
            std::fs::read_dir(net.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .filter(|e| held(&e.path()))
        .count();
    Status::Running {
        keeper: state.keeper.pid,
        helper: state.helper,
        leased,
    }
}

/// A container's part of the keeper: the namespaces to join, the locks its
/// inner process holds while it runs, and its address.
#[derive(Debug)]
pub struct Joined {
    pub namespaces: Namespaces,
    /// A shared flock on `users`: the keeper stays while it is held.
    pub users: File,
    /// Per network: an exclusive flock on the address's lease file, and
    /// the address.
    pub leases: Vec<(File, Ipv4Addr)>,
    pub helper: Kind,
    /// The holder of the namespaces.
    pub holder: Proc,
}

/// A network a container joins, and the names its DNS answers for it
/// there (name and aliases; none on the default network, where Docker
/// resolves no names either).
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    pub segment: &'a Segment,
    pub names: &'a [String],
}

/// The keeper of `base` for container `id`: the running one, or a new one
/// started now for `mapping` with `helper`; then an address leased on each
/// of its networks.
pub fn ensure(
    base: &Path,
    mapping: &IdMapping,
    helper: &Helper,
    id: &str,
    places: &[Place<'_>],
    idle: Duration,
) -> Result<Joined, KeeperError> {
    let dir = dir(base);
    let users = use_dir(&dir)?;
    let start_lock = lock(&dir.join("lock"))?;
    // A holder may end while we look (an orphan that found no user just
    // before we came): then once more, with a new one.
    let mut tries = 2;
    let (state, namespaces) = loop {
        tries -= 1;
        let state = match usable(&dir, mapping) {
            Some(s) => s,
            None => {
                // A holder that outlived its keeper still carries the
                // running containers' network: a new keeper takes it over.
                let adopt = orphaned_holder(&dir, mapping);
                if adopt.is_none() {
                    stop_stale(&dir);
                }
                start(&dir, helper, idle, adopt)?;
                usable(&dir, mapping).ok_or_else(|| {
                    KeeperError::Failed("it started but its state is not usable".into(), log(&dir))
                })?
            }
        };
        match Namespaces::open_net(Path::new("/proc"), state.holder.pid, state.holder.start) {
            Ok(ns) => break (state, ns),
            Err(e) if tries == 0 => return Err(e.into()),
            Err(_) => stop_stale(&dir),
        }
    };
    drop(start_lock);
    let leases = places
        .iter()
        .map(|p| lease(&dir, id, p))
        .collect::<Result<Vec<_>, _>>()?;
    let helper = if state.helper == Kind::Slirp4netns.name() {
        Kind::Slirp4netns
    } else {
        Kind::Pasta
    };
    Ok(Joined {
        namespaces,
        users,
        leases,
        helper,
        holder: state.holder,
    })
}

/// The running keeper's holder of `base`, its user and network namespaces
/// opened (none is started: what runs on it was started with it).
pub fn holder(base: &Path, mapping: &IdMapping) -> Result<(Proc, Namespaces), KeeperError> {
    let dir = dir(base);
    let state = usable(&dir, mapping).ok_or(KeeperError::NotRunning)?;
    let ns = Namespaces::open_net(Path::new("/proc"), state.holder.pid, state.holder.start)?;
    Ok((state.holder, ns))
}

/// Forget removed network `segment`'s leases in the keeper of `base`,
/// unless a container still holds one: true when none was held (its bridge
/// may go too).
pub fn forget(base: &Path, segment: &Segment) -> bool {
    let leases = segment.leases(&dir(base));
    let Ok(entries) = std::fs::read_dir(&leases) else {
        return true;
    };
    if entries.flatten().any(|e| held(&e.path())) {
        return false;
    }
    let _ = std::fs::remove_dir_all(&leases);
    true
}

/// A lease given to a running container after its start (a network it
/// was connected to): held by `burrow __lease PID:START LEASE`, a process
/// of its own that exits when PID 1 does. `lease` is the locked file,
/// handed over as descriptor 3 so the lock never lapses.
pub fn hold_for(
    base: &Path,
    pid1: Proc,
    segment: &Segment,
    lease: &File,
    address: Ipv4Addr,
) -> Result<(), KeeperError> {
    let exe = std::fs::read_link("/proc/self/exe").map_err(KeeperError::Exe)?;
    let path = segment.leases(&dir(base)).join(address.to_string());
    let null = File::options()
        .write(true)
        .open("/dev/null")
        .map_err(|source| KeeperError::File {
            path: "/dev/null".into(),
            source,
        })?;
    let who = format!("{}:{}", pid1.pid, pid1.start);
    let args = ["__lease".as_ref(), who.as_ref(), path.as_os_str()];
    process::spawn_detached(&exe, "burrow", &args, &null, Some(lease.as_raw_fd()))
        .map_err(KeeperError::Spawn)
}

/// `burrow __lease PID:START LEASE`: keep descriptor 3 (the lease, locked)
/// open until that process is gone.
pub fn hold_lease(pid1: Proc) -> i32 {
    while pid1.alive() {
        std::thread::sleep(TICK);
    }
    0
}

/// Give up a running container's address on `segment`: its names go from
/// the network's DNS at once (the lease file emptied), and the process
/// holding a lease given after its start ends. A lease its inner process
/// holds stays held (the address unused) until the container ends.
pub fn release(base: &Path, segment: &Segment, address: Ipv4Addr) {
    let path = segment.leases(&dir(base)).join(address.to_string());
    if held(&path) {
        let _ = std::fs::write(&path, "");
    }
    let want = path.as_os_str().as_encoded_bytes().to_vec();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        let args = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let mut parts = args.split(|&b| b == 0);
        let lease_holder =
            parts.nth(1) == Some(b"__lease".as_slice()) && parts.nth(1) == Some(want.as_slice());
        if lease_holder {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// A shared flock on `dir/users`, the directory made if need be. Taken
/// before the state is read: a keeper deciding it is idle holds `users`
/// exclusively while it goes (and removes its directory), so we wait for
/// it to be gone, and start over when the file we locked went with it.
fn use_dir(dir: &Path) -> Result<File, KeeperError> {
    let path = dir.join("users");
    for _ in 0..3 {
        make_dir(dir)?;
        let users = open_rw(&path)?;
        fs::flock_description(&users, FileLock::Shared).map_err(|source| KeeperError::Lock {
            path: path.clone(),
            source,
        })?;
        let same =
            |a: &std::fs::Metadata, b: &std::fs::Metadata| a.ino() == b.ino() && a.dev() == b.dev();
        match (users.metadata(), std::fs::metadata(&path)) {
            (Ok(held), Ok(now)) if same(&held, &now) => return Ok(users),
            _ => continue,
        }
    }
    Err(KeeperError::File {
        path,
        source: io::Error::other("removed again and again while opening it"),
    })
}

fn log(dir: &Path) -> PathBuf {
    dir.join("keeper.log")
}

fn make_dir(dir: &Path) -> Result<(), KeeperError> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(KeeperError::File {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

fn open_rw(path: &Path) -> Result<File, KeeperError> {
    File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|source| KeeperError::File {
            path: path.to_path_buf(),
            source,
        })
}

/// The start lock, held (and released on drop) while a keeper is checked
/// and, if need be, started.
fn lock(path: &Path) -> Result<nix::fcntl::Flock<File>, KeeperError> {
    nix::fcntl::Flock::lock(open_rw(path)?, nix::fcntl::FlockArg::LockExclusive).map_err(
        |(_, source)| KeeperError::Lock {
            path: path.to_path_buf(),
            source,
        },
    )
}

fn read_state(dir: &Path) -> Option<State> {
    let text = std::fs::read(dir.join("state.json")).ok()?;
    serde_json::from_slice(&text).ok()
}

/// The recorded keeper, when both its processes are the recorded ones and
/// the holder's id maps are what `mapping` writes today.
fn usable(dir: &Path, mapping: &IdMapping) -> Option<State> {
    let s = read_state(dir)?;
    (s.keeper.alive() && s.holder.alive() && maps_match(s.holder.pid, mapping)).then_some(s)
}

/// The recorded holder, alive with the right maps, when its keeper is gone.
fn orphaned_holder(dir: &Path, mapping: &IdMapping) -> Option<Proc> {
    let s = read_state(dir)?;
    (!s.keeper.alive() && s.holder.alive() && maps_match(s.holder.pid, mapping)).then_some(s.holder)
}

/// The holder's uid and gid maps are the ones `mapping` writes.
fn maps_match(pid: i32, mapping: &IdMapping) -> bool {
    let read = |name: &str| -> Option<Vec<(u32, u32, u32)>> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/{name}")).ok()?;
        text.lines()
            .map(|l| {
                let mut n = l.split_whitespace().map(|w| w.parse::<u32>().ok());
                Some((n.next()??, n.next()??, n.next()??))
            })
            .collect()
    };
    read("uid_map").as_ref() == Some(&mapping.uid_map)
        && read("gid_map").as_ref() == Some(&mapping.gid_map)
}

/// End what a stale state names (the processes are checked by start time,
/// so a reused pid is left alone) and forget it.
fn stop_stale(dir: &Path) {
    if let Some(s) = read_state(dir) {
        for p in [s.keeper, s.holder] {
            if p.alive() {
                let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
            }
        }
    }
    let _ = std::fs::remove_file(dir.join("state.json"));
}

/// Remove the keeper directories beside `own` that nothing uses any more:
/// no container holds their `users`, and the keeper and holder their state
/// names are gone (a keeper killed with its mount namespace, a reboot that
/// kept the runtime directory). A keeper that ends when idle removes its
/// own; these would stay. Each is removed under an exclusive lock on its
/// `users`, as an idle keeper removes its own, so a container joining it
/// now waits and starts over in a new one.
fn sweep(own: &Path) {
    let Some(base) = own.parent() else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_keeper = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with("keeper-"));
        if !is_keeper || path == own || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(users) = File::options()
            .read(true)
            .write(true)
            .open(path.join("users"))
        else {
            continue;
        };
        if fs::flock_description(&users, FileLock::ExclusiveNow).is_err() {
            continue;
        }
        let running = read_state(&path).is_some_and(|s| s.keeper.alive() || s.holder.alive());
        if !running {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// Start `burrow __keeper DIR` detached and wait until it says it is ready
/// (a line on descriptor 3) or why not.
fn start(
    dir: &Path,
    helper: &Helper,
    idle: Duration,
    adopt: Option<Proc>,
) -> Result<(), KeeperError> {
    sweep(dir);
    let exe = std::fs::read_link("/proc/self/exe").map_err(KeeperError::Exe)?;
    let log_path = log(dir);
    let log = File::create(&log_path).map_err(|source| KeeperError::File {
        path: log_path.clone(),
        source,
    })?;
    let (ready_r, ready_w) = process::pipe().map_err(KeeperError::Pipe)?;
    let idle = idle.as_secs().to_string();
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "__keeper".as_ref(),
        "--helper".as_ref(),
        helper.path.as_os_str(),
        "--idle".as_ref(),
        idle.as_ref(),
    ];
    let adopt = adopt.map(|p| format!("{}:{}", p.pid, p.start));
    if let Some(a) = &adopt {
        args.push("--adopt".as_ref());
        args.push(a.as_ref());
    }
    args.push(dir.as_os_str());
    process::spawn_detached(&exe, "burrow", &args, &log, Some(ready_w.as_raw_fd()))
        .map_err(KeeperError::Spawn)?;
    drop(ready_w);
    let mut said = String::new();
    let deadline = Instant::now() + START_PATIENCE;
    let mut r = File::from(ready_r);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(KeeperError::Timeout(START_PATIENCE, log_path));
        }
        let mut fds = [nix::poll::PollFd::new(
            r.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)) {
            Ok(0) | Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(KeeperError::Pipe(e)),
            Ok(_) => {}
        }
        let mut buf = [0u8; 512];
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => said.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
        if said.contains('\n') {
            break;
        }
    }
    match said.trim_end() {
        "ready" => Ok(()),
        "" => Err(KeeperError::Failed(
            "it ended without saying why".into(),
            log_path,
        )),
        why => Err(KeeperError::Failed(why.to_string(), log_path)),
    }
}

/// An address of `place`'s subnet for container `id`: the first free lease
/// from a place its id picks (so two containers seldom try the same one).
/// The lease file holds its id and names, for the network's DNS responder.
fn lease(dir: &Path, id: &str, place: &Place<'_>) -> Result<(File, Ipv4Addr), KeeperError> {
    let leases = place.segment.leases(dir);
    make_dir(&dir.join("leases"))?;
    make_dir(&leases)?;
    let Segment {
        subnet,
        prefix,
        gateway,
        ..
    } = *place.segment;
    // Host numbers from 1 to the last but one (the broadcast), the
    // gateway's skipped.
    let hosts: u32 = (1u32 << (32 - prefix)).saturating_sub(2);
    let seed = u32::from_str_radix(id.get(..8).unwrap_or("0"), 16).unwrap_or(0);
    let mut record = format!("{id}\n");
    for n in place.names {
        record.push_str(n);
        record.push('\n');
    }
    for i in 0..hosts {
        let host = 1 + (seed.wrapping_add(i) % hosts);
        let address = Ipv4Addr::from(u32::from(subnet) | host);
        if address == gateway {
            continue;
        }
        let path = leases.join(address.to_string());
        let f = open_rw(&path)?;
        match fs::flock_description(&f, FileLock::ExclusiveNow) {
            Ok(()) => {
                let _ = std::fs::write(&path, &record);
                return Ok((f, address));
            }
            Err(nix::Error::EWOULDBLOCK) => continue,
            Err(source) => return Err(KeeperError::Lock { path, source }),
        }
    }
    Err(KeeperError::NoAddress(format!("{subnet}/{prefix}")))
}

#[cfg(test)]
mod tests;
