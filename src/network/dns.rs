//! A DNS responder for a network's containers (RFC 1035): queries read and
//! answers built as bytes, without sockets, from a table of names; and the
//! forwarder that relays the names it does not hold to an upstream server.
//!
//! The core answers A questions for the names in its [`Table`] (any case,
//! with or without the final dot), gives a known name's other types an
//! empty answer (so a resolver asking A and AAAA together gets the A
//! record and no error), and leaves every other name to an upstream
//! ([`Answer::Forward`]). Nothing in a packet is trusted: a query that is
//! cut short, compressed, over-long or not a single question is dropped
//! ([`Answer::Refuse`]).

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

/// The TTL of the records we answer: none, since a container's address
/// changes when it restarts and no resolver should keep the old one.
pub const TTL: u32 = 0;

/// What a reply over UDP may hold without EDNS (RFC 1035 4.2.1); answers
/// that would pass it are cut, not truncated with TC (we serve no TCP).
const UDP_LIMIT: usize = 512;

const HEADER: usize = 12;
/// A name's wire form, length bytes and the root's zero included.
const MAX_NAME: usize = 255;
const MAX_LABEL: usize = 63;

const TYPE_A: u16 = 1;
const TYPE_ANY: u16 = 255;
const CLASS_IN: u16 = 1;
const CLASS_ANY: u16 = 255;

const FLAG_QR: u16 = 0x8000;
const FLAG_AA: u16 = 0x0400;
const FLAG_RD: u16 = 0x0100;
const FLAG_RA: u16 = 0x0080;
const OPCODE_MASK: u16 = 0x7800;

/// A reply's status (RFC 1035 4.1.1 RCODE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Rcode {
    NoError = 0,
    FormErr = 1,
    ServFail = 2,
    NxDomain = 3,
    NotImp = 4,
    Refused = 5,
}

/// What to do with one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Send these bytes back to the client.
    Reply(Vec<u8>),
    /// Not a name of ours: relay the query to an upstream server.
    Forward,
    /// Not a well-formed query: send nothing.
    Refuse,
}

/// The names a network's responder answers: a container's name and
/// aliases, each with its addresses.
#[derive(Debug, Clone, Default)]
pub struct Table {
    names: HashMap<String, Vec<Ipv4Addr>>,
}

