//! A container on a shared network: the namespaces it joins instead of
//! making a user namespace of its own, and its veth pair, made by the
//! inner process itself once it has its own network namespace (one end
//! `eth0` there, the other on the shared namespace's bridge).

use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, RawFd};
use std::sync::Arc;

use crate::linux::netlink::{Route, Veth};
use crate::linux::ns::Namespaces;

/// What joining a shared user and network namespace takes.
#[derive(Debug, Clone)]
pub struct Join {
    /// The shared user and network namespaces.
    pub namespaces: Arc<Namespaces>,
    /// Files the inner process holds open while the container runs (the
    /// locks that say the shared namespaces and the addresses are in use).
    pub held: Vec<Arc<File>>,
    /// One interface per network, the first `eth0` with the default route.
    pub links: Vec<Link>,
}

impl Join {
    /// Every descriptor the inner process must keep.
    pub fn raw_fds(&self) -> Vec<RawFd> {
        use std::os::fd::AsRawFd;
        let mut fds = self.namespaces.raw_fds();
        fds.extend(self.held.iter().map(|f| f.as_raw_fd()));
        fds
    }
}

/// A running container on a shared network, as its port forwarder
/// reaches it: the shared namespaces (to dial from) and its address.
#[derive(Debug, Clone)]
pub struct Bridge {
    pub namespaces: Arc<Namespaces>,
    pub address: Ipv4Addr,
}

/// The container's interface on the bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    /// The bridge in the shared network namespace.
    pub bridge: String,
    /// Make the bridge (with the gateway's address) when it is missing.
    pub make_bridge: bool,
    pub mtu: u32,
    /// The container's end's MAC address.
    pub mac: [u8; 6],
}

/// The interface group of the shared namespace's bridges, which its
/// firewall rules match (see the keeper).
pub const BRIDGE_GROUP: u32 = 0xb0;

/// The name of the container's `n`th interface inside its namespace.
pub fn inside(n: usize) -> String {
    format!("eth{n}")
}

/// Make a veth pair per link: `shared` is a netlink socket opened in the
/// shared network namespace, and the caller is in the container's own.
/// The first link's gateway is the default route; the others reach their
/// subnets only, as Docker's second networks do.
pub fn attach(shared: &mut Route, links: &[Link]) -> io::Result<()> {
    let own_ns = File::open("/proc/thread-self/ns/net")?;
    let mut own = Route::open()?;
    for (n, link) in links.iter().enumerate() {
        let inside = veth(shared, &own_ns, link, &inside(n))?;
        own.add_address_v4(inside, link.address, link.prefix)?;
        own.set_up(inside)?;
        if n == 0 {
            own.add_default_route_v4(link.gateway)?;
        }
    }
    Ok(())
}

/// One veth pair: `inside` named so in the namespace `own_ns`, the other
/// end on `link`'s bridge, its name unique among live containers (our
/// pid); a taken one (a namespace still being torn down, or our other
/// link) moves on to the next. Returns the inside end's index.
fn veth(shared: &mut Route, own_ns: &File, link: &Link, inside: &str) -> io::Result<u32> {
    let bridge = match shared.link_index(&link.bridge)? {
        Some(b) => b,
        None if link.make_bridge => make_bridge(shared, link)?,
        None => {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no bridge {} in the shared namespace", link.bridge),
            ))
        }
    };
    let pid = std::process::id();
    for n in 0..16u32 {
        let name = format!("bw{:08x}", pid.wrapping_add(n << 24));
        let veth = Veth::new(&name, inside, own_ns.as_fd())
            .mtu(link.mtu)
            .master(bridge)
            .peer_mac(link.mac)
            .up();
        match shared.add_veth(&veth) {
            Ok(pair) => return Ok(pair.peer_index),
            Err(e) if e.raw_os_error() == Some(nix::Error::EEXIST as i32) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::from_raw_os_error(nix::Error::EEXIST as i32))
}

/// The fixed MAC of the bridge whose address is `gateway`: locally
/// administered, with the address in it (the containers' are 02:42 and
/// theirs, so the two never meet).
pub fn gateway_mac(gateway: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = gateway.octets();
    [0x02, 0x62, a, b, c, d]
}

/// Make `link`'s bridge in the shared namespace: in the bridges' group,
/// with the gateway's address, up. Two containers may race to it: the
/// one that finds it made already takes that one, and every step that was
/// done already (EEXIST) counts as done.
fn make_bridge(shared: &mut Route, link: &Link) -> io::Result<u32> {
    let exists = |r: io::Result<()>| match r {
        Err(e) if e.raw_os_error() == Some(nix::Error::EEXIST as i32) => Ok(()),
        r => r,
    };
    let index = match shared.add_bridge(&link.bridge) {
        Ok(i) => i,
        Err(e) if e.raw_os_error() == Some(nix::Error::EEXIST as i32) => shared
            .link_index(&link.bridge)?
            .ok_or_else(|| io::Error::from_raw_os_error(nix::Error::ENODEV as i32))?,
        Err(e) => return Err(e),
    };
    shared.set_group(index, BRIDGE_GROUP)?;
    // A bridge takes its lowest port's MAC unless given one, and so
    // changes it as containers come and go, while its members' ARP caches
    // keep the old one for the gateway.
    shared.set_mac(index, gateway_mac(link.gateway))?;
    shared.set_mtu(index, link.mtu)?;
    exists(shared.add_address_v4(index, link.gateway, link.prefix))?;
    shared.set_up(index)?;
    Ok(index)
}

/// Put a running container on one more network, from a process in the
/// shared user and network namespaces (`shared` opened there):
/// `container_net` is the container's network namespace, where the new
/// interface takes the first free `ethN` name, which is returned. Ends in
/// that namespace.
pub fn attach_running(shared: &mut Route, container_net: &File, link: &Link) -> io::Result<String> {
    nix::sched::setns(container_net.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)?;
    let mut own = Route::open()?;
    let taken: Vec<String> = own.links()?.into_iter().map(|l| l.name).collect();
    let name = (0..)
        .map(inside)
        .find(|n| !taken.contains(n))
        .expect("an unbounded range has a free name");
    let index = veth(shared, container_net, link, &name)?;
    own.add_address_v4(index, link.address, link.prefix)?;
    own.set_up(index)?;
    Ok(name)
}

/// Take a running container off a network: from a process in the shared
/// user namespace, remove the interface holding `address` in its network
/// namespace `container_net` (its end on the bridge goes with it).
pub fn detach_running(container_net: &File, address: Ipv4Addr) -> io::Result<()> {
    nix::sched::setns(container_net.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)?;
    let mut own = Route::open()?;
    let found = own
        .addresses_v4()?
        .into_iter()
        .find(|(_, a, _)| *a == address);
    match found {
        Some((index, _, _)) => own.delete_link(index),
        None => Ok(()),
    }
}
