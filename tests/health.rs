//! Health checks as an unprivileged user, with and without a subuid range:
//! probes run by each container's monitor on their schedule (healthy,
//! unhealthy, the start period and start interval, the timeout), NONE and
//! `--no-healthcheck`, an image's HEALTHCHECK from `burrow build`, `ps`'s
//! status words and `--filter health=`, `healthcheck run`'s exit codes,
//! `--health-on-failure`, and a foreground `run`'s probes. Intervals are 1 s;
//! the deadlines are generous, since the VM running the suite may pause.

mod common;

use std::time::Duration;

use common::{spawn, stderr, users, wait_until, Env};

const PATIENCE: Duration = Duration::from_secs(90);

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("bad JSON ({e}): {s}"))
}

fn inspect(env: &Env, name: &str) -> serde_json::Value {
    json(&env.ok(["inspect", name]))[0].clone()
}

fn health(env: &Env, name: &str) -> serde_json::Value {
    inspect(env, name)["State"]["Health"].clone()
}

/// The health status, empty while the container does not exist yet.
fn status(env: &Env, name: &str) -> String {
    let o = env.run(["inspect", "--format", "{{json .State.Health}}", name]);
    if !o.status.success() {
        return String::new();
    }
    json(&common::stdout(&o))["Status"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn wait_status(env: &Env, name: &str, want: &str) {
    wait_until(&format!("[{:?}] {name} {want}", env.who), PATIENCE, || {
        status(env, name) == want
    });
}

/// The names `ps -a --filter health=WORD` lists.
fn filtered(env: &Env, word: &str) -> Vec<String> {
    env.ok([
        "ps",
        "-a",
        "--filter",
        &format!("health={word}"),
        "--format",
        "{{.Names}}",
    ])
    .lines()
    .map(str::to_string)
    .collect()
}

fn ps_status(env: &Env, name: &str) -> String {
    env.ok(["ps", "-a", "--format", "{{.Names}}\t{{.Status}}"])
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}\t")).map(str::to_string))
        .unwrap_or_default()
}

/// `run -d --name NAME FLAGS... bb sleep 600`.
fn sleeper(env: &Env, name: &str, flags: &[&str]) {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend(flags);
    args.extend(["bb", "sleep", "600"]);
    env.ok(&args);
}

fn is_rfc3339_nanos(s: &str) -> bool {
    s.len() >= 30 && s.as_bytes()[10] == b'T' && s.contains('.') && s.ends_with('Z')
}

#[test]
fn healthy_after_a_file_appears_unhealthy_after_failures() {
    for env in users("health-basic") {
        env.import_busybox("bb");
        let who = env.who;
        sleeper(
            &env,
            "web",
            &[
                "--health-cmd",
                "echo probing; test -f /ok",
                "--health-interval",
                "1s",
                "--health-retries",
                "2",
            ],
        );
        // A long interval: it stays starting, and ps says so.
        sleeper(
            &env,
            "slow",
            &["--health-cmd", "true", "--health-interval", "1h"],
        );
        env.ok(["run", "-d", "--name", "plain", "bb", "sleep", "600"]);
        let slow = health(&env, "slow");
        assert_eq!(slow["Status"], "starting", "[{who:?}] {slow}");
        assert_eq!(slow["FailingStreak"], 0);
        assert_eq!(slow["Log"], serde_json::json!([]), "[{who:?}] {slow}");
        assert!(
            ps_status(&env, "slow").ends_with("(health: starting)"),
            "[{who:?}] {}",
            ps_status(&env, "slow")
        );
        let starting = filtered(&env, "starting");
        assert!(
            starting.contains(&"slow".to_string()),
            "[{who:?}] {starting:?}"
        );
        assert!(
            !starting.contains(&"plain".to_string()),
            "[{who:?}] {starting:?}"
        );
        assert_eq!(filtered(&env, "none"), ["plain"], "[{who:?}]");
        assert!(
            inspect(&env, "plain")["State"].get("Health").is_none(),
            "[{who:?}] no State.Health without a health check"
        );

        wait_status(&env, "web", "unhealthy");
        let h = health(&env, "web");
        assert!(h["FailingStreak"].as_u64().unwrap() >= 2, "[{who:?}] {h}");
        let log = h["Log"].as_array().unwrap();
        let last = log.last().unwrap();
        assert_eq!(last["ExitCode"], 1, "[{who:?}] {h}");
        assert_eq!(last["Output"], "probing\n", "[{who:?}] {h}");
        assert!(is_rfc3339_nanos(last["Start"].as_str().unwrap()), "{h}");
        assert!(is_rfc3339_nanos(last["End"].as_str().unwrap()), "{h}");
        assert!(ps_status(&env, "web").ends_with("(unhealthy)"));
        assert_eq!(filtered(&env, "unhealthy"), ["web"], "[{who:?}]");
        let cfg = &inspect(&env, "web")["Config"]["Healthcheck"];
        assert_eq!(
            cfg,
            &serde_json::json!({"Test": ["CMD-SHELL", "echo probing; test -f /ok"],
                "Interval": 1_000_000_000u64, "Retries": 2}),
            "[{who:?}] Config.Healthcheck as Docker shows it"
        );

        env.ok(["exec", "web", "touch", "/ok"]);
        wait_status(&env, "web", "healthy");
        assert_eq!(health(&env, "web")["FailingStreak"], 0);
        assert!(ps_status(&env, "web").ends_with("(healthy)"));
        assert_eq!(filtered(&env, "healthy"), ["web"], "[{who:?}]");
        // Only the last five results are kept.
        wait_until("five results", PATIENCE, || {
            health(&env, "web")["Log"].as_array().unwrap().len() == 5
        });
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(health(&env, "web")["Log"].as_array().unwrap().len(), 5);
        assert_eq!(
            env.ok(["inspect", "--format", "{{.State.Health.Status}}", "web"]),
            "healthy\n"
        );
        let events = env.ok(["events", "--since", "10m", "--until", "0s"]);
        for want in ["health_status: unhealthy", "health_status: healthy"] {
            assert!(events.contains(want), "[{who:?}] {want} in {events}");
        }
        // Kept across stop, reset to starting by the next start.
        env.ok(["stop", "-t", "1", "web"]);
        assert_eq!(status(&env, "web"), "healthy", "[{who:?}]");
        env.ok(["start", "web"]);
        let h = health(&env, "web");
        assert!(
            h["Status"] == "starting" || h["Status"] == "healthy",
            "[{who:?}] {h}"
        );
        assert!(!h["Log"].as_array().unwrap().is_empty(), "the log survives");
        assert!(env.run(["ps", "--filter", "health=sick"]).status.code() == Some(125));
        env.ok(["rm", "-f", "web", "slow", "plain"]);
    }
}

#[test]
fn start_period_and_start_interval() {
    for env in users("health-start") {
        env.import_busybox("bb");
        let who = env.who;
        // Failures in the start period do not count while starting.
        sleeper(
            &env,
            "boot",
            &[
                "--health-cmd",
                "false",
                "--health-interval",
                "1s",
                "--health-retries",
                "1",
                "--health-start-period",
                "1h",
                "--health-start-interval",
                "1s",
            ],
        );
        // Probed every start interval, though the interval is an hour.
        sleeper(
            &env,
            "fast",
            &[
                "--health-cmd",
                "true",
                "--health-interval",
                "1h",
                "--health-start-period",
                "1h",
                "--health-start-interval",
                "1s",
            ],
        );
        // `starting` as soon as `run -d` has returned, before any probe:
        // Compose reads a container without a status as one without a
        // health check.
        let at_once = env.ok(["inspect", "-f", "{{.State.Health.Status}}", "boot"]);
        assert_eq!(at_once.trim(), "starting", "[{who:?}]");
        wait_until("three failed probes", PATIENCE, || {
            health(&env, "boot")["Log"].as_array().unwrap().len() >= 3
        });
        let h = health(&env, "boot");
        assert_eq!(h["Status"], "starting", "[{who:?}] {h}");
        assert_eq!(h["FailingStreak"], 0, "[{who:?}] {h}");
        wait_status(&env, "fast", "healthy");
        env.ok(["rm", "-f", "boot", "fast"]);
    }
}

#[test]
fn a_probe_past_its_timeout_is_killed() {
    for env in users("health-timeout") {
        env.import_busybox("bb");
        let who = env.who;
        sleeper(
            &env,
            "stuck",
            &[
                "--health-cmd",
                "sleep 10",
                "--health-timeout",
                "1s",
                "--health-interval",
                "1s",
                "--health-retries",
                "1",
            ],
        );
        wait_status(&env, "stuck", "unhealthy");
        let h = health(&env, "stuck");
        let first = &h["Log"][0];
        assert_eq!(first["ExitCode"], -1, "[{who:?}] {h}");
        assert_eq!(
            first["Output"], "Health check exceeded timeout (1s)",
            "[{who:?}] {h}"
        );
        // Killed, not left behind: at most the probe now running sleeps.
        wait_until("no piled-up probes", PATIENCE, || {
            let ps = env.ok(["exec", "stuck", "ps", "-o", "args"]);
            ps.lines().filter(|l| l.trim() == "sleep 10").count() <= 1
        });
        let o = env.run([
            "run",
            "-d",
            "--name",
            "missing",
            "--no-healthcheck",
            "--health-interval",
            "1s",
            "bb",
            "sleep",
            "600",
        ]);
        assert_eq!(o.status.code(), Some(125), "[{who:?}] {}", stderr(&o));
        assert!(
            stderr(&o).contains("--no-healthcheck conflicts"),
            "{}",
            stderr(&o)
        );
        env.ok(["rm", "-f", "stuck"]);
    }
}

#[test]
fn an_image_healthcheck_none_and_no_healthcheck() {
    for env in users("health-image") {
        env.import_busybox("bb");
        let who = env.who;
        let ctx = env.user_dir("ctx");
        std::fs::write(
            ctx.join("Dockerfile"),
            "FROM bb\nHEALTHCHECK --interval=1s --retries=1 CMD [\"test\", \"-f\", \"/etc/passwd\"]\n",
        )
        .unwrap();
        env.ok(["build", "-q", "-t", "checked", ctx.to_str().unwrap()]);
        std::fs::write(ctx.join("Dockerfile"), "FROM checked\nHEALTHCHECK NONE\n").unwrap();
        env.ok(["build", "-q", "-t", "unchecked", ctx.to_str().unwrap()]);
        std::fs::write(
            ctx.join("Dockerfile"),
            "FROM bb\nHEALTHCHECK --interval=1s --retries=1 CMD [\"/nope\"]\n",
        )
        .unwrap();
        env.ok(["build", "-q", "-t", "broken", ctx.to_str().unwrap()]);

        // A probe that cannot start is a failure with the error as output.
        env.ok(["run", "-d", "--name", "broken", "broken", "sleep", "600"]);
        wait_status(&env, "broken", "unhealthy");
        let first = health(&env, "broken")["Log"][0].clone();
        assert_eq!(first["ExitCode"], -1, "[{who:?}] {first}");
        assert!(
            first["Output"].as_str().unwrap().contains("/nope"),
            "[{who:?}] {first}"
        );

        env.ok(["run", "-d", "--name", "img", "checked", "sleep", "600"]);
        wait_status(&env, "img", "healthy");
        assert_eq!(
            inspect(&env, "img")["Config"]["Healthcheck"]["Test"],
            serde_json::json!(["CMD", "test", "-f", "/etc/passwd"])
        );
        // A flag overrides one field; the image's others stay.
        env.ok([
            "run",
            "-d",
            "--name",
            "mixed",
            "--health-cmd",
            "exit 3",
            "checked",
            "sleep",
            "600",
        ]);
        wait_status(&env, "mixed", "unhealthy");
        let cfg = inspect(&env, "mixed")["Config"]["Healthcheck"].clone();
        assert_eq!(cfg["Test"], serde_json::json!(["CMD-SHELL", "exit 3"]));
        assert_eq!(cfg["Interval"], 1_000_000_000u64, "[{who:?}] {cfg}");
        assert_eq!(health(&env, "mixed")["Log"][0]["ExitCode"], 3);

        for (name, args) in [
            ("off", vec!["--no-healthcheck", "checked"]),
            ("none", vec!["unchecked"]),
        ] {
            let mut run = vec!["run", "-d", "--name", name];
            run.extend(args);
            run.extend(["sleep", "600"]);
            env.ok(&run);
            std::thread::sleep(Duration::from_millis(1500));
            let v = inspect(&env, name);
            assert!(v["State"].get("Health").is_none(), "[{who:?}] {name}: {v}");
            assert_eq!(
                v["Config"]["Healthcheck"]["Test"],
                serde_json::json!(["NONE"])
            );
            assert!(!ps_status(&env, name).contains('('), "[{who:?}] {name}");
            assert!(filtered(&env, "none").contains(&name.to_string()));
        }
        env.ok(["rm", "-f", "img", "mixed", "off", "none", "broken"]);
    }
}

#[test]
fn healthcheck_run_exit_codes() {
    for env in users("health-run") {
        env.import_busybox("bb");
        let who = env.who;
        sleeper(&env, "hc", &["--health-cmd", "test -f /ok"]);
        let o = env.run(["healthcheck", "run", "hc"]);
        assert_eq!(o.status.code(), Some(1), "[{who:?}] {}", stderr(&o));
        assert_eq!(common::stdout(&o), "unhealthy\n");
        env.ok(["exec", "hc", "touch", "/ok"]);
        env.ok(["healthcheck", "run", "hc"]);
        // Recorded as the monitor records a result.
        assert_eq!(status(&env, "hc"), "healthy", "[{who:?}]");
        assert_eq!(health(&env, "hc")["Log"].as_array().unwrap().len(), 2);

        env.ok(["run", "-d", "--name", "nohc", "bb", "sleep", "600"]);
        env.ok(["create", "--name", "idle", "--health-cmd", "true", "bb"]);
        for name in ["nohc", "idle"] {
            let o = env.run(["healthcheck", "run", name]);
            assert_eq!(
                o.status.code(),
                Some(125),
                "[{who:?}] {name}: {}",
                stderr(&o)
            );
        }
        env.ok(["rm", "-f", "hc", "nohc", "idle"]);
    }
}

#[test]
fn on_failure_kill_and_restart() {
    for env in users("health-on-failure") {
        env.import_busybox("bb");
        let who = env.who;
        let unhealthy = [
            "--health-cmd",
            "test ! -f /tmp/sick -a ! -f /run/sick",
            "--health-interval",
            "1s",
            "--health-retries",
            "1",
        ];
        let mut run = vec!["run", "-d", "--name", "killed", "--health-on-failure=kill"];
        run.extend(unhealthy);
        run.extend(["bb", "sh", "-c", "touch /tmp/sick; sleep 600"]);
        env.ok(&run);
        wait_until("killed when unhealthy", PATIENCE, || {
            inspect(&env, "killed")["State"]["Status"] == "exited"
        });
        assert_eq!(
            inspect(&env, "killed")["State"]["ExitCode"],
            137,
            "[{who:?}]"
        );

        // The restarted run gets well (its /run is a new tmpfs; a marker on
        // a volume says it ran once).
        let mut run = vec![
            "run",
            "-d",
            "--name",
            "again",
            "--init",
            "-v",
            "marks:/marks",
            "--tmpfs",
            "/run",
            "--health-on-failure=restart",
        ];
        run.extend(unhealthy);
        run.extend([
            "bb",
            "sh",
            "-c",
            "if [ ! -f /marks/ran ]; then touch /marks/ran /run/sick; fi; exec sleep 600",
        ]);
        env.ok(&run);
        wait_until("restarted and healthy", PATIENCE, || {
            let v = inspect(&env, "again");
            v["RestartCount"] == 1
                && v["State"]["Running"] == true
                && v["State"]["Health"]["Status"] == "healthy"
        });
        let o = env.run(["events", "--since", "10m", "--until", "0s"]);
        let events = common::stdout(&o);
        assert!(events.contains("health_status: unhealthy"), "{events}");
        env.ok(["rm", "-f", "killed", "again"]);
    }
}

#[test]
fn a_foreground_run_is_probed_too() {
    for env in users("health-foreground") {
        env.import_busybox("bb");
        let who = env.who;
        let mut child = spawn(env.cmd([
            "run",
            "--name",
            "fg",
            "--health-cmd",
            "true",
            "--health-interval",
            "1s",
            "bb",
            "sh",
            "-c",
            "echo up; sleep 600",
        ]));
        wait_status(&env, "fg", "healthy");
        env.ok(["stop", "-t", "1", "fg"]);
        let st = child.wait().unwrap();
        assert_eq!(st.code(), Some(137), "[{who:?}] the foreground run ends");
        env.ok(["rm", "fg"]);
    }
}
