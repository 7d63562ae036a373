//! The container lifecycle as an unprivileged user, with and without a
//! subuid range: the seeds' walkthrough (create → start → logs -f → pause →
//! unpause → stop → Exited (137) → start -a → rm), detached containers and
//! their monitor, logs options, wait/kill/restart/--timeout/prune, and an
//! interactive shell through a real terminal (tmux).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{have_tmux, spawn, stderr, stdout, users, wait_until, Env, Term, Who};

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("bad JSON ({e}): {s}"))
}

fn ps_row(env: &Env, name: &str) -> Option<String> {
    env.ok(["ps", "-a"])
        .lines()
        .find(|l| l.split_whitespace().last() == Some(name))
        .map(str::to_string)
}

fn pid_of(env: &Env, name: &str) -> i32 {
    json(&env.ok(["inspect", name]))[0]["State"]["Pid"]
        .as_i64()
        .unwrap() as i32
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[test]
fn the_seeds_walkthrough() {
    for env in users("walkthrough") {
        env.import_busybox("busybox");
        // create: Created, nothing runs.
        let id = env.ok([
            "create",
            "--name",
            "counter",
            "busybox",
            "sh",
            "-c",
            "i=0; while true; do echo $i; i=$((i+1)); sleep 0.2; done",
        ]);
        assert_eq!(id.trim().len(), 64, "create prints the full id: {id}");
        assert!(ps_row(&env, "counter").unwrap().contains("Created"));
        assert!(
            !env.ok(["ps"]).contains("counter"),
            "a created container is not running"
        );
        assert_eq!(json(&env.ok(["inspect", "counter"]))[0]["State"]["Pid"], 0);

        // start: Up; logs -f shows it counting.
        assert_eq!(env.ok(["start", "counter"]).trim(), "counter");
        assert!(ps_row(&env, "counter").unwrap().contains("Up "));
        let follow = spawn(env.cmd(["logs", "-f", "counter"]));
        wait_until("3 lines of logs", Duration::from_secs(10), || {
            env.ok(["logs", "counter"]).lines().count() >= 3
        });
        let logs = env.ok(["logs", "counter"]);
        assert!(logs.starts_with("0\n1\n2\n"), "{logs}");

        // pause: (Paused), no CPU, no output; memory kept.
        env.ok(["pause", "counter"]);
        let row = ps_row(&env, "counter").unwrap();
        assert!(row.contains("(Paused)"), "{row}");
        let pid = pid_of(&env, "counter");
        let state = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        assert!(state.contains("State:\tT"), "PID 1 stopped: {state}");
        let c = &json(&env.ok(["inspect", "counter"]))[0]["State"];
        assert_eq!(c["Paused"], true);
        assert_eq!(c["Status"], "paused");
        assert_eq!(
            c["PauseMethod"], "SIGSTOP",
            "no cgroup here: paused by signal"
        );
        // Lines written just before the stop may still be on their way to
        // the log (the monitor copies them when it next runs): count once
        // two reads agree.
        let lines = || env.ok(["logs", "counter"]).lines().count();
        let mut n1 = lines();
        wait_until("the log settles", Duration::from_secs(20), || {
            std::thread::sleep(Duration::from_millis(300));
            let n = lines();
            std::mem::replace(&mut n1, n) == n
        });
        std::thread::sleep(Duration::from_millis(800));
        assert_eq!(
            env.ok(["logs", "counter"]).lines().count(),
            n1,
            "no output while paused"
        );

        // unpause: counting again.
        env.ok(["unpause", "counter"]);
        wait_until("output after unpause", Duration::from_secs(10), || {
            env.ok(["logs", "counter"]).lines().count() > n1
        });
        assert!(!ps_row(&env, "counter").unwrap().contains("Paused"));

        // stop: sh as PID 1 ignores SIGTERM, so it is killed after the
        // timeout: -t's 2 s, not the default 10 s (the upper bound leaves a
        // loaded machine 8 s for the rest).
        let t0 = Instant::now();
        env.ok(["stop", "-t", "2", "counter"]);
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_secs(2) && took < Duration::from_secs(10),
            "{took:?}"
        );
        let row = ps_row(&env, "counter").unwrap();
        assert!(row.contains("Exited (137)"), "{row}");
        // logs -f ended with the container.
        let out = follow.wait_with_output().unwrap();
        assert!(out.status.success());
        assert!(stdout(&out).starts_with("0\n1\n"), "{}", stdout(&out));

        // start -a: runs again, attached, output shown.
        let child = spawn(env.cmd(["start", "-a", "counter"]));
        wait_until("running again", Duration::from_secs(10), || {
            ps_row(&env, "counter").is_some_and(|r| r.contains("Up "))
        });
        std::thread::sleep(Duration::from_millis(500));
        env.ok(["kill", "counter"]);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(137));
        assert!(
            stdout(&out).starts_with("0\n"),
            "start -a shows the new output: {}",
            stdout(&out)
        );

        // rm
        env.ok(["rm", "counter"]);
        assert!(ps_row(&env, "counter").is_none());
    }
}

