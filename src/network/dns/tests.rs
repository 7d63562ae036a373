//! The responder's answers to good and hostile queries, the forwarder
//! against a local upstream, and real resolvers against both.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use super::forwarder::MAX_PENDING;
use super::*;

/// A query for `name` of type `qtype`, recursion desired.
fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&id.to_be_bytes());
    b.extend_from_slice(&FLAG_RD.to_be_bytes());
    b.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        b.push(label.len() as u8);
        b.extend_from_slice(label.as_bytes());
    }
    b.push(0);
    b.extend_from_slice(&qtype.to_be_bytes());
    b.extend_from_slice(&CLASS_IN.to_be_bytes());
    b
}

/// (id, flags, answers' addresses) of a reply to a question of
/// `question_len` bytes, each answer checked to be an A record with
/// our TTL pointing at the question's name.
fn read_reply(r: &[u8], question_len: usize) -> (u16, u16, Vec<Ipv4Addr>) {
    assert_eq!(u16_at(r, 4), Some(1), "one question");
    let an = u16_at(r, 6).unwrap() as usize;
    assert_eq!(&r[8..12], &[0, 0, 0, 0]);
    let mut at = HEADER + question_len;
    let mut addrs = Vec::new();
    for _ in 0..an {
        let rec = &r[at..at + 16];
        assert_eq!(&rec[0..2], &[0xc0, 12]);
        assert_eq!(u16_at(rec, 2), Some(TYPE_A));
        assert_eq!(u16_at(rec, 4), Some(CLASS_IN));
        assert_eq!(&rec[6..10], &TTL.to_be_bytes());
        assert_eq!(u16_at(rec, 10), Some(4));
        addrs.push(Ipv4Addr::new(rec[12], rec[13], rec[14], rec[15]));
        at += 16;
    }
    assert_eq!(at, r.len(), "nothing after the answers");
    (u16_at(r, 0).unwrap(), u16_at(r, 2).unwrap(), addrs)
}

fn table() -> Table {
    let mut t = Table::new();
    t.add("web", Ipv4Addr::new(10, 88, 0, 5));
    t.add("web", Ipv4Addr::new(10, 88, 0, 6));
    t.add("web", Ipv4Addr::new(10, 88, 0, 6));
    t.add("DB.", Ipv4Addr::new(10, 88, 0, 7));
    t
}

fn reply_bytes(a: Answer) -> Vec<u8> {
    match a {
        Answer::Reply(r) => r,
        other => panic!("no reply: {other:?}"),
    }
}

#[test]
fn a_known_name_gets_its_addresses_in_any_case() {
    let t = table();
    let q = query(0x1234, "WeB", TYPE_A);
    let r = reply_bytes(answer(&t, &q));
    // The question is echoed as sent, case and all.
    assert_eq!(&r[HEADER..q.len()], &q[HEADER..]);
    let (id, flags, addrs) = read_reply(&r, q.len() - HEADER);
    assert_eq!(id, 0x1234);
    assert_eq!(flags, FLAG_QR | FLAG_AA | FLAG_RD | FLAG_RA);
    assert_eq!(
        addrs,
        [Ipv4Addr::new(10, 88, 0, 5), Ipv4Addr::new(10, 88, 0, 6)]
    );
    // Added with a final dot and upper case, asked without.
    let q = query(1, "db", TYPE_A);
    let (_, _, addrs) = read_reply(&reply_bytes(answer(&t, &q)), q.len() - HEADER);
    assert_eq!(addrs, [Ipv4Addr::new(10, 88, 0, 7)]);
    assert_eq!(t.get("Db."), [Ipv4Addr::new(10, 88, 0, 7)]);
    // ANY gets the A records too.
    let q = query(1, "web", TYPE_ANY);
    assert_eq!(
        read_reply(&reply_bytes(answer(&t, &q)), q.len() - HEADER)
            .2
            .len(),
        2
    );
}

#[test]
fn other_types_of_a_known_name_are_empty_and_no_error() {
    let t = table();
    for qtype in [28u16, 15, 16] {
        let q = query(9, "web", qtype);
        let (id, flags, addrs) = read_reply(&reply_bytes(answer(&t, &q)), q.len() - HEADER);
        assert_eq!((id, flags & 0xf, addrs.len()), (9, 0, 0), "type {qtype}");
        assert_ne!(flags & FLAG_AA, 0);
    }
}

