//! The ways in: what a process entering a container (a foreground `run`,
//! `-d`, `start -a`, `exec`, a build's RUN step, `--init`) carries with it.
//! Nothing of the caller may reach the container: no descriptor to climb
//! out through (runc's CVE-2024-21626), no terminal to type into
//! (bubblewrap's CVE-2017-5226), no window in which the entering process
//! can be traced or read (runc's CVE-2016-9962), no copy of the caller's
//! memory and environment as PID 1.

use std::path::Path;
use std::time::Duration;

use crate::common::{self, have_tmux, users, Env, Term};
use crate::{evil_image, plant_secret, probe, SECRET};

/// The secret's path relative to `/`, for a shell that has climbed there.
fn from_root(p: &Path) -> String {
    p.to_str().unwrap().trim_start_matches('/').to_string()
}

/// A shell line that climbs from its working directory to the host's `/`
/// (if it is outside the container's root), prints the secret and writes a
/// file beside it.
fn climb(env: &Env) -> String {
    let secret = from_root(&env.home.join("secret.txt"));
    let pwned = from_root(&env.home.join("pwned"));
    format!("cd ../../../../../../../../../..; cat {secret}; echo pwned > {pwned}")
}

fn assert_untouched(env: &Env, what: &str, output: &str) {
    assert!(
        !output.contains(SECRET),
        "{what} [{:?}]: the container read the user's secret: {output}",
        env.who
    );
    assert!(
        !env.home.join("pwned").exists(),
        "{what} [{:?}]: the container wrote into the user's home",
        env.who
    );
}

#[test]
fn a_working_directory_under_proc_self_fd_leads_nowhere() {
    for env in users("escape-workdir") {
        plant_secret(&env);
        env.import_busybox("busybox");
        // The image's own WORKDIR, and -w, for every descriptor a burrow
        // process might still hold at that point.
        env.ok([
            "import",
            env.busybox_tar().to_str().unwrap(),
            "evil",
            "--change",
            "WORKDIR /proc/self/fd/4",
        ]);
        let line = climb(&env);
        let o = env.run(["run", "--rm", "evil", "sh", "-c", &line]);
        assert_untouched(
            &env,
            "run with WORKDIR /proc/self/fd/4",
            &common::stdout(&o),
        );
        for fd in 3..=10 {
            let w = format!("/proc/self/fd/{fd}");
            let o = env.run(["run", "--rm", "-w", &w, "busybox", "sh", "-c", &line]);
            assert_untouched(&env, &format!("run -w {w}"), &common::stdout(&o));
            let o = env.run(["run", "--rm", "-i", "-w", &w, "busybox", "sh", "-c", &line]);
            assert_untouched(&env, &format!("run -i -w {w}"), &common::stdout(&o));
            let name = format!("wd{fd}");
            let _ = env.run([
                "create", "--name", &name, "-w", &w, "busybox", "sh", "-c", &line,
            ]);
            let o = env.run(["start", "-a", &name]);
            assert_untouched(&env, &format!("start -a, -w {w}"), &common::stdout(&o));
            let o = env.run(["logs", &name]);
            assert_untouched(&env, &format!("logs of -w {w}"), &common::stdout(&o));
        }
        // With a terminal: the monitor's pty through a console socket.
        if have_tmux("a_working_directory_under_proc_self_fd_leads_nowhere (-t)") {
            for fd in 3..=8 {
                let w = format!("/proc/self/fd/{fd}");
                let args = format!("run --rm -t -w {w} busybox sh -c '{line}'");
                let term = Term::start(&env, &format!("wd-t{fd}"), &args, 120, 30);
                let _ = term.exit_code();
                assert_untouched(&env, &format!("run -t -w {w}"), &term.screen());
            }
        }
        // A detached container, and exec into a running one.
        let _ = env.run([
            "run",
            "-d",
            "--name",
            "bg",
            "-w",
            "/proc/self/fd/5",
            "busybox",
            "sh",
            "-c",
            &line,
        ]);
        std::thread::sleep(Duration::from_millis(500));
        let o = env.run(["logs", "bg"]);
        assert_untouched(&env, "run -d", &common::stdout(&o));
        env.ok(["run", "-d", "--name", "target", "busybox", "sleep", "60"]);
        for fd in 3..=10 {
            let w = format!("/proc/self/fd/{fd}");
            let o = env.run(["exec", "-w", &w, "target", "sh", "-c", &line]);
            assert_untouched(&env, &format!("exec -w {w}"), &common::stdout(&o));
        }
        env.ok(["rm", "-f", "target"]);
    }
}

/// Run `command` (a burrow command line) in a real terminal, then let the
/// shell read one line from that terminal, as the user's shell would after
/// the container exits; returns what it read. Only "END", which the test
/// types itself, may arrive.
fn typed_after(env: &Env, tag: &str, command: &str) -> String {
    let rc = env.home.join(format!("{tag}.rc"));
    let typed = env.home.join(format!("{tag}.typed"));
    let line = format!(
        "{}; echo $? > {}; read line; echo \"got:$line\" > {}",
        common::shell_line(env, command),
        rc.display(),
        typed.display()
    );
    let term = Term::start_shell(env, tag, &line, 100, 30);
    common::wait_until("the command ended", Duration::from_secs(60), || rc.exists());
    std::thread::sleep(Duration::from_millis(300));
    term.keys(&["-l", "END"]);
    term.keys(&["Enter"]);
    common::wait_until("the shell read a line", Duration::from_secs(10), || {
        typed.exists()
    });
    std::thread::sleep(Duration::from_millis(100));
    std::fs::read_to_string(&typed).unwrap().trim().to_string()
}

