//! A user network's switch: one unprivileged process per network
//! (`burrow __switch NAME`, started detached by the first member) that
//! forwards Ethernet frames between its members' TAP devices with a MAC
//! learning table, leases their addresses, and keeps every member's
//! `/etc/hosts` listing the others.
//!
//! ```text
//! supervisor of A ──seqpacket── switch ──seqpacket── supervisor of B
//!   (connection held while A runs)  │ tap fds (SCM_RIGHTS)
//!   A's netns: ethN ◄── frames ──► poll loop ◄── frames ──► B's netns: ethN
//! ```
//!
//! A member is its supervisor's connection: `Join` leases an address,
//! `Attach` hands over the TAP device, and `Leave` (the container ended;
//! answered once its names are gone) or EOF (its supervisor died) closes
//! the TAP, frees the address and removes its names.
//! With no member left the switch removes its socket and exits. One switch
//! per network is ensured by a lock file held for its whole life.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use serde::{Deserialize, Serialize};

use super::user::Network;
use crate::linux::seqpacket;

/// The MTU of every member's TAP device: frames this large cross the
/// switch in one read and one write, as slirp4netns' 65520.
pub const MTU: u32 = 65520;
/// Ethernet header + MTU, with room to spare.
const FRAME: usize = 65536 + 64;
/// How long a switch nobody joins waits before it exits.
const IDLE: Duration = Duration::from_secs(10);
/// Frames read from one TAP per wakeup, so one busy member cannot starve
/// the others.
const BURST: usize = 64;
/// The line after which the switch owns a member's `/etc/hosts`.
const HOSTS_MARKER: &str = "# burrow user network";

/// A member's request.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// Lease an address for container `id`, known by `name` and `aliases`,
    /// whose `/etc/hosts` (on the host side) is `hosts_file`.
    Join {
        id: String,
        name: String,
        aliases: Vec<String>,
        hosts_file: PathBuf,
    },
    /// The TAP device comes with this message.
    Attach,
    /// The container has ended: answered once the others' `/etc/hosts` no
    /// longer name it, so whoever waits for the end (`rm -f`) sees it gone
    /// from the network. A member that just closes its connection (killed)
    /// leaves the same way, without the answer.
    Leave,
}

/// The switch's answer.
#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    Lease { ip: Ipv4Addr, prefix: u8 },
    Joined,
    Left,
    Refused(String),
}

/// Where the switch of `net` listens, in the runtime dir (unix socket
/// paths are limited to 107 bytes: named by the short id).
pub fn socket_path(runtime: &Path, net: &Network) -> PathBuf {
    runtime.join(format!("net-{}.sock", &net.id[..12]))
}

fn lock_path(runtime: &Path, net: &Network) -> PathBuf {
    runtime.join(format!("net-{}.lock", &net.id[..12]))
}

/// The switch's log, for what it could not do (a hosts file it could not
/// write).
pub fn log_path(runtime: &Path, net: &Network) -> PathBuf {
    runtime.join(format!("net-{}.log", &net.id[..12]))
}

/// The MAC a member with address `ip` gets: locally administered and
/// derived from the address (Docker's 02:42 scheme), so a reused address
/// keeps the MAC the other members' ARP caches hold for it.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

pub fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

struct Member {
    conn: OwnedFd,
    id: String,
    name: String,
    aliases: Vec<String>,
    hosts_file: PathBuf,
    ip: Option<Ipv4Addr>,
    tap: Option<OwnedFd>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Listener,
    Conn(usize),
    Tap(usize),
}

struct Switch<'a> {
    net: &'a Network,
    /// A member has joined since the start: the next time none is left,
    /// the switch's work is done. (A connection that never joined, such as
    /// another switch checking that this one answers, does not count.)
    joined_once: bool,
    containers_dir: &'a Path,
    members: Vec<Option<Member>>,
    macs: HashMap<[u8; 6], usize>,
    log: Option<File>,
}

/// Remove what the switches of a removed network left in the runtime dir
/// (its lock and log). No container names the network any more, so no
/// switch can start for it.
pub fn remove_leftovers(runtime: &Path, net: &Network) {
    let _ = std::fs::remove_file(lock_path(runtime, net));
    let _ = std::fs::remove_file(log_path(runtime, net));
}

