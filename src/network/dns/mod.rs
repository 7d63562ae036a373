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

use std::collections::HashMap;
use std::net::Ipv4Addr;

mod forwarder;

pub use forwarder::{Forwarder, FORWARD_TIMEOUT};

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

#[cfg(test)]
mod tests;