#[test]
fn nothing_is_typed_into_the_users_terminal() {
    if !have_tmux("nothing_is_typed_into_the_users_terminal") {
        return;
    }
    for env in users("escape-tiocsti") {
        let Some(inject) = probe(&env, "inject") else {
            return;
        };
        evil_image(&env, "evil", &[(&inject, "/inject")], &[]);
        let payload = "touch injected-by-container";
        let cases = [
            ("run", format!("run --rm evil /inject '{payload}'")),
            ("run-i", format!("run --rm -i evil /inject '{payload}'")),
        ];
        for (tag, cmd) in cases {
            let got = typed_after(&env, tag, &cmd);
            assert_eq!(
                got, "got:END",
                "{tag} [{:?}]: the container typed into the terminal",
                env.who
            );
        }
        env.ok(["run", "-d", "--name", "victim", "evil", "sleep", "60"]);
        let got = typed_after(&env, "exec", &format!("exec victim /inject '{payload}'"));
        assert_eq!(
            got, "got:END",
            "exec [{:?}]: the container typed into the terminal",
            env.who
        );
        env.ok(["rm", "-f", "victim"]);
        // A build whose base image runs the injection in a RUN step.
        let ctx = env.user_dir("ctx");
        std::fs::write(
            ctx.join("Dockerfile"),
            format!("FROM evil\nRUN /inject '{payload}'\n"),
        )
        .unwrap();
        let got = typed_after(
            &env,
            "build",
            &format!("build -t innocent {}", ctx.display()),
        );
        assert_eq!(
            got, "got:END",
            "build [{:?}]: a RUN step typed into the terminal",
            env.who
        );
    }
}

/// Image `spy`: the snoop probe, and the marker it looks for in a file
/// (so that no command line in the container holds it).
fn spy_image(env: &Env, snoop: &Path) {
    let marker = env.shared_dir().join(format!("marker-{:?}", env.who));
    std::fs::write(&marker, SECRET).unwrap();
    env.share(&marker);
    evil_image(env, "spy", &[(snoop, "/snoop"), (&marker, "/marker")], &[]);
}

#[test]
fn a_process_entering_with_exec_cannot_be_read_or_traced() {
    for env in users("escape-ptrace") {
        let Some(snoop) = probe(&env, "snoop") else {
            return;
        };
        spy_image(&env, &snoop);
        env.ok([
            "run", "-d", "--name", "spy", "spy", "/snoop", "watch", "@/marker", "/found",
        ]);
        std::thread::sleep(Duration::from_millis(300));
        for _ in 0..12 {
            let o = env
                .cmd(["exec", "spy", "true"])
                .env("CALLER_SECRET", SECRET)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "exec: {}; the spy: {:?}",
                common::stderr(&o),
                env.run(["ps", "-a"])
            );
        }
        std::thread::sleep(Duration::from_millis(300));
        let found = env.run(["exec", "spy", "cat", "/found"]);
        let found = common::stdout(&found);
        let leaks: Vec<&str> = found
            .lines()
            .filter(|l| l.starts_with("environ") || l.starts_with("mem"))
            .collect();
        assert!(
            leaks.is_empty(),
            "exec [{:?}]: a container process read the caller's environment or memory before exec: {leaks:?}",
            env.who
        );
        env.ok(["rm", "-f", "spy"]);
    }
}

#[test]
fn init_is_no_copy_of_the_caller() {
    for env in users("escape-init") {
        let Some(snoop) = probe(&env, "snoop") else {
            return;
        };
        spy_image(&env, &snoop);
        for detach in [false, true] {
            let mut args = vec!["run", "--init", "--name", "peek"];
            if detach {
                args.push("-d");
            }
            args.extend(["spy", "sh", "-c", "/snoop once 1 @/marker; sleep 0.2"]);
            let o = env
                .cmd(&args)
                .env("CALLER_SECRET", SECRET)
                .output()
                .unwrap();
            assert!(o.status.success(), "run --init: {}", common::stderr(&o));
            if detach {
                env.ok(["wait", "peek"]);
            }
            let logs = env.ok(["logs", "peek"]);
            assert!(
                logs.contains("environ clean") && logs.contains("mem clean"),
                "run --init (detached: {detach}) [{:?}]: PID 1 holds the caller's environment or memory: {logs}",
                env.who
            );
            env.ok(["rm", "peek"]);
        }
    }
}

#[test]
fn the_runtime_mode_leaves_no_way_out_through_the_working_directory() {
    use crate::common::podman::{have_podman, Podman};
    if !have_podman("the_runtime_mode_leaves_no_way_out_through_the_working_directory") {
        return;
    }
    for env in users("escape-runc-workdir") {
        plant_secret(&env);
        let pm = Podman::new(&env);
        pm.ok(&[
            "import",
            env.busybox_tar().to_str().unwrap(),
            "localhost/bb:1",
        ]);
        let line = climb(&env);
        for fd in 3..=8 {
            let w = format!("/proc/self/fd/{fd}");
            let o = pm.run(&[
                "run",
                "--rm",
                "--network",
                "none",
                "-w",
                &w,
                "localhost/bb:1",
                "sh",
                "-c",
                &line,
            ]);
            assert_untouched(&env, &format!("podman run -w {w}"), &common::stdout(&o));
        }
        pm.ok(&[
            "run",
            "-d",
            "--name",
            "target",
            "--network",
            "none",
            "localhost/bb:1",
            "sleep",
            "60",
        ]);
        for fd in 3..=8 {
            let w = format!("/proc/self/fd/{fd}");
            let o = pm.run(&["exec", "-w", &w, "target", "sh", "-c", &line]);
            assert_untouched(&env, &format!("podman exec -w {w}"), &common::stdout(&o));
        }
        pm.run(&["rm", "-f", "-t", "0", "target"]);
    }
}