/// Run the switch of `net` until its last member leaves. Returns the exit
/// code: 0 also when another switch already serves the network. Members'
/// hosts files must be `containers/ID/hosts` under `containers_dir`.
pub fn serve(runtime: &Path, containers_dir: &Path, net: &Network) -> i32 {
    let lock_file = match File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path(runtime, net))
    {
        Ok(f) => f,
        Err(_) => return 1,
    };
    // A switch that is exiting holds the lock until its socket is gone; a
    // live one holds it for good and answers on its socket, and then we
    // are not needed (several members starting at once each start one).
    let sock_path = socket_path(runtime, net);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut file = lock_file;
    let _lock = loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(l) => break l,
            Err(_) if seqpacket::connect_to(&sock_path).is_ok() => return 0,
            Err((f, _)) if Instant::now() < deadline => {
                file = f;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => return 0,
        }
    };
    let _ = std::fs::remove_file(&sock_path);
    let listener = match seqpacket::listen_at(&sock_path) {
        Ok(l) => l,
        Err(_) => return 1,
    };
    let mut sw = Switch {
        net,
        joined_once: false,
        containers_dir,
        members: Vec::new(),
        macs: HashMap::new(),
        log: File::options()
            .create(true)
            .append(true)
            .open(log_path(runtime, net))
            .ok(),
    };
    sw.run(&listener);
    // The socket goes before the lock: a new switch never loses its socket
    // to an old one's cleanup.
    drop(listener);
    let _ = std::fs::remove_file(&sock_path);
    0
}