#[test]
fn paused_containers_use_no_cpu() {
    let Some(env) = Env::new(Who::Range, "cpu").or_else(|| Env::new(Who::Single, "cpu")) else {
        return;
    };
    env.import_busybox("busybox");
    env.ok([
        "run",
        "-d",
        "--name",
        "spin",
        "busybox",
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    let pid = pid_of(&env, "spin");
    std::thread::sleep(Duration::from_millis(300));
    env.ok(["pause", "spin"]);
    let a = cpu_ticks(pid);
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(cpu_ticks(pid), a, "CPU time grew while paused");
    env.ok(["unpause", "spin"]);
    wait_until(
        "CPU time grows after unpause",
        Duration::from_secs(20),
        || cpu_ticks(pid) > a,
    );
    env.ok(["rm", "-f", "spin"]);
}

#[test]
fn detached_containers_have_a_monitor_that_outlives_the_cli() {
    for env in users("detached") {
        env.import_busybox("busybox");
        let out = env.ok([
            "run",
            "-d",
            "--name",
            "bg",
            "busybox",
            "sh",
            "-c",
            "echo out; echo err >&2; sleep 30",
        ]);
        let id = out.trim();
        assert_eq!(id.len(), 64, "run -d prints the full id");
        // The CLI has exited; the container is Up under its monitor, which
        // runs in a session of its own.
        assert!(ps_row(&env, "bg").unwrap().contains("Up "));
        let pid1 = pid_of(&env, "bg");
        let inner = ppid(pid1);
        let monitor = ppid(inner);
        let cmdline = std::fs::read_to_string(format!("/proc/{monitor}/cmdline")).unwrap();
        assert!(cmdline.contains("__monitor"), "{cmdline:?}");
        assert_eq!(
            session_of(monitor),
            monitor,
            "the monitor leads its own session"
        );
        // stdout and stderr stay distinct in the log.
        wait_until("logs", Duration::from_secs(5), || {
            env.run(["logs", "bg"]).stdout == b"out\n"
        });
        let o = env.run(["logs", "bg"]);
        assert_eq!(stdout(&o), "out\n");
        assert_eq!(stderr(&o), "err\n");

        // A killed monitor takes the container down; it never stays Up.
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(monitor),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        wait_until("container not Up", Duration::from_secs(10), || {
            !ps_row(&env, "bg").unwrap().contains("Up ")
        });
        assert!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid1), None).is_err(),
            "PID 1 is gone"
        );
        assert!(ps_row(&env, "bg").unwrap().contains("Exited (137)"));
        env.ok(["rm", "bg"]);
        assert!(!env.root.join("containers").join(id).exists());
        // Nothing of it stays in the runtime dir (pid file, monitor lock).
        let info = json(&env.ok(["info", "--format", "json"]));
        let runtime = std::path::PathBuf::from(info["Runtime"].as_str().unwrap());
        let left: Vec<String> = std::fs::read_dir(runtime.join("containers"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| f.starts_with(id))
            .collect();
        assert!(left.is_empty(), "left in the runtime dir: {left:?}");
    }
}

