//! The forwarder: the names the responder does not hold, relayed to one
//! upstream server and its replies handed back to their clients.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use super::{parse, reply, u16_at, Rcode, FLAG_QR, HEADER};

/// How long an upstream has to answer before the client is told SERVFAIL.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);

/// Queries in flight at once; past it, a new one is refused, so a client
/// flooding us cannot grow the table.
pub(super) const MAX_PENDING: usize = 1024;

/// The largest UDP payload (an upstream's EDNS reply may pass 512 bytes).
const RECV_BUF: usize = 65536;

/// A query relayed upstream and waiting for its reply.
#[derive(Debug)]
struct Pending {
    client: SocketAddr,
    /// The client's id and flags, restored in the reply.
    head: [u8; 4],
    /// The question as the client sent it: the reply must carry it.
    question: Vec<u8>,
    deadline: Instant,
}

/// Relays queries to one upstream server over one non-blocking UDP socket
/// and hands each reply back for its client, for an event loop to drive:
/// [`relay`](Forwarder::relay) a query, [`receive`](Forwarder::receive)
/// when the socket is readable, [`expire`](Forwarder::expire) at
/// [`next_deadline`](Forwarder::next_deadline). Each relayed query gets a
/// fresh random id, so clients' ids never collide and a reply is matched
/// by id and question; the socket is connected to the upstream, so the
/// kernel drops datagrams from anyone else.
#[derive(Debug)]
pub struct Forwarder {
    pub(super) sock: UdpSocket,
    pending: HashMap<u16, Pending>,
    ids: RandomState,
    counter: u64,
    timeout: Duration,
    buf: Vec<u8>,
}

impl AsFd for Forwarder {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl Forwarder {
    /// A forwarder to `upstream`, with a socket of the caller's network
    /// namespace.
    pub fn new(upstream: SocketAddr) -> io::Result<Forwarder> {
        let local: SocketAddr = match upstream {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let sock = UdpSocket::bind(local)?;
        sock.connect(upstream)?;
        sock.set_nonblocking(true)?;
        Ok(Forwarder {
            sock,
            pending: HashMap::new(),
            ids: RandomState::new(),
            counter: 0,
            timeout: FORWARD_TIMEOUT,
            buf: vec![0; RECV_BUF],
        })
    }

    /// How long the upstream has (default [`FORWARD_TIMEOUT`]).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Queries waiting for the upstream.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// An unpredictable id not in flight (the table is bounded well below
    /// the 65536 ids, so a few tries find one).
    fn fresh_id(&mut self) -> u16 {
        loop {
            self.counter += 1;
            let id = self.ids.hash_one(self.counter) as u16;
            if !self.pending.contains_key(&id) {
                return id;
            }
        }
    }

    /// Send `query` from `client` upstream. InvalidInput for a packet that
    /// is not one question, WouldBlock when too many are in flight or the
    /// socket's buffer is full (tell the client SERVFAIL, or drop it).
    pub fn relay(&mut self, query: &[u8], client: SocketAddr, now: Instant) -> io::Result<()> {
        let Some(q) = parse(query) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a DNS query",
            ));
        };
        if self.pending.len() >= MAX_PENDING {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "too many DNS queries in flight",
            ));
        }
        let question = q.question.to_vec();
        let id = self.fresh_id();
        let mut out = query.to_vec();
        out[0..2].copy_from_slice(&id.to_be_bytes());
        // A connected UDP socket reports an ICMP error from an earlier
        // datagram at the next call: that one is lost, this one is sent.
        if let Err(e) = self.sock.send(&out) {
            if e.kind() != io::ErrorKind::ConnectionRefused {
                return Err(e);
            }
            self.sock.send(&out)?;
        }
        self.pending.insert(
            id,
            Pending {
                client,
                head: [query[0], query[1], query[2], query[3]],
                question,
                deadline: now + self.timeout,
            },
        );
        Ok(())
    }

    /// The next reply from upstream that answers a query in flight, with
    /// the client's id back in it, and the client to send it to; None once
    /// nothing more is waiting on the socket. Datagrams that match nothing
    /// (late, forged, malformed) are read and dropped.
    pub fn receive(&mut self) -> io::Result<Option<(Vec<u8>, SocketAddr)>> {
        loop {
            let n = match self.sock.recv(&mut self.buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                // An ICMP error for an earlier datagram (no server there):
                // its queries time out.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let packet = &self.buf[..n];
            let (Some(id), Some(flags)) = (u16_at(packet, 0), u16_at(packet, 2)) else {
                continue;
            };
            if n < HEADER || flags & FLAG_QR == 0 {
                continue;
            }
            let Some(p) = self.pending.get(&id) else {
                continue;
            };
            let end = HEADER + p.question.len();
            if packet.get(HEADER..end) != Some(p.question.as_slice())
                || u16_at(packet, 4) != Some(1)
            {
                continue;
            }
            let p = self.pending.remove(&id).expect("looked up above");
            let mut out = packet.to_vec();
            out[0..2].copy_from_slice(&p.head[0..2]);
            return Ok(Some((out, p.client)));
        }
    }

    /// Give up on the queries whose upstream did not answer in time: a
    /// SERVFAIL for each, and the client to send it to.
    pub fn expire(&mut self, now: Instant) -> Vec<(Vec<u8>, SocketAddr)> {
        let late: Vec<u16> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(&id, _)| id)
            .collect();
        late.into_iter()
            .filter_map(|id| self.pending.remove(&id))
            .map(|p| {
                let mut query = Vec::with_capacity(HEADER + p.question.len());
                query.extend_from_slice(&p.head);
                query.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
                query.extend_from_slice(&p.question);
                let q = parse(&query).expect("a question that parsed before");
                (reply(&q, Rcode::ServFail, false, &[]), p.client)
            })
            .collect()
    }

    /// When the earliest query in flight runs out of time.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }
}