impl Switch<'_> {
    fn run(&mut self, listener: &OwnedFd) {
        let started = Instant::now();
        let mut frame = vec![0u8; FRAME];
        loop {
            if self.members.iter().all(Option::is_none) {
                if self.joined_once {
                    return;
                }
                if started.elapsed() >= IDLE {
                    return;
                }
            }
            let mut sources = vec![Source::Listener];
            let mut fds = vec![PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
            for (i, m) in self.members.iter().enumerate() {
                let Some(m) = m else { continue };
                sources.push(Source::Conn(i));
                fds.push(PollFd::new(m.conn.as_fd(), PollFlags::POLLIN));
                if let Some(t) = &m.tap {
                    sources.push(Source::Tap(i));
                    fds.push(PollFd::new(t.as_fd(), PollFlags::POLLIN));
                }
            }
            let timeout = PollTimeout::try_from(1000).unwrap_or(PollTimeout::NONE);
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(nix::Error::EINTR) => continue,
                Err(_) => return,
            }
            let ready: Vec<Source> = crate::linux::process::ready_among(sources, &fds);
            drop(fds);
            for s in ready {
                match s {
                    Source::Listener => {
                        while let Ok(conn) = seqpacket::accept(listener) {
                            self.add(conn);
                        }
                    }
                    Source::Conn(i) => self.request(i),
                    Source::Tap(i) => self.frames(i, &mut frame),
                }
            }
        }
    }

    fn add(&mut self, conn: OwnedFd) {
        let m = Member {
            conn,
            id: String::new(),
            name: String::new(),
            aliases: Vec::new(),
            hosts_file: PathBuf::new(),
            ip: None,
            tap: None,
        };
        match self.members.iter().position(Option::is_none) {
            Some(i) => self.members[i] = Some(m),
            None => self.members.push(Some(m)),
        }
    }

    fn reply(&self, i: usize, r: &Reply) {
        if let Some(m) = &self.members[i] {
            let bytes = serde_json::to_vec(r).expect("reply serializes");
            let _ = seqpacket::send(m.conn.as_raw_fd(), &bytes, None);
        }
    }

    /// A message from member `i`'s supervisor, or its EOF.
    fn request(&mut self, i: usize) {
        let Some(m) = &self.members[i] else { return };
        let mut buf = vec![0u8; 64 * 1024];
        let (n, fd) = match seqpacket::recv(m.conn.as_raw_fd(), &mut buf) {
            Ok((n, fd)) if n > 0 => (n, fd),
            Err(nix::Error::EINTR | nix::Error::EAGAIN) => return,
            _ => return self.leave(i),
        };
        match serde_json::from_slice::<Request>(&buf[..n]) {
            Ok(Request::Join {
                id,
                name,
                aliases,
                hosts_file,
            }) => {
                // The switch writes only where a container's hosts file is.
                let expected = self.containers_dir.join(&id).join("hosts");
                if id.is_empty() || id.contains('/') || hosts_file != expected {
                    self.reply(
                        i,
                        &Reply::Refused(format!("{hosts_file:?} is not a container's hosts file")),
                    );
                    return self.leave(i);
                }
                let Some(ip) = self.free_address() else {
                    let why = format!("no free address left in {}", self.net.subnet());
                    self.reply(i, &Reply::Refused(why));
                    return self.leave(i);
                };
                if let Some(m) = &mut self.members[i] {
                    (m.id, m.name, m.aliases, m.hosts_file) = (id, name, aliases, hosts_file);
                    m.ip = Some(ip);
                }
                self.joined_once = true;
                let prefix = self.net.subnet().prefix;
                self.reply(i, &Reply::Lease { ip, prefix });
            }
            Ok(Request::Attach) => {
                let leased = self.members[i].as_ref().is_some_and(|m| m.ip.is_some());
                match fd {
                    Some(tap) if leased => {
                        let _ = nix::fcntl::fcntl(
                            &tap,
                            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
                        );
                        if let Some(m) = &mut self.members[i] {
                            m.tap = Some(tap);
                        }
                        // Everyone's names are in place before the new
                        // member's command runs.
                        self.rewrite_hosts();
                        self.reply(i, &Reply::Joined);
                    }
                    _ => {
                        self.reply(
                            i,
                            &Reply::Refused("attach without a lease or a device".into()),
                        );
                        self.leave(i);
                    }
                }
            }
            Ok(Request::Leave) => {
                // Out of everyone's hosts first, then the answer (on a
                // copy of the connection: leaving closes the member's).
                let conn = self.members[i]
                    .as_ref()
                    .and_then(|m| m.conn.try_clone().ok());
                self.leave(i);
                if let Some(c) = conn {
                    let bytes = serde_json::to_vec(&Reply::Left).expect("reply serializes");
                    let _ = seqpacket::send(c.as_raw_fd(), &bytes, None);
                }
            }
            Err(e) => {
                self.reply(i, &Reply::Refused(format!("bad request: {e}")));
                self.leave(i);
            }
        }
    }

    /// The lowest address of the subnet no member holds.
    fn free_address(&self) -> Option<Ipv4Addr> {
        let held: Vec<Ipv4Addr> = self.members.iter().flatten().filter_map(|m| m.ip).collect();
        self.net.subnet().hosts().find(|a| !held.contains(a))
    }

    /// Member `i` is gone: its TAP closes (the container's namespace is
    /// released with it), its address is free, its names disappear.
    fn leave(&mut self, i: usize) {
        let had_tap = self.members[i].as_ref().is_some_and(|m| m.tap.is_some());
        self.members[i] = None;
        self.macs.retain(|_, port| *port != i);
        if had_tap {
            self.rewrite_hosts();
        }
    }

    /// Read frames from member `i`'s TAP and forward each: to the port its
    /// destination MAC was learned on, else (broadcast, multicast, unknown)
    /// to every other member.
    fn frames(&mut self, i: usize, frame: &mut [u8]) {
        for _ in 0..BURST {
            let Some(Some(m)) = self.members.get(i) else {
                return;
            };
            let Some(tap) = &m.tap else { return };
            let n = match nix::unistd::read(tap.as_fd(), frame) {
                Ok(n) if n >= 14 => n,
                Ok(0) => return self.leave(i),
                Ok(_) => continue,
                Err(nix::Error::EAGAIN | nix::Error::EINTR) => return,
                // EBADFD: the device is gone.
                Err(_) => return self.leave(i),
            };
            let f = &frame[..n];
            let dst: [u8; 6] = f[0..6].try_into().expect("six bytes");
            let src: [u8; 6] = f[6..12].try_into().expect("six bytes");
            if src[0] & 1 == 0 {
                self.macs.insert(src, i);
            }
            let to_one = dst[0] & 1 == 0;
            match self.macs.get(&dst) {
                Some(&port) if to_one => {
                    if port != i {
                        self.send_to(port, f);
                    }
                }
                _ => {
                    for port in 0..self.members.len() {
                        if port != i {
                            self.send_to(port, f);
                        }
                    }
                }
            }
        }
    }

    /// A full device queue drops the frame, as a switch does; TCP resends.
    fn send_to(&self, port: usize, f: &[u8]) {
        if let Some(Some(Member { tap: Some(t), .. })) = self.members.get(port) {
            let _ = nix::unistd::write(t, f);
        }
    }

    /// Write every attached member's `/etc/hosts`: what it had before the
    /// marker, then one line per attached member. Truncated and written in
    /// place: the file is bind-mounted into the container, and a rename
    /// would leave the container looking at the old inode.
    fn rewrite_hosts(&mut self) {
        let entries: Vec<(Ipv4Addr, Vec<String>)> = self
            .members
            .iter()
            .flatten()
            .filter(|m| m.tap.is_some())
            .filter_map(|m| {
                let mut names = vec![m.name.clone()];
                names.extend(m.aliases.iter().cloned());
                names.push(m.id[..m.id.len().min(12)].to_string());
                Some((m.ip?, names))
            })
            .collect();
        let mut failures = Vec::new();
        for m in self.members.iter().flatten().filter(|m| m.tap.is_some()) {
            let current = std::fs::read_to_string(&m.hosts_file).unwrap_or_default();
            let text = hosts_with_members(&current, &self.net.name, &entries);
            let written = File::options()
                .write(true)
                .truncate(true)
                .open(&m.hosts_file)
                .and_then(|mut f| f.write_all(text.as_bytes()));
            if let Err(e) = written {
                failures.push(format!("{:?}: {e}", m.hosts_file));
            }
        }
        if let Some(log) = &mut self.log {
            for f in failures {
                let _ = writeln!(log, "writing {f}");
            }
        }
    }
}

