//! Network helpers that cannot start: `/dev/net/tun` root-only or absent,
//! and a helper that dies while its container runs.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::{self, host, stderr, stdout, wait_until, Env};

/// The test users on a host condition made for each of their commands.
fn users_on(test: &str, setup: &str) -> Vec<Env> {
    common::users(test)
        .into_iter()
        .map(|e| e.on_host(test, setup))
        .collect()
}

fn root_or_skip(test: &str) -> bool {
    let root = nix::unistd::Uid::effective().is_root();
    if !root {
        common::loud(&format!(
            "SKIPPED {test}: making a tun device root-only needs root; run the suite as root"
        ));
    }
    root
}

fn have_pasta(test: &str) -> bool {
    let have = Path::new("/usr/bin/pasta").exists();
    if !have {
        common::loud(&format!(
            "SKIPPED {test}: pasta is not installed (apt-get install passt)"
        ));
    }
    have
}

/// The container's network devices, one per line.
fn links(env: &Env, args: &[&str]) -> (std::process::Output, Vec<String>) {
    let mut all = vec!["run", "--rm"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["bb", "ip", "-o", "link"]);
    let o = env.run(&all);
    let names = stdout(&o)
        .lines()
        .filter_map(|l| l.split(':').nth(1).map(|n| n.trim().to_string()))
        .collect();
    (o, names)
}

/// The README's first command, where pasta cannot open the tun device:
/// the container runs with loopback only and burrow says what it gave up.
#[test]
fn hello_world_runs_where_tun_is_root_only_or_absent() {
    if !root_or_skip("hello_tun") || !have_pasta("hello_tun") {
        return;
    }
    for (what, setup) in [("0600", host::TUN_ROOT_ONLY), ("absent", host::NO_TUN)] {
        for env in users_on(&format!("hello_tun_{what}"), setup) {
            let o = env.run(["run", "hello-world"]);
            assert!(
                o.status.success(),
                "[{:?}] tun {what}: {:?}\n{}",
                env.who,
                o.status.code(),
                stderr(&o)
            );
            assert!(stdout(&o).contains("Hello from burrow"), "{}", stdout(&o));
            let fix = if what == "0600" {
                "fix: sudo chmod 0666 /dev/net/tun"
            } else {
                "fix: sudo mkdir -p /dev/net && sudo mknod -m 0666 /dev/net/tun c 10 200"
            };
            let err = stderr(&o);
            let said: Vec<&str> = err.lines().filter(|l| l.contains(fix)).collect();
            assert_eq!(said.len(), 1, "[{:?}] tun {what}: one line: {err}", env.who);
            assert!(
                said[0].contains("pasta cannot start")
                    && said[0].contains("containers get loopback only")
                    && said[0].contains("--network none"),
                "{}",
                said[0]
            );
            // Said once per session, not on every run.
            let o = env.run(["run", "--rm", "hello-world"]);
            assert!(o.status.success(), "{}", stderr(&o));
            assert!(!stderr(&o).contains("fix:"), "said again: {}", stderr(&o));
        }
    }
}

