//! IPv4 addresses: dumped and added.

use std::io;
use std::net::Ipv4Addr;

use super::route::RT_SCOPE_UNIVERSE;
use super::wire::{attrs, u32_of, Msg, NLM_F_CREATE, NLM_F_EXCL};
use super::Route;

// linux/rtnetlink.h
pub(super) const RTM_NEWADDR: u16 = 20;
pub(super) const RTM_GETADDR: u16 = 22;

// linux/if_addr.h
pub(super) const IFA_ADDRESS: u16 = 1;
pub(super) const IFA_LOCAL: u16 = 2;

impl Route {
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
}

/// struct ifaddrmsg: family, prefixlen, flags, scope, index.
pub(super) fn ifaddrmsg(family: u8, prefix: u8, index: u32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[0] = family;
    b[1] = prefix;
    b[3] = RT_SCOPE_UNIVERSE;
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b
}

/// An RTM_NEWADDR payload of family AF_INET: (index, address, prefix).
pub(super) fn parse_address_v4(p: &[u8]) -> Option<(u32, Ipv4Addr, u8)> {
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
