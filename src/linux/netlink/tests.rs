//! The client's message layout and reply parsing, and the client against
//! the real kernel.

use super::addr::parse_address_v4;
use super::link::{
    check_name, ifinfomsg, parse_link, IFLA_IFNAME, IFLA_INFO_KIND, IFLA_LINKINFO, RTM_NEWLINK,
};
use super::wire::{
    attrs, errno_of, u32_of, Messages, Msg, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST,
};
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
    use std::net::Ipv4Addr;
    use std::os::fd::{AsFd, BorrowedFd};
    use std::process::Command;
    use std::time::{Duration, Instant};

    use nix::sched::{setns, unshare, CloneFlags};

    use crate::linux::process;

    const NOBODY: u32 = 65534;

    /// Why the kernel refused this process a network namespace: a reason
    /// to skip, not a failure.
    #[derive(Debug, thiserror::Error)]
    enum Refused {
        #[error("{call}: {errno}")]
        Call {
            call: &'static str,
            errno: nix::errno::Errno,
        },
        #[error("unshare(CLONE_NEWUSER|CLONE_NEWNET) as uid {uid}: {errno}")]
        UserNamespace { uid: u32, errno: nix::errno::Errno },
        #[error("uid_map: {0}")]
        UidMap(#[source] io::Error),
    }

    /// `map_err` for a call that fails with an errno.
    fn refused(call: &'static str) -> impl FnOnce(nix::errno::Errno) -> Refused {
        move |errno| Refused::Call { call, errno }
    }

    /// A new network namespace for this process: as root a plain one,
    /// else (or with `unprivileged`, after dropping to nobody) inside a
    /// new user namespace whose root is our uid. An error is a reason to
    /// skip: the kernel refuses the namespaces here.
    fn enter(unprivileged: bool) -> Result<(), Refused> {
        let root = nix::unistd::geteuid().is_root();
        if root && !unprivileged {
            return unshare(CloneFlags::CLONE_NEWNET).map_err(refused("unshare(CLONE_NEWNET)"));
        }
        if root {
            let nobody = nix::unistd::Uid::from_raw(NOBODY);
            let nogroup = nix::unistd::Gid::from_raw(NOBODY);
            nix::unistd::setgroups(&[]).map_err(refused("setgroups"))?;
            nix::unistd::setresgid(nogroup, nogroup, nogroup).map_err(refused("setresgid"))?;
            nix::unistd::setresuid(nobody, nobody, nobody).map_err(refused("setresuid"))?;
            // A change of credentials makes /proc/self root's; the map
            // below is written through it.
            nix::sys::prctl::set_dumpable(true).map_err(refused("dumpable"))?;
        }
        let uid = nix::unistd::geteuid().as_raw();
        unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET)
            .map_err(|errno| Refused::UserNamespace { uid, errno })?;
        std::fs::write("/proc/self/uid_map", format!("0 {uid} 1")).map_err(Refused::UidMap)
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

    const BRIDGE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
    const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 2];

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
        rt.set_mac(br, BRIDGE_MAC).context("set_mac")?;
        rt.set_up(br).context("set_up")?;
        rt.set_group(br, 0xb0).context("set_group")?;
        rt.add_fwmark_rule_v4(1, 100).context("fwmark rule")?;
        rt.add_local_default_route_v4(100, LOOPBACK)
            .context("local route")?;
        ensure!(errno(rt.add_local_default_route_v4(100, LOOPBACK)) == Some(libc::EEXIST));
        ensure!(rt.link("brt0")?.and_then(|l| l.group) == Some(0xb0));
        rt.add_address_v4(br, Ipv4Addr::new(10, 88, 0, 1), 24)
            .context("address on the bridge")?;
        let listener = std::net::UdpSocket::bind("10.88.0.1:0").context("bind on the bridge")?;

        let pair = veth_pair_on_the_bridge(&mut rt, br, there.as_fd())?;
        taken_names_are_refused(&mut rt, br, there.as_fd())?;
        settings_one_by_one(&mut rt, br, there.as_fd())?;
        let mut checked_by_ip = true;
        if let Some(out) = ip(&["-o", "link", "show", "dev", "vt0"])? {
            ensure!(
                out.contains("vt0@") && out.contains("mtu 1400") && out.contains("master brt0"),
                "ip: {out}"
            );
        } else {
            checked_by_ip = false;
        }

        let (mut peer, addr) = the_peers_side(&pair, there.as_fd())?;

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

    /// A veth pair made with every setting at once, its peer in `there`,
    /// as the dump shows it.
    fn veth_pair_on_the_bridge(
        rt: &mut Route,
        br: u32,
        there: BorrowedFd<'_>,
    ) -> anyhow::Result<VethPair> {
        let pair = rt
            .add_veth(
                &Veth::new("vt0", "eth0", there)
                    .mtu(1400)
                    .master(br)
                    .up()
                    .peer_mac(PEER_MAC),
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
            b.kind.as_deref() == Some("bridge") && b.mac == Some(BRIDGE_MAC) && b.is_up(),
            "the bridge: {b:?}"
        );
        ensure!(
            !links.iter().any(|l| l.name == "eth0"),
            "the peer is elsewhere: {links:?}"
        );

        Ok(pair)
    }

    /// Names as leases: either name taken is EEXIST, and nothing of the
    /// refused pair stays behind.
    fn taken_names_are_refused(
        rt: &mut Route,
        br: u32,
        there: BorrowedFd<'_>,
    ) -> anyhow::Result<()> {
        ensure!(errno(rt.add_veth(&Veth::new("vt0", "eth1", there))) == Some(libc::EEXIST));
        ensure!(errno(rt.add_veth(&Veth::new("vt1", "eth0", there))) == Some(libc::EEXIST));
        ensure!(
            rt.link_index("vt1")?.is_none(),
            "a refused pair leaves nothing"
        );
        ensure!(errno(rt.add_bridge("brt0")) == Some(libc::EEXIST));
        ensure!(errno(rt.add_bridge("vt0")) == Some(libc::EEXIST));
        ensure!(
            errno(rt.add_address_v4(br, Ipv4Addr::new(10, 88, 0, 1), 24)) == Some(libc::EEXIST)
        );

        Ok(())
    }

    /// The same settings as the first pair's, one by one.
    fn settings_one_by_one(rt: &mut Route, br: u32, there: BorrowedFd<'_>) -> anyhow::Result<()> {
        let p2 = rt
            .add_veth(&Veth::new("vt2", "eth2", there))
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

        Ok(())
    }

    /// The peer's side, through a socket opened in its namespace (this
    /// thread stays there): its link, address and default route.
    fn the_peers_side(pair: &VethPair, there: BorrowedFd<'_>) -> anyhow::Result<(Route, Ipv4Addr)> {
        setns(there, CloneFlags::CLONE_NEWNET)?;
        let mut peer = Route::open()?;
        let e = peer.link("eth0")?.context("eth0 in the second namespace")?;
        ensure!(
            e.index == pair.peer_index,
            "IFLA_LINK names the peer: {pair:?} {e:?}"
        );
        ensure!(
            e.mtu == Some(1400)
                && e.mac == Some(PEER_MAC)
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

        Ok((peer, addr))
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
