//! The built-in port forwarder, run by a container's monitor in its event
//! loop (rootlesskit's "builtin" port driver design): it listens on the
//! host ports, and for each TCP connection a short-lived dialer forked into
//! the container's user and network namespaces connects to
//! `127.0.0.1:PORT` there and hands the connected socket back over a unix
//! socket (SCM_RIGHTS, unix(7)); the monitor then moves bytes both ways
//! with non-blocking splice(2) through a pipe. UDP is a datagram relay: one
//! socket inside the container per client address.
//!
//! It needs neither pasta nor slirp4netns. The container sees connections
//! coming from its own 127.0.0.1 (the client's address is not kept).

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::poll::PollFlags;
use nix::sys::socket::{
    recv, send, shutdown, AddressFamily, MsgFlags, Shutdown, SockFlag, SockType,
};

use super::{DialError, NetworkError, PortBinding, PortMap, PortSpec, Proto};
use crate::exit;
use crate::linux::ns::{Namespaces, NsError};
use crate::linux::process;
use crate::linux::worker::{self, SpawnError};
use crate::sandbox::{Failure, Step};

/// Bytes in flight per direction of a TCP connection (a pipe's capacity).
const PIPE: usize = 256 * 1024;
/// A UDP client unheard of for this long loses its socket in the container.
const UDP_IDLE: Duration = Duration::from_secs(60);
/// At most this many UDP clients at once; the oldest goes first.
const UDP_SESSIONS: usize = 256;

/// One poll entry of the forwarder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    Listener(usize),
    Relay(usize),
    Session(usize),
}

