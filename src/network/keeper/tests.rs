//! The keeper's starter side as data: states, leases, names and the sweep of gone keepers.

use super::*;

#[test]
fn sweep_removes_only_unused_keeper_dirs_of_gone_keepers() {
    let base = tempfile::tempdir().unwrap();
    let own = base.path().join("keeper-1-1");
    let gone = base.path().join("keeper-2-2");
    let held = base.path().join("keeper-3-3");
    let alive = base.path().join("keeper-4-4");
    let other = base.path().join("store-5");
    for d in [&own, &gone, &held, &alive, &other] {
        std::fs::create_dir(d).unwrap();
        std::fs::write(d.join("users"), "").unwrap();
    }
    let dead = Proc {
        pid: i32::MAX,
        start: 1,
    };
    let me = Proc {
        pid: std::process::id() as i32,
        start: process::start_time(Path::new("/proc"), std::process::id() as i32).unwrap(),
    };
    let state = |p: Proc| {
        serde_json::to_vec(&State {
            keeper: p,
            holder: p,
            helper: "pasta".into(),
        })
        .unwrap()
    };
    for d in [&own, &gone, &held] {
        std::fs::write(d.join("state.json"), state(dead)).unwrap();
    }
    std::fs::write(alive.join("state.json"), state(me)).unwrap();
    // A container on `held` keeps its shared lock.
    let user = File::open(held.join("users")).unwrap();
    fs::flock_description(&user, FileLock::Shared).unwrap();
    sweep(&own);
    assert!(own.exists() && held.exists() && alive.exists() && other.exists());
    assert!(!gone.exists());
    drop(user);
}

#[test]
fn proc_parses_pid_and_start_time() {
    assert_eq!(
        Proc::parse("12:345"),
        Some(Proc {
            pid: 12,
            start: 345
        })
    );
    for bad in ["", "12", "12:", ":3", "a:1", "1:b", "1:2:3"] {
        assert_eq!(Proc::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn leases_are_distinct_while_held_and_free_once_closed() {
    let d = tempfile::tempdir().unwrap();
    let id = "0123456789abcdef";
    let default = Segment::default_network();
    let who = Place {
        segment: &default,
        names: &[],
    };
    let (held, a) = lease(d.path(), id, &who).unwrap();
    let (held2, b) = lease(d.path(), id, &who).unwrap();
    assert_ne!(a, b, "two containers got one address");
    for addr in [a, b] {
        let host = u32::from(addr) & ((1 << (32 - PREFIX)) - 1);
        assert!(
            (2..(1 << (32 - PREFIX)) - 1).contains(&host),
            "{addr} is the network, the gateway or the broadcast"
        );
        assert_eq!(
            u32::from(addr) >> (32 - PREFIX),
            u32::from(SUBNET) >> (32 - PREFIX)
        );
    }
    // The lease file names its container.
    let file = d.path().join("leases/10.88.0.1").join(a.to_string());
    assert_eq!(std::fs::read_to_string(file).unwrap(), format!("{id}\n"));
    // Closed (its holder ended): the first address is free again.
    drop(held);
    let (_again, c) = lease(d.path(), id, &who).unwrap();
    assert_eq!(c, a);
    drop(held2);
}

#[test]
fn a_small_user_network_leases_all_but_its_gateway_then_runs_out() {
    let d = tempfile::tempdir().unwrap();
    // 10.89.7.0/29: hosts .1 to .6, .1 the gateway.
    let net = Segment::user(Ipv4Addr::new(10, 89, 7, 0), 29, Ipv4Addr::new(10, 89, 7, 1));
    assert_eq!(net.bridge, "bu0a590701");
    let names = ["web".to_string(), "www".to_string()];
    let place = Place {
        segment: &net,
        names: &names,
    };
    let id = |n: usize| format!("{n:x}edcba9876543210aa");
    let mut held = Vec::new();
    for n in 0..5 {
        held.push(lease(d.path(), &id(n), &place).unwrap());
    }
    let mut got: Vec<u8> = held.iter().map(|(_, a)| a.octets()[3]).collect();
    got.sort();
    assert_eq!(got, [2, 3, 4, 5, 6]);
    assert!(matches!(
        lease(d.path(), &id(9), &place),
        Err(KeeperError::NoAddress(n)) if n == "10.89.7.0/29"
    ));
    // The responder's view from a member: every name of every running
    // member, the short id among them; from elsewhere: nothing.
    let first = held[0].1;
    let seen = names_seen_by(d.path(), first).unwrap();
    assert_eq!(seen.len(), 15, "{seen:?}");
    assert!(seen.contains(&("web".to_string(), first)));
    assert!(seen.contains(&("0edcba987654".to_string(), first)));
    assert!(names_seen_by(d.path(), Ipv4Addr::new(10, 88, 0, 5)).is_none());
    // A member gone: its names go with its lock.
    let (f, gone) = held.pop().unwrap();
    drop(f);
    let seen = names_seen_by(d.path(), first).unwrap();
    assert_eq!(seen.len(), 12);
    assert!(!seen.iter().any(|(_, a)| *a == gone));
}

#[test]
fn a_member_of_two_networks_is_answered_from_both_and_seen_in_each() {
    let d = tempfile::tempdir().unwrap();
    let front = Segment::user(Ipv4Addr::new(10, 89, 1, 0), 24, Ipv4Addr::new(10, 89, 1, 1));
    let back = Segment::user(Ipv4Addr::new(10, 89, 2, 0), 24, Ipv4Addr::new(10, 89, 2, 1));
    let (app, web, db) = (["app".to_string()], ["web".to_string()], ["db".to_string()]);
    let on = |segment, names| Place { segment, names };
    let _app1 = lease(d.path(), "aaaaaaaaaaaa01", &on(&front, &app[..])).unwrap();
    let _app2 = lease(d.path(), "aaaaaaaaaaaa01", &on(&back, &app[..])).unwrap();
    let web_l = lease(d.path(), "bbbbbbbbbbbb02", &on(&front, &web[..])).unwrap();
    let db_l = lease(d.path(), "cccccccccccc03", &on(&back, &db[..])).unwrap();
    let names = |from: Ipv4Addr| -> Vec<String> {
        let mut n: Vec<String> = names_seen_by(d.path(), from)
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| n.len() < 12)
            .collect();
        n.sort();
        n.dedup();
        n
    };
    // On both: both networks' names, whichever address it asks from.
    assert_eq!(names(_app1.1), ["app", "db", "web"]);
    assert_eq!(names(_app2.1), ["app", "db", "web"]);
    // On one: that one's only.
    assert_eq!(names(web_l.1), ["app", "web"]);
    assert_eq!(names(db_l.1), ["app", "db"]);
}

#[test]
fn status_reads_a_missing_and_a_stale_state() {
    let d = tempfile::tempdir().unwrap();
    let mapping = IdMapping::detect(Path::new("/etc"));
    assert_eq!(status(d.path(), &mapping), Status::Absent);
    let k = dir(d.path());
    std::fs::create_dir_all(&k).unwrap();
    // Pids no process can have (above the kernel's pid_max limit).
    let gone = Proc {
        pid: 4_194_305,
        start: 1,
    };
    let state = State {
        keeper: gone,
        holder: gone,
        helper: "pasta".into(),
    };
    std::fs::write(k.join("state.json"), serde_json::to_vec(&state).unwrap()).unwrap();
    assert_eq!(status(d.path(), &mapping), Status::Stale);
    assert!(orphaned_holder(&k, &mapping).is_none());
}