/// `current` (a member's `/etc/hosts`) with its user-network section
/// replaced by `entries`.
pub fn hosts_with_members(
    current: &str,
    network: &str,
    entries: &[(Ipv4Addr, Vec<String>)],
) -> String {
    let mut out: String = match current.find(HOSTS_MARKER) {
        Some(at) => current[..at].to_string(),
        None => current.to_string(),
    };
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&format!("{HOSTS_MARKER} {network}\n"));
    for (ip, names) in entries {
        out.push_str(&format!("{ip}\t{}\n", names.join(" ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_sections_are_replaced_not_appended() {
        let base = "127.0.0.1\tlocalhost\n127.0.1.1\tweb\n";
        let one = hosts_with_members(
            base,
            "appnet",
            &[(
                Ipv4Addr::new(10, 89, 0, 2),
                vec!["web".into(), "www".into()],
            )],
        );
        assert_eq!(
            one,
            format!("{base}# burrow user network appnet\n10.89.0.2\tweb www\n")
        );
        let two = hosts_with_members(
            &one,
            "appnet",
            &[
                (Ipv4Addr::new(10, 89, 0, 2), vec!["web".into()]),
                (Ipv4Addr::new(10, 89, 0, 3), vec!["db".into()]),
            ],
        );
        assert!(two.starts_with(base));
        assert_eq!(two.matches(HOSTS_MARKER).count(), 1);
        assert!(two.contains("10.89.0.3\tdb\n") && !two.contains("www"));
        let none = hosts_with_members(&two, "appnet", &[]);
        assert_eq!(none, format!("{base}# burrow user network appnet\n"));
    }

    #[test]
    fn macs_follow_the_address() {
        assert_eq!(
            mac_text(mac_for(Ipv4Addr::new(10, 89, 0, 2))),
            "02:42:0a:59:00:02"
        );
    }
}