/// Loopback only means loopback only, while published ports still reach
/// the container; `info` says why, in text and JSON.
#[test]
fn a_private_network_falls_back_to_loopback_and_info_says_why() {
    if !root_or_skip("tun_info") || !have_pasta("tun_info") {
        return;
    }
    for env in users_on("tun_info", host::TUN_ROOT_ONLY) {
        env.import_busybox("bb");
        let (o, names) = links(&env, &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(names, ["lo"], "[{:?}] loopback only", env.who);
        let info = env.ok(["info"]);
        let line = info
            .lines()
            .find(|l| l.starts_with("Network helper:"))
            .unwrap_or_default();
        assert!(
            line.contains(
                "pasta (unusable: /dev/net/tun is mode 0600; containers get loopback only; fix: sudo chmod 0666 /dev/net/tun"
            ),
            "{info}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&env.ok(["info", "--format", "json"])).unwrap();
        let out = &json["NetworkOutbound"];
        assert_eq!(out["Helper"], "pasta", "{out}");
        assert_eq!(out["Usable"], false, "{out}");
        assert_eq!(out["Problem"], "/dev/net/tun is mode 0600", "{out}");
    }
    // The same users where the test made the device open to all: pasta
    // starts, and `info` says it is usable (the host's own mode is never
    // what the answer rests on).
    if !common::route_to_anywhere() {
        return;
    }
    for env in users_on("tun_info_open", host::TUN_OPEN) {
        env.import_busybox("bb");
        let (o, names) = links(&env, &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            names.len() > 1,
            "[{:?}] pasta's interface: {names:?}",
            env.who
        );
        let json: serde_json::Value =
            serde_json::from_str(&env.ok(["info", "--format", "json"])).unwrap();
        assert_eq!(json["NetworkOutbound"]["Usable"], true);
    }
}

/// What the user asked for by name cannot fall back: an explicit helper
/// or a user network fails with exit 125 and the fix.
#[test]
fn explicit_helpers_and_user_networks_fail_with_the_fix() {
    if !root_or_skip("tun_explicit") {
        return;
    }
    for env in users_on("tun_explicit", host::TUN_ROOT_ONLY) {
        env.import_busybox("bb");
        env.ok(["network", "create", "appnet"]);
        // Once-per-boot lines (no subordinate range) are said here, so the
        // refusals below are one line each.
        env.ok(["run", "--rm", "--network", "none", "bb", "true"]);
        for net in ["pasta", "slirp4netns", "appnet"] {
            if net != "appnet" && !Path::new("/usr/bin").join(net).exists() {
                common::loud(&format!(
                    "SKIPPED tun_explicit --network {net}: not installed"
                ));
                continue;
            }
            let o = env.run(["run", "--rm", "--network", net, "bb", "true"]);
            assert_eq!(o.status.code(), Some(125), "{net}: {}", stderr(&o));
            let err = stderr(&o);
            assert_eq!(err.lines().count(), 1, "{net}: one line: {err}");
            assert!(
                err.contains("/dev/net/tun is mode 0600")
                    && err.contains("fix: sudo chmod 0666 /dev/net/tun"),
                "{net}: {err}"
            );
        }
        // Nothing was left behind by the refused runs.
        assert_eq!(env.ok(["ps", "-aq"]).trim(), "");
    }
}

/// A build's RUN steps follow the same rule as `run`.
#[test]
fn build_run_steps_get_loopback_only_where_tun_is_absent() {
    if !root_or_skip("tun_build") || !have_pasta("tun_build") {
        return;
    }
    for env in users_on("tun_build", host::NO_TUN) {
        env.import_busybox("bb");
        let ctx = env.user_dir("ctx");
        std::fs::write(
            ctx.join("Dockerfile"),
            "FROM bb\nRUN ip -o link | cut -d: -f2 | tr -d ' ' > /links\n",
        )
        .unwrap();
        env.share(&ctx.join("Dockerfile"));
        let o = env.run(["build", "-t", "built", ctx.to_str().unwrap()]);
        assert!(o.status.success(), "[{:?}] {}", env.who, stderr(&o));
        assert!(
            stderr(&o).contains("there is no /dev/net/tun"),
            "says why: {}",
            stderr(&o)
        );
        assert_eq!(
            env.ok(["run", "--rm", "built", "cat", "/links"]).trim(),
            "lo"
        );
    }
}

/// The helper dying (killed, crashed) takes away outbound access, not the
/// container: it keeps running, can be exec'd into and stopped as usual.
/// A helper of its own (`--network pasta`): the keeper's, which the
/// default network uses, is tests/keeper.rs's.
#[test]
fn a_helper_that_dies_leaves_its_container_running() {
    if !root_or_skip("helper_dies") || !have_pasta("helper_dies") {
        return;
    }
    if !common::route_to_anywhere() {
        return;
    }
    for env in users_on("helper_dies", host::TUN_OPEN) {
        env.import_busybox("bb");
        env.ok([
            "run",
            "-d",
            "--name",
            "c",
            "--network",
            "pasta",
            "bb",
            "sleep",
            "600",
        ]);
        let pid1 = env.ok(["inspect", "-f", "{{.State.Pid}}", "c"]);
        let pid1 = pid1.trim();
        let helper = find_helper(pid1).expect("pasta serving the container");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(helper),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        wait_until("pasta is gone", Duration::from_secs(5), || {
            find_helper(pid1).is_none()
        });
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(
            env.ok(["inspect", "-f", "{{.State.Status}}", "c"]).trim(),
            "running",
            "[{:?}]",
            env.who
        );
        assert_eq!(
            env.ok(["exec", "c", "echo", "still-here"]).trim(),
            "still-here"
        );
        env.ok(["stop", "-t", "1", "c"]);
        assert_eq!(
            env.ok(["inspect", "-f", "{{.State.ExitCode}}", "c"]).trim(),
            "137"
        );
        env.ok(["rm", "c"]);
    }
}

/// The pid of the pasta whose command line targets `pid1`'s namespace.
fn find_helper(pid1: &str) -> Option<i32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_pasta = args
            .first()
            .is_some_and(|a| a.ends_with(b"pasta") || a.ends_with(b"passt"));
        (is_pasta && args.contains(&pid1.as_bytes())).then_some(pid)
    })
}

/// The README's first command typed by root (a CI job, a container run as
/// root): pasta, started by root, would change to nobody and could not
/// enter the container's namespaces.
#[test]
fn root_gets_pasta_too() {
    if !root_or_skip("root_pasta") || !have_pasta("root_pasta") || !common::route_to_anywhere() {
        return;
    }
    let Some(env) = common::users("root_pasta").into_iter().next() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let program = env.cmd(["--version"]).get_program().to_owned();
    let o = Command::new(program)
        .args(["run", "--rm", "hello-world"])
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .env("HOME", home.path())
        .env("BURROW_ROOT", home.path().join("store"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{:?}: {}", o.status.code(), stderr(&o));
    assert!(stdout(&o).contains("Hello from burrow"), "{}", stdout(&o));
}
