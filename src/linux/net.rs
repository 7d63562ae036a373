//! Network-namespace primitives: bringing loopback up in a fresh namespace,
//! the sysctl that bounds unprivileged binds, and the default route check
//! that says a user-mode network helper has configured a namespace; and
//! how much of what a socket sent its peer has not read yet.

use std::os::fd::AsRawFd;
use std::path::Path;

use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};

/// Set IFF_UP on `lo` in our network namespace. A new network namespace has
/// only a loopback device, and it is down (network_namespaces(7)); the
/// flags ioctls work on any socket of the namespace (netdevice(7)).
pub fn loopback_up() -> nix::Result<()> {
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is a plain C struct (arrays and a union of integers);
    // all-zero bytes are a valid value of it.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name and writes ifru_flags inside the
    // ifreq we own; the socket fd is open for the whole call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(nix::Error::last());
    }
    // SAFETY: SIOCGIFFLAGS just filled ifru_flags, the union member read.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    // SAFETY: SIOCSIFFLAGS only reads the ifreq we own.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(nix::Error::last());
    }
    Ok(())
}

/// The lowest port an unprivileged process may bind
/// (`net.ipv4.ip_unprivileged_port_start`, ip-sysctl.rst; 1024 by default),
/// read under `proc_root`.
pub fn unprivileged_port_start(proc_root: &Path) -> u16 {
    std::fs::read_to_string(proc_root.join("sys/net/ipv4/ip_unprivileged_port_start"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1024)
}

/// Whether the network namespace of `pid` has a default IPv4 route, read
/// from `/proc/PID/net/route` (which shows the routes of that process's
/// namespace, proc(5)): a helper that configures the namespace adds it last.
pub fn has_default_route(proc_root: &Path, pid: i32) -> bool {
    route_table_has_default(&proc_root.join(format!("{pid}/net/route")))
}

/// Whether the IPv4 routing table `route_file` (`/proc/net/route` format)
/// has a default route.
pub fn route_table_has_default(route_file: &Path) -> bool {
    std::fs::read_to_string(route_file)
        .map(|t| parse_default_route(&t))
        .unwrap_or(false)
}

/// The host's own IPv4 address on its default route: the source address
/// the kernel picks for the default gateway. Connecting a UDP socket only
/// chooses a route (udp(7)); no packet is sent.
pub fn primary_ipv4(proc_root: &Path) -> Option<std::net::Ipv4Addr> {
    let table = std::fs::read_to_string(proc_root.join("net/route")).ok()?;
    let gw = table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(1) == Some(&"00000000"))
            .then(|| u32::from_str_radix(f.get(2)?, 16).ok())
            .flatten()
    })?;
    // /proc/net/route prints the network-order address as a native integer.
    let gw = std::net::Ipv4Addr::from(gw.to_ne_bytes());
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    sock.connect((gw, 9)).ok()?;
    match sock.local_addr().ok()?.ip() {
        std::net::IpAddr::V4(a) if !a.is_unspecified() => Some(a),
        _ => None,
    }
}

/// The host's IPv4 routes other than the default one, as (destination,
/// prefix length), from `/proc/net/route` under `proc_root`: the networks
/// a new subnet should stay clear of.
pub fn ipv4_routes(proc_root: &Path) -> Vec<(std::net::Ipv4Addr, u8)> {
    std::fs::read_to_string(proc_root.join("net/route"))
        .map(|t| parse_routes(&t))
        .unwrap_or_default()
}

fn parse_routes(table: &str) -> Vec<(std::net::Ipv4Addr, u8)> {
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
            // Network-order values printed as native integers.
            let dest = std::net::Ipv4Addr::from(dest.to_ne_bytes());
            let prefix = u32::from_be_bytes(mask.to_ne_bytes()).count_ones() as u8;
            (prefix > 0).then_some((dest, prefix))
        })
        .collect()
}

fn parse_default_route(table: &str) -> bool {
    table
        .lines()
        .skip(1)
        .any(|l| l.split_whitespace().nth(1) == Some("00000000"))
}

/// Bytes written to the stream socket `sock` that its peer has not read
/// yet (SIOCOUTQ; for a unix socket, what waits in the peer's receive
/// queue: unix(7)).
pub fn unread_by_peer(sock: std::os::fd::BorrowedFd<'_>) -> nix::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: SIOCOUTQ writes one int to the pointer, which points at a
    // local of ours; the descriptor is borrowed, so open for the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::TIOCOUTQ, &mut n) } < 0 {
        return Err(nix::Error::last());
    }
    Ok(n.max(0) as usize)
}

#[cfg(test)]
mod tests {
    #[test]
    fn unread_counts_what_the_peer_has_not_read() {
        use std::io::{Read, Write};
        use std::os::fd::AsFd;
        let (mut a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert_eq!(super::unread_by_peer(a.as_fd()).unwrap(), 0);
        a.write_all(b"hello").unwrap();
        assert!(super::unread_by_peer(a.as_fd()).unwrap() > 0);
        let mut buf = [0u8; 5];
        b.read_exact(&mut buf).unwrap();
        assert_eq!(super::unread_by_peer(a.as_fd()).unwrap(), 0);
    }

    use super::*;

    #[test]
    fn a_default_route_is_a_zero_destination() {
        let head = "Iface\tDestination\tGateway \tFlags\n";
        assert!(parse_default_route(&format!(
            "{head}tap0\t00000000\t0202000A\t0003\n"
        )));
        assert!(!parse_default_route(&format!(
            "{head}tap0\t0002000A\t00000000\t0001\n"
        )));
        assert!(!parse_default_route(head));
    }

    #[test]
    fn routes_other_than_the_default_are_listed() {
        let t = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n\
                 eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\n\
                 eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\n";
        assert_eq!(
            parse_routes(t),
            [(std::net::Ipv4Addr::new(192, 0, 2, 0), 24)]
        );
    }

    #[test]
    fn the_port_sysctl_defaults_to_1024_when_unreadable() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(unprivileged_port_start(d.path()), 1024);
        std::fs::create_dir_all(d.path().join("sys/net/ipv4")).unwrap();
        std::fs::write(
            d.path().join("sys/net/ipv4/ip_unprivileged_port_start"),
            "80\n",
        )
        .unwrap();
        assert_eq!(unprivileged_port_start(d.path()), 80);
    }
}
