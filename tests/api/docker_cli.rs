//! The docker 20.10 CLI (Debian's `docker.io`) against the service: run
//! with exit codes and streams, stdin and a terminal, published ports,
//! ps and its filters, logs, exec, cp, stop and rm, pull from a loopback
//! registry, build, images and rmi, diff, commit, export and import, networks and volumes; and the same
//! containers seen from the burrow CLI, and living on after the service.

use std::io::{Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::common::{have_tmux, stderr, stdout, wait_until, Registry, Term};
use crate::support::{
    build_reaper, eventually, free_port, http_get, httpd_script, push_image, socket_dir, worlds,
    write_shared, Cleanup, Service, IMAGE,
};

/// A shell line that runs until stopped and stops at once on SIGTERM.
const IDLE: &str = "trap 'exit 0' TERM; while :; do sleep 1; done";

#[test]
fn run_rm_gives_exit_codes_and_keeps_stdout_and_stderr_apart() {
    for w in worlds() {
        let c = Cleanup::new(w, "runrm");
        let label = c.label();
        let o = w.docker_run(&["run", "--rm", "--label", &label, IMAGE, "true"]);
        assert_eq!(o.status.code(), Some(0), "[{}] {}", w.who(), stderr(&o));
        let o = w.docker_run(&[
            "run",
            "--rm",
            "--label",
            &label,
            IMAGE,
            "sh",
            "-c",
            "echo to-out; echo to-err >&2; exit 3",
        ]);
        assert_eq!(o.status.code(), Some(3), "[{}] {}", w.who(), stderr(&o));
        assert_eq!(stdout(&o), "to-out\n", "[{}]", w.who());
        assert_eq!(stderr(&o), "to-err\n", "[{}]", w.who());
        // --rm: nothing is left once run returns.
        let left = w.burrow_ok(&["ps", "-aq", "--filter", &format!("label={label}")]);
        assert_eq!(left.trim(), "", "[{}] run --rm left containers", w.who());
        // Without --rm, a container that ends at once: run's code is its
        // code, every time (a late wait must not see a kill).
        for i in 0..4 {
            let name = format!("api-quick-{i}");
            let o = w.docker_run(&["run", "--name", &name, "--label", &label, IMAGE, "true"]);
            let code = w.docker_ok(&["inspect", "-f", "{{.State.ExitCode}}", &name]);
            assert_eq!(
                (o.status.code(), code.trim()),
                (Some(0), "0"),
                "[{}] docker run --name {name} {IMAGE} true (run's code, State.ExitCode); stderr: {}\nservice log:\n{}",
                w.who(),
                stderr(&o),
                w.service_log()
            );
        }
    }
}

#[test]
fn run_i_takes_stdin_to_its_end() {
    for w in worlds() {
        let c = Cleanup::new(w, "runi");
        let label = c.label();
        let o = w.docker_stdin(
            &[
                "run", "--rm", "-i", "--label", &label, IMAGE, "tr", "a-z", "A-Z",
            ],
            b"hello api\n",
        );
        assert_eq!(o.status.code(), Some(0), "[{}] {}", w.who(), stderr(&o));
        assert_eq!(stdout(&o), "HELLO API\n", "[{}]", w.who());
        // More than a pipe holds, and the end of it reaches the container.
        let big = vec![b'x'; 300_000];
        let o = w.docker_stdin(
            &["run", "--rm", "-i", "--label", &label, IMAGE, "wc", "-c"],
            &big,
        );
        assert_eq!(o.status.code(), Some(0), "[{}] {}", w.who(), stderr(&o));
        assert_eq!(stdout(&o).trim(), "300000", "[{}]", w.who());
    }
}

/// Wait until the terminal shows a line `want`; the screen on failure.
fn wait_screen(t: &Term, want: &str, who: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !t.shows_line(want) {
        assert!(
            std::time::Instant::now() < deadline,
            "[{who}] the terminal never showed {want:?}:\n{}",
            t.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn run_it_gets_a_terminal_under_tmux() {
    if !have_tmux("api run -it") {
        return;
    }
    for w in worlds() {
        let c = Cleanup::new(w, "runit");
        let label = c.label();
        let t = Term::start_shell(
            &w.env,
            "api-run-it",
            &w.docker_line(&format!("run --rm -it --label {label} {IMAGE} sh")),
            100,
            30,
        );
        std::thread::sleep(Duration::from_millis(500));
        t.keys(&["stty size; echo $((6*7))", "Enter"]);
        wait_screen(&t, "42", &w.who());
        assert!(
            t.shows_line("30 100"),
            "[{}] size:\n{}",
            w.who(),
            t.screen()
        );
        t.keys(&["[ -t 0 ] && echo is-a-tty", "Enter"]);
        wait_screen(&t, "is-a-tty", &w.who());
        t.keys(&["exit 5", "Enter"]);
        assert_eq!(t.exit_code(), "5", "[{}]:\n{}", w.who(), t.screen());
    }
}

#[test]
fn exec_it_gets_a_terminal_under_tmux() {
    if !have_tmux("api exec -it") {
        return;
    }
    for w in worlds() {
        let c = Cleanup::new(w, "execit");
        let label = c.label();
        w.docker_ok(&[
            "run",
            "-d",
            "--name",
            "api-execit",
            "--label",
            &label,
            IMAGE,
            "sh",
            "-c",
            IDLE,
        ]);
        let t = Term::start_shell(
            &w.env,
            "api-exec-it",
            &w.docker_line("exec -it api-execit sh"),
            90,
            25,
        );
        std::thread::sleep(Duration::from_millis(500));
        t.keys(&["stty size; echo $((2*21))", "Enter"]);
        wait_screen(&t, "42", &w.who());
        assert!(
            t.shows_line("25 90"),
            "[{}] docker exec -it: stty size in a 90x25 terminal:\n{}",
            w.who(),
            t.screen()
        );
        t.keys(&["exit 2", "Enter"]);
        assert_eq!(t.exit_code(), "2", "[{}]:\n{}", w.who(), t.screen());
        w.docker_ok(&["rm", "-f", "api-execit"]);
    }
}

#[test]
fn run_d_p_publishes_a_port_reached_with_real_packets() {
    for w in worlds() {
        let c = Cleanup::new(w, "runp");
        let label = c.label();
        let port = free_port();
        let id = w
            .docker_ok(&[
                "run",
                "-d",
                "--name",
                "api-web",
                "--label",
                &label,
                "-p",
                &format!("{port}:80"),
                IMAGE,
                "sh",
                "-c",
                &httpd_script("hello-from-api", 80),
            ])
            .trim()
            .to_string();
        assert_eq!(id.len(), 64, "[{}] run -d prints the id: {id}", w.who());
        let page = http_get(port);
        assert!(page.contains("hello-from-api"), "[{}] {page}", w.who());
        let ps = w.docker_ok(&["ps", "--filter", "name=api-web", "--format", "{{.Ports}}"]);
        assert!(
            ps.contains(&format!("0.0.0.0:{port}->80/tcp")),
            "[{}] ps: {ps}",
            w.who()
        );
        let shown = w.docker_ok(&["port", "api-web", "80"]);
        assert!(
            shown.contains(&format!("0.0.0.0:{port}")),
            "[{}] port: {shown}",
            w.who()
        );
        w.docker_ok(&["rm", "-f", "api-web"]);
        std::net::TcpListener::bind(("0.0.0.0", port))
            .unwrap_or_else(|e| panic!("[{}] rm -f frees the port: {e}", w.who()));
    }
}

#[test]
fn ps_lists_running_and_all_and_filters_by_label() {
    for w in worlds() {
        let c = Cleanup::new(w, "ps");
        let label = c.label();
        w.docker_ok(&[
            "run",
            "-d",
            "--name",
            "api-ps-up",
            "--label",
            &label,
            "--label",
            "role=up",
            IMAGE,
            "sh",
            "-c",
            IDLE,
        ]);
        w.docker_ok(&[
            "run",
            "-d",
            "--name",
            "api-ps-done",
            "--label",
            &label,
            "--label",
            "role=done",
            IMAGE,
            "true",
        ]);
        assert_eq!(
            w.docker_ok(&["wait", "api-ps-done"]),
            "0\n",
            "[{}] wait",
            w.who()
        );
        let names = |args: &[&str]| -> Vec<String> {
            let mut a = vec!["ps", "--format", "{{.Names}}", "--filter"];
            let f = format!("label={label}");
            a.push(&f);
            a.extend_from_slice(args);
            let mut v: Vec<String> = w.docker_ok(&a).lines().map(str::to_string).collect();
            v.sort();
            v
        };
        assert_eq!(names(&[]), ["api-ps-up"], "[{}] ps", w.who());
        assert_eq!(
            names(&["-a"]),
            ["api-ps-done", "api-ps-up"],
            "[{}] ps -a",
            w.who()
        );
        // Label filters are ANDed.
        assert_eq!(
            names(&["-a", "--filter", "label=role=done"]),
            ["api-ps-done"],
            "[{}] ps -a --filter label= --filter label=",
            w.who()
        );
        assert_eq!(
            names(&["-a", "--filter", "status=exited"]),
            ["api-ps-done"],
            "[{}] ps -a --filter status=exited",
            w.who()
        );
        let status = w.docker_ok(&[
            "ps",
            "-a",
            "--filter",
            "name=api-ps-done",
            "--format",
            "{{.Status}}",
        ]);
        assert!(
            status.starts_with("Exited (0)"),
            "[{}] status: {status}",
            w.who()
        );
        let q = w.docker_ok(&["ps", "-q", "--filter", &format!("label={label}")]);
        assert_eq!(q.trim().len(), 12, "[{}] ps -q: {q}", w.who());
    }
}

#[test]
fn logs_and_logs_f_which_ends_when_the_container_stops() {
    for w in worlds() {
        let c = Cleanup::new(w, "logs");
        let label = c.label();
        let dir = w.env.user_dir("logs-go");
        let _ = std::fs::remove_file(dir.join("go"));
        w.docker_ok(&[
            "run",
            "-d",
            "--name",
            "api-logs",
            "--label",
            &label,
            "-v",
            &format!("{}:/d", dir.display()),
            IMAGE,
            "sh",
            "-c",
            "echo one; echo two >&2; while [ ! -e /d/go ]; do sleep 0.1; done; echo three",
        ]);
        let out_file = w.env.home.join("logs-f.out");
        let err_file = w.env.home.join("logs-f.err");
        let mut follow = w
            .docker(["logs", "-f", "api-logs"])
            .stdout(std::fs::File::create(&out_file).unwrap())
            .stderr(std::fs::File::create(&err_file).unwrap())
            .spawn()
            .unwrap();
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        eventually("logs -f shows the first line", 20, || {
            read(&out_file).contains("one")
        });
        assert!(
            follow.try_wait().unwrap().is_none(),
            "[{}] logs -f ended while the container runs: {}",
            w.who(),
            read(&err_file)
        );
        write_shared(&dir.join("go"), "");
        let mut code = None;
        wait_until(
            "logs -f ends with its container",
            Duration::from_secs(20),
            || {
                code = follow.try_wait().unwrap();
                code.is_some()
            },
        );
        assert_eq!(code.unwrap().code(), Some(0), "[{}]", w.who());
        assert_eq!(read(&out_file), "one\nthree\n", "[{}] logs -f", w.who());
        assert_eq!(read(&err_file), "two\n", "[{}] logs -f stderr", w.who());
        let o = w.docker_run(&["logs", "api-logs"]);
        assert_eq!(stdout(&o), "one\nthree\n", "[{}] logs", w.who());
        assert_eq!(stderr(&o), "two\n", "[{}] logs stderr", w.who());
        let o = w.docker_run(&["logs", "--tail", "1", "api-logs"]);
        assert_eq!(stdout(&o), "three\n", "[{}] logs --tail 1", w.who());
        w.docker_ok(&["rm", "api-logs"]);
    }
}

#[test]
fn exec_gives_exit_codes_and_takes_stdin() {
    for w in worlds() {
        let c = Cleanup::new(w, "exec");
        let label = c.label();
        w.docker_ok(&[
            "run", "-d", "--name", "api-exec", "--label", &label, IMAGE, "sh", "-c", IDLE,
        ]);
        let o = w.docker_run(&["exec", "api-exec", "sh", "-c", "echo in-exec; exit 4"]);
        assert_eq!(o.status.code(), Some(4), "[{}] {}", w.who(), stderr(&o));
        assert_eq!(stdout(&o), "in-exec\n", "[{}]", w.who());
        let o = w.docker_run(&["exec", "api-exec", "sh", "-c", "echo e >&2"]);
        assert_eq!(stderr(&o), "e\n", "[{}] exec stderr", w.who());
        // -e and -w reach the process.
        let o = w.docker_ok(&[
            "exec",
            "-e",
            "X=1",
            "-w",
            "/tmp",
            "api-exec",
            "sh",
            "-c",
            "echo $X $PWD",
        ]);
        assert_eq!(o, "1 /tmp\n", "[{}] exec -e -w", w.who());
        // -d returns at once; its effect shows afterwards.
        w.docker_ok(&["exec", "-d", "api-exec", "sh", "-c", "echo done > /tmp/bg"]);
        eventually("exec -d ran", 10, || {
            stdout(&w.docker_run(&["exec", "api-exec", "cat", "/tmp/bg"])) == "done\n"
        });
        let o = w.docker_run(&["exec", "api-nonesuch", "true"]);
        assert_ne!(o.status.code(), Some(0), "[{}]", w.who());
        assert!(
            stderr(&o).contains("No such container: api-nonesuch"),
            "[{}] {}",
            w.who(),
            stderr(&o)
        );
        // exec -i: stdin, and its end, reach the process.
        let o = w.docker_stdin(&["exec", "-i", "api-exec", "tr", "a-z", "A-Z"], b"piped\n");
        assert_eq!(
            (o.status.code(), stdout(&o).as_str()),
            (Some(0), "PIPED\n"),
            "[{}] docker exec -i api-exec tr a-z A-Z <<< piped: {}",
            w.who(),
            stderr(&o)
        );
        w.docker_ok(&["rm", "-f", "api-exec"]);
    }
}

#[test]
fn cp_copies_both_ways() {
    for w in worlds() {
        let c = Cleanup::new(w, "cp");
        let label = c.label();
        w.docker_ok(&[
            "run", "-d", "--name", "api-cp", "--label", &label, IMAGE, "sh", "-c", IDLE,
        ]);
        let src = w.env.user_dir("cp-src");
        write_shared(&src.join("up.txt"), "uploaded\n");
        w.docker_ok(&[
            "cp",
            src.join("up.txt").to_str().unwrap(),
            "api-cp:/tmp/up.txt",
        ]);
        assert_eq!(
            w.docker_ok(&["exec", "api-cp", "cat", "/tmp/up.txt"]),
            "uploaded\n",
            "[{}] cp into the container",
            w.who()
        );
        w.docker_ok(&[
            "exec",
            "api-cp",
            "sh",
            "-c",
            "mkdir -p /data/sub && echo down > /data/sub/a && echo top > /data/b",
        ]);
        let out = w.env.user_dir("cp-out");
        let dest = out.join("got");
        let _ = std::fs::remove_dir_all(&dest);
        w.docker_ok(&["cp", "api-cp:/data", dest.to_str().unwrap()]);
        assert_eq!(
            std::fs::read_to_string(dest.join("sub/a")).unwrap_or_default(),
            "down\n",
            "[{}] cp out of the container",
            w.who()
        );
        assert_eq!(
            std::fs::read_to_string(dest.join("b")).unwrap_or_default(),
            "top\n",
            "[{}]",
            w.who()
        );
        let o = w.docker_run(&["cp", "api-cp:/no/such", out.to_str().unwrap()]);
        assert_ne!(o.status.code(), Some(0), "[{}]", w.who());
        w.docker_ok(&["rm", "-f", "api-cp"]);
    }
}

#[test]
fn diff_commit_and_export() {
    for w in worlds() {
        let c = Cleanup::new(w, "commit");
        let label = c.label();
        w.docker_ok(&[
            "run",
            "--name",
            "api-commit",
            "--label",
            &label,
            IMAGE,
            "sh",
            "-c",
            "echo made > /made.txt && rm /etc/group",
        ]);
        let diff = w.docker_ok(&["diff", "api-commit"]);
        for line in ["A /made.txt", "D /etc/group", "C /etc"] {
            assert!(
                diff.lines().any(|l| l == line),
                "[{}] docker diff lists {line:?}: {diff}",
                w.who()
            );
        }
        let id = w.docker_ok(&[
            "commit",
            "-c",
            "ENV MADE=yes",
            "-m",
            "through the API",
            "api-commit",
            "api-committed:v1",
        ]);
        assert!(id.starts_with("sha256:"), "[{}] {id}", w.who());
        assert_eq!(
            w.docker_ok(&[
                "run",
                "--rm",
                "api-committed:v1",
                "sh",
                "-c",
                "cat /made.txt; echo $MADE"
            ]),
            "made\nyes\n",
            "[{}] the committed image has the change and the ENV",
            w.who()
        );
        let out = w.env.user_dir("export-out");
        let tar = out.join("tree.tar");
        w.docker_ok(&["export", "-o", tar.to_str().unwrap(), "api-commit"]);
        let names: Vec<String> = tar::Archive::new(std::fs::File::open(&tar).unwrap())
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert!(
            names.iter().any(|n| n == "made.txt") && !names.iter().any(|n| n == "etc/group"),
            "[{}] the export is the container's tree: {names:?}",
            w.who()
        );
        // And back as a one-layer image.
        let id = w.docker_ok(&[
            "import",
            "-c",
            "CMD [\"cat\", \"/made.txt\"]",
            tar.to_str().unwrap(),
            "api-imported:v1",
        ]);
        assert!(id.trim().starts_with("sha256:"), "[{}] {id}", w.who());
        assert_eq!(
            w.docker_ok(&["run", "--rm", "api-imported:v1"]),
            "made\n",
            "[{}] the imported image",
            w.who()
        );
        w.docker_ok(&["rmi", "api-imported:v1"]);
        let o = w.docker_run(&["commit", "api-nosuch"]);
        assert_eq!(o.status.code(), Some(1), "[{}]", w.who());
        w.docker_ok(&["rm", "api-commit"]);
        w.docker_ok(&["rmi", "api-committed:v1"]);
    }
}

#[test]
fn stop_and_rm() {
    for w in worlds() {
        let c = Cleanup::new(w, "stop");
        let label = c.label();
        w.docker_ok(&[
            "run", "-d", "--name", "api-stop", "--label", &label, IMAGE, "sh", "-c", IDLE,
        ]);
        let began = std::time::Instant::now();
        assert_eq!(
            w.docker_ok(&["stop", "api-stop"]),
            "api-stop\n",
            "[{}]",
            w.who()
        );
        assert!(
            began.elapsed() < Duration::from_secs(8),
            "[{}] stop waited for the timeout: the TERM trap should end it",
            w.who()
        );
        let state = w.docker_ok(&["inspect", "-f", "{{.State.Status}}", "api-stop"]);
        assert_eq!(state.trim(), "exited", "[{}]", w.who());
        // A running container cannot be removed without -f.
        w.docker_ok(&["start", "api-stop"]);
        let o = w.docker_run(&["rm", "api-stop"]);
        assert_ne!(
            o.status.code(),
            Some(0),
            "[{}] rm of a running one",
            w.who()
        );
        w.docker_ok(&["stop", "-t", "1", "api-stop"]);
        assert_eq!(
            w.docker_ok(&["rm", "api-stop"]),
            "api-stop\n",
            "[{}]",
            w.who()
        );
        let o = w.docker_run(&["inspect", "api-stop"]);
        assert_eq!(o.status.code(), Some(1), "[{}] inspect after rm", w.who());
        let o = w.docker_run(&["rm", "api-stop"]);
        assert!(
            stderr(&o).contains("No such container: api-stop"),
            "[{}] {}",
            w.who(),
            stderr(&o)
        );
    }
}

#[test]
fn pull_from_a_loopback_registry_and_run_what_is_missing() {
    for w in worlds() {
        let c = Cleanup::new(w, "pull");
        let label = c.label();
        let reg = Registry::start(&w.env.home.join("registry"));
        let pulled = format!("127.0.0.1:{}/apitest/pulled:1", reg.port);
        let auto = format!("127.0.0.1:{}/apitest/auto:1", reg.port);
        for r in [&pulled, &auto] {
            push_image(w, r);
        }
        let out = w.docker_ok(&["pull", &pulled]);
        assert!(
            out.contains(pulled.as_str()) && out.contains("Status: "),
            "[{}] pull: {out}",
            w.who()
        );
        let listed = w.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
        assert!(
            listed.lines().any(|l| l == pulled),
            "[{}] images: {listed}",
            w.who()
        );
        assert!(
            w.burrow_ok(&["images"])
                .contains(&format!("127.0.0.1:{}/apitest/pulled", reg.port)),
            "[{}] burrow images lists the pulled image",
            w.who()
        );
        // run pulls what it does not have.
        let o = w.docker_run(&["run", "--rm", "--label", &label, &auto, "echo", "auto"]);
        assert_eq!(o.status.code(), Some(0), "[{}] {}", w.who(), stderr(&o));
        assert_eq!(stdout(&o), "auto\n", "[{}]", w.who());
        assert!(
            stderr(&o).contains("Unable to find image"),
            "[{}] {}",
            w.who(),
            stderr(&o)
        );
        let o = w.docker_run(&["pull", &format!("127.0.0.1:{}/apitest/missing:1", reg.port)]);
        assert_ne!(
            o.status.code(),
            Some(0),
            "[{}] pull of a missing image",
            w.who()
        );
        assert!(
            stderr(&o).contains("Error response from daemon"),
            "[{}] {}",
            w.who(),
            stderr(&o)
        );
        w.docker_ok(&["rmi", &pulled, &auto]);
    }
}

#[test]
fn build_a_context_with_copy_and_run() {
    for w in worlds() {
        let c = Cleanup::new(w, "build");
        let label = c.label();
        let ctx = w.env.user_dir("build-ctx");
        write_shared(
            &ctx.join("Dockerfile"),
            &format!(
                "FROM {IMAGE}\nCOPY greeting.txt /greeting.txt\nRUN cat /greeting.txt > /made.txt && echo built-by-run >> /made.txt\nLABEL apitest.built=yes\nCMD [\"cat\", \"/made.txt\"]\n"
            ),
        );
        write_shared(&ctx.join("greeting.txt"), "hello build\n");
        let o = w.docker_run(&["build", "-t", "apitest/built:1", ctx.to_str().unwrap()]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "[{}] docker build:\nstdout: {}\nstderr: {}",
            w.who(),
            stdout(&o),
            stderr(&o)
        );
        assert!(
            stdout(&o).contains("Successfully tagged apitest/built:1"),
            "[{}] {}",
            w.who(),
            stdout(&o)
        );
        let o = w.docker_run(&["run", "--rm", "--label", &label, "apitest/built:1"]);
        assert_eq!(stdout(&o), "hello build\nbuilt-by-run\n", "[{}]", w.who());
        let l = w.docker_ok(&[
            "image",
            "inspect",
            "-f",
            "{{index .Config.Labels \"apitest.built\"}}",
            "apitest/built:1",
        ]);
        assert_eq!(l.trim(), "yes", "[{}]", w.who());
        w.docker_ok(&["rmi", "apitest/built:1"]);
    }
}

#[test]
fn images_tag_and_rmi() {
    for w in worlds() {
        let id = w.burrow_ok(&["images", "-q", "--no-trunc", IMAGE]);
        let shown = w.docker_ok(&["image", "inspect", "-f", "{{.Id}}", IMAGE]);
        assert_eq!(shown.trim(), id.trim(), "[{}] image inspect", w.who());
        w.docker_ok(&["tag", IMAGE, "apitest/tagged:1"]);
        let listed = w.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
        assert!(
            listed.lines().any(|l| l == "apitest/tagged:1"),
            "[{}] images: {listed}",
            w.who()
        );
        assert!(
            listed.lines().any(|l| l == "busybox:latest"),
            "[{}] images: {listed}",
            w.who()
        );
        let out = w.docker_ok(&["rmi", "apitest/tagged:1"]);
        assert!(
            out.contains("Untagged: apitest/tagged:1"),
            "[{}] rmi: {out}",
            w.who()
        );
        let listed = w.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
        assert!(
            !listed.contains("apitest/tagged"),
            "[{}] images after rmi: {listed}",
            w.who()
        );
        let o = w.docker_run(&["rmi", "apitest/nonesuch:1"]);
        assert_eq!(o.status.code(), Some(1), "[{}]", w.who());
        assert!(
            stderr(&o).contains("No such image: apitest/nonesuch:1"),
            "[{}] {}",
            w.who(),
            stderr(&o)
        );
        let o = w.docker_run(&["image", "inspect", "apitest/nonesuch:1"]);
        assert_eq!(o.status.code(), Some(1), "[{}]", w.who());
    }
}

#[test]
fn network_create_and_rm() {
    for w in worlds() {
        let c = Cleanup::new(w, "net");
        let label = c.label();
        let id = w.docker_ok(&["network", "create", "apitest-net"]);
        assert!(!id.trim().is_empty(), "[{}] network create", w.who());
        let ls = w.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
        assert!(
            ls.lines().any(|l| l == "apitest-net"),
            "[{}] network ls: {ls}",
            w.who()
        );
        assert!(
            w.burrow_ok(&["network", "ls"]).contains("apitest-net"),
            "[{}] burrow network ls",
            w.who()
        );
        let o = w.docker_run(&[
            "run",
            "--rm",
            "--label",
            &label,
            "--network",
            "apitest-net",
            IMAGE,
            "true",
        ]);
        assert_eq!(o.status.code(), Some(0), "[{}] {}", w.who(), stderr(&o));
        assert_eq!(
            w.docker_ok(&["network", "rm", "apitest-net"]),
            "apitest-net\n",
            "[{}]",
            w.who()
        );
        assert!(
            !w.burrow_ok(&["network", "ls"]).contains("apitest-net"),
            "[{}] network rm",
            w.who()
        );
    }
}

#[test]
fn volume_create_and_rm() {
    for w in worlds() {
        let c = Cleanup::new(w, "vol");
        let label = c.label();
        assert_eq!(
            w.docker_ok(&["volume", "create", "apitest-vol"]),
            "apitest-vol\n",
            "[{}]",
            w.who()
        );
        let o = w.docker_run(&[
            "run",
            "--rm",
            "--label",
            &label,
            "-v",
            "apitest-vol:/v",
            IMAGE,
            "sh",
            "-c",
            "echo kept > /v/f",
        ]);
        assert_eq!(o.status.code(), Some(0), "[{}] {}", w.who(), stderr(&o));
        let o = w.docker_ok(&[
            "run",
            "--rm",
            "--label",
            &label,
            "-v",
            "apitest-vol:/v",
            IMAGE,
            "cat",
            "/v/f",
        ]);
        assert_eq!(o, "kept\n", "[{}] the volume keeps data", w.who());
        let ls = w.docker_ok(&["volume", "ls", "-q"]);
        assert!(
            ls.lines().any(|l| l == "apitest-vol"),
            "[{}] volume ls: {ls}",
            w.who()
        );
        assert!(
            w.burrow_ok(&["volume", "ls"]).contains("apitest-vol"),
            "[{}] burrow volume ls",
            w.who()
        );
        assert_eq!(
            w.docker_ok(&["volume", "rm", "apitest-vol"]),
            "apitest-vol\n",
            "[{}]",
            w.who()
        );
        assert!(
            !w.burrow_ok(&["volume", "ls"]).contains("apitest-vol"),
            "[{}] volume rm",
            w.who()
        );
    }
}

#[test]
fn the_cli_and_the_api_see_the_same_containers() {
    for w in worlds() {
        let c = Cleanup::new(w, "both");
        let label = c.label();
        w.docker_ok(&[
            "run", "-d", "--name", "api-made", "--label", &label, IMAGE, "sh", "-c", IDLE,
        ]);
        w.burrow_ok(&[
            "run", "-d", "--name", "cli-made", "--label", &label, IMAGE, "sh", "-c", IDLE,
        ]);
        let f = format!("label={label}");
        let mut by_cli: Vec<String> = w
            .burrow_ok(&["ps", "--filter", &f, "--format", "{{.Names}}"])
            .lines()
            .map(str::to_string)
            .collect();
        by_cli.sort();
        let mut by_api: Vec<String> = w
            .docker_ok(&["ps", "--filter", &f, "--format", "{{.Names}}"])
            .lines()
            .map(str::to_string)
            .collect();
        by_api.sort();
        assert_eq!(by_cli, ["api-made", "cli-made"], "[{}] burrow ps", w.who());
        assert_eq!(by_api, ["api-made", "cli-made"], "[{}] docker ps", w.who());
        // Each front end works on what the other made.
        assert_eq!(
            w.burrow_ok(&["exec", "api-made", "echo", "cli-in-api"]),
            "cli-in-api\n"
        );
        assert_eq!(
            w.docker_ok(&["exec", "cli-made", "echo", "api-in-cli"]),
            "api-in-cli\n"
        );
        w.docker_ok(&["rm", "-f", "cli-made"]);
        w.burrow_ok(&["rm", "-f", "api-made"]);
        assert_eq!(
            w.docker_ok(&["ps", "-a", "--filter", &f, "-q"]).trim(),
            "",
            "[{}]",
            w.who()
        );
    }
}

#[test]
fn a_container_started_through_the_api_outlives_the_service() {
    for w in worlds() {
        let c = Cleanup::new(w, "outlive");
        let label = c.label();
        let dir = socket_dir(&w.env, "sock-outlive");
        let sock = dir.join("short.sock");
        let mut svc = Service::start(&w.env, &sock, 1);
        let docker = |args: &[&str]| {
            let o = crate::support::client_for(
                &w.env,
                &w.client_home,
                &svc_uri(&sock),
                crate::support::DOCKER,
            )
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
            assert!(
                o.status.success(),
                "[{}] docker {args:?}: {}",
                w.who(),
                stderr(&o)
            );
            stdout(&o)
        };
        docker(&[
            "run",
            "-d",
            "--name",
            "api-outlive",
            "--label",
            &label,
            IMAGE,
            "sh",
            "-c",
            IDLE,
        ]);
        let mut status = None;
        wait_until(
            "the service exits after --time 1 with no client",
            Duration::from_secs(20),
            || {
                status = svc.try_exit();
                status.is_some()
            },
        );
        assert!(
            status.unwrap().success(),
            "[{}] the idle service exits 0",
            w.who()
        );
        let st = w.burrow_ok(&["inspect", "-f", "{{.State.Status}}", "api-outlive"]);
        assert_eq!(st.trim(), "running", "[{}] after the service", w.who());
        drop(svc);
        // A new service on the same socket sees it, and can end it.
        let _svc = Service::start(&w.env, &sock, 0);
        let ps = docker(&[
            "ps",
            "--filter",
            "name=api-outlive",
            "--format",
            "{{.Status}}",
        ]);
        assert!(ps.starts_with("Up"), "[{}] docker ps: {ps}", w.who());
        assert_eq!(docker(&["exec", "api-outlive", "echo", "alive"]), "alive\n");
        docker(&["rm", "-f", "api-outlive"]);
    }
}

fn svc_uri(sock: &Path) -> String {
    format!("unix://{}", sock.display())
}

/// The world's service is the one the docker CLI finds through
/// DOCKER_HOST, and `docker version` names burrow and API 1.41.
#[test]
fn version_and_info_name_burrow() {
    for w in worlds() {
        let v = w.docker_ok(&["version", "--format", "{{.Server.APIVersion}}"]);
        assert_eq!(v.trim(), "1.41", "[{}]", w.who());
        let i = w.docker_ok(&["info", "--format", "{{.OSType}} {{.ServerVersion}}"]);
        assert!(i.starts_with("linux "), "[{}] info: {i}", w.who());
    }
}

/// A container with the service's socket bound in (as Testcontainers'
/// Ryuk runs) talks to the API from inside: the stand-in reaper is told a
/// label over its published port and, when that connection closes, removes
/// the labelled container through the socket.
#[test]
fn a_container_talks_to_the_service_through_the_bound_socket() {
    for w in worlds() {
        if !build_reaper(w) {
            return;
        }
        let c = Cleanup::new(w, "sock");
        let label = c.label();
        let sock = w.uri.trim_start_matches("unix://").to_string();
        w.docker_ok(&[
            "run",
            "-d",
            "--name",
            "api-reaper",
            "--label",
            &label,
            "-p",
            "8080",
            "-v",
            &format!("{sock}:/var/run/docker.sock"),
            "apitest/reaper:1",
        ]);
        w.docker_ok(&[
            "run",
            "-d",
            "--name",
            "api-victim",
            "--label",
            &label,
            "--label",
            "victim=yes",
            IMAGE,
            "sh",
            "-c",
            IDLE,
        ]);
        let shown = w.docker_ok(&["port", "api-reaper", "8080"]);
        let port: u16 = shown
            .lines()
            .next()
            .and_then(|l| l.rsplit(':').next())
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("[{}] docker port: {shown}", w.who()));
        let mut ack = String::new();
        eventually("the reaper answers ACK", 20, || {
            let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
                return false;
            };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = s.write_all(b"label=victim=yes\r\n");
            let mut buf = [0u8; 16];
            let n = s.read(&mut buf).unwrap_or(0);
            ack = String::from_utf8_lossy(&buf[..n]).into_owned();
            // Dropping `s` closes the session: the reaper acts now.
            n > 0
        });
        assert_eq!(ack, "ACK\n", "[{}]", w.who());
        let mut logs = String::new();
        let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            eventually("the reaper removed the labelled container", 30, || {
                logs = stdout(&w.docker_run(&["logs", "api-reaper"]));
                logs.contains("reaper done")
            })
        }));
        assert!(
            done.is_ok() && logs.contains("reaper done: 1 removed"),
            "[{}] reaper logs:\n{logs}\nservice log:\n{}",
            w.who(),
            w.service_log()
        );
        let o = w.docker_run(&["inspect", "api-victim"]);
        assert_eq!(o.status.code(), Some(1), "[{}] the victim is gone", w.who());
        w.docker_ok(&["rm", "-f", "api-reaper"]);
    }
}