fn ppid(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    rest.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn session_of(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    rest.split_whitespace().nth(3).unwrap().parse().unwrap()
}

#[test]
fn stop_signal_wait_kill_restart_timeout_and_prune() {
    for env in users("stopping") {
        env.import_busybox("busybox");
        // A PID 1 that handles SIGTERM stops at once, with its own code.
        env.ok([
            "run",
            "-d",
            "--name",
            "polite",
            "busybox",
            "sh",
            "-c",
            "trap 'exit 0' TERM; echo ready; while true; do sleep 0.1; done",
        ]);
        // PID 1 ignores a signal it has no handler for yet.
        wait_until("the trap is set", Duration::from_secs(20), || {
            env.ok(["logs", "polite"]).contains("ready")
        });
        // Ended by the signal (its trap's code, not 137), and stop returned
        // then, not at its timeout: a long one, so a loaded machine cannot
        // pass for a stop that waited.
        let t0 = Instant::now();
        env.ok(["stop", "-t", "30", "polite"]);
        assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
        assert!(ps_row(&env, "polite").unwrap().contains("Exited (0)"));

        // wait prints the exit code; kill -s sends a chosen signal.
        env.ok([
            "run",
            "-d",
            "--name",
            "hup",
            "busybox",
            "sh",
            "-c",
            "trap 'exit 42' HUP; echo ready; while true; do sleep 0.1; done",
        ]);
        wait_until("the trap is set", Duration::from_secs(20), || {
            env.ok(["logs", "hup"]).contains("ready")
        });
        let waiter = spawn(env.cmd(["wait", "hup"]));
        std::thread::sleep(Duration::from_millis(300));
        env.ok(["kill", "-s", "HUP", "hup"]);
        let out = waiter.wait_with_output().unwrap();
        assert_eq!(stdout(&out).trim(), "42");

        // restart runs the same container again.
        env.ok(["restart", "-t", "1", "hup"]);
        assert!(ps_row(&env, "hup").unwrap().contains("Up "));
        env.ok(["kill", "hup"]);
        assert_eq!(env.ok(["wait", "hup"]).trim(), "137");

        // --timeout kills a container that runs too long.
        let t0 = Instant::now();
        let o = env.run([
            "run",
            "--name",
            "slow",
            "--timeout",
            "1",
            "busybox",
            "sleep",
            "30",
        ]);
        assert_eq!(o.status.code(), Some(137), "{}", stderr(&o));
        // Killed long before its own `sleep 30` would end.
        assert!(t0.elapsed() < Duration::from_secs(25), "{:?}", t0.elapsed());
        let st = &json(&env.ok(["inspect", "slow"]))[0]["State"];
        assert!(st["Error"].as_str().unwrap().contains("timeout"), "{st}");

        // Errors are clear: not running, unknown signal.
        let o = env.run(["kill", "slow"]);
        assert_eq!(o.status.code(), Some(125));
        assert!(stderr(&o).contains("is not running"), "{}", stderr(&o));
        assert_eq!(
            env.run(["kill", "-s", "NOPE", "slow"]).status.code(),
            Some(125)
        );
        assert_eq!(env.run(["pause", "slow"]).status.code(), Some(125));

        // prune removes every stopped container and keeps running ones.
        env.ok(["run", "-d", "--name", "keeper", "busybox", "sleep", "30"]);
        // Debris of an interrupted removal: a directory without a record.
        let debris = env.root.join("containers").join("0".repeat(64));
        std::fs::create_dir_all(debris.join("upper")).unwrap();
        let (u, g) = env.ids();
        let owned = Command::new("chown")
            .arg("-R")
            .arg(format!("{u}:{g}"))
            .arg(&debris)
            .status()
            .unwrap();
        assert!(owned.success());
        let aged = Command::new("touch")
            .args(["-d", "2 hours ago"])
            .arg(&debris)
            .status()
            .unwrap();
        assert!(aged.success());
        let out = env.ok(["container", "prune", "-f"]);
        assert!(!debris.exists(), "prune leaves no debris");
        assert_eq!(out.lines().count(), 1 + 3, "{out}");
        let left = env.ok(["ps", "-a", "--format", "json"]);
        assert_eq!(left.lines().count(), 1, "{left}");
        assert!(left.contains("keeper"));
        env.ok(["rm", "-f", "keeper"]);
    }
}

#[test]
fn logs_options_and_stdin_through_the_monitor() {
    let Some(env) = Env::new(Who::Single, "logs").or_else(|| Env::new(Who::Range, "logs")) else {
        return;
    };
    env.import_busybox("busybox");
    env.ok([
        "create",
        "--name",
        "lines",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo line$i; done; echo oops >&2",
    ]);
    let o = env.run(["start", "-a", "lines"]);
    assert!(o.status.success());
    assert_eq!(stdout(&o), "line1\nline2\nline3\nline4\nline5\n");
    assert_eq!(stderr(&o), "oops\n");
    assert_eq!(env.ok(["logs", "--tail", "2", "lines"]), "line5\n");
    // The last two entries: line5 on stdout, oops on stderr.
    let ts = env.ok(["logs", "-t", "--tail", "2", "lines"]);
    assert!(
        ts.starts_with("20") && ts.contains("T") && ts.ends_with(" line5\n"),
        "{ts}"
    );
    assert_eq!(
        env.ok(["logs", "--since", "1h", "lines"]).lines().count(),
        5
    );
    assert_eq!(env.ok(["logs", "--until", "1h", "lines"]), "");
    assert_eq!(
        env.run(["logs", "--since", "whenever", "lines"])
            .status
            .code(),
        Some(125)
    );
    // -i through a monitor: stdin reaches the container, EOF ends it.
    env.ok([
        "create",
        "-i",
        "--name",
        "cat",
        "busybox",
        "sh",
        "-c",
        "tr a-z A-Z",
    ]);
    let mut c = env.cmd(["start", "-ai", "cat"]);
    c.stdin(std::process::Stdio::piped());
    let mut child = spawn(c);
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "HELLO\n");
}

