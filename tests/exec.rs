//! `burrow exec` into a running container as an unprivileged user, with and
//! without a subuid range: namespaces and rootfs shared with PID 1, env, cwd,
//! user, stdin, exit codes, detached processes and signal relay.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{spawn, stderr, stdout, users, Env, Who};

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("bad JSON ({e}): {s}"))
}

/// Import busybox and start `box` running `sleep 60` in the background;
/// returns once `ps` shows it Up.
fn start_box(env: &Env) -> Child {
    env.import_busybox("busybox");
    let mut child = spawn(env.cmd(["run", "--name", "box", "busybox", "sleep", "60"]));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ps = env.ok(["ps"]);
        if ps.lines().any(|l| l.contains("box") && l.contains("Up ")) {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "container never showed as running: {ps}\nrun: {}",
                stderr(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// `rm -f box`, and the background `run` ends as a killed container does.
fn remove_box(env: &Env, child: Child) {
    env.ok(["rm", "-f", "box"]);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(137),
        "run ends when its container is removed: {}",
        stderr(&out)
    );
}

/// Run `burrow exec ARGS...`; returns (exit code, stdout, stderr).
fn exec(env: &Env, args: &[&str]) -> (Option<i32>, String, String) {
    let mut full = vec!["exec"];
    full.extend_from_slice(args);
    let o = env.run(&full);
    (o.status.code(), stdout(&o), stderr(&o))
}

/// Like `exec`, asserting success; returns stdout.
fn exec_ok(env: &Env, args: &[&str]) -> String {
    let (code, out, err) = exec(env, args);
    assert_eq!(code, Some(0), "exec {args:?} failed: {err}");
    out
}

#[test]
fn exec_runs_in_the_running_containers_namespaces_and_rootfs() {
    for env in users("exec_ns") {
        let child = start_box(&env);
        let id = json(&env.ok(["inspect", "box"]))[0]["Id"]
            .as_str()
            .unwrap()
            .to_string();
        let short = &id[..12];

        // uts namespace and the container's /etc files.
        assert_eq!(
            exec_ok(&env, &["box", "cat", "/etc/hostname"]).trim(),
            short
        );
        assert_eq!(exec_ok(&env, &["box", "hostname"]).trim(), short);
        // By id prefix too.
        assert_eq!(exec_ok(&env, &[&id[..8], "hostname"]).trim(), short);

        // pid namespace: a small pid, and sleep is PID 1.
        let pid: u32 = exec_ok(&env, &["box", "sh", "-c", "echo $$"])
            .trim()
            .parse()
            .unwrap();
        assert!(
            pid > 1 && pid < 100,
            "pid {pid} is not in the container's pid ns"
        );
        let ps = exec_ok(&env, &["box", "ps"]);
        assert!(
            ps.lines()
                .any(|l| l.split_whitespace().next() == Some("1") && l.contains("sleep 60")),
            "{ps}"
        );
        let procs = exec_ok(&env, &["box", "sh", "-c", "ls /proc | grep -c '^[0-9]'"]);
        let n: u32 = procs.trim().parse().unwrap();
        assert!(n <= 5, "{n} processes visible: not the container's pid ns");

        // user namespace: the same id map as PID 1.
        let map = exec_ok(&env, &["box", "cat", "/proc/self/uid_map"]);
        assert_eq!(
            map.lines().count(),
            if env.who == Who::Range { 2 } else { 1 },
            "{map}"
        );
        assert_eq!(exec_ok(&env, &["box", "id", "-u"]).trim(), "0");

        // mount namespace: the container's rootfs, shared with PID 1.
        exec_ok(&env, &["box", "sh", "-c", "touch /from-exec"]);
        assert_eq!(
            exec_ok(&env, &["box", "ls", "/from-exec"]).trim(),
            "/from-exec"
        );
        assert!(
            env.root
                .join("containers")
                .join(&id)
                .join("upper/from-exec")
                .exists(),
            "written to the container's upper dir"
        );
        let root_of_pid1 = exec_ok(&env, &["box", "ls", "/proc/1/root/from-exec"]);
        assert_eq!(root_of_pid1.trim(), "/proc/1/root/from-exec");

        // Env: the container's, HOSTNAME, and -e / --env-file overrides.
        assert_eq!(
            exec_ok(&env, &["-e", "X=1", "box", "sh", "-c", "echo $X"]).trim(),
            "1"
        );
        let envfile = env.home.join("exec.env");
        std::fs::write(&envfile, "# comment\nY=file\nX=file\n").unwrap();
        env.share(&envfile);
        let out = exec_ok(
            &env,
            &[
                "--env-file",
                envfile.to_str().unwrap(),
                "-e",
                "X=flag",
                "box",
                "sh",
                "-c",
                "echo $X $Y $HOSTNAME $HOME; echo $PATH",
            ],
        );
        let mut lines = out.lines();
        assert_eq!(
            lines.next(),
            Some(format!("flag file {short} /root").as_str())
        );
        assert!(lines.next().unwrap().contains("/bin"), "{out}");

        // Working directory: -w, else the container's (/ for busybox).
        assert_eq!(exec_ok(&env, &["-w", "/tmp", "box", "pwd"]).trim(), "/tmp");
        assert_eq!(exec_ok(&env, &["box", "pwd"]).trim(), "/");
        let (code, _, err) = exec(&env, &["-w", "/no/such/dir", "box", "pwd"]);
        assert_eq!(code, Some(126), "{err}");
        assert!(err.contains("/no/such/dir"), "{err}");
        assert_eq!(exec(&env, &["-w", "relative", "box", "pwd"]).0, Some(125));

        // Exit codes: the command's own, Docker's 126/127, 128+signal.
        assert_eq!(exec(&env, &["box", "sh", "-c", "exit 7"]).0, Some(7));
        let (code, _, err) = exec(&env, &["box", "nosuch"]);
        assert_eq!(code, Some(127));
        assert!(err.contains("executable file not found in $PATH"), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.starts_with("burrow: "), "{err}");
        let (code, _, err) = exec(&env, &["box", "/etc/passwd"]);
        assert_eq!(code, Some(126));
        assert!(err.contains("permission denied"), "{err}");
        assert_eq!(exec(&env, &["box", "sh", "-c", "kill -9 $$"]).0, Some(137));

        // stdin: /dev/null without -i; the caller's with -i.
        assert_eq!(exec_ok(&env, &["box", "cat"]), "");
        let mut c = env.cmd(["exec", "-i", "box", "cat"]);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut c = c.spawn().unwrap();
        c.stdin
            .take()
            .unwrap()
            .write_all(b"hello from the host\n")
            .unwrap();
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o), "hello from the host\n");

        // -t without a terminal is ignored, with a note.
        let (code, out, err) = exec(&env, &["-t", "box", "echo", "hi"]);
        assert_eq!((code, out.as_str()), (Some(0), "hi\n"));
        assert!(err.contains("-t ignored"), "{err}");

        // -d: returns at once, prints nothing, the command runs on. The
        // command cannot end before /go exists, which only the exec after
        // this one makes: returning at all proves -d did not wait for it,
        // however slow a loaded machine is.
        let (code, out, err) = exec(
            &env,
            &[
                "-d",
                "box",
                "sh",
                "-c",
                "until [ -e /go ]; do sleep 0.1; done; echo done > /detached",
            ],
        );
        assert_eq!(code, Some(0), "{err}");
        assert_eq!((out.as_str(), err.as_str()), ("", ""));
        assert_eq!(
            exec(&env, &["box", "cat", "/detached"]).0,
            Some(1),
            "the detached command is still waiting"
        );
        assert_eq!(exec(&env, &["box", "touch", "/go"]).0, Some(0));
        let deadline = Instant::now() + Duration::from_secs(30);
        while exec(&env, &["box", "cat", "/detached"]).1 != "done\n" {
            assert!(Instant::now() < deadline, "the detached command never ran");
            std::thread::sleep(Duration::from_millis(100));
        }
        let (code, _, err) = exec(&env, &["-d", "box", "nosuch"]);
        assert_eq!(code, Some(127), "-d still reports a failed exec: {err}");

        remove_box(&env, child);
    }
}