#[test]
fn names_not_ours_are_forwarded() {
    let mut t = table();
    assert_eq!(
        answer(&t, &query(1, "example.com", TYPE_A)),
        Answer::Forward
    );
    assert_eq!(
        answer(&t, &query(1, "web.example.com", TYPE_A)),
        Answer::Forward
    );
    assert_eq!(answer(&t, &query(1, "", TYPE_A)), Answer::Forward);
    // A label holding a dot is not the two labels of the name.
    let mut q = query(1, "", TYPE_A);
    q.splice(HEADER..HEADER + 1, [3, b'w', b'.', b'b', 0]);
    t.add("w.b", Ipv4Addr::LOCALHOST);
    assert_eq!(answer(&t, &q), Answer::Forward);
    // Another class (CHAOS's version.bind) is the upstream's.
    let mut q = query(1, "web", TYPE_A);
    let n = q.len();
    q[n - 2..].copy_from_slice(&3u16.to_be_bytes());
    assert_eq!(answer(&t, &q), Answer::Forward);
    t.remove("web", Ipv4Addr::new(10, 88, 0, 5));
    t.remove("web", Ipv4Addr::new(10, 88, 0, 6));
    assert!(t.get("web").is_empty());
    assert_eq!(answer(&t, &query(1, "web", TYPE_A)), Answer::Forward);
}

#[test]
fn hostile_queries_are_dropped_never_a_panic() {
    let t = table();
    let q = query(7, "web.example.com", TYPE_A);
    for cut in 0..q.len() {
        assert_eq!(answer(&t, &q[..cut]), Answer::Refuse, "cut at {cut}");
        assert!(error_reply(&q[..cut], Rcode::ServFail).is_none());
    }
    // A compression pointer to itself, and one forward.
    let mut looped = q[..HEADER].to_vec();
    looped.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    assert_eq!(answer(&t, &looped), Answer::Refuse);
    let mut fwd = q[..HEADER].to_vec();
    fwd.extend_from_slice(&[1, b'a', 0xc0, 12, 0, 1, 0, 1]);
    assert_eq!(answer(&t, &fwd), Answer::Refuse);
    // A label of 64 bytes, a name of more than 255.
    let long = "a".repeat(64);
    assert_eq!(answer(&t, &query(1, &long, TYPE_A)), Answer::Refuse);
    let label = "b".repeat(63);
    let name = [label.as_str(); 4].join(".");
    assert_eq!(answer(&t, &query(1, &name, TYPE_A)), Answer::Refuse);
    let name = [label.as_str(), &label, &label, &"c".repeat(61)].join(".");
    assert_eq!(
        answer(&t, &query(1, &name, TYPE_A)),
        Answer::Forward,
        "255 exactly"
    );
    // Question counts other than one; a response.
    for qd in [0u16, 2, 0xffff] {
        let mut bad = q.clone();
        bad[4..6].copy_from_slice(&qd.to_be_bytes());
        assert_eq!(answer(&t, &bad), Answer::Refuse, "qdcount {qd}");
    }
    let mut resp = q.clone();
    resp[2] |= 0x80;
    assert_eq!(answer(&t, &resp), Answer::Refuse);
    // Huge counts of the other sections are not read at all.
    let mut counts = query(3, "web", TYPE_A);
    counts[6..12].copy_from_slice(&[0xff; 6]);
    assert!(matches!(answer(&t, &counts), Answer::Reply(_)));
    // Random packets and random damage to a good one.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..20_000 {
        let len = (next() % 80) as usize;
        let mut p: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if p.len() >= 6 && next() % 2 == 0 {
            p[2] &= 0x7f;
            p[4..6].copy_from_slice(&[0, 1]);
        }
        let _ = answer(&t, &p);
        let _ = error_reply(&p, Rcode::ServFail);
        let mut d = query(5, "web", TYPE_A);
        let at = (next() as usize) % d.len();
        d[at] = next() as u8;
        let _ = answer(&t, &d);
    }
}

#[test]
fn other_opcodes_are_not_implemented() {
    let mut q = query(4, "web", TYPE_A);
    q[2] |= 2 << 3; // STATUS
    let r = reply_bytes(answer(&table(), &q));
    assert_eq!(
        read_reply(&r, q.len() - HEADER).1 & 0xf,
        Rcode::NotImp as u16
    );
}

#[test]
fn many_addresses_are_cut_to_fit_a_udp_reply() {
    let mut t = Table::new();
    for i in 0..100 {
        t.add("many", Ipv4Addr::new(10, 0, 0, i));
    }
    let q = query(1, "many", TYPE_A);
    let r = reply_bytes(answer(&t, &q));
    assert!(r.len() <= UDP_LIMIT);
    let (_, _, addrs) = read_reply(&r, q.len() - HEADER);
    assert_eq!(addrs.len(), (UDP_LIMIT - q.len()) / 16);
}