#[test]
fn an_interactive_shell_behaves_like_a_terminal() {
    if !have_tmux("an_interactive_shell_behaves_like_a_terminal") {
        return;
    }
    for env in users("tty") {
        env.import_busybox("busybox");
        let t = Term::start(&env, "tty", "run -it --rm --name term busybox sh", 90, 25);
        wait_until("a prompt", Duration::from_secs(10), || {
            t.screen().contains("/ #")
        });
        t.keys(&["stty size; echo $TERM; tty", "Enter"]);
        wait_until("stty output", Duration::from_secs(5), || {
            t.shows_line("25 90")
        });
        assert!(t.shows_line("xterm"), "{}", t.screen());
        // The pty comes from the container's own devpts, so it has a name.
        assert!(t.shows_line("/dev/pts/0"), "{}", t.screen());
        // A resized terminal (SIGWINCH) resizes the container's pty.
        t.tmux(&["resize-window", "-t", &t.session, "-x", "100", "-y", "30"]);
        std::thread::sleep(Duration::from_millis(300));
        t.keys(&["stty size", "Enter"]);
        wait_until("the new size", Duration::from_secs(5), || {
            t.shows_line("30 100")
        });
        // Ctrl-C reaches the container's foreground process, not burrow.
        t.keys(&["sleep 100", "Enter"]);
        std::thread::sleep(Duration::from_millis(300));
        t.keys(&["C-c"]);
        t.keys(&["echo still-here", "Enter"]);
        wait_until("the shell survived Ctrl-C", Duration::from_secs(5), || {
            t.shows_line("still-here")
        });
        t.keys(&["exit 3", "Enter"]);
        assert_eq!(t.exit_code(), "3");
        // --rm removed the container.
        assert!(ps_row(&env, "term").is_none());
    }
}