enum Sock {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

struct Listener {
    spec: PortSpec,
    sock: Sock,
}

/// Where the dialers connect.
enum Target {
    /// The container has not started yet.
    Pending,
    /// Its user and network namespaces: to its loopback.
    Open(Namespaces),
    /// Its address on a shared network, from that network's namespaces.
    Bridge(Bridged),
    /// It ended before they could be opened.
    Ended,
}

/// A container on a shared network: connections go to its address there
/// from the shared namespace, made from the client's own address when
/// `transparent` (the namespace routes the replies back to such sockets),
/// so that the server sees who connected; else from the bridge's address.
#[derive(Debug, Clone)]
pub struct Bridged {
    pub namespaces: std::sync::Arc<Namespaces>,
    pub address: std::net::Ipv4Addr,
    pub transparent: bool,
}

/// What a dialer connects to.
#[derive(Debug, Clone, Copy)]
enum Dest<'a> {
    /// 127.0.0.1 in the container's namespaces.
    Loopback(&'a Namespaces),
    /// Its shared-network address, for `client`.
    Bridge(&'a Bridged, SocketAddr),
}

/// The listeners, the connections being relayed and the UDP clients.
pub struct Forwarder {
    listeners: Vec<Listener>,
    target: Target,
    relays: Vec<Option<Relay>>,
    sessions: Vec<Option<Session>>,
}

impl Forwarder {
    /// Bind every host port now, before the container starts: a taken port
    /// is an error naming it, and a port 0 becomes the one the kernel chose.
    pub fn bind(specs: &[PortSpec]) -> Result<Forwarder, NetworkError> {
        let mut listeners = Vec::new();
        if specs.iter().any(|s| s.proto == Proto::Tcp) {
            // splice(2) into a socket whose peer has gone raises SIGPIPE,
            // which would end the monitor; the relay wants plain EPIPE.
            // Containers get default signal actions back before exec.
            // signal(2) cannot fail for SIGPIPE.
            let _ = process::ignore_signal(nix::sys::signal::Signal::SIGPIPE);
        }
        for s in specs {
            let ip = if s.host_ip.is_empty() {
                "0.0.0.0"
            } else {
                &s.host_ip
            };
            let addr: SocketAddr = match ip.parse::<std::net::IpAddr>() {
                Ok(a) => SocketAddr::new(a, s.host_port.unwrap_or(0)),
                Err(_) => SocketAddr::new([0, 0, 0, 0].into(), s.host_port.unwrap_or(0)),
            };
            let err = |e: std::io::Error| NetworkError::Bind {
                addr: addr.to_string(),
                proto: s.proto.name(),
                source: e,
            };
            // std's TcpListener::bind sets SO_REUSEADDR: a port whose last
            // connections linger in TIME_WAIT can be published again at once.
            let (sock, local) = match s.proto {
                Proto::Tcp => {
                    let l = TcpListener::bind(addr).map_err(err)?;
                    l.set_nonblocking(true).map_err(err)?;
                    let local = l.local_addr().map_err(err)?;
                    (Sock::Tcp(l), local)
                }
                Proto::Udp => {
                    let u = UdpSocket::bind(addr).map_err(err)?;
                    u.set_nonblocking(true).map_err(err)?;
                    let local = u.local_addr().map_err(err)?;
                    (Sock::Udp(u), local)
                }
            };
            let mut spec = s.clone();
            spec.host_ip = local.ip().to_string();
            spec.host_port = Some(local.port());
            // No address given: IPv6 clients too, on `[::]` (as Docker
            // publishes). A port the kernel chose for IPv4 may be taken on
            // IPv6; then only IPv4 gets it. A host without IPv6 skips it.
            if s.host_ip.is_empty() {
                let err = |e: std::io::Error| NetworkError::Bind {
                    addr: format!("[::]:{}", local.port()),
                    proto: s.proto.name(),
                    source: e,
                };
                match bind_v6_only(s.proto, local.port()) {
                    Ok(Some(sock6)) => {
                        let mut spec6 = spec.clone();
                        spec6.host_ip = "::".into();
                        listeners.push(Listener { spec, sock });
                        listeners.push(Listener {
                            spec: spec6,
                            sock: sock6,
                        });
                        continue;
                    }
                    Ok(None) => {}
                    Err(e) if s.host_port.is_none() => tracing::debug!("{}", err(e)),
                    Err(e) => return Err(err(e)),
                }
            }
            listeners.push(Listener { spec, sock });
        }
        Ok(Forwarder {
            listeners,
            target: Target::Pending,
            relays: Vec::new(),
            sessions: Vec::new(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.listeners.is_empty()
    }

    /// `NetworkSettings.Ports`: what is published where.
    pub fn published(&self) -> PortMap {
        let mut m = PortMap::new();
        for l in &self.listeners {
            m.entry(l.spec.key()).or_default().push(PortBinding {
                host_ip: l.spec.host_ip.clone(),
                host_port: l.spec.host_port.unwrap_or(0).to_string(),
            });
        }
        m
    }

    /// The container runs: open its user and network namespaces, held for
    /// the dialers (they stay valid whatever happens to the process).
    /// `pid` is the sandbox's inner process: it made both namespaces and
    /// is the parent of PID 1, so it lives as long as the container; being
    /// our own child, its pid cannot be reused until we reap it (PID 1's
    /// could: a short-lived command may be gone, and reaped by the inner
    /// process, before we get here). A container that has ended already is
    /// not an error: it has nothing to connect to, so clients see their
    /// connections closed until the monitor reads its exit.
    pub fn attach(&mut self, pid: i32, bridged: Option<Bridged>) -> Result<(), NetworkError> {
        if let Some(b) = bridged {
            self.target = Target::Bridge(b);
            return Ok(());
        }
        let proc_root = Path::new("/proc");
        let opened = process::start_time(proc_root, pid)
            .ok_or(NsError::Gone { pid })
            .and_then(|start| Namespaces::open_net(proc_root, pid, start));
        self.target = match opened {
            Ok(ns) => Target::Open(ns),
            Err(NsError::Gone { .. }) => Target::Ended,
            Err(e) => return Err(NetworkError::Attach(e)),
        };
        Ok(())
    }

    /// What to poll, and for what.
    pub fn interest(&self) -> Vec<(Key, BorrowedFd<'_>, PollFlags)> {
        let mut out = Vec::new();
        for (i, l) in self.listeners.iter().enumerate() {
            let fd = match &l.sock {
                Sock::Tcp(t) => t.as_fd(),
                Sock::Udp(u) => u.as_fd(),
            };
            out.push((Key::Listener(i), fd, PollFlags::POLLIN));
        }
        for (i, r) in self.relays.iter().enumerate() {
            if let Some(r) = r {
                let (a, b) = r.interest();
                if !a.is_empty() {
                    out.push((Key::Relay(i), r.client.as_fd(), a));
                }
                if !b.is_empty() {
                    out.push((Key::Relay(i), r.inside.as_fd(), b));
                }
            }
        }
        for (i, s) in self.sessions.iter().enumerate() {
            if let Some(s) = s {
                out.push((Key::Session(i), s.inside.as_fd(), PollFlags::POLLIN));
            }
        }
        out
    }

    /// `key` is ready. New connections and clients take new slots, so the
    /// keys of one poll round stay valid until `sweep`.
    pub fn ready(&mut self, key: Key) {
        match key {
            Key::Listener(i) => self.on_listener(i),
            Key::Relay(i) => {
                if let Some(r) = self.relays.get_mut(i).and_then(Option::as_mut) {
                    r.pump();
                }
            }
            Key::Session(i) => self.on_session(i),
        }
    }

    /// Drop finished connections and idle UDP clients.
    pub fn sweep(&mut self) {
        for r in self.relays.iter_mut() {
            if r.as_ref().is_some_and(Relay::finished) {
                *r = None;
            }
        }
        while self.relays.last().is_some_and(Option::is_none) {
            self.relays.pop();
        }
        for s in self.sessions.iter_mut() {
            if s.as_ref().is_some_and(|s| s.last.elapsed() > UDP_IDLE) {
                *s = None;
            }
        }
        while self.sessions.last().is_some_and(Option::is_none) {
            self.sessions.pop();
        }
    }

    fn on_listener(&mut self, i: usize) {
        let l = &self.listeners[i];
        let dest = |client: SocketAddr| match &self.target {
            Target::Open(ns) => Dest::Loopback(ns),
            Target::Bridge(b) => Dest::Bridge(b, client),
            _ => unreachable!("only an open target is dialed"),
        };
        match &self.target {
            Target::Open(_) | Target::Bridge(_) => {}
            Target::Pending => return,
            // Nothing to connect to: take what waits and drop it, so the
            // listener does not stay readable.
            Target::Ended => {
                match &l.sock {
                    Sock::Tcp(t) => while t.accept().is_ok() {},
                    Sock::Udp(u) => while u.recv_from(&mut [0u8; 1]).is_ok() {},
                }
                return;
            }
        }
        let port = l.spec.container_port;
        match &l.sock {
            Sock::Tcp(t) => {
                while let Ok((client, from)) = t.accept() {
                    match dial(dest(from), Proto::Tcp, port) {
                        Ok(inside) => {
                            let client = OwnedFd::from(client);
                            let ready = set_nonblocking(&client)
                                .and(set_nonblocking(&inside))
                                .map_err(std::io::Error::from)
                                .and_then(|()| Relay::new(client, inside));
                            match ready {
                                Ok(r) => {
                                    push_slot(&mut self.relays, r);
                                }
                                // Out of descriptors or pipe memory: this
                                // client sees its connection closed.
                                Err(e) => tracing::debug!("relay: {e}"),
                            }
                        }
                        // Nothing listens inside yet: the client sees the
                        // connection closed, as with a refused one.
                        Err(e) => tracing::debug!("{e}"),
                    }
                }
            }
            Sock::Udp(u) => {
                let mut buf = vec![0u8; 65536];
                while let Ok((n, from)) = u.recv_from(&mut buf) {
                    let known = self
                        .sessions
                        .iter_mut()
                        .flatten()
                        .find(|s| s.listener == i && s.client == from);
                    let session = match known {
                        Some(s) => s,
                        None => match dial(dest(from), Proto::Udp, port) {
                            Ok(inside) => {
                                if set_nonblocking(&inside).is_err() {
                                    continue;
                                }
                                if self.sessions.iter().flatten().count() >= UDP_SESSIONS {
                                    if let Some(oldest) = self
                                        .sessions
                                        .iter_mut()
                                        .filter(|s| s.is_some())
                                        .min_by_key(|s| s.as_ref().map(|s| s.last))
                                    {
                                        *oldest = None;
                                    }
                                }
                                let s = Session {
                                    listener: i,
                                    client: from,
                                    inside,
                                    last: Instant::now(),
                                };
                                let at = push_slot(&mut self.sessions, s);
                                self.sessions[at].as_mut().expect("just pushed")
                            }
                            Err(e) => {
                                tracing::debug!("{e}");
                                continue;
                            }
                        },
                    };
                    session.last = Instant::now();
                    let _ = send(
                        session.inside.as_raw_fd(),
                        &buf[..n],
                        MsgFlags::MSG_NOSIGNAL,
                    );
                }
            }
        }
    }

    fn on_session(&mut self, i: usize) {
        let Some(s) = self.sessions.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        let Sock::Udp(u) = &self.listeners[s.listener].sock else {
            return;
        };
        let mut buf = vec![0u8; 65536];
        loop {
            match recv(s.inside.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(n) => {
                    s.last = Instant::now();
                    let _ = u.send_to(&buf[..n], s.client);
                }
                Err(nix::Error::EINTR) => {}
                // EAGAIN; or ECONNREFUSED: nothing listens inside (yet).
                Err(_) => break,
            }
        }
    }
}

/// A non-blocking socket on `[::]:port` for IPv6 only (IPV6_V6ONLY, ipv6(7)),
/// so it shares the port with the IPv4 listener; `None` where the host has
/// no IPv6.
fn bind_v6_only(proto: Proto, port: u16) -> std::io::Result<Option<Sock>> {
    use nix::sys::socket::{bind, listen, setsockopt, socket, sockopt, Backlog, SockaddrIn6};
    let ty = match proto {
        Proto::Tcp => SockType::Stream,
        Proto::Udp => SockType::Datagram,
    };
    let flags = SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK;
    let fd = match socket(AddressFamily::Inet6, ty, flags, None) {
        Ok(fd) => fd,
        Err(nix::Error::EAFNOSUPPORT) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
    // As std does for its listeners: TIME_WAIT leftovers do not hold the port.
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    let addr = SockaddrIn6::from(std::net::SocketAddrV6::new(
        std::net::Ipv6Addr::UNSPECIFIED,
        port,
        0,
        0,
    ));
    match bind(fd.as_raw_fd(), &addr) {
        Ok(()) => {}
        Err(nix::Error::EADDRNOTAVAIL | nix::Error::EAFNOSUPPORT) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    Ok(Some(match proto {
        Proto::Tcp => {
            listen(&fd, Backlog::new(1024).map_err(std::io::Error::from)?)?;
            Sock::Tcp(TcpListener::from(fd))
        }
        Proto::Udp => Sock::Udp(UdpSocket::from(fd)),
    }))
}

/// Put `item` in the first free slot (or a new one); returns its index.
fn push_slot<T>(slots: &mut Vec<Option<T>>, item: T) -> usize {
    slots.push(Some(item));
    slots.len() - 1
}

fn set_nonblocking(fd: &OwnedFd) -> nix::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map(|_| ())
}

/// A socket connected to the container's `port`: to `127.0.0.1` inside
/// it, or to its address on a shared network from that network's
/// namespace (from the client's address when that namespace allows). A
/// child joins the user namespace (which the caller owns, so it holds
/// every capability there, user_namespaces(7)) and then the network
/// namespace (setns(2) asks CAP_SYS_ADMIN in the namespace's owner and in
/// the caller's own user namespace), connects, and sends the socket back.
/// The socket stays in that namespace wherever it travels.
fn dial(dest: Dest<'_>, proto: Proto, port: u16) -> Result<OwnedFd, NetworkError> {
    let fail = |source| NetworkError::Dial {
        port,
        proto: proto.name(),
        source: Box::new(source),
    };
    let w = worker::spawn(|_report| -> Result<Option<OwnedFd>, Failure> {
        let ns = match dest {
            Dest::Loopback(ns) => ns,
            Dest::Bridge(b, _) => &b.namespaces,
        };
        ns.join()
            .map_err(|e| Failure::new(Step::JoinNamespaces, e.to_string(), exit::BURROW))?;
        let io = |e: std::io::Error| Failure::io(Step::Network, &e, exit::BURROW);
        let sys = |e: nix::Error| Failure::sys(Step::Network, e, exit::BURROW);
        let (to, from) = match dest {
            Dest::Loopback(_) => (SocketAddr::from(([127, 0, 0, 1], port)), None),
            Dest::Bridge(b, client) => {
                let to = SocketAddr::from((b.address, port));
                // A loopback or IPv6 client cannot be a source on the
                // bridge: those come from the bridge's address.
                let keep = match client {
                    SocketAddr::V4(c) if b.transparent && !c.ip().is_loopback() => Some(c),
                    _ => None,
                };
                (to, keep)
            }
        };
        Ok(Some(match from {
            Some(client) => transparent_socket(proto, client, to).map_err(sys)?,
            None => match proto {
                Proto::Tcp => OwnedFd::from(std::net::TcpStream::connect(to).map_err(io)?),
                Proto::Udp => {
                    let u = UdpSocket::bind((std::net::Ipv4Addr::UNSPECIFIED, 0)).map_err(io)?;
                    u.connect(to).map_err(io)?;
                    OwnedFd::from(u)
                }
            },
        }))
    })
    .map_err(|e| match e {
        SpawnError::Pipe(e) => fail(DialError::Pipe(e)),
        SpawnError::Fork(e) => fail(DialError::Fork(e)),
    })?;
    match w.wait().0 {
        Ok(Some(sock)) => Ok(sock),
        Ok(None) => Err(fail(DialError::NoSocket)),
        Err(e) => Err(fail(DialError::Worker(e))),
    }
}

/// A socket bound to `client`'s address (IP_TRANSPARENT: an address of
/// another host) and connected to `to`; the client's own port when it is
/// free here, else one the kernel picks.
fn transparent_socket(
    proto: Proto,
    client: std::net::SocketAddrV4,
    to: SocketAddr,
) -> nix::Result<OwnedFd> {
    use nix::sys::socket::{bind, connect, setsockopt, socket, sockopt, SockaddrIn};
    let kind = match proto {
        Proto::Tcp => SockType::Stream,
        Proto::Udp => SockType::Datagram,
    };
    let fd = socket(AddressFamily::Inet, kind, SockFlag::SOCK_CLOEXEC, None)?;
    setsockopt(&fd, sockopt::IpTransparent, &true)?;
    if bind(fd.as_raw_fd(), &SockaddrIn::from(client)).is_err() {
        let any_port = std::net::SocketAddrV4::new(*client.ip(), 0);
        bind(fd.as_raw_fd(), &SockaddrIn::from(any_port))?;
    }
    let SocketAddr::V4(to) = to else {
        return Err(nix::Error::EAFNOSUPPORT);
    };
    connect(fd.as_raw_fd(), &SockaddrIn::from(to))?;
    Ok(fd)
}

/// One direction of a TCP connection. Bytes move from socket to socket
/// through a pipe with splice(2), so they are never copied into the
/// monitor's memory (the same path Go's io.Copy takes for podman's
/// rootlessport); `pending` counts what sits in the pipe.
struct Flow {
    pipe_r: OwnedFd,
    pipe_w: OwnedFd,
    pending: usize,
    /// The source said EOF (or reset).
    eof: bool,
    /// The destination has been told (shutdown SHUT_WR).
    shut: bool,
    /// The destination refused a write: the connection is over.
    broken: bool,
}

impl Flow {
    fn new() -> std::io::Result<Self> {
        use nix::fcntl::{fcntl, FcntlArg, OFlag};
        let (pipe_r, pipe_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        // A larger pipe moves more per call; past the per-user pipe budget
        // (pipe(7), pipe-user-pages-soft) the kernel refuses and the
        // default size serves.
        let _ = fcntl(&pipe_w, FcntlArg::F_SETPIPE_SZ(PIPE as i32));
        Ok(Flow {
            pipe_r,
            pipe_w,
            pending: 0,
            eof: false,
            shut: false,
            broken: false,
        })
    }

    fn pending(&self) -> bool {
        self.pending > 0
    }

    fn wants_read(&self) -> bool {
        !self.pending() && !self.eof
    }

    /// Move bytes from `src` to `dst` until one of them would block
    /// (bounded, so one busy connection cannot starve the others).
    fn pump(&mut self, src: &OwnedFd, dst: &OwnedFd) {
        use nix::fcntl::{splice, SpliceFFlags};
        let flags = SpliceFFlags::SPLICE_F_NONBLOCK | SpliceFFlags::SPLICE_F_MOVE;
        for _ in 0..64 {
            if self.broken {
                return;
            }
            if self.pending() {
                // Writing to a socket whose peer is gone gives EPIPE; the
                // monitor ignores SIGPIPE, so it is only an error here.
                match splice(&self.pipe_r, None, dst, None, self.pending, flags) {
                    Ok(n) => self.pending -= n,
                    Err(nix::Error::EAGAIN) => return,
                    Err(nix::Error::EINTR) => {}
                    Err(_) => self.broken = true,
                }
                continue;
            }
            if self.eof {
                if !self.shut {
                    let _ = shutdown(dst.as_raw_fd(), Shutdown::Write);
                    self.shut = true;
                }
                return;
            }
            match splice(src, None, &self.pipe_w, None, PIPE, flags) {
                Ok(0) => self.eof = true,
                Ok(n) => self.pending = n,
                Err(nix::Error::EAGAIN) => return,
                Err(nix::Error::EINTR) => {}
                Err(_) => self.eof = true,
            }
        }
    }
}

/// One TCP connection: the client's socket on the host and the socket the
/// dialer connected inside the container.
struct Relay {
    client: OwnedFd,
    inside: OwnedFd,
    up: Flow,
    down: Flow,
}

impl Relay {
    fn new(client: OwnedFd, inside: OwnedFd) -> std::io::Result<Self> {
        let (up, down) = (Flow::new()?, Flow::new()?);
        Ok(Relay {
            client,
            inside,
            up,
            down,
        })
    }

    /// Poll flags for (client, inside).
    fn interest(&self) -> (PollFlags, PollFlags) {
        let mut a = PollFlags::empty();
        let mut b = PollFlags::empty();
        if self.up.wants_read() {
            a |= PollFlags::POLLIN;
        }
        if self.down.pending() {
            a |= PollFlags::POLLOUT;
        }
        if self.down.wants_read() {
            b |= PollFlags::POLLIN;
        }
        if self.up.pending() {
            b |= PollFlags::POLLOUT;
        }
        (a, b)
    }

    fn pump(&mut self) {
        self.up.pump(&self.client, &self.inside);
        self.down.pump(&self.inside, &self.client);
    }

    fn finished(&self) -> bool {
        self.up.broken || self.down.broken || (self.up.shut && self.down.shut)
    }
}

/// One UDP client of a published port.
struct Session {
    listener: usize,
    client: SocketAddr,
    inside: OwnedFd,
    last: Instant,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_port_is_an_error_naming_it_and_port_zero_gets_a_real_one() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let spec = |p: Option<u16>| PortSpec {
            host_ip: "127.0.0.1".into(),
            host_port: p,
            container_port: 3000,
            proto: Proto::Tcp,
        };
        let e = Forwarder::bind(&[spec(Some(port))]).err().unwrap();
        assert!(
            e.to_string().contains(&format!("127.0.0.1:{port}/tcp")),
            "{e}"
        );
        let f = Forwarder::bind(&[spec(None)]).unwrap();
        let shown = f.published();
        let b = &shown["3000/tcp"][0];
        assert_eq!(b.host_ip, "127.0.0.1");
        assert_ne!(b.host_port, "0");
    }

    #[test]
    fn a_process_gone_before_attach_is_no_error_and_its_clients_are_closed() {
        use std::io::Read;
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id() as i32;
        child.wait().unwrap();
        let mut f = Forwarder::bind(&[PortSpec {
            host_ip: "127.0.0.1".into(),
            host_port: None,
            container_port: 80,
            proto: Proto::Tcp,
        }])
        .unwrap();
        f.attach(gone, None).unwrap();
        let port: u16 = f.published()["80/tcp"][0].host_port.parse().unwrap();
        let mut client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        f.ready(Key::Listener(0));
        // Closed (EOF) or reset, not left waiting.
        match client.read(&mut [0u8; 1]) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("the client was left waiting: {other:?}"),
        }
    }

    #[test]
    fn a_flow_copies_until_eof_and_then_shuts_the_other_side() {
        use std::io::{Read, Write};
        use std::os::unix::net::UnixStream;
        let (mut src_peer, src) = UnixStream::pair().unwrap();
        let (dst, mut dst_peer) = UnixStream::pair().unwrap();
        let (src, dst) = (OwnedFd::from(src), OwnedFd::from(dst));
        set_nonblocking(&src).unwrap();
        src_peer.write_all(b"hello").unwrap();
        drop(src_peer);
        let mut f = Flow::new().unwrap();
        f.pump(&src, &dst);
        assert!(f.eof && f.shut);
        let mut got = String::new();
        dst_peer.read_to_string(&mut got).unwrap();
        assert_eq!(got, "hello");
    }
}