/// What a container's shell holds open, by descriptor number and target:
/// a hostile image looks for a descriptor of the service (its listening
/// socket, another client's connection) to drive the API from inside.
/// (`ls` in a child lists the shell's, not its own directory handle; the
/// `true` after it keeps the shell from exec'ing it, and a command
/// substitution would add the shell's own pipe.)
const LIST_FDS: &str = "ls -l /proc/$$/fd; true";

/// Descriptors above stdio that a container's process holds, from
/// LIST_FDS's output (`... NUMBER -> TARGET`).
fn beyond_stdio(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| {
            l.split(" -> ")
                .next()
                .and_then(|head| head.split_whitespace().last())
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n > 2)
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn a_container_gets_no_descriptor_of_the_service() {
    for w in worlds() {
        let c = Cleanup::new(w, "fds");
        let label = c.label();
        let out = w.docker_ok(&[
            "run", "--rm", "--label", &label, IMAGE, "sh", "-c", LIST_FDS,
        ]);
        assert!(
            out.contains("0 "),
            "[{}] run listed nothing: {out}",
            w.who()
        );
        assert_eq!(
            beyond_stdio(&out),
            Vec::<String>::new(),
            "[{}] run",
            w.who()
        );
        w.docker_ok(&[
            "run", "-d", "--name", "api-fds", "--label", &label, IMAGE, "sh", "-c", IDLE,
        ]);
        let out = w.docker_ok(&["exec", "api-fds", "sh", "-c", LIST_FDS]);
        assert_eq!(
            beyond_stdio(&out),
            Vec::<String>::new(),
            "[{}] exec",
            w.who()
        );
        let out = w.docker_ok(&["exec", "-i", "api-fds", "sh", "-c", LIST_FDS]);
        assert_eq!(
            beyond_stdio(&out),
            Vec::<String>::new(),
            "[{}] exec -i",
            w.who()
        );
        // With a terminal the service's worker holds a pty of its own,
        // whose master must stay out of the container.
        let out = w.docker_ok(&["exec", "-t", "api-fds", "sh", "-c", LIST_FDS]);
        assert!(
            out.contains(" 0 -> /dev/pts/"),
            "[{}] exec -t: {out}",
            w.who()
        );
        assert_eq!(
            beyond_stdio(&out),
            Vec::<String>::new(),
            "[{}] exec -t",
            w.who()
        );
    }
}
