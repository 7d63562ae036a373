//! A small rtnetlink client (rtnetlink(7), netlink(7)): links, bridges, veth
//! pairs with one end in another network namespace, IPv4 addresses and the
//! default route, in the network namespace the socket was opened in.
//!
//! Messages are built and read as bytes in the layouts of the uapi headers
//! (`linux/netlink.h`, `linux/rtnetlink.h`, `linux/if_link.h`,
//! `linux/if_addr.h`), in host byte order; addresses in network order.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::socket::{
    connect, recv, send, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol,
    SockType,
};

mod addr;
mod link;
mod route;
mod wire;

pub use link::{Link, Veth, VethPair, IFF_UP, LOOPBACK};

use wire::{
    errno_of, Messages, Msg, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN, NLM_F_ACK,
    NLM_F_DUMP, NLM_F_DUMP_INTR,
};

/// Size of one receive: the kernel fills a dump's datagrams up to 32 KiB
/// (or one message, if a single one is larger); a datagram that does not
/// fit is an error (EMSGSIZE), never a silent cut.
const RECV_BUF: usize = 64 * 1024;

/// How often a dump the kernel marks inconsistent (a link came or went
/// while it ran) is asked again before giving up with EAGAIN.
const DUMP_TRIES: usize = 5;

/// A NETLINK_ROUTE socket, bound to the network namespace it was opened in
/// for its whole life (a later setns of the caller does not move it).
#[derive(Debug)]
pub struct Route {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

impl AsFd for Route {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Route {
    /// A socket in the caller's current network namespace. It is connected
    /// to the kernel, so no other process's socket can send to it
    /// (netlink(7): a connected socket takes datagrams from its peer only).
    pub fn open() -> io::Result<Route> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )?;
        connect(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
        Ok(Route {
            fd,
            seq: 0,
            buf: vec![0; RECV_BUF],
        })
    }

    fn ack(&mut self, m: Msg) -> io::Result<()> {
        self.transact(m, |_, _| {})
    }

    /// Send a request with NLM_F_ACK and hand each reply message to `each`
    /// until the kernel's ack; a negative ack is its errno.
    fn transact(&mut self, m: Msg, mut each: impl FnMut(u16, &[u8])) -> io::Result<()> {
        let seq = self.send(m, NLM_F_ACK)?;
        loop {
            let n = self.receive()?;
            for msg in Messages(&self.buf[..n]) {
                let msg = msg?;
                if msg.seq != seq {
                    continue;
                }
                match msg.kind {
                    NLMSG_ERROR => return errno_of(msg.payload),
                    NLMSG_NOOP | NLMSG_DONE => {}
                    NLMSG_OVERRUN => return Err(io::Error::from_raw_os_error(libc::ENOBUFS)),
                    kind => each(kind, msg.payload),
                }
            }
        }
    }

    /// A dump request: `header` is the family header of `kind`; `each`
    /// turns reply messages into items. Asked again when the kernel marks
    /// the dump inconsistent.
    fn dump<T>(
        &mut self,
        kind: u16,
        header: &[u8],
        mut each: impl FnMut(u16, &[u8], &mut Vec<T>),
    ) -> io::Result<Vec<T>> {
        for _ in 0..DUMP_TRIES {
            let mut m = Msg::new(kind, NLM_F_DUMP);
            m.put(header);
            let seq = self.send(m, 0)?;
            let mut out = Vec::new();
            let mut interrupted = false;
            'read: loop {
                let n = self.receive()?;
                for msg in Messages(&self.buf[..n]) {
                    let msg = msg?;
                    if msg.seq != seq {
                        continue;
                    }
                    interrupted |= msg.flags & NLM_F_DUMP_INTR != 0;
                    match msg.kind {
                        // NLMSG_DONE carries the dump's own error code.
                        NLMSG_DONE | NLMSG_ERROR => {
                            errno_of(msg.payload)?;
                            break 'read;
                        }
                        NLMSG_NOOP => {}
                        NLMSG_OVERRUN => return Err(io::Error::from_raw_os_error(libc::ENOBUFS)),
                        kind => each(kind, msg.payload, &mut out),
                    }
                }
            }
            if !interrupted {
                return Ok(out);
            }
        }
        Err(io::Error::from_raw_os_error(libc::EAGAIN))
    }

    fn send(&mut self, m: Msg, flags: u16) -> io::Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let bytes = m.finish(self.seq, flags);
        loop {
            match send(self.fd.as_raw_fd(), &bytes, MsgFlags::empty()) {
                Ok(n) if n == bytes.len() => return Ok(self.seq),
                Ok(_) => return Err(io::Error::from_raw_os_error(libc::EMSGSIZE)),
                Err(nix::Error::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// One datagram into the buffer; its length.
    fn receive(&mut self) -> io::Result<usize> {
        loop {
            // MSG_TRUNC makes netlink return the datagram's real length.
            match recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::MSG_TRUNC) {
                Ok(n) if n > self.buf.len() => {
                    return Err(io::Error::from_raw_os_error(libc::EMSGSIZE))
                }
                Ok(n) => return Ok(n),
                Err(nix::Error::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests;