/// A name as the table keys it: ASCII lower case, no final dot.
fn key(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

impl Table {
    pub fn new() -> Table {
        Table::default()
    }

    /// Give `name` the address `addr` too (a name two containers share,
    /// an alias, answers with both).
    pub fn add(&mut self, name: &str, addr: Ipv4Addr) {
        let k = key(name);
        if k.is_empty() {
            return;
        }
        let addrs = self.names.entry(k).or_default();
        if !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }

    /// Take `addr` from `name`; the name goes when it has none left.
    pub fn remove(&mut self, name: &str, addr: Ipv4Addr) {
        let k = key(name);
        if let Some(addrs) = self.names.get_mut(&k) {
            addrs.retain(|a| *a != addr);
            if addrs.is_empty() {
                self.names.remove(&k);
            }
        }
    }

    /// The addresses of `name`, none when it is not ours.
    pub fn get(&self, name: &str) -> &[Ipv4Addr] {
        self.names.get(&key(name)).map_or(&[], Vec::as_slice)
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// A query's header fields and its one question, as read from a packet.
#[derive(Debug)]
struct Query<'a> {
    id: u16,
    flags: u16,
    /// The question's bytes as sent (name, type, class): echoed in the
    /// reply verbatim, so a resolver that randomizes case sees its own.
    question: &'a [u8],
    /// The name in lower case with dots, None when a label holds a dot or
    /// a byte outside printable ASCII (no table name can match it).
    name: Option<String>,
    qtype: u16,
    qclass: u16,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Read the header and the one question of a query; None for anything
/// else (a response, a cut packet, zero or several questions, a
/// compressed or over-long name).
fn parse(packet: &[u8]) -> Option<Query<'_>> {
    let id = u16_at(packet, 0)?;
    let flags = u16_at(packet, 2)?;
    let qdcount = u16_at(packet, 4)?;
    if packet.len() < HEADER || flags & FLAG_QR != 0 || qdcount != 1 {
        return None;
    }
    let mut at = HEADER;
    let mut name = String::new();
    let mut plain = true;
    loop {
        let len = *packet.get(at)? as usize;
        // The two top bits mark a compression pointer (0b11) or a reserved
        // label type: a question has no earlier name to point at.
        if len > MAX_LABEL {
            return None;
        }
        at += 1;
        if at - HEADER + len > MAX_NAME {
            return None;
        }
        if len == 0 {
            break;
        }
        let label = packet.get(at..at + len)?;
        if !name.is_empty() {
            name.push('.');
        }
        for &c in label {
            plain &= c.is_ascii_graphic() && c != b'.';
            name.push(c.to_ascii_lowercase() as char);
        }
        at += len;
    }
    let qtype = u16_at(packet, at)?;
    let qclass = u16_at(packet, at + 2)?;
    let end = at + 4;
    Some(Query {
        id,
        flags,
        question: &packet[HEADER..end],
        name: plain.then_some(name),
        qtype,
        qclass,
    })
}

/// A reply to `q` with `rcode` and an A record per address, the answers
/// cut to what fits in [`UDP_LIMIT`].
fn reply(q: &Query<'_>, rcode: Rcode, authoritative: bool, addrs: &[Ipv4Addr]) -> Vec<u8> {
    const RECORD: usize = 2 + 2 + 2 + 4 + 2 + 4;
    let room = UDP_LIMIT.saturating_sub(HEADER + q.question.len()) / RECORD;
    let addrs = &addrs[..addrs.len().min(room)];
    let mut flags = FLAG_QR | FLAG_RA | (q.flags & FLAG_RD) | rcode as u16;
    if authoritative {
        flags |= FLAG_AA;
    }
    let mut b = Vec::with_capacity(HEADER + q.question.len() + addrs.len() * RECORD);
    b.extend_from_slice(&q.id.to_be_bytes());
    b.extend_from_slice(&flags.to_be_bytes());
    b.extend_from_slice(&1u16.to_be_bytes());
    b.extend_from_slice(&(addrs.len() as u16).to_be_bytes());
    b.extend_from_slice(&[0, 0, 0, 0]);
    b.extend_from_slice(q.question);
    for a in addrs {
        // The name as a pointer to the question's (offset 12).
        b.extend_from_slice(&[0xc0, HEADER as u8]);
        b.extend_from_slice(&TYPE_A.to_be_bytes());
        b.extend_from_slice(&CLASS_IN.to_be_bytes());
        b.extend_from_slice(&TTL.to_be_bytes());
        b.extend_from_slice(&4u16.to_be_bytes());
        b.extend_from_slice(&a.octets());
    }
    b
}

/// What to do with the query `packet` given the names in `table`.
pub fn answer(table: &Table, packet: &[u8]) -> Answer {
    let Some(q) = parse(packet) else {
        return Answer::Refuse;
    };
    if q.flags & OPCODE_MASK != 0 {
        return Answer::Reply(reply(&q, Rcode::NotImp, false, &[]));
    }
    if q.qclass != CLASS_IN && q.qclass != CLASS_ANY {
        return Answer::Forward;
    }
    let addrs = match &q.name {
        Some(name) => table.get(name),
        None => &[],
    };
    if addrs.is_empty() {
        return Answer::Forward;
    }
    let records = if q.qtype == TYPE_A || q.qtype == TYPE_ANY {
        addrs
    } else {
        // AAAA and the rest: the name exists, with no record of the type.
        &[]
    };
    Answer::Reply(reply(&q, Rcode::NoError, true, records))
}

/// A reply to `packet` that carries only `rcode` (SERVFAIL when no
/// upstream answers, REFUSED when there is none); None when `packet` is
/// not a query.
pub fn error_reply(packet: &[u8], rcode: Rcode) -> Option<Vec<u8>> {
    parse(packet).map(|q| reply(&q, rcode, false, &[]))
}

/// How long an upstream has to answer before the client is told SERVFAIL.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);

/// Queries in flight at once; past it, a new one is refused, so a client
/// flooding us cannot grow the table.
const MAX_PENDING: usize = 1024;

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
    sock: UdpSocket,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `name` of type `qtype`, recursion desired.
    fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&id.to_be_bytes());
        b.extend_from_slice(&FLAG_RD.to_be_bytes());
        b.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        for label in name.split('.').filter(|l| !l.is_empty()) {
            b.push(label.len() as u8);
            b.extend_from_slice(label.as_bytes());
        }
        b.push(0);
        b.extend_from_slice(&qtype.to_be_bytes());
        b.extend_from_slice(&CLASS_IN.to_be_bytes());
        b
    }

    /// (id, flags, answers' addresses) of a reply to a question of
    /// `question_len` bytes, each answer checked to be an A record with
    /// our TTL pointing at the question's name.
    fn read_reply(r: &[u8], question_len: usize) -> (u16, u16, Vec<Ipv4Addr>) {
        assert_eq!(u16_at(r, 4), Some(1), "one question");
        let an = u16_at(r, 6).unwrap() as usize;
        assert_eq!(&r[8..12], &[0, 0, 0, 0]);
        let mut at = HEADER + question_len;
        let mut addrs = Vec::new();
        for _ in 0..an {
            let rec = &r[at..at + 16];
            assert_eq!(&rec[0..2], &[0xc0, 12]);
            assert_eq!(u16_at(rec, 2), Some(TYPE_A));
            assert_eq!(u16_at(rec, 4), Some(CLASS_IN));
            assert_eq!(&rec[6..10], &TTL.to_be_bytes());
            assert_eq!(u16_at(rec, 10), Some(4));
            addrs.push(Ipv4Addr::new(rec[12], rec[13], rec[14], rec[15]));
            at += 16;
        }
        assert_eq!(at, r.len(), "nothing after the answers");
        (u16_at(r, 0).unwrap(), u16_at(r, 2).unwrap(), addrs)
    }

    fn table() -> Table {
        let mut t = Table::new();
        t.add("web", Ipv4Addr::new(10, 88, 0, 5));
        t.add("web", Ipv4Addr::new(10, 88, 0, 6));
        t.add("web", Ipv4Addr::new(10, 88, 0, 6));
        t.add("DB.", Ipv4Addr::new(10, 88, 0, 7));
        t
    }

    fn reply_bytes(a: Answer) -> Vec<u8> {
        match a {
            Answer::Reply(r) => r,
            other => panic!("no reply: {other:?}"),
        }
    }

    #[test]
    fn a_known_name_gets_its_addresses_in_any_case() {
        let t = table();
        let q = query(0x1234, "WeB", TYPE_A);
        let r = reply_bytes(answer(&t, &q));
        // The question is echoed as sent, case and all.
        assert_eq!(&r[HEADER..q.len()], &q[HEADER..]);
        let (id, flags, addrs) = read_reply(&r, q.len() - HEADER);
        assert_eq!(id, 0x1234);
        assert_eq!(flags, FLAG_QR | FLAG_AA | FLAG_RD | FLAG_RA);
        assert_eq!(
            addrs,
            [Ipv4Addr::new(10, 88, 0, 5), Ipv4Addr::new(10, 88, 0, 6)]
        );
        // Added with a final dot and upper case, asked without.
        let q = query(1, "db", TYPE_A);
        let (_, _, addrs) = read_reply(&reply_bytes(answer(&t, &q)), q.len() - HEADER);
        assert_eq!(addrs, [Ipv4Addr::new(10, 88, 0, 7)]);
        assert_eq!(t.get("Db."), [Ipv4Addr::new(10, 88, 0, 7)]);
        // ANY gets the A records too.
        let q = query(1, "web", TYPE_ANY);
        assert_eq!(
            read_reply(&reply_bytes(answer(&t, &q)), q.len() - HEADER)
                .2
                .len(),
            2
        );
    }

    #[test]
    fn other_types_of_a_known_name_are_empty_and_no_error() {
        let t = table();
        for qtype in [28u16, 15, 16] {
            let q = query(9, "web", qtype);
            let (id, flags, addrs) = read_reply(&reply_bytes(answer(&t, &q)), q.len() - HEADER);
            assert_eq!((id, flags & 0xf, addrs.len()), (9, 0, 0), "type {qtype}");
            assert_ne!(flags & FLAG_AA, 0);
        }
    }

    #[test]
    fn names_not_ours_are_forwarded() {
        let mut t = table();
        assert_eq!(
            answer(&t, &query(1, "example.com", TYPE_A)),
            Answer::Forward
        );
        assert_eq!(
            answer(&t, &query(1, "web.example.com", TYPE_A)),
            Answer::Forward
        );
        assert_eq!(answer(&t, &query(1, "", TYPE_A)), Answer::Forward);
        // A label holding a dot is not the two labels of the name.
        let mut q = query(1, "", TYPE_A);
        q.splice(HEADER..HEADER + 1, [3, b'w', b'.', b'b', 0]);
        t.add("w.b", Ipv4Addr::LOCALHOST);
        assert_eq!(answer(&t, &q), Answer::Forward);
        // Another class (CHAOS's version.bind) is the upstream's.
        let mut q = query(1, "web", TYPE_A);
        let n = q.len();
        q[n - 2..].copy_from_slice(&3u16.to_be_bytes());
        assert_eq!(answer(&t, &q), Answer::Forward);
        t.remove("web", Ipv4Addr::new(10, 88, 0, 5));
        t.remove("web", Ipv4Addr::new(10, 88, 0, 6));
        assert!(t.get("web").is_empty());
        assert_eq!(answer(&t, &query(1, "web", TYPE_A)), Answer::Forward);
    }

    #[test]
    fn hostile_queries_are_dropped_never_a_panic() {
        let t = table();
        let q = query(7, "web.example.com", TYPE_A);
        for cut in 0..q.len() {
            assert_eq!(answer(&t, &q[..cut]), Answer::Refuse, "cut at {cut}");
            assert!(error_reply(&q[..cut], Rcode::ServFail).is_none());
        }
        // A compression pointer to itself, and one forward.
        let mut looped = q[..HEADER].to_vec();
        looped.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(answer(&t, &looped), Answer::Refuse);
        let mut fwd = q[..HEADER].to_vec();
        fwd.extend_from_slice(&[1, b'a', 0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(answer(&t, &fwd), Answer::Refuse);
        // A label of 64 bytes, a name of more than 255.
        let long = "a".repeat(64);
        assert_eq!(answer(&t, &query(1, &long, TYPE_A)), Answer::Refuse);
        let label = "b".repeat(63);
        let name = [label.as_str(); 4].join(".");
        assert_eq!(answer(&t, &query(1, &name, TYPE_A)), Answer::Refuse);
        let name = [label.as_str(), &label, &label, &"c".repeat(61)].join(".");
        assert_eq!(
            answer(&t, &query(1, &name, TYPE_A)),
            Answer::Forward,
            "255 exactly"
        );
        // Question counts other than one; a response.
        for qd in [0u16, 2, 0xffff] {
            let mut bad = q.clone();
            bad[4..6].copy_from_slice(&qd.to_be_bytes());
            assert_eq!(answer(&t, &bad), Answer::Refuse, "qdcount {qd}");
        }
        let mut resp = q.clone();
        resp[2] |= 0x80;
        assert_eq!(answer(&t, &resp), Answer::Refuse);
        // Huge counts of the other sections are not read at all.
        let mut counts = query(3, "web", TYPE_A);
        counts[6..12].copy_from_slice(&[0xff; 6]);
        assert!(matches!(answer(&t, &counts), Answer::Reply(_)));
        // Random packets and random damage to a good one.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let len = (next() % 80) as usize;
            let mut p: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if p.len() >= 6 && next() % 2 == 0 {
                p[2] &= 0x7f;
                p[4..6].copy_from_slice(&[0, 1]);
            }
            let _ = answer(&t, &p);
            let _ = error_reply(&p, Rcode::ServFail);
            let mut d = query(5, "web", TYPE_A);
            let at = (next() as usize) % d.len();
            d[at] = next() as u8;
            let _ = answer(&t, &d);
        }
    }

    #[test]
    fn other_opcodes_are_not_implemented() {
        let mut q = query(4, "web", TYPE_A);
        q[2] |= 2 << 3; // STATUS
        let r = reply_bytes(answer(&table(), &q));
        assert_eq!(
            read_reply(&r, q.len() - HEADER).1 & 0xf,
            Rcode::NotImp as u16
        );
    }

    #[test]
    fn many_addresses_are_cut_to_fit_a_udp_reply() {
        let mut t = Table::new();
        for i in 0..100 {
            t.add("many", Ipv4Addr::new(10, 0, 0, i));
        }
        let q = query(1, "many", TYPE_A);
        let r = reply_bytes(answer(&t, &q));
        assert!(r.len() <= UDP_LIMIT);
        let (_, _, addrs) = read_reply(&r, q.len() - HEADER);
        assert_eq!(addrs.len(), (UDP_LIMIT - q.len()) / 16);
    }

    #[test]
    fn an_error_reply_carries_the_question() {
        let q = query(0xbeef, "x.example", TYPE_A);
        let r = error_reply(&q, Rcode::NxDomain).unwrap();
        let (id, flags, addrs) = read_reply(&r, q.len() - HEADER);
        assert_eq!((id, flags & 0xf, addrs.len()), (0xbeef, 3, 0));
        assert_eq!(flags & FLAG_AA, 0);
    }

    /// Wait for the forwarder's next reply (its socket is non-blocking).
    fn next_reply(f: &mut Forwarder) -> Option<(Vec<u8>, SocketAddr)> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(r) = f.receive().unwrap() {
                return Some(r);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        None
    }

    #[test]
    fn the_forwarder_relays_matches_by_id_and_question_and_expires() {
        let upstream = UdpSocket::bind("127.0.0.1:0").unwrap();
        upstream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut up_table = Table::new();
        up_table.add("outside.example", Ipv4Addr::new(192, 0, 2, 7));
        let mut f = Forwarder::new(upstream.local_addr().unwrap()).unwrap();
        let client: SocketAddr = "10.88.0.9:40000".parse().unwrap();

        let q = query(0x0102, "outside.example", TYPE_A);
        f.relay(&q, client, Instant::now()).unwrap();
        assert_eq!(f.in_flight(), 1);
        let mut buf = [0u8; 512];
        let (n, from) = upstream.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[2..n], &q[2..], "relayed as sent but for the id");
        let relayed_id = u16_at(&buf, 0).unwrap();

        // Forged: the right id and question from another socket (the
        // connected socket drops it); a wrong question from upstream.
        let forger = UdpSocket::bind("127.0.0.1:0").unwrap();
        let good = reply_bytes(answer(&up_table, &buf[..n]));
        forger.send_to(&good, f.sock.local_addr().unwrap()).unwrap();
        let other = query(relayed_id, "other.example", TYPE_A);
        upstream
            .send_to(&error_reply(&other, Rcode::NxDomain).unwrap(), from)
            .unwrap();
        upstream.send_to(&good, from).unwrap();
        let (r, to) = next_reply(&mut f).expect("the upstream's reply");
        assert_eq!(to, client);
        let (id, _, addrs) = read_reply(&r, q.len() - HEADER);
        assert_eq!((id, addrs), (0x0102, vec![Ipv4Addr::new(192, 0, 2, 7)]));
        assert_eq!(f.in_flight(), 0);
        // A late duplicate matches nothing.
        upstream.send_to(&good, from).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert!(f.receive().unwrap().is_none());

        // Nobody answers: SERVFAIL at the deadline.
        let now = Instant::now();
        let q = query(0x0304, "slow.example", TYPE_A);
        f.relay(&q, client, now).unwrap();
        assert_eq!(f.next_deadline(), Some(now + FORWARD_TIMEOUT));
        assert!(f.expire(now).is_empty());
        let late = f.expire(now + FORWARD_TIMEOUT);
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].1, client);
        let (id, flags, _) = read_reply(&late[0].0, q.len() - HEADER);
        assert_eq!((id, flags & 0xf), (0x0304, Rcode::ServFail as u16));
        assert_eq!(f.in_flight(), 0);
        assert!(f.next_deadline().is_none());

        // Not a query; too many in flight.
        assert_eq!(
            f.relay(&q[..5], client, now).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        for _ in 0..MAX_PENDING {
            f.relay(&q, client, now).unwrap();
        }
        assert_eq!(
            f.relay(&q, client, now).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        assert_eq!(f.expire(now + FORWARD_TIMEOUT).len(), MAX_PENDING);
    }

    #[test]
    fn an_upstream_that_is_not_there_leaves_queries_to_expire() {
        let gone = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = gone.local_addr().unwrap();
        drop(gone);
        let mut f = Forwarder::new(addr).unwrap();
        let client: SocketAddr = "10.88.0.9:40000".parse().unwrap();
        let now = Instant::now();
        f.relay(&query(1, "a.example", TYPE_A), client, now)
            .unwrap();
        // The port unreachable comes back as an error on the next call.
        std::thread::sleep(Duration::from_millis(50));
        f.relay(&query(2, "b.example", TYPE_A), client, now)
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert!(f.receive().unwrap().is_none());
        assert_eq!(f.in_flight(), 2);
        assert_eq!(f.expire(now + FORWARD_TIMEOUT).len(), 2);
    }

    /// Serve `server` (the table's responder, forwarding to `upstream`,
    /// itself a responder for `up_table` that says NXDOMAIN for the rest)
    /// until `child` exits; its exit status and output.
    fn serve_until_exit(
        mut child: std::process::Child,
        server: &UdpSocket,
        upstream: &UdpSocket,
        table: &Table,
        up_table: &Table,
    ) -> (std::process::ExitStatus, String) {
        server.set_nonblocking(true).unwrap();
        upstream.set_nonblocking(true).unwrap();
        let mut f = Forwarder::new(upstream.local_addr().unwrap()).unwrap();
        let mut buf = [0u8; 1500];
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            assert!(Instant::now() < deadline, "the resolver did not finish");
            let mut busy = false;
            while let Ok((n, from)) = server.recv_from(&mut buf) {
                busy = true;
                match answer(table, &buf[..n]) {
                    Answer::Reply(r) => drop(server.send_to(&r, from)),
                    Answer::Forward => f.relay(&buf[..n], from, Instant::now()).unwrap(),
                    Answer::Refuse => {}
                }
            }
            while let Ok((n, from)) = upstream.recv_from(&mut buf) {
                busy = true;
                let r = match answer(up_table, &buf[..n]) {
                    Answer::Reply(r) => r,
                    _ => error_reply(&buf[..n], Rcode::NxDomain).unwrap(),
                };
                let _ = upstream.send_to(&r, from);
            }
            while let Some((r, to)) = f.receive().unwrap() {
                busy = true;
                let _ = server.send_to(&r, to);
            }
            for (r, to) in f.expire(Instant::now()) {
                let _ = server.send_to(&r, to);
            }
            if !busy {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status, text)
    }

    /// Real resolvers against the responder: busybox's nslookup (what
    /// busybox and Alpine images have) and glibc's through getent (with a
    /// resolv.conf of its own in a mount namespace). Both only talk to
    /// port 53, so the responder binds a loopback address of its own on
    /// it, which takes root.
    #[test]
    fn real_resolvers_find_our_names_and_forwarded_ones() {
        use std::process::{Command, Stdio};
        if !nix::unistd::geteuid().is_root() {
            eprintln!(
                "SKIPPED real_resolvers: resolvers ask port 53 only, and binding it takes root"
            );
            return;
        }
        let busybox = crate::linux::fs::executable_in(
            &std::env::var_os("PATH").unwrap_or_default(),
            "busybox",
        );
        let unshare = crate::linux::fs::executable_in(
            &std::env::var_os("PATH").unwrap_or_default(),
            "unshare",
        );
        if busybox.is_none() && unshare.is_none() {
            eprintln!("SKIPPED real_resolvers: neither busybox (nslookup) nor unshare (for getent) is installed");
            return;
        }
        // A loopback address of this test's own (any of 127/8 is ours).
        let pid = std::process::id();
        let server = (0..50u32)
            .find_map(|i| {
                let n = pid.wrapping_add(i * 7919);
                let ip = Ipv4Addr::new(127, 53, (n >> 8) as u8, (n as u8).max(1));
                UdpSocket::bind((ip, 53)).ok()
            })
            .expect("a free loopback address for port 53");
        let ip = server.local_addr().unwrap().ip().to_string();
        let upstream = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut t = Table::new();
        t.add("web", Ipv4Addr::new(10, 88, 0, 5));
        let mut up = Table::new();
        up.add("outside.example", Ipv4Addr::new(192, 0, 2, 7));

        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("resolv.conf");
        std::fs::write(
            &conf,
            format!("nameserver {ip}\noptions timeout:2 attempts:2\n"),
        )
        .unwrap();
        type MakeCommand = Box<dyn Fn(&str) -> Command>;
        let mut resolvers: Vec<(&str, MakeCommand)> = Vec::new();
        if let Some(bb) = busybox {
            let ip = ip.clone();
            resolvers.push((
                "busybox nslookup",
                Box::new(move |name| {
                    let mut c = Command::new(&bb);
                    c.args(["nslookup", name, &ip]);
                    c
                }),
            ));
        }
        if let Some(unshare) = unshare {
            let conf = conf.clone();
            resolvers.push((
                "glibc getent",
                Box::new(move |name| {
                    let mut c = Command::new(&unshare);
                    c.args(["--mount", "--propagation", "private", "sh", "-c"])
                        .arg(format!(
                            "mount --bind {} /etc/resolv.conf && exec getent ahostsv4 {name}",
                            conf.display()
                        ));
                    c
                }),
            ));
        }
        let cases = [
            ("web", Some("10.88.0.5")),
            ("outside.example", Some("192.0.2.7")),
            ("nothere.example", None),
        ];
        for (what, command) in &resolvers {
            for (name, want) in cases {
                let child = command(name)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                let (st, out) = serve_until_exit(child, &server, &upstream, &t, &up);
                match want {
                    Some(addr) => assert!(
                        st.success() && out.contains(addr),
                        "{what} {name}: {st} {out}"
                    ),
                    None => assert!(!st.success(), "{what} {name}: {st} {out}"),
                }
            }
        }
        let ran: Vec<&str> = resolvers.iter().map(|r| r.0).collect();
        eprintln!("real_resolvers: ran {}", ran.join(" and "));
    }
}
