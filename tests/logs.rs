//! Logs and restart policies as an unprivileged user, with and without a
//! subuid range: the output of a foreground `run` is kept for `logs`
//! (stdout and stderr apart), `--log-opt max-size/max-file` rotate as
//! Docker's json-file does, `--log-driver none` keeps nothing, and
//! `--restart` (on-failure:N, always) is carried out by the monitor until a
//! stop ends it.

mod common;

use std::time::{Duration, Instant};

use common::{spawn, stderr, stdout, users, wait_until, Env};

fn inspect(env: &Env, name: &str, template: &str) -> String {
    env.ok(["inspect", "-f", template, name]).trim().to_string()
}

/// Wait (at most 20 s) until the detached container `name` has ended.
fn wait_exited(env: &Env, name: &str) {
    wait_until(&format!("{name} ends"), Duration::from_secs(20), || {
        inspect(env, name, "{{.State.Status}}") == "exited"
    });
}

/// The container's log files (`container.log`, `.1`, ...).
fn log_files(env: &Env, name: &str) -> Vec<String> {
    let id = inspect(env, name, "{{.Id}}");
    let dir = env.root.join("containers").join(id);
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("container.log"))
        .collect();
    v.sort();
    v
}

#[test]
fn foreground_output_rotation_and_no_driver() {
    for env in users("logs") {
        env.import_busybox("busybox");
        env.settle("busybox");

        // A plain foreground run: output on our stdout and stderr as before,
        // and in `logs` afterwards, streams kept apart.
        let o = env.run([
            "run",
            "--name",
            "fg",
            "busybox",
            "sh",
            "-c",
            "echo out1; echo err1 >&2; printf 'no newline'; exit 4",
        ]);
        assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
        assert_eq!(stdout(&o), "out1\nno newline");
        assert_eq!(stderr(&o), "err1\n");
        let l = env.run(["logs", "fg"]);
        assert_eq!(stdout(&l), "out1\nno newline");
        assert_eq!(stderr(&l), "err1\n");
        // Started again under a monitor: the same log grows.
        assert_eq!(env.run(["start", "-a", "fg"]).status.code(), Some(4));
        assert_eq!(stdout(&env.run(["logs", "fg"])).matches("out1").count(), 2);

        // Stdin with -i still reaches the container; the log is written
        // while it runs; signals to the CLI reach the container.
        let mut c = env.cmd(["run", "-i", "--name", "in", "busybox", "tr", "a-z", "A-Z"]);
        c.stdin(std::process::Stdio::piped());
        let mut child = spawn(c);
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"hi\n").unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(stdout(&out), "HI\n", "{}", stderr(&out));
        assert_eq!(env.ok(["logs", "in"]), "HI\n");
        let mut c = env.cmd([
            "run",
            "--name",
            "sig",
            "busybox",
            "sh",
            "-c",
            "trap 'echo got; exit 5' TERM; echo ready; while :; do sleep 0.1; done",
        ]);
        c.stdout(std::process::Stdio::piped());
        let child = spawn(c);
        wait_until("sig logs ready", Duration::from_secs(20), || {
            stdout(&env.run(["logs", "sig"])).contains("ready")
        });
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
        assert_eq!(stdout(&out), "ready\ngot\n");
        assert_eq!(env.ok(["logs", "sig"]), "ready\ngot\n");

        // `run ... | head`: the closed pipe reaches the container (EPIPE;
        // `yes` is PID 1, which the kernel spares SIGPIPE), and its exit is
        // recorded, not a dead supervisor's 137.
        let mut c = env.cmd(["run", "--name", "yes", "busybox", "yes"]);
        c.stdout(std::process::Stdio::piped());
        let mut child = spawn(c);
        let mut first = String::new();
        {
            use std::io::BufRead;
            let mut r = std::io::BufReader::new(child.stdout.take().unwrap());
            r.read_line(&mut first).unwrap();
        }
        assert_eq!(first, "y\n");
        let code = child.wait().unwrap().code().unwrap();
        assert_eq!(code, 1);
        assert_eq!(
            inspect(&env, "yes", "{{.State.ExitCode}} {{.State.Error}}"),
            "1"
        );

        // Rotation: 20 lines, one entry (about 70 bytes) fills a file, at
        // most 3 files: logs shows the last 3 lines, in order.
        env.ok([
            "run",
            "--name",
            "rot",
            "--log-opt",
            "max-size=10",
            "--log-opt",
            "max-file=3",
            "busybox",
            "sh",
            "-c",
            "for i in $(seq 1 20); do echo line$i; done",
        ]);
        assert_eq!(
            log_files(&env, "rot"),
            ["container.log", "container.log.1", "container.log.2"]
        );
        assert_eq!(env.ok(["logs", "rot"]), "line18\nline19\nline20\n");
        assert_eq!(env.ok(["logs", "--tail", "2", "rot"]), "line19\nline20\n");
        assert_eq!(
            inspect(&env, "rot", "{{.HostConfig.LogConfig.Config}}"),
            "map[max-file:3 max-size:10]"
        );
        // One file (the default): it starts over when full.
        env.ok([
            "run",
            "-d",
            "--name",
            "one",
            "--log-opt",
            "max-size=10",
            "busybox",
            "sh",
            "-c",
            "echo a; echo b; echo c",
        ]);
        wait_exited(&env, "one");
        assert_eq!(log_files(&env, "one"), ["container.log"]);
        assert_eq!(env.ok(["logs", "one"]), "c\n");

        // k8s-file: podman's format, read by logs alike.
        env.ok([
            "run",
            "--name",
            "k8s",
            "--log-driver",
            "k8s-file",
            "busybox",
            "sh",
            "-c",
            "echo hi; echo oops >&2",
        ]);
        let l = env.run(["logs", "k8s"]);
        assert_eq!(
            (stdout(&l).as_str(), stderr(&l).as_str()),
            ("hi\n", "oops\n")
        );
        let id = inspect(&env, "k8s", "{{.Id}}");
        let text =
            std::fs::read_to_string(env.root.join("containers").join(id).join("container.log"))
                .unwrap();
        assert!(
            text.lines().next().unwrap().ends_with(" stdout F hi"),
            "{text}"
        );

        // none: nothing is written, and logs says so as Docker does.
        let o = env.run([
            "run",
            "--name",
            "quiet",
            "--log-driver",
            "none",
            "busybox",
            "echo",
            "shown",
        ]);
        assert_eq!(stdout(&o), "shown\n", "{}", stderr(&o));
        assert!(log_files(&env, "quiet").is_empty());
        let l = env.run(["logs", "quiet"]);
        assert_eq!(l.status.code(), Some(1));
        assert!(
            stderr(&l).contains("configured logging driver does not support reading"),
            "{}",
            stderr(&l)
        );

        // Under a monitor too.
        env.ok([
            "run",
            "-d",
            "--name",
            "quiet-d",
            "--log-driver",
            "none",
            "busybox",
            "echo",
            "x",
        ]);
        wait_exited(&env, "quiet-d");
        assert!(log_files(&env, "quiet-d").is_empty());

        // Bad flags: Docker's words, 125, nothing created.
        for (args, msg) in [
            (
                vec!["--log-driver", "carrier-pigeon"],
                "no log driver named 'carrier-pigeon' is registered",
            ),
            (
                vec!["--log-driver", "none", "--log-opt", "max-size=1m"],
                "invalid logging opts for driver none",
            ),
            (
                vec!["--log-opt", "colour=red"],
                "unknown log opt 'colour' for json-file log driver",
            ),
            (
                vec!["--restart", "always", "--rm"],
                "Conflicting options: --restart and --rm",
            ),
            (
                vec!["--restart", "sometimes"],
                "invalid restart policy 'sometimes'",
            ),
        ] {
            let mut a = vec!["run", "--name", "bad"];
            a.extend(args);
            a.extend(["busybox", "true"]);
            let o = env.run(&a);
            assert_eq!(o.status.code(), Some(125), "{a:?}");
            assert!(stderr(&o).contains(msg), "{a:?}: {}", stderr(&o));
        }
        assert_eq!(env.run(["inspect", "bad"]).status.code(), Some(1));
    }
}

