//! A small rtnetlink client (rtnetlink(7), netlink(7)): links, bridges, veth
//! pairs with one end in another network namespace, IPv4 addresses and the
//! default route, in the network namespace the socket was opened in.
//!
//! Messages are built and read as bytes in the layouts of the uapi headers
//! (`linux/netlink.h`, `linux/rtnetlink.h`, `linux/if_link.h`,
//! `linux/if_addr.h`), in host byte order; addresses in network order.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::socket::{
    connect, recv, send, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol,
    SockType,
};

// linux/netlink.h
const NLMSG_HDRLEN: usize = 16;
const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_OVERRUN: u16 = 4;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP_INTR: u16 = 0x10;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;

// linux/rtnetlink.h
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_SETLINK: u16 = 19;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_NEWRULE: u16 = 32;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTN_LOCAL: u8 = 2;
const RT_SCOPE_HOST: u8 = 254;
const FRA_FWMARK: u16 = 10;
const FR_ACT_TO_TBL: u8 = 1;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RTN_UNICAST: u8 = 1;

// linux/if_link.h, linux/veth.h
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_LINK: u16 = 5;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_GROUP: u16 = 27;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;

// linux/if_addr.h
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;

/// Attributes nested in another carry this bit on some kernels' replies.
const NLA_TYPE_MASK: u16 = 0x3fff;

/// `IFF_UP` in `Link::flags` (net/if.h).
pub const IFF_UP: u32 = 0x1;

/// The loopback device's index in every network namespace
/// (`LOOPBACK_IFINDEX`): a fresh namespace's `lo` needs no lookup.
pub const LOOPBACK: u32 = 1;

/// Size of one receive: the kernel fills a dump's datagrams up to 32 KiB
/// (or one message, if a single one is larger); a datagram that does not
/// fit is an error (EMSGSIZE), never a silent cut.
const RECV_BUF: usize = 64 * 1024;

/// How often a dump the kernel marks inconsistent (a link came or went
/// while it ran) is asked again before giving up with EAGAIN.
const DUMP_TRIES: usize = 5;

/// One link as a dump or a lookup returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `ifi_flags`: `IFF_UP` and the others of netdevice(7).
    pub flags: u32,
    pub mtu: Option<u32>,
    /// `IFLA_LINK`: for a veth end, its peer's index (in the peer's
    /// namespace).
    pub link: Option<u32>,
    /// The bridge (or other master) this link is a port of.
    pub master: Option<u32>,
    pub mac: Option<[u8; 6]>,
    /// `IFLA_GROUP`: the interface group (0 unless set).
    pub group: Option<u32>,
    /// `IFLA_INFO_KIND`: "bridge", "veth"; none for loopback.
    pub kind: Option<String>,
}

impl Link {
    pub fn is_up(&self) -> bool {
        self.flags & IFF_UP != 0
    }
}

/// A veth pair to create: `name` in the socket's namespace, `peer` made
/// directly in the namespace `peer_netns`. What can be set at creation is
/// set there, in the one request: fewer round trips per container.
#[derive(Debug, Clone, Copy)]
pub struct Veth<'a> {
    name: &'a str,
    peer: &'a str,
    peer_netns: BorrowedFd<'a>,
    mtu: Option<u32>,
    master: Option<u32>,
    up: bool,
    peer_mac: Option<[u8; 6]>,
}

