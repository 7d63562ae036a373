//! Links: lookups and dumps, bridges, veth pairs with the peer made in
//! another namespace, and the settings of a link (master, up, MTU, group,
//! MAC); deletion.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::wire::{attrs, c_string, u32_of, Msg, NLM_F_CREATE, NLM_F_EXCL};
use super::Route;

// linux/rtnetlink.h
pub(super) const RTM_NEWLINK: u16 = 16;
pub(super) const RTM_DELLINK: u16 = 17;
pub(super) const RTM_GETLINK: u16 = 18;
pub(super) const RTM_SETLINK: u16 = 19;

// linux/if_link.h, linux/veth.h
pub(super) const IFLA_ADDRESS: u16 = 1;
pub(super) const IFLA_IFNAME: u16 = 3;
pub(super) const IFLA_MTU: u16 = 4;
pub(super) const IFLA_LINK: u16 = 5;
pub(super) const IFLA_MASTER: u16 = 10;
pub(super) const IFLA_LINKINFO: u16 = 18;
pub(super) const IFLA_GROUP: u16 = 27;
pub(super) const IFLA_NET_NS_FD: u16 = 28;
pub(super) const IFLA_INFO_KIND: u16 = 1;
pub(super) const IFLA_INFO_DATA: u16 = 2;
pub(super) const VETH_INFO_PEER: u16 = 1;

/// `IFF_UP` in `Link::flags` (net/if.h).
pub const IFF_UP: u32 = 0x1;

/// The loopback device's index in every network namespace
/// (`LOOPBACK_IFINDEX`): a fresh namespace's `lo` needs no lookup.
pub const LOOPBACK: u32 = 1;

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

impl Route {
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

    /// Delete link `index` (a veth end takes its peer with it).
    pub fn delete_link(&mut self, index: u32) -> io::Result<()> {
        let mut m = Msg::new(RTM_DELLINK, 0);
        m.put(&ifinfomsg(index, 0, 0));
        self.ack(m)
    }
}

/// An interface name the kernel can take: 1 to 15 bytes (IFNAMSIZ with
/// its NUL), no '/', no whitespace, not "." or ".." (dev_valid_name).
pub(super) fn check_name(name: &str) -> io::Result<()> {
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
pub(super) fn ifinfomsg(index: u32, flags: u32, change: u32) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b[8..12].copy_from_slice(&flags.to_ne_bytes());
    b[12..16].copy_from_slice(&change.to_ne_bytes());
    b
}

/// An RTM_NEWLINK payload: struct ifinfomsg, then attributes.
pub(super) fn parse_link(p: &[u8]) -> Option<Link> {
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