#[test]
fn exec_switches_users_as_the_mapping_allows() {
    for env in users("exec_user") {
        let child = start_box(&env);
        let (code, out, err) = exec(&env, &["-u", "1000", "box", "id", "-u"]);
        match env.who {
            Who::Range => {
                assert_eq!(code, Some(0), "{err}");
                assert_eq!(out.trim(), "1000");
                assert_eq!(
                    exec_ok(&env, &["-u", "65534:65534", "box", "id", "-g"]).trim(),
                    "65534"
                );
                // Files it creates belong to the subordinate id on the host.
                exec_ok(&env, &["-u", "1000:1000", "box", "touch", "/tmp/owned"]);
                let id = json(&env.ok(["inspect", "box"]))[0]["Id"]
                    .as_str()
                    .unwrap()
                    .to_string();
                use std::os::unix::fs::MetadataExt;
                let meta = std::fs::metadata(
                    env.root
                        .join("containers")
                        .join(&id)
                        .join("upper/tmp/owned"),
                )
                .unwrap();
                assert_eq!(meta.uid(), env.host_uid_of(1000));
            }
            Who::Single => {
                assert_eq!(code, Some(126), "{out}");
                assert!(err.contains("not mapped"), "{err}");
                assert!(err.contains("subuid"), "the message names the fix: {err}");
                assert_eq!(err.trim().lines().count(), 1, "{err}");
            }
        }
        let (code, _, err) = exec(&env, &["-u", "nosuchuser", "box", "true"]);
        assert_eq!(code, Some(126));
        assert!(err.contains("unable to find user nosuchuser"), "{err}");

        // A paused container is refused, as Docker does; unpaused it works.
        env.ok(["pause", "box"]);
        let (code, _, err) = exec(&env, &["box", "true"]);
        assert_eq!(code, Some(125));
        assert!(err.contains("container box is paused"), "{err}");
        env.ok(["unpause", "box"]);
        exec_ok(&env, &["box", "true"]);
        remove_box(&env, child);
    }
}