impl<'a> Veth<'a> {
    pub fn new(name: &'a str, peer: &'a str, peer_netns: BorrowedFd<'a>) -> Veth<'a> {
        Veth {
            name,
            peer,
            peer_netns,
            mtu: None,
            master: None,
            up: false,
            peer_mac: None,
        }
    }

    /// The MTU of both ends (a pair whose ends differ drops what only one
    /// side can carry).
    pub fn mtu(mut self, mtu: u32) -> Self {
        self.mtu = Some(mtu);
        self
    }

    /// Make this end a port of `master` (a bridge's index).
    pub fn master(mut self, master: u32) -> Self {
        self.master = Some(master);
        self
    }

    /// Bring this end up. The peer stays down: its namespace's owner brings
    /// it up once it is configured.
    pub fn up(mut self) -> Self {
        self.up = true;
        self
    }

    /// The peer's MAC address (else the kernel picks a random one).
    pub fn peer_mac(mut self, mac: [u8; 6]) -> Self {
        self.peer_mac = Some(mac);
        self
    }
}

/// The two ends of a veth pair just made, each index in its own namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VethPair {
    pub index: u32,
    pub peer_index: u32,
}

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

    /// The index of the link named `name`, if there is one.
    pub fn link_index(&mut self, name: &str) -> io::Result<Option<u32>> {
        Ok(self.link(name)?.map(|l| l.index))
    }

    /// The link named `name`, if there is one.
    pub fn link(&mut self, name: &str) -> io::Result<Option<Link>> {
        check_name(name)?;
        let mut m = Msg::new(RTM_GETLINK, 0);
        m.put(&ifinfomsg(0, 0, 0));
        m.attr_str(IFLA_IFNAME, name);
        let mut found = None;
        match self.transact(m, |kind, payload| {
            if kind == RTM_NEWLINK {
                found = parse_link(payload);
            }
        }) {
            Ok(()) => Ok(found),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every link of the namespace (an RTM_GETLINK dump).
    pub fn links(&mut self) -> io::Result<Vec<Link>> {
        self.dump(RTM_GETLINK, &ifinfomsg(0, 0, 0), |kind, payload, out| {
            if kind == RTM_NEWLINK {
                out.extend(parse_link(payload));
            }
        })
    }

    /// Every IPv4 address of the namespace: (link index, address, prefix).
    pub fn addresses_v4(&mut self) -> io::Result<Vec<(u32, Ipv4Addr, u8)>> {
        self.dump(
            RTM_GETADDR,
            &ifaddrmsg(libc::AF_INET as u8, 0, 0),
            |kind, payload, out| {
                if kind == RTM_NEWADDR {
                    out.extend(parse_address_v4(payload));
                }
            },
        )
    }

    /// Create a bridge named `name` (down); EEXIST when the name is taken.
    pub fn add_bridge(&mut self, name: &str) -> io::Result<u32> {
        check_name(name)?;
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        m.put(&ifinfomsg(0, 0, 0));
        m.attr_str(IFLA_IFNAME, name);
        let info = m.begin(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "bridge");
        m.end(info);
        self.ack(m)?;
        self.link_index(name)?
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))
    }

    /// Create the veth pair `veth` describes and return both ends' indexes
    /// (the peer's read from this end's `IFLA_LINK`, which saves a lookup
    /// in the peer's namespace). EEXIST when either name is taken in its
    /// namespace: the kernel checks and creates under one lock, so a name
    /// can serve as a lease between processes.
    pub fn add_veth(&mut self, veth: &Veth<'_>) -> io::Result<VethPair> {
        check_name(veth.name)?;
        check_name(veth.peer)?;
        let up = if veth.up { IFF_UP } else { 0 };
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        m.put(&ifinfomsg(0, up, up));
        m.attr_str(IFLA_IFNAME, veth.name);
        if let Some(mtu) = veth.mtu {
            m.attr_u32(IFLA_MTU, mtu);
        }
        if let Some(master) = veth.master {
            m.attr_u32(IFLA_MASTER, master);
        }
        let info = m.begin(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "veth");
        let data = m.begin(IFLA_INFO_DATA);
        // The peer's attributes follow an ifinfomsg of its own (veth.h).
        let peer = m.begin(VETH_INFO_PEER);
        m.put(&ifinfomsg(0, 0, 0));
        m.attr_str(IFLA_IFNAME, veth.peer);
        m.attr_u32(IFLA_NET_NS_FD, veth.peer_netns.as_raw_fd() as u32);
        if let Some(mtu) = veth.mtu {
            m.attr_u32(IFLA_MTU, mtu);
        }
        if let Some(mac) = veth.peer_mac {
            m.attr(IFLA_ADDRESS, &mac);
        }
        m.end(peer);
        m.end(data);
        m.end(info);
        self.ack(m)?;
        let link = self
            .link(veth.name)?
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))?;
        Ok(VethPair {
            index: link.index,
            peer_index: link
                .link
                .ok_or_else(|| io::Error::from_raw_os_error(libc::EPROTO))?,
        })
    }

    /// Make link `index` a port of `master`.
    pub fn set_master(&mut self, index: u32, master: u32) -> io::Result<()> {
        let mut m = Msg::new(RTM_SETLINK, 0);
        m.put(&ifinfomsg(index, 0, 0));
        m.attr_u32(IFLA_MASTER, master);
        self.ack(m)
    }

    /// Bring link `index` up.
    pub fn set_up(&mut self, index: u32) -> io::Result<()> {
        let mut m = Msg::new(RTM_SETLINK, 0);
        m.put(&ifinfomsg(index, IFF_UP, IFF_UP));
        self.ack(m)
    }

    pub fn set_mtu(&mut self, index: u32, mtu: u32) -> io::Result<()> {
        let mut m = Msg::new(RTM_SETLINK, 0);
        m.put(&ifinfomsg(index, 0, 0));
        m.attr_u32(IFLA_MTU, mtu);
        self.ack(m)
    }

    /// Put link `index` in interface group `group` (which firewall rules
    /// can match, as nft's `iifgroup`).
    pub fn set_group(&mut self, index: u32, group: u32) -> io::Result<()> {
        let mut m = Msg::new(RTM_SETLINK, 0);
        m.put(&ifinfomsg(index, 0, 0));
        m.attr_u32(IFLA_GROUP, group);
        self.ack(m)
    }

    pub fn set_mac(&mut self, index: u32, mac: [u8; 6]) -> io::Result<()> {
        let mut m = Msg::new(RTM_SETLINK, 0);
        m.put(&ifinfomsg(index, 0, 0));
        m.attr(IFLA_ADDRESS, &mac);
        self.ack(m)
    }

    /// Add `addr/prefix` to link `index`; EEXIST when it has it already.
    /// The kernel adds the subnet's route once the link is up.
    pub fn add_address_v4(&mut self, index: u32, addr: Ipv4Addr, prefix: u8) -> io::Result<()> {
        if prefix > 32 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let mut m = Msg::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
        m.put(&ifaddrmsg(libc::AF_INET as u8, prefix, index));
        m.attr(IFA_LOCAL, &addr.octets());
        m.attr(IFA_ADDRESS, &addr.octets());
        self.ack(m)
    }

    /// Add the default route via `gateway`, which must be on the subnet of
    /// an address of a link that is up (else ENETUNREACH); EEXIST when a
    /// default route exists.
    pub fn add_default_route_v4(&mut self, gateway: Ipv4Addr) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
        // struct rtmsg: family, dst_len, src_len, tos, table, protocol,
        // scope, type, flags.
        m.put(&[
            libc::AF_INET as u8,
            0,
            0,
            0,
            RT_TABLE_MAIN,
            RTPROT_BOOT,
            RT_SCOPE_UNIVERSE,
            RTN_UNICAST,
        ]);
        m.put(&0u32.to_ne_bytes());
        m.attr(RTA_GATEWAY, &gateway.octets());
        self.ack(m)
    }

    /// In routing table `table`, deliver every IPv4 destination locally
    /// (a route of type local, 0.0.0.0/0 through link `dev`): the route
    /// that lets a transparent socket (IP_TRANSPARENT) bound to another
    /// host's address receive its replies. EEXIST when it is there.
    pub fn add_local_default_route_v4(&mut self, table: u8, dev: u32) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
        m.put(&[
            libc::AF_INET as u8,
            0,
            0,
            0,
            table,
            RTPROT_BOOT,
            RT_SCOPE_HOST,
            RTN_LOCAL,
        ]);
        m.put(&0u32.to_ne_bytes());
        m.attr_u32(RTA_OIF, dev);
        self.ack(m)
    }

    /// A policy rule: IPv4 packets carrying firewall mark `mark` are routed
    /// by table `table`.
    pub fn add_fwmark_rule_v4(&mut self, mark: u32, table: u8) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL);
        // struct fib_rule_hdr: family, dst_len, src_len, tos, table, two
        // reserved bytes, action, flags.
        m.put(&[libc::AF_INET as u8, 0, 0, 0, table, 0, 0, FR_ACT_TO_TBL]);
        m.put(&0u32.to_ne_bytes());
        m.attr_u32(FRA_FWMARK, mark);
        self.ack(m)
    }

    /// Delete link `index` (a veth end takes its peer with it).
    pub fn delete_link(&mut self, index: u32) -> io::Result<()> {
        let mut m = Msg::new(RTM_DELLINK, 0);
        m.put(&ifinfomsg(index, 0, 0));
        self.ack(m)
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

/// An interface name the kernel can take: 1 to 15 bytes (IFNAMSIZ with
/// its NUL), no '/', no whitespace, not "." or ".." (dev_valid_name).
fn check_name(name: &str) -> io::Result<()> {
    let ok = !name.is_empty()
        && name.len() < libc::IFNAMSIZ
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace());
    if ok {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(libc::EINVAL))
    }
}

