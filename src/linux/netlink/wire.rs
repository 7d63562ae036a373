//! The netlink wire format (`linux/netlink.h`): a request built as bytes,
//! a datagram's replies and their attributes read back, the kernel's errno.

use std::io;

// linux/netlink.h
const NLMSG_HDRLEN: usize = 16;
pub(super) const NLMSG_NOOP: u16 = 1;
pub(super) const NLMSG_ERROR: u16 = 2;
pub(super) const NLMSG_DONE: u16 = 3;
pub(super) const NLMSG_OVERRUN: u16 = 4;
pub(super) const NLM_F_REQUEST: u16 = 0x1;
pub(super) const NLM_F_ACK: u16 = 0x4;
pub(super) const NLM_F_DUMP_INTR: u16 = 0x10;
pub(super) const NLM_F_DUMP: u16 = 0x300;
pub(super) const NLM_F_EXCL: u16 = 0x200;
pub(super) const NLM_F_CREATE: u16 = 0x400;

/// Attributes nested in another carry this bit on some kernels' replies.
const NLA_TYPE_MASK: u16 = 0x3fff;

const fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// A request being built: the header, then the family header and
/// attributes, each padded to 4 bytes.
pub(super) struct Msg {
    buf: Vec<u8>,
}

impl Msg {
    pub(super) fn new(kind: u16, flags: u16) -> Msg {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&[0; 4]); // length, set by finish
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
        buf.extend_from_slice(&[0; 8]); // sequence number and port id
        Msg { buf }
    }

    fn pad(&mut self) {
        self.buf.resize(align(self.buf.len()), 0);
    }

    pub(super) fn put(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        self.pad();
    }

    pub(super) fn attr(&mut self, kind: u16, payload: &[u8]) {
        let len = (4 + payload.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.put(payload);
    }

    pub(super) fn attr_u32(&mut self, kind: u16, v: u32) {
        self.attr(kind, &v.to_ne_bytes());
    }

    pub(super) fn attr_str(&mut self, kind: u16, s: &str) {
        let mut b = Vec::with_capacity(s.len() + 1);
        b.extend_from_slice(s.as_bytes());
        b.push(0);
        self.attr(kind, &b);
    }

    /// Open a nested attribute; `end` sets its length.
    pub(super) fn begin(&mut self, kind: u16) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        at
    }

    pub(super) fn end(&mut self, at: usize) {
        let len = (self.buf.len() - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    pub(super) fn finish(mut self, seq: u32, flags: u16) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        let f = u16::from_ne_bytes([self.buf[6], self.buf[7]]) | flags;
        self.buf[6..8].copy_from_slice(&f.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.buf
    }
}

/// One message of a datagram.
pub(super) struct Reply<'a> {
    pub(super) kind: u16,
    pub(super) flags: u16,
    pub(super) seq: u32,
    pub(super) payload: &'a [u8],
}

/// The messages of one datagram; a header that does not fit is EPROTO.
pub(super) struct Messages<'a>(pub(super) &'a [u8]);

impl<'a> Iterator for Messages<'a> {
    type Item = io::Result<Reply<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.0;
        if b.is_empty() {
            return None;
        }
        let len = match b.get(0..4) {
            Some(l) => u32::from_ne_bytes(l.try_into().unwrap()) as usize,
            None => 0,
        };
        if len < NLMSG_HDRLEN || len > b.len() {
            self.0 = &[];
            return Some(Err(io::Error::from_raw_os_error(libc::EPROTO)));
        }
        let reply = Reply {
            kind: u16::from_ne_bytes([b[4], b[5]]),
            flags: u16::from_ne_bytes([b[6], b[7]]),
            seq: u32::from_ne_bytes(b[8..12].try_into().unwrap()),
            payload: &b[NLMSG_HDRLEN..len],
        };
        self.0 = &b[align(len).min(b.len())..];
        Some(Ok(reply))
    }
}

/// The errno of an NLMSG_ERROR (struct nlmsgerr) or NLMSG_DONE payload:
/// 0 is success (an ack), a negative number the kernel's -errno.
pub(super) fn errno_of(payload: &[u8]) -> io::Result<()> {
    let code = match payload.get(0..4) {
        Some(b) => i32::from_ne_bytes(b.try_into().unwrap()),
        // A DONE without a code (older kernels) is a success.
        None => 0,
    };
    match code {
        0 => Ok(()),
        c if c < 0 => Err(io::Error::from_raw_os_error(-c)),
        _ => Err(io::Error::from_raw_os_error(libc::EPROTO)),
    }
}

/// The attributes in `b`: (type without the nesting bits, payload); stops
/// at the first one that does not fit.
pub(super) fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let kind = u16::from_ne_bytes([b[2], b[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > b.len() {
            return None;
        }
        let payload = &b[4..len];
        b = &b[align(len).min(b.len())..];
        Some((kind, payload))
    })
}

pub(super) fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

pub(super) fn u32_of(b: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(0..4)?.try_into().ok()?))
}