#[test]
fn init_makes_stop_immediate_and_ps_filters_select() {
    for env in users("init") {
        env.import_busybox("busybox");
        // Without --init, sh as PID 1 ignores SIGTERM; with it, the signal
        // reaches sh (not PID 1) and it ends at once, reaped by burrow.
        env.ok([
            "run",
            "-d",
            "--init",
            "--name",
            "tini",
            "busybox",
            "sh",
            "-c",
            "sleep 100 & sleep 100 & wait",
        ]);
        let ps = env.ok(["exec", "tini", "ps", "-o", "pid,comm"]);
        assert!(
            ps.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["2", "sh"]),
            "{ps}"
        );
        // SIGTERM's 143, not the 137 of a kill after the timeout, which is
        // long so a loaded machine cannot pass for a stop that waited.
        let t0 = Instant::now();
        env.ok(["stop", "-t", "30", "tini"]);
        assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
        assert!(ps_row(&env, "tini").unwrap().contains("Exited (143)"));

        env.ok(["run", "-d", "--name", "web-1", "busybox", "sleep", "30"]);
        env.ok(["create", "--name", "web-2", "busybox", "true"]);
        let names = |args: &[&str]| -> Vec<String> {
            let mut full = vec!["ps", "--format", "json"];
            full.extend(args);
            env.ok(&full)
                .lines()
                .map(|l| json(l)["Names"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(names(&["-a", "-f", "name=web"]).len(), 2);
        assert_eq!(names(&["-f", "status=running"]), ["web-1"]);
        assert_eq!(names(&["-f", "status=created"]), ["web-2"]);
        assert_eq!(names(&["-f", "status=exited", "-f", "name=tini"]), ["tini"]);
        assert_eq!(
            env.run(["ps", "-f", "colour=blue"]).status.code(),
            Some(125)
        );
        env.ok(["rm", "-f", "web-1", "web-2", "tini"]);
    }
}

#[test]
fn attach_and_detach_keys_leave_the_container_running() {
    if !have_tmux("attach_and_detach_keys_leave_the_container_running") {
        return;
    }
    for env in users("attach") {
        env.import_busybox("busybox");
        env.ok(["run", "-d", "-it", "--name", "bg", "busybox", "sh"]);
        let t = Term::start(&env, "attach", "attach bg", 80, 20);
        // Attached once Enter brings the container shell's prompt back.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !t.screen().contains("/ #") {
            assert!(Instant::now() < deadline, "never attached: {}", t.screen());
            t.keys(&["Enter"]);
            std::thread::sleep(Duration::from_millis(300));
        }
        t.keys(&["echo attached-$((6*7))", "Enter"]);
        wait_until("output through attach", Duration::from_secs(10), || {
            t.shows_line("attached-42")
        });
        // Ctrl-P Ctrl-Q detaches; the container keeps running.
        t.keys(&["C-p", "C-q"]);
        assert_eq!(t.exit_code(), "0");
        drop(t);
        assert!(
            ps_row(&env, "bg").unwrap().contains("Up "),
            "still running after detach"
        );
        // What was typed went to the log too.
        assert!(env.ok(["logs", "bg"]).contains("attached-42"));

        // exec -it: a second pty from the container's devpts, relayed to ours.
        let t = Term::start(&env, "exec", "exec -it bg sh", 70, 20);
        wait_until("an exec prompt", Duration::from_secs(10), || {
            t.screen().contains("/ #")
        });
        t.keys(&["tty; stty size", "Enter"]);
        wait_until("exec tty output", Duration::from_secs(5), || {
            t.shows_line("20 70")
        });
        assert!(t.shows_line("/dev/pts/1"), "{}", t.screen());
        t.keys(&["exit 9", "Enter"]);
        assert_eq!(t.exit_code(), "9");
        drop(t);
        env.ok(["rm", "-f", "bg"]);
    }
}