/// struct ifinfomsg: family, pad, type, index, flags, change.
fn ifinfomsg(index: u32, flags: u32, change: u32) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b[8..12].copy_from_slice(&flags.to_ne_bytes());
    b[12..16].copy_from_slice(&change.to_ne_bytes());
    b
}

/// struct ifaddrmsg: family, prefixlen, flags, scope, index.
fn ifaddrmsg(family: u8, prefix: u8, index: u32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[0] = family;
    b[1] = prefix;
    b[3] = RT_SCOPE_UNIVERSE;
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b
}

const fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// A request being built: the header, then the family header and
/// attributes, each padded to 4 bytes.
struct Msg {
    buf: Vec<u8>,
}

impl Msg {
    fn new(kind: u16, flags: u16) -> Msg {
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

    fn put(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        self.pad();
    }

    fn attr(&mut self, kind: u16, payload: &[u8]) {
        let len = (4 + payload.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.put(payload);
    }

    fn attr_u32(&mut self, kind: u16, v: u32) {
        self.attr(kind, &v.to_ne_bytes());
    }

    fn attr_str(&mut self, kind: u16, s: &str) {
        let mut b = Vec::with_capacity(s.len() + 1);
        b.extend_from_slice(s.as_bytes());
        b.push(0);
        self.attr(kind, &b);
    }

    /// Open a nested attribute; `end` sets its length.
    fn begin(&mut self, kind: u16) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        at
    }

    fn end(&mut self, at: usize) {
        let len = (self.buf.len() - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    fn finish(mut self, seq: u32, flags: u16) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        let f = u16::from_ne_bytes([self.buf[6], self.buf[7]]) | flags;
        self.buf[6..8].copy_from_slice(&f.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.buf
    }
}

/// One message of a datagram.
struct Reply<'a> {
    kind: u16,
    flags: u16,
    seq: u32,
    payload: &'a [u8],
}

/// The messages of one datagram; a header that does not fit is EPROTO.
struct Messages<'a>(&'a [u8]);

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
fn errno_of(payload: &[u8]) -> io::Result<()> {
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
fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
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

fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn u32_of(b: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(0..4)?.try_into().ok()?))
}