#[test]
fn an_error_reply_carries_the_question() {
    let q = query(0xbeef, "x.example", TYPE_A);
    let r = error_reply(&q, Rcode::NxDomain).unwrap();
    let (id, flags, addrs) = read_reply(&r, q.len() - HEADER);
    assert_eq!((id, flags & 0xf, addrs.len()), (0xbeef, 3, 0));
    assert_eq!(flags & FLAG_AA, 0);
}

/// Wait for the forwarder's next reply (its socket is non-blocking).
fn next_reply(f: &mut Forwarder) -> Option<(Vec<u8>, SocketAddr)> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Some(r) = f.receive().unwrap() {
            return Some(r);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}

#[test]
fn the_forwarder_relays_matches_by_id_and_question_and_expires() {
    let upstream = UdpSocket::bind("127.0.0.1:0").unwrap();
    upstream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut up_table = Table::new();
    up_table.add("outside.example", Ipv4Addr::new(192, 0, 2, 7));
    let mut f = Forwarder::new(upstream.local_addr().unwrap()).unwrap();
    let client: SocketAddr = "10.88.0.9:40000".parse().unwrap();

    let q = query(0x0102, "outside.example", TYPE_A);
    f.relay(&q, client, Instant::now()).unwrap();
    assert_eq!(f.in_flight(), 1);
    let mut buf = [0u8; 512];
    let (n, from) = upstream.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[2..n], &q[2..], "relayed as sent but for the id");
    let relayed_id = u16_at(&buf, 0).unwrap();

    // Forged: the right id and question from another socket (the
    // connected socket drops it); a wrong question from upstream.
    let forger = UdpSocket::bind("127.0.0.1:0").unwrap();
    let good = reply_bytes(answer(&up_table, &buf[..n]));
    forger.send_to(&good, f.sock.local_addr().unwrap()).unwrap();
    let other = query(relayed_id, "other.example", TYPE_A);
    upstream
        .send_to(&error_reply(&other, Rcode::NxDomain).unwrap(), from)
        .unwrap();
    upstream.send_to(&good, from).unwrap();
    let (r, to) = next_reply(&mut f).expect("the upstream's reply");
    assert_eq!(to, client);
    let (id, _, addrs) = read_reply(&r, q.len() - HEADER);
    assert_eq!((id, addrs), (0x0102, vec![Ipv4Addr::new(192, 0, 2, 7)]));
    assert_eq!(f.in_flight(), 0);
    // A late duplicate matches nothing.
    upstream.send_to(&good, from).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert!(f.receive().unwrap().is_none());

    // Nobody answers: SERVFAIL at the deadline.
    let now = Instant::now();
    let q = query(0x0304, "slow.example", TYPE_A);
    f.relay(&q, client, now).unwrap();
    assert_eq!(f.next_deadline(), Some(now + FORWARD_TIMEOUT));
    assert!(f.expire(now).is_empty());
    let late = f.expire(now + FORWARD_TIMEOUT);
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].1, client);
    let (id, flags, _) = read_reply(&late[0].0, q.len() - HEADER);
    assert_eq!((id, flags & 0xf), (0x0304, Rcode::ServFail as u16));
    assert_eq!(f.in_flight(), 0);
    assert!(f.next_deadline().is_none());

    // Not a query; too many in flight.
    assert_eq!(
        f.relay(&q[..5], client, now).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    for _ in 0..MAX_PENDING {
        f.relay(&q, client, now).unwrap();
    }
    assert_eq!(
        f.relay(&q, client, now).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    assert_eq!(f.expire(now + FORWARD_TIMEOUT).len(), MAX_PENDING);
}

#[test]
fn an_upstream_that_is_not_there_leaves_queries_to_expire() {
    let gone = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = gone.local_addr().unwrap();
    drop(gone);
    let mut f = Forwarder::new(addr).unwrap();
    let client: SocketAddr = "10.88.0.9:40000".parse().unwrap();
    let now = Instant::now();
    f.relay(&query(1, "a.example", TYPE_A), client, now)
        .unwrap();
    // The port unreachable comes back as an error on the next call.
    std::thread::sleep(Duration::from_millis(50));
    f.relay(&query(2, "b.example", TYPE_A), client, now)
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert!(f.receive().unwrap().is_none());
    assert_eq!(f.in_flight(), 2);
    assert_eq!(f.expire(now + FORWARD_TIMEOUT).len(), 2);
}

/// Serve `server` (the table's responder, forwarding to `upstream`,
/// itself a responder for `up_table` that says NXDOMAIN for the rest)
/// until `child` exits; its exit status and output.
fn serve_until_exit(
    mut child: std::process::Child,
    server: &UdpSocket,
    upstream: &UdpSocket,
    table: &Table,
    up_table: &Table,
) -> (std::process::ExitStatus, String) {
    server.set_nonblocking(true).unwrap();
    upstream.set_nonblocking(true).unwrap();
    let mut f = Forwarder::new(upstream.local_addr().unwrap()).unwrap();
    let mut buf = [0u8; 1500];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "the resolver did not finish");
        let mut busy = false;
        while let Ok((n, from)) = server.recv_from(&mut buf) {
            busy = true;
            match answer(table, &buf[..n]) {
                Answer::Reply(r) => drop(server.send_to(&r, from)),
                Answer::Forward => f.relay(&buf[..n], from, Instant::now()).unwrap(),
                Answer::Refuse => {}
            }
        }
        while let Ok((n, from)) = upstream.recv_from(&mut buf) {
            busy = true;
            let r = match answer(up_table, &buf[..n]) {
                Answer::Reply(r) => r,
                _ => error_reply(&buf[..n], Rcode::NxDomain).unwrap(),
            };
            let _ = upstream.send_to(&r, from);
        }
        while let Some((r, to)) = f.receive().unwrap() {
            busy = true;
            let _ = server.send_to(&r, to);
        }
        for (r, to) in f.expire(Instant::now()) {
            let _ = server.send_to(&r, to);
        }
        if !busy {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status, text)
}