#[test]
fn exec_refuses_containers_that_are_not_running() {
    for env in users("exec_stopped") {
        env.import_busybox("busybox");
        env.ok(["run", "--name", "stopped", "busybox", "true"]);
        let (code, _, err) = exec(&env, &["stopped", "true"]);
        assert_eq!(code, Some(125));
        assert!(err.contains("container stopped is not running"), "{err}");
        let (code, _, err) = exec(&env, &["ghost", "true"]);
        assert_eq!(code, Some(125));
        assert!(err.contains("No such container: ghost"), "{err}");
        // Usage errors are burrow's too, checked before anything runs.
        assert_eq!(exec(&env, &["stopped"]).0, Some(125));
        assert_eq!(exec(&env, &["-e", "=x", "stopped", "true"]).0, Some(125));
        let help = env.ok(["exec", "--help"]);
        assert!(help.contains("container's own /dev/pts"), "{help}");
    }
}

#[test]
fn exec_relays_signals_and_dies_with_the_container() {
    for env in users("exec_signals") {
        let child = start_box(&env);
        // SIGTERM to burrow reaches the command, which traps it.
        let mut c = spawn(env.cmd([
            "exec",
            "box",
            "sh",
            "-c",
            "trap 'echo trapped; exit 3' TERM; echo ready; while true; do sleep 0.1; done",
        ]));
        let mut out = BufReader::new(c.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line, "ready\n");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(c.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let mut rest = String::new();
        out.read_to_string(&mut rest).unwrap();
        let st = c.wait().unwrap();
        assert_eq!(rest, "trapped\n");
        assert_eq!(
            st.code(),
            Some(3),
            "the command's exit code, not burrow's death"
        );

        // When PID 1 goes, the pid namespace goes, exec'd processes too.
        let mut c = spawn(env.cmd(["exec", "box", "sh", "-c", "echo ready; sleep 60"]));
        let mut out = BufReader::new(c.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line, "ready\n");
        let t = Instant::now();
        remove_box(&env, child);
        let st = c.wait().unwrap();
        assert_eq!(st.code(), Some(137));
        // Killed with the namespace, long before its own `sleep 60` ends
        // (a bound a loaded machine cannot reach).
        assert!(t.elapsed() < Duration::from_secs(40), "{:?}", t.elapsed());
    }
}