#[test]
fn restart_policies() {
    for env in users("restart") {
        env.import_busybox("busybox");

        // on-failure:2: three runs, two restarts, then it stays exited.
        env.ok([
            "run",
            "-d",
            "--name",
            "flaky",
            "--restart",
            "on-failure:2",
            "busybox",
            "sh",
            "-c",
            "echo run; exit 3",
        ]);
        wait_until("flaky gives up", Duration::from_secs(30), || {
            inspect(
                &env,
                "flaky",
                "{{.RestartCount}} {{.State.Status}} {{.State.Restarting}}",
            ) == "2 exited false"
        });
        // Nothing comes after: the monitor has ended.
        std::thread::sleep(Duration::from_millis(800));
        assert_eq!(inspect(&env, "flaky", "{{.RestartCount}}"), "2");
        assert_eq!(inspect(&env, "flaky", "{{.State.ExitCode}}"), "3");
        assert_eq!(env.ok(["logs", "flaky"]), "run\nrun\nrun\n");
        assert_eq!(
            inspect(&env, "flaky", "{{json .HostConfig.RestartPolicy}}"),
            r#"{"MaximumRetryCount":2,"Name":"on-failure"}"#
        );
        // With a terminal: each run gets a fresh pty.
        env.ok([
            "run",
            "-d",
            "-t",
            "--name",
            "tty",
            "--restart",
            "on-failure:1",
            "busybox",
            "sh",
            "-c",
            "test -t 1 && echo pty; exit 2",
        ]);
        wait_until("tty gives up", Duration::from_secs(30), || {
            inspect(&env, "tty", "{{.RestartCount}} {{.State.Status}}") == "1 exited"
        });
        let l = env.ok(["logs", "tty"]);
        assert_eq!(l.matches("pty").count(), 2, "{l}");

        // on-failure does not restart a success.
        env.ok([
            "run",
            "--name",
            "fine",
            "--restart",
            "on-failure",
            "busybox",
            "true",
        ]);
        assert_eq!(inspect(&env, "fine", "{{.RestartCount}}"), "0");

        // Between runs it is restarting (the delay doubles, so it soon
        // spends most of its time there); a stop then ends the loop too.
        env.ok([
            "run",
            "-d",
            "--name",
            "crash",
            "--restart",
            "always",
            "busybox",
            "sh",
            "-c",
            "exit 1",
        ]);
        // `ps` and `rm` may still land in the next run on a loaded machine
        // (then ps says Up, rm "running"): try again in a later delay, which
        // is twice as long.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            wait_until("crash shows restarting", Duration::from_secs(30), || {
                inspect(&env, "crash", "{{.State.Status}} {{.State.Restarting}}")
                    == "restarting true"
            });
            let ps = env.ok(["ps", "--format", "{{.Names}} {{.Status}}"]);
            let o = env.run(["rm", "crash"]);
            let refused = stderr(&o);
            if ps.contains("crash Restarting (1) ")
                && refused.contains("cannot remove a restarting container")
            {
                break;
            }
            let in_a_run =
                ps.contains("crash Up ") || refused.contains("cannot remove a running container");
            assert!(
                in_a_run && !o.status.success() && Instant::now() < deadline,
                "ps: {ps}\nrm: {refused}"
            );
        }
        env.ok(["stop", "crash"]);
        assert_eq!(
            inspect(&env, "crash", "{{.State.Status}} {{.State.Restarting}}"),
            "exited false"
        );
        let count = inspect(&env, "crash", "{{.RestartCount}}");
        std::thread::sleep(Duration::from_millis(800));
        assert_eq!(inspect(&env, "crash", "{{.RestartCount}}"), count);

        // rm -f between two runs: gone for good.
        env.ok([
            "run",
            "-d",
            "--name",
            "crash2",
            "--restart",
            "always",
            "busybox",
            "sh",
            "-c",
            "exit 1",
        ]);
        wait_until("crash2 restarting", Duration::from_secs(30), || {
            inspect(&env, "crash2", "{{.RestartCount}}")
                .parse::<u32>()
                .unwrap()
                >= 3
        });
        env.ok(["rm", "-f", "crash2"]);
        std::thread::sleep(Duration::from_millis(800));
        assert!(!env.ok(["ps", "-a"]).contains("crash2"));

        // always: killing PID 1 from the host brings it back; stop ends it.
        env.ok([
            "run",
            "-d",
            "--name",
            "web",
            "--restart",
            "always",
            "busybox",
            "sleep",
            "300",
        ]);
        let pid = inspect(&env, "web", "{{.State.Pid}}");
        let pid: i32 = pid.parse().unwrap();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        wait_until("web comes back", Duration::from_secs(20), || {
            inspect(&env, "web", "{{.RestartCount}} {{.State.Running}}") == "1 true"
        });
        let again: i32 = inspect(&env, "web", "{{.State.Pid}}").parse().unwrap();
        assert_ne!(again, pid);
        env.ok(["stop", "-t", "1", "web"]);
        assert_eq!(inspect(&env, "web", "{{.State.Status}}"), "exited");
        std::thread::sleep(Duration::from_millis(800));
        assert_eq!(
            inspect(&env, "web", "{{.State.Status}} {{.RestartCount}}"),
            "exited 1"
        );
        // A manual start clears the stop (and the count); rm -f ends it.
        env.ok(["start", "web"]);
        assert_eq!(
            inspect(&env, "web", "{{.State.Running}} {{.RestartCount}}"),
            "true 0"
        );
        // restart: stopped (its monitor gone), started again under a new one.
        env.ok(["restart", "-t", "1", "web"]);
        assert_eq!(
            inspect(&env, "web", "{{.State.Running}} {{.RestartCount}}"),
            "true 0"
        );
        env.ok(["rm", "-f", "web"]);
        std::thread::sleep(Duration::from_millis(800));
        assert_eq!(env.run(["inspect", "web"]).status.code(), Some(1));
        assert!(!env.ok(["ps", "-a"]).contains("web"));
    }
}