/// Real resolvers against the responder: busybox's nslookup (what
/// busybox and Alpine images have) and glibc's through getent (with a
/// resolv.conf of its own in a mount namespace). Both only talk to
/// port 53, so the responder binds a loopback address of its own on
/// it, which takes root.
#[test]
fn real_resolvers_find_our_names_and_forwarded_ones() {
    use std::process::{Command, Stdio};
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED real_resolvers: resolvers ask port 53 only, and binding it takes root");
        return;
    }
    let busybox =
        crate::linux::fs::executable_in(&std::env::var_os("PATH").unwrap_or_default(), "busybox");
    let unshare =
        crate::linux::fs::executable_in(&std::env::var_os("PATH").unwrap_or_default(), "unshare");
    if busybox.is_none() && unshare.is_none() {
        eprintln!("SKIPPED real_resolvers: neither busybox (nslookup) nor unshare (for getent) is installed");
        return;
    }
    // A loopback address of this test's own (any of 127/8 is ours).
    let pid = std::process::id();
    let server = (0..50u32)
        .find_map(|i| {
            let n = pid.wrapping_add(i * 7919);
            let ip = Ipv4Addr::new(127, 53, (n >> 8) as u8, (n as u8).max(1));
            UdpSocket::bind((ip, 53)).ok()
        })
        .expect("a free loopback address for port 53");
    let ip = server.local_addr().unwrap().ip().to_string();
    let upstream = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut t = Table::new();
    t.add("web", Ipv4Addr::new(10, 88, 0, 5));
    let mut up = Table::new();
    up.add("outside.example", Ipv4Addr::new(192, 0, 2, 7));

    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("resolv.conf");
    std::fs::write(
        &conf,
        format!("nameserver {ip}\noptions timeout:2 attempts:2\n"),
    )
    .unwrap();
    type MakeCommand = Box<dyn Fn(&str) -> Command>;
    let mut resolvers: Vec<(&str, MakeCommand)> = Vec::new();
    if let Some(bb) = busybox {
        let ip = ip.clone();
        resolvers.push((
            "busybox nslookup",
            Box::new(move |name| {
                let mut c = Command::new(&bb);
                c.args(["nslookup", name, &ip]);
                c
            }),
        ));
    }
    if let Some(unshare) = unshare {
        let conf = conf.clone();
        resolvers.push((
            "glibc getent",
            Box::new(move |name| {
                let mut c = Command::new(&unshare);
                c.args(["--mount", "--propagation", "private", "sh", "-c"])
                    .arg(format!(
                        "mount --bind {} /etc/resolv.conf && exec getent ahostsv4 {name}",
                        conf.display()
                    ));
                c
            }),
        ));
    }
    let cases = [
        ("web", Some("10.88.0.5")),
        ("outside.example", Some("192.0.2.7")),
        ("nothere.example", None),
    ];
    for (what, command) in &resolvers {
        for (name, want) in cases {
            let child = command(name)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let (st, out) = serve_until_exit(child, &server, &upstream, &t, &up);
            match want {
                Some(addr) => assert!(
                    st.success() && out.contains(addr),
                    "{what} {name}: {st} {out}"
                ),
                None => assert!(!st.success(), "{what} {name}: {st} {out}"),
            }
        }
    }
    let ran: Vec<&str> = resolvers.iter().map(|r| r.0).collect();
    eprintln!("real_resolvers: ran {}", ran.join(" and "));
}