/// An RTM_NEWLINK payload: struct ifinfomsg, then attributes.
fn parse_link(p: &[u8]) -> Option<Link> {
    let head = p.get(0..16)?;
    let mut link = Link {
        index: u32_of(&head[4..8])?,
        name: String::new(),
        flags: u32_of(&head[8..12])?,
        mtu: None,
        link: None,
        master: None,
        mac: None,
        group: None,
        kind: None,
    };
    for (kind, v) in attrs(&p[16..]) {
        match kind {
            IFLA_IFNAME => link.name = c_string(v),
            IFLA_MTU => link.mtu = u32_of(v),
            IFLA_LINK => link.link = u32_of(v),
            IFLA_MASTER => link.master = u32_of(v),
            IFLA_GROUP => link.group = u32_of(v),
            IFLA_ADDRESS => link.mac = v.try_into().ok(),
            IFLA_LINKINFO => {
                link.kind = attrs(v)
                    .find(|&(k, _)| k == IFLA_INFO_KIND)
                    .map(|(_, s)| c_string(s));
            }
            _ => {}
        }
    }
    Some(link)
}

/// An RTM_NEWADDR payload of family AF_INET: (index, address, prefix).
fn parse_address_v4(p: &[u8]) -> Option<(u32, Ipv4Addr, u8)> {
    let head = p.get(0..8)?;
    if head[0] != libc::AF_INET as u8 {
        return None;
    }
    let (mut local, mut address) = (None, None);
    for (kind, v) in attrs(&p[8..]) {
        let a = <[u8; 4]>::try_from(v).ok().map(Ipv4Addr::from);
        match kind {
            IFA_LOCAL => local = a,
            IFA_ADDRESS => address = a,
            _ => {}
        }
    }
    Some((u32_of(&head[4..8])?, local.or(address)?, head[1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nested_request_has_the_kernels_layout() {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        m.put(&ifinfomsg(7, IFF_UP, IFF_UP));
        m.attr_str(IFLA_IFNAME, "br0");
        let info = m.begin(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "bridge");
        m.end(info);
        let b = m.finish(9, NLM_F_ACK);
        // header 16 + ifinfomsg 16 + "br0\0" 8 + linkinfo (4 + "bridge\0" 12)
        assert_eq!(b.len(), 16 + 16 + 8 + 16);
        assert_eq!(u32_of(&b[0..4]), Some(b.len() as u32));
        assert_eq!(u16::from_ne_bytes([b[4], b[5]]), RTM_NEWLINK);
        let flags = u16::from_ne_bytes([b[6], b[7]]);
        assert_eq!(flags, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
        assert_eq!(u32_of(&b[8..12]), Some(9));
        assert_eq!(u32_of(&b[20..24]), Some(7));
        let a: Vec<_> = attrs(&b[32..]).collect();
        assert_eq!(a.len(), 2);
        assert_eq!(a[0], (IFLA_IFNAME, &b"br0\0"[..]));
        assert_eq!(a[1].0, IFLA_LINKINFO);
        // The nest's length covers its padded members.
        assert_eq!(u16::from_ne_bytes([b[40], b[41]]), 16);
        let inner: Vec<_> = attrs(a[1].1).collect();
        assert_eq!(inner, [(IFLA_INFO_KIND, &b"bridge\0"[..])]);
    }

    #[test]
    fn replies_that_do_not_fit_are_errors_not_panics() {
        // A length below the header, beyond the datagram, and a tail.
        for bad in [
            &[8u8, 0, 0, 0, 2, 0, 0, 0][..],
            &[64, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0][..],
            &[1, 2, 3][..],
        ] {
            let mut it = Messages(bad);
            assert!(it.next().unwrap().is_err());
            assert!(it.next().is_none());
        }
        // An attribute claiming more than there is ends the walk.
        assert_eq!(attrs(&[200, 0, 3, 0, b'x', 0, 0, 0]).count(), 0);
        assert_eq!(attrs(&[2, 0, 3, 0]).count(), 0);
        assert!(parse_link(&[0; 15]).is_none());
        assert!(parse_address_v4(&[libc::AF_INET as u8, 24, 0, 0]).is_none());
    }

    #[test]
    fn an_ack_is_zero_and_an_error_its_errno() {
        assert!(errno_of(&0i32.to_ne_bytes()).is_ok());
        let e = errno_of(&(-libc::EEXIST).to_ne_bytes()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
        assert!(errno_of(&[]).is_ok());
        assert!(errno_of(&5i32.to_ne_bytes()).is_err());
    }

    #[test]
    fn names_the_kernel_would_refuse_are_einval() {
        for bad in ["", "sixteen-chars-xx", "a/b", "a b", ".", "..", "a:1"] {
            assert_eq!(
                check_name(bad).unwrap_err().raw_os_error(),
                Some(libc::EINVAL),
                "{bad:?}"
            );
        }
        check_name("fifteen-chars-x").unwrap();
    }

    mod kernel {
        //! Against the real kernel, in forked children that unshare network
        //! namespaces (and a user namespace when not root, or to test the
        //! unprivileged path as root).

        use super::super::*;
        use anyhow::{bail, ensure, Context};
        use std::fs::File;
        use std::io::{Read, Write};
        use std::os::fd::AsFd;
        use std::process::Command;
        use std::time::{Duration, Instant};

        use nix::sched::{setns, unshare, CloneFlags};

        use crate::linux::process;

        const NOBODY: u32 = 65534;

        /// A new network namespace for this process: as root a plain one,
        /// else (or with `unprivileged`, after dropping to nobody) inside a
        /// new user namespace whose root is our uid. `Err(Some)` is a reason
        /// to skip: the kernel refuses the namespaces here.
        fn enter(unprivileged: bool) -> Result<(), String> {
            let root = nix::unistd::geteuid().is_root();
            if root && !unprivileged {
                return unshare(CloneFlags::CLONE_NEWNET)
                    .map_err(|e| format!("unshare(CLONE_NEWNET): {e}"));
            }
            if root {
                let nobody = nix::unistd::Uid::from_raw(NOBODY);
                let nogroup = nix::unistd::Gid::from_raw(NOBODY);
                nix::unistd::setgroups(&[]).map_err(|e| format!("setgroups: {e}"))?;
                nix::unistd::setresgid(nogroup, nogroup, nogroup)
                    .map_err(|e| format!("setresgid: {e}"))?;
                nix::unistd::setresuid(nobody, nobody, nobody)
                    .map_err(|e| format!("setresuid: {e}"))?;
                // A change of credentials makes /proc/self root's; the map
                // below is written through it.
                nix::sys::prctl::set_dumpable(true).map_err(|e| format!("dumpable: {e}"))?;
            }
            let uid = nix::unistd::geteuid().as_raw();
            unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("unshare(CLONE_NEWUSER|CLONE_NEWNET) as uid {uid}: {e}"))?;
            std::fs::write("/proc/self/uid_map", format!("0 {uid} 1"))
                .map_err(|e| format!("uid_map: {e}"))
        }

        /// Run `body` in a forked child in a fresh network namespace (see
        /// [`enter`]); its failure fails the test, its text is printed.
        fn in_netns(name: &str, unprivileged: bool, body: fn() -> anyhow::Result<String>) {
            let (rx, tx) = process::pipe().unwrap();
            let child = move || {
                let mut tx = File::from(tx);
                let word = match enter(unprivileged) {
                    Err(why) => format!("SKIP {why}"),
                    Ok(()) => match std::panic::catch_unwind(body) {
                        Ok(Ok(info)) => format!("OK {info}"),
                        Ok(Err(e)) => format!("FAIL {e:#}"),
                        Err(_) => "FAIL the test body panicked".to_string(),
                    },
                };
                let _ = tx.write_all(word.as_bytes());
                0
            };
            // SAFETY: the test harness has other threads; the child only
            // allocates (glibc's fork handlers keep malloc usable), makes
            // system calls and runs `ip`, and exits without returning into
            // the harness (a panic is caught above). The parent's copy of
            // the writing end goes with the closure, so the read below ends.
            let pid = unsafe { process::fork_unchecked(child) }.unwrap();
            let mut rx = File::from(rx);
            let mut word = String::new();
            rx.read_to_string(&mut word).unwrap();
            let code = process::wait_exit_code(pid).unwrap();
            if let Some(why) = word.strip_prefix("SKIP ") {
                eprintln!("SKIPPED {name}: the kernel refuses a network namespace here: {why}");
                return;
            }
            match word.strip_prefix("OK ") {
                Some(info) => {
                    assert_eq!(code, 0);
                    if !info.is_empty() {
                        eprintln!("{name}: {info}");
                    }
                }
                None => panic!("{name}: {word} (exit {code})"),
            }
        }

        fn netns() -> anyhow::Result<File> {
            File::open("/proc/self/ns/net").context("open /proc/self/ns/net")
        }

        /// A second network namespace (owned by the same user namespace);
        /// the caller stays where it was.
        fn second_netns() -> anyhow::Result<(File, File)> {
            let here = netns()?;
            unshare(CloneFlags::CLONE_NEWNET).context("unshare a second network namespace")?;
            let there = netns()?;
            setns(here.as_fd(), CloneFlags::CLONE_NEWNET).context("setns back")?;
            Ok((here, there))
        }

        /// `ip ARGS` in the current network namespace; None without `ip`.
        fn ip(args: &[&str]) -> anyhow::Result<Option<String>> {
            match Command::new("ip").args(args).output() {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e).context("run ip"),
                Ok(o) => {
                    ensure!(o.status.success(), "ip {args:?}: {:?}", o);
                    Ok(Some(String::from_utf8_lossy(&o.stdout).into_owned()))
                }
            }
        }

        fn errno<T: std::fmt::Debug>(r: io::Result<T>) -> Option<i32> {
            r.err().and_then(|e| e.raw_os_error())
        }

        fn bridge_veth_address_route() -> anyhow::Result<String> {
            let (here, there) = second_netns()?;
            let mut rt = Route::open().context("open")?;
            let links = rt.links().context("dump")?;
            ensure!(
                links.len() == 1 && links[0].name == "lo" && links[0].index == LOOPBACK,
                "a fresh namespace has lo only: {links:?}"
            );

            let br = rt.add_bridge("brt0").context("add_bridge")?;
            ensure!(rt.link_index("brt0")? == Some(br));
            let br_mac = [0x02, 0, 0, 0, 0, 1];
            rt.set_mac(br, br_mac).context("set_mac")?;
            rt.set_up(br).context("set_up")?;
            rt.set_group(br, 0xb0).context("set_group")?;
            rt.add_fwmark_rule_v4(1, 100).context("fwmark rule")?;
            rt.add_local_default_route_v4(100, LOOPBACK)
                .context("local route")?;
            ensure!(errno(rt.add_local_default_route_v4(100, LOOPBACK)) == Some(libc::EEXIST));
            ensure!(rt.link("brt0")?.and_then(|l| l.group) == Some(0xb0));
            rt.add_address_v4(br, Ipv4Addr::new(10, 88, 0, 1), 24)
                .context("address on the bridge")?;
            let listener =
                std::net::UdpSocket::bind("10.88.0.1:0").context("bind on the bridge")?;

            let peer_mac = [0x02, 0, 0, 0, 0, 2];
            let pair = rt
                .add_veth(
                    &Veth::new("vt0", "eth0", there.as_fd())
                        .mtu(1400)
                        .master(br)
                        .up()
                        .peer_mac(peer_mac),
                )
                .context("add_veth")?;
            let links = rt.links()?;
            let v = links
                .iter()
                .find(|l| l.index == pair.index)
                .context("vt0 in the dump")?;
            ensure!(
                v.name == "vt0"
                    && v.kind.as_deref() == Some("veth")
                    && v.master == Some(br)
                    && v.mtu == Some(1400)
                    && v.is_up(),
                "vt0 as made: {v:?}"
            );
            let b = links
                .iter()
                .find(|l| l.index == br)
                .context("the bridge in the dump")?;
            ensure!(
                b.kind.as_deref() == Some("bridge") && b.mac == Some(br_mac) && b.is_up(),
                "the bridge: {b:?}"
            );
            ensure!(
                !links.iter().any(|l| l.name == "eth0"),
                "the peer is elsewhere: {links:?}"
            );

            // Names as leases: either name taken is EEXIST, and nothing of
            // the refused pair stays behind.
            ensure!(
                errno(rt.add_veth(&Veth::new("vt0", "eth1", there.as_fd()))) == Some(libc::EEXIST)
            );
            ensure!(
                errno(rt.add_veth(&Veth::new("vt1", "eth0", there.as_fd()))) == Some(libc::EEXIST)
            );
            ensure!(
                rt.link_index("vt1")?.is_none(),
                "a refused pair leaves nothing"
            );
            ensure!(errno(rt.add_bridge("brt0")) == Some(libc::EEXIST));
            ensure!(errno(rt.add_bridge("vt0")) == Some(libc::EEXIST));
            ensure!(
                errno(rt.add_address_v4(br, Ipv4Addr::new(10, 88, 0, 1), 24)) == Some(libc::EEXIST)
            );

            // The same settings one by one.
            let p2 = rt
                .add_veth(&Veth::new("vt2", "eth2", there.as_fd()))
                .context("vt2")?;
            ensure!(rt.link("vt2")?.context("vt2")?.master.is_none());
            rt.set_master(p2.index, br).context("set_master")?;
            rt.set_mtu(p2.index, 1300).context("set_mtu")?;
            rt.set_up(p2.index)?;
            let l2 = rt.link("vt2")?.context("vt2")?;
            ensure!(
                l2.master == Some(br) && l2.mtu == Some(1300) && l2.is_up(),
                "vt2: {l2:?}"
            );

            let mut checked_by_ip = true;
            if let Some(out) = ip(&["-o", "link", "show", "dev", "vt0"])? {
                ensure!(
                    out.contains("vt0@") && out.contains("mtu 1400") && out.contains("master brt0"),
                    "ip: {out}"
                );
            } else {
                checked_by_ip = false;
            }

            // The peer's side, through a socket opened there.
            setns(there.as_fd(), CloneFlags::CLONE_NEWNET)?;
            let mut peer = Route::open()?;
            let e = peer.link("eth0")?.context("eth0 in the second namespace")?;
            ensure!(
                e.index == pair.peer_index,
                "IFLA_LINK names the peer: {pair:?} {e:?}"
            );
            ensure!(
                e.mtu == Some(1400)
                    && e.mac == Some(peer_mac)
                    && e.kind.as_deref() == Some("veth")
                    && !e.is_up(),
                "eth0 as made: {e:?}"
            );
            peer.set_up(LOOPBACK).context("lo up")?;
            let addr = Ipv4Addr::new(10, 88, 0, 2);
            peer.add_address_v4(e.index, addr, 24).context("address")?;
            peer.set_up(e.index).context("eth0 up")?;
            peer.add_default_route_v4(Ipv4Addr::new(10, 88, 0, 1))
                .context("default route")?;
            ensure!(
                errno(peer.add_default_route_v4(Ipv4Addr::new(10, 88, 0, 1))) == Some(libc::EEXIST)
            );
            ensure!(errno(peer.add_address_v4(e.index, addr, 33)) == Some(libc::EINVAL));
            let addrs = peer.addresses_v4()?;
            ensure!(addrs.contains(&(e.index, addr, 24)), "addresses: {addrs:?}");
            ensure!(
                addrs.contains(&(LOOPBACK, Ipv4Addr::LOCALHOST, 8)),
                "addresses: {addrs:?}"
            );
            let routes = std::fs::read_to_string("/proc/net/route")?;
            ensure!(
                routes.lines().any(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    f.get(..3) == Some(&["eth0", "00000000", "0100580A"][..])
                }),
                "a default route via 10.88.0.1 on eth0: {routes}"
            );
            if let Some(out) = ip(&["-o", "addr", "show", "dev", "eth0"])? {
                ensure!(out.contains("inet 10.88.0.2/24"), "ip: {out}");
                let link = ip(&["-o", "link", "show", "dev", "eth0"])?.unwrap_or_default();
                ensure!(
                    link.contains("mtu 1400") && link.contains("02:00:00:00:00:02"),
                    "ip: {link}"
                );
                let route = ip(&["route", "show", "default"])?.unwrap_or_default();
                ensure!(
                    route.contains("default via 10.88.0.1 dev eth0"),
                    "ip: {route}"
                );
            }

            // A datagram crosses the pair and the bridge.
            let sender = std::net::UdpSocket::bind("0.0.0.0:0")?;
            setns(here.as_fd(), CloneFlags::CLONE_NEWNET)?;
            listener.set_read_timeout(Some(Duration::from_millis(500)))?;
            let to = listener.local_addr()?;
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut got = [0u8; 16];
            let from = loop {
                sender.send_to(b"across", to)?;
                match listener.recv_from(&mut got) {
                    Ok((n, from)) if &got[..n] == b"across" => break from,
                    Ok(_) => bail!("an unexpected datagram"),
                    Err(_) if Instant::now() < deadline => {}
                    Err(e) => bail!("no datagram across the bridge: {e}"),
                }
            };
            ensure!(from.ip() == std::net::IpAddr::V4(addr), "from {from}");

            // Deleting one end takes the peer; the peer's socket still
            // reads the namespace it was opened in.
            rt.delete_link(pair.index).context("delete")?;
            ensure!(rt.link("vt0")?.is_none());
            ensure!(peer.link("eth0")?.is_none(), "the peer went with its pair");
            ensure!(peer.link("eth2")?.is_some());
            ensure!(errno(rt.delete_link(pair.index)) == Some(libc::ENODEV));
            rt.delete_link(br)?;
            ensure!(rt
                .link("vt2")?
                .context("vt2 outlives its bridge")?
                .master
                .is_none());
            ensure!(rt.link_index("no-such-link")?.is_none());
            ensure!(errno(rt.link_index("a/b")) == Some(libc::EINVAL));
            Ok(if checked_by_ip {
                String::new()
            } else {
                "no ip binary: checked by the own dump only".to_string()
            })
        }

        #[test]
        fn bridge_veth_address_route_in_fresh_namespaces() {
            in_netns(
                "bridge_veth_address_route",
                false,
                bridge_veth_address_route,
            );
        }

        #[test]
        fn bridge_veth_address_route_in_a_user_namespace() {
            in_netns(
                "bridge_veth_address_route (user namespace)",
                true,
                bridge_veth_address_route,
            );
        }

        /// What one container's pair costs, end to end: made with its
        /// settings from the bridge's namespace, configured from inside
        /// the container's (a socket opened there, lo up, address, up,
        /// default route). Printed, not asserted: the VM may pause.
        fn veth_timing() -> anyhow::Result<String> {
            const N: usize = 30;
            let here = netns()?;
            let mut rt = Route::open()?;
            let br = rt.add_bridge("brt0")?;
            rt.set_up(br)?;
            rt.add_address_v4(br, Ipv4Addr::new(10, 89, 0, 1), 16)?;
            let mut times = Vec::with_capacity(N);
            // The namespaces are kept: a pair goes with its peer's namespace.
            let mut kept = Vec::with_capacity(N);
            for i in 0..N {
                unshare(CloneFlags::CLONE_NEWNET)?;
                let c = netns()?;
                setns(here.as_fd(), CloneFlags::CLONE_NEWNET)?;
                let name = format!("vb{i}");
                let n = i as u8 + 2;
                let t = Instant::now();
                let pair = rt.add_veth(
                    &Veth::new(&name, "eth0", c.as_fd())
                        .mtu(1500)
                        .master(br)
                        .up()
                        .peer_mac([0x02, 0, 0, 0, 0, n]),
                )?;
                let made = t.elapsed();
                setns(c.as_fd(), CloneFlags::CLONE_NEWNET)?;
                let mut p = Route::open()?;
                p.set_up(LOOPBACK)?;
                p.add_address_v4(pair.peer_index, Ipv4Addr::new(10, 89, 0, n), 16)?;
                p.set_up(pair.peer_index)?;
                p.add_default_route_v4(Ipv4Addr::new(10, 89, 0, 1))?;
                setns(here.as_fd(), CloneFlags::CLONE_NEWNET)?;
                times.push((t.elapsed(), made));
                kept.push(c);
            }
            let ports = rt.links()?.iter().filter(|l| l.master == Some(br)).count();
            ensure!(ports == N, "{ports} ports on the bridge");
            let median = |mut v: Vec<Duration>| {
                v.sort();
                v[N / 2].as_micros()
            };
            let total: Vec<Duration> = times.iter().map(|t| t.0).collect();
            let made: Vec<Duration> = times.iter().map(|t| t.1).collect();
            let inside: Vec<Duration> = times.iter().map(|t| t.0 - t.1).collect();
            let (min, max) = (total.iter().min().unwrap(), total.iter().max().unwrap());
            let mut line = format!(
                "one veth pair made and configured: median {} us (made on the bridge {} us, \
                 configured inside {} us), min {} us, max {} us over {N}",
                median(total.clone()),
                median(made),
                median(inside),
                min.as_micros(),
                max.as_micros()
            );
            let t = Instant::now();
            if ip(&["-o", "link", "show", "dev", "lo"])?.is_some() {
                line += &format!(
                    "; one `ip link show` for comparison: {} us",
                    t.elapsed().as_micros()
                );
            }
            Ok(line)
        }

        #[test]
        fn veth_pair_timing() {
            in_netns("veth_pair_timing", false, veth_timing);
        }
    }
}
