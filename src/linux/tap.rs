//! TAP devices for user networks: creating one in the caller's network
//! namespace (`/dev/net/tun`, TUNSETIFF), giving it an IPv4 address, a
//! netmask, a MAC, an MTU and IFF_UP (netdevice(7) ioctls).

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};

/// `_IOW('T', 202, int)` in linux/if_tun.h.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;

/// An all-zero ifreq naming `name`.
fn ifreq(name: &str) -> libc::ifreq {
    // SAFETY: ifreq is a plain C struct (arrays and a union of integers);
    // all-zero bytes are a valid value of it.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req
        .ifr_name
        .iter_mut()
        .zip(name.bytes().take(libc::IFNAMSIZ - 1))
    {
        *dst = src as libc::c_char;
    }
    req
}

fn name_of(req: &libc::ifreq) -> String {
    req.ifr_name
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8 as char)
        .collect()
}

/// The tun device's node.
pub const TUN_PATH: &str = "/dev/net/tun";

/// Why this process cannot open the tun device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunProblem {
    /// There is no node (job containers and pods are often given none).
    Missing,
    /// The node's mode keeps us out (EACCES), with its mode bits and owner.
    Mode { mode: u32, owner: u32 },
    /// Any other refusal: the device cgroup (EPERM), no tun driver
    /// (ENODEV, ENXIO).
    Refused(nix::Error),
}

/// Whether this process may open the tun device, as a helper (pasta,
/// slirp4netns) or a user network's member will have to. Opening checks
/// only the node's permissions and the device cgroup, and a user namespace
/// grants nothing over a node whose owner is not mapped in it
/// (user_namespaces(7)), so the answer here is the answer in a container's
/// namespace. Costs one open(2) and close(2): cheaper than any cache of it.
pub fn check_tun_access() -> Result<(), TunProblem> {
    use nix::errno::Errno;
    use nix::fcntl::{open, OFlag};
    match open(
        TUN_PATH,
        OFlag::O_RDWR | OFlag::O_CLOEXEC | OFlag::O_NOCTTY,
        nix::sys::stat::Mode::empty(),
    ) {
        Ok(fd) => {
            drop(fd);
            Ok(())
        }
        Err(Errno::ENOENT | Errno::ENOTDIR) => Err(TunProblem::Missing),
        Err(Errno::EACCES) => match nix::sys::stat::stat(TUN_PATH) {
            Ok(st) => Err(TunProblem::Mode {
                mode: st.st_mode & 0o7777,
                owner: st.st_uid,
            }),
            Err(e) => Err(TunProblem::Refused(e)),
        },
        Err(e) => Err(TunProblem::Refused(e)),
    }
}

/// Create a TAP device (Ethernet frames, no packet-information header) in
/// the caller's network namespace. `pattern` may hold `%d`, which the kernel
/// replaces with the first free number (`eth%d` next to a helper's `eth0`
/// gives `eth1`). The device lives as long as the returned descriptor; the
/// descriptor also holds the namespace the device was made in
/// (`/dev/net/tun` takes a reference to its opener's namespace).
/// Needs CAP_NET_ADMIN over the namespace: a process that joined the
/// container's user namespace has it.
pub fn create(pattern: &str) -> nix::Result<(OwnedFd, String)> {
    let path = c"/dev/net/tun";
    // SAFETY: a valid NUL-terminated path and plain flags.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(nix::Error::last());
    }
    // SAFETY: open just returned this descriptor; nothing else owns it.
    let tun = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut req = ifreq(pattern);
    req.ifr_ifru.ifru_flags = IFF_TAP | IFF_NO_PI;
    // SAFETY: TUNSETIFF reads the name and flags and writes the final name
    // into the ifreq we own; the descriptor is open for the whole call.
    if unsafe { libc::ioctl(tun.as_raw_fd(), TUNSETIFF as _, &mut req) } < 0 {
        return Err(nix::Error::last());
    }
    Ok((tun, name_of(&req)))
}

fn inet_sock() -> nix::Result<OwnedFd> {
    socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
}

/// One SIOCS*/SIOCG* call on `req` through `sock`.
fn ioctl(sock: RawFd, request: libc::c_ulong, req: &mut libc::ifreq) -> nix::Result<()> {
    // SAFETY: the netdevice(7) requests used here read and write only the
    // ifreq we own; the socket is open for the whole call.
    if unsafe { libc::ioctl(sock, request as _, req as *mut libc::ifreq) } < 0 {
        return Err(nix::Error::last());
    }
    Ok(())
}

fn sockaddr_in(addr: Ipv4Addr) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(addr.octets()),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in and sockaddr have the same size and both are
    // plain bytes; the kernel reads the family to interpret the rest.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

/// Give the device `name` the MAC `mac`, the address `addr/prefix` and
/// `mtu`, and bring it up. The kernel then adds the connected route for the
/// subnet, and only that: the default route stays where it was.
pub fn configure(
    name: &str,
    mac: [u8; 6],
    addr: Ipv4Addr,
    prefix: u8,
    mtu: u32,
) -> nix::Result<()> {
    let sock = inet_sock()?;
    let fd = sock.as_raw_fd();
    let mut req = ifreq(name);
    // SAFETY: sockaddr is plain bytes; all-zero is a valid value.
    let mut hw: libc::sockaddr = unsafe { std::mem::zeroed() };
    hw.sa_family = libc::ARPHRD_ETHER;
    for (d, s) in hw.sa_data.iter_mut().zip(mac) {
        *d = s as libc::c_char;
    }
    req.ifr_ifru.ifru_hwaddr = hw;
    ioctl(fd, libc::SIOCSIFHWADDR, &mut req)?;
    let mut req = ifreq(name);
    req.ifr_ifru.ifru_addr = sockaddr_in(addr);
    ioctl(fd, libc::SIOCSIFADDR, &mut req)?;
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    };
    let mut req = ifreq(name);
    req.ifr_ifru.ifru_netmask = sockaddr_in(Ipv4Addr::from(mask));
    ioctl(fd, libc::SIOCSIFNETMASK, &mut req)?;
    let mut req = ifreq(name);
    req.ifr_ifru.ifru_mtu = mtu as libc::c_int;
    ioctl(fd, libc::SIOCSIFMTU, &mut req)?;
    let mut req = ifreq(name);
    ioctl(fd, libc::SIOCGIFFLAGS, &mut req)?;
    // SAFETY: SIOCGIFFLAGS just filled ifru_flags, the union member read.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    ioctl(fd, libc::SIOCSIFFLAGS, &mut req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cut_to_ifnamsiz_and_read_back() {
        let r = ifreq("eth%d");
        assert_eq!(name_of(&r), "eth%d");
        let r = ifreq("a-very-long-interface-name");
        assert_eq!(name_of(&r).len(), libc::IFNAMSIZ - 1);
    }
}
