//! `burrow run` and container records as an unprivileged user, with and
//! without a subuid range: hello-world, Cmd override and Env merge,
//! isolation between containers, exit codes, ownership, ps/rm/inspect.

mod common;

use std::time::{Duration, Instant};

use common::{spawn, stderr, stdout, users, Env, Who};

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("bad JSON ({e}): {s}"))
}

#[test]
fn hello_world_runs_offline_from_the_builtin_image() {
    for env in users("hello") {
        let o = env.run(["run", "hello-world"]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).contains("Hello from burrow!"), "{}", stdout(&o));
        assert!(
            stdout(&o).contains("without root"),
            "the message explains what happened"
        );
        assert!(
            stderr(&o).contains("Unable to find image 'hello-world:latest' locally"),
            "{}",
            stderr(&o)
        );
        // The second run uses the local copy.
        let o = env.run(["run", "--rm", "hello-world"]);
        assert!(o.status.success());
        assert!(!stderr(&o).contains("Unable to find"), "{}", stderr(&o));
        assert!(env.ok(["images"]).contains("hello-world"));
    }
}

#[test]
fn cmd_override_and_env_merge_are_recorded_and_shown() {
    for env in users("cmd_env") {
        let tar = env.busybox_tar().to_str().unwrap().to_string();
        env.ok([
            "import",
            &tar,
            "busybox",
            "--change",
            r#"CMD ["sh", "-c", "echo default"]"#,
            "--change",
            "ENV A=img B=img",
        ]);
        let envfile = env.home.join("vars.env");
        std::fs::write(&envfile, "# from file\nB=file\nD=file\n").unwrap();
        env.share(&envfile);

        assert_eq!(env.ok(["run", "--rm", "busybox"]).trim(), "default");
        let out = env.ok([
            "run",
            "--name",
            "merged",
            "--env-file",
            envfile.to_str().unwrap(),
            "-e",
            "B=flag",
            "--env",
            "C=new",
            "busybox",
            "sh",
            "-c",
            "echo $A $B $C $D; echo $HOSTNAME",
        ]);
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some("img flag new file"));
        let hostname = lines.next().unwrap().to_string();

        let c = &json(&env.ok(["container", "inspect", "merged"]))[0];
        assert_eq!(
            c["Config"]["Cmd"],
            serde_json::json!(["sh", "-c", "echo $A $B $C $D; echo $HOSTNAME"])
        );
        let envs: Vec<String> = serde_json::from_value(c["Config"]["Env"].clone()).unwrap();
        for want in ["A=img", "B=flag", "C=new", "D=file"] {
            assert!(envs.contains(&want.to_string()), "{want} in {envs:?}");
        }
        assert!(!envs.contains(&"B=img".to_string()));
        assert_eq!(c["State"]["Status"], "exited");
        assert_eq!(c["State"]["ExitCode"], 0);
        assert_eq!(c["Name"], "merged");
        assert_eq!(c["Config"]["Hostname"], hostname.as_str());
        assert_eq!(
            &c["Id"].as_str().unwrap()[..12],
            hostname,
            "hostname defaults to the short id"
        );
        // The image is unchanged by the container's overrides.
        let img = &json(&env.ok(["image", "inspect", "busybox"]))[0]["Config"];
        assert_eq!(img["Cmd"], serde_json::json!(["sh", "-c", "echo default"]));
        assert_eq!(img["Env"], serde_json::json!(["A=img", "B=img"]));
    }
}

#[test]
fn containers_are_isolated_and_the_image_is_unchanged() {
    for env in users("isolation") {
        env.import_busybox("busybox");
        let layer_listing = || {
            let o = std::process::Command::new("find")
                .arg(env.root.join("layers"))
                .args(["-printf", "%p %s %m %U %T@\n"])
                .output()
                .unwrap();
            stdout(&o)
        };
        let before = layer_listing();
        env.ok([
            "run",
            "--name",
            "writer",
            "busybox",
            "sh",
            "-c",
            "echo changed > /etc/passwd && rm /bin/ls && mkdir -p /data && echo mine > /data/f",
        ]);
        let o = env.run([
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "cat /etc/passwd; ls /bin/ls; ls /data",
        ]);
        assert_ne!(
            o.status.code(),
            Some(0),
            "second container must not see the first's changes"
        );
        let out = stdout(&o);
        assert!(out.contains("root:x:0:0"), "{out}");
        assert!(!out.contains("changed"));
        assert_eq!(layer_listing(), before, "image layers untouched");
        // The first container keeps its own changes on disk.
        let upper = env
            .root
            .join("containers")
            .join(
                json(&env.ok(["container", "inspect", "writer"]))[0]["Id"]
                    .as_str()
                    .unwrap(),
            )
            .join("upper/data/f");
        assert_eq!(std::fs::read_to_string(upper).unwrap(), "mine\n");
    }
}

#[test]
fn the_sandbox_has_its_own_namespaces_and_mounts() {
    for env in users("sandbox") {
        env.import_busybox("busybox");
        let out = env.ok(["run", "--rm", "--hostname", "box", "busybox", "sh", "-c",
            "echo pid=$$; hostname; cat /proc/self/uid_map | tr -s ' '; ls /dev; grep -c . /etc/hosts; \
             touch /sys/x 2>/dev/null && echo sys-rw || echo sys-ro; ls /proc | grep -c '^[0-9]'"]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "pid=1", "{out}");
        assert_eq!(lines[1], "box");
        let map = lines[2].trim();
        match env.who {
            Who::Range => assert!(map.starts_with("0 ") && map.ends_with(" 1"), "{map}"),
            Who::Single => assert!(map.ends_with(" 1"), "{map}"),
        }
        for dev in [
            "null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "ptmx",
        ] {
            assert!(out.lines().any(|l| l == dev), "/dev/{dev} missing: {out}");
        }
        assert!(out.contains("sys-ro"), "{out}");
        // Only our own processes are visible: sh and ls (and grep).
        let nprocs: u32 = lines.last().unwrap().parse().unwrap();
        assert!(
            nprocs <= 3,
            "{nprocs} processes visible: pid namespace leak"
        );
        // Only stdin, stdout and stderr cross into the container (ls's own
        // directory handle is the fourth).
        let fds = env.ok(["run", "--rm", "busybox", "ls", "/proc/self/fd"]);
        assert_eq!(
            fds.split_whitespace().collect::<Vec<_>>(),
            ["0", "1", "2", "3"],
            "leaked descriptors: {fds}"
        );
        let id = env.ok([
            "run",
            "-d",
            "busybox",
            "sh",
            "-c",
            "ls /proc/self/fd; sleep 1",
        ]);
        assert_eq!(env.ok(["wait", id.trim()]).trim(), "0");
        assert_eq!(
            env.ok(["logs", id.trim()])
                .split_whitespace()
                .collect::<Vec<_>>(),
            ["0", "1", "2", "3"],
            "monitor leaked descriptors"
        );
        let with_range = env.ok([
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "cat /proc/self/uid_map",
        ]);
        let lines = with_range.lines().count();
        assert_eq!(
            lines,
            if env.who == Who::Range { 2 } else { 1 },
            "{with_range}"
        );
    }
}

#[test]
fn exit_codes_follow_docker() {
    for env in users("exit_codes") {
        env.import_busybox("busybox");
        let code = |args: &[&str]| {
            let o = env.run(args);
            (o.status.code(), stderr(&o))
        };
        assert_eq!(
            code(&["run", "--rm", "busybox", "sh", "-c", "exit 3"]).0,
            Some(3)
        );
        let (c, e) = code(&["run", "--rm", "busybox", "nosuchcommand"]);
        assert_eq!(c, Some(127));
        assert!(e.contains("executable file not found in $PATH"), "{e}");
        assert_eq!(e.trim().lines().count(), 1, "{e}");
        let (c, e) = code(&["run", "--rm", "busybox", "/etc/passwd"]);
        assert_eq!(c, Some(126));
        assert!(e.contains("permission denied"), "{e}");
        let (c, _) = code(&["run", "--rm", "busybox", "/no/such/file"]);
        assert_eq!(c, Some(127));
        let (c, e) = code(&["run", "--rm", "notanimage"]);
        assert_eq!(c, Some(125));
        assert!(
            e.contains("Unable to find image 'notanimage:latest' locally"),
            "{e}"
        );
        assert_eq!(code(&["run", "--bogus-flag", "busybox"]).0, Some(125));
        assert_eq!(
            code(&["run", "--rm", "-w", "relative", "busybox", "true"]).0,
            Some(125)
        );
        assert_eq!(
            code(&["run", "--rm", "-e", "=x", "busybox", "true"]).0,
            Some(125)
        );
        assert_eq!(
            code(&["run", "--rm", "--name", "bad/name", "busybox", "true"]).0,
            Some(125)
        );
        // A command killed by a signal ends as 128 + signal.
        assert_eq!(
            code(&[
                "run",
                "--rm",
                "busybox",
                "sh",
                "-c",
                "sleep 10 & kill -9 $!; wait $!"
            ])
            .0,
            Some(137)
        );
        // --rm containers leave nothing behind, even when the command was not found.
        assert_eq!(env.ok(["ps", "-aq"]).trim(), "");
        // The directory goes right after the exit is reported (the inner
        // process finishes it in the background): allow it a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::read_dir(env.root.join("containers"))
            .unwrap()
            .count()
            > 0
        {
            assert!(Instant::now() < deadline, "--rm left a container directory");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn users_and_file_owners_map_through_the_subuid_range() {
    let Some(env) = Env::new(Who::Range, "owners") else {
        return;
    };
    env.import_busybox("busybox");
    let out = env.ok([
        "run",
        "--name",
        "own",
        "-u",
        "65534:65534",
        "busybox",
        "sh",
        "-c",
        "id -u; id -g",
    ]);
    assert_eq!(out, "65534\n65534\n");
    env.ok([
        "run",
        "--name",
        "chowner",
        "busybox",
        "sh",
        "-c",
        "echo x > /owned && chown 1000:1000 /owned",
    ]);
    let id = json(&env.ok(["container", "inspect", "chowner"]))[0]["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let meta =
        std::fs::metadata(env.root.join("containers").join(&id).join("upper/owned")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        meta.uid(),
        env.host_uid_of(1000),
        "container uid 1000 is a subordinate id on the host"
    );
    // rm deletes files owned by subordinate ids (through the user namespace).
    env.ok(["rm", "chowner", "own"]);
    assert!(!env.root.join("containers").join(&id).exists());
}

#[test]
fn single_mapping_collapses_owners_and_refuses_other_users_clearly() {
    let Some(env) = Env::new(Who::Single, "single") else {
        return;
    };
    // A layer with a file owned by uid 1000 imports, owned by the user, with a note.
    let tarpath = env.home.join("owned.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&tarpath).unwrap());
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o644);
    h.set_uid(1000);
    h.set_gid(1000);
    h.set_cksum();
    b.append_data(&mut h, "owned", &b"x\n"[..]).unwrap();
    b.finish().unwrap();
    drop(b);
    env.share(&tarpath);
    let o = env.run(["import", tarpath.to_str().unwrap(), "owned"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no subuid"),
        "a one-line note: {}",
        stderr(&o)
    );

    env.import_busybox("busybox");
    let o = env.run(["run", "--rm", "-u", "1000", "busybox", "id"]);
    assert_eq!(o.status.code(), Some(126));
    assert!(stderr(&o).contains("not mapped"), "{}", stderr(&o));
    assert_eq!(env.ok(["run", "--rm", "busybox", "id", "-u"]).trim(), "0");
}

#[test]
fn ps_rm_and_inspect_track_a_running_container() {
    for env in users("ps_rm") {
        env.import_busybox("busybox");
        let child = spawn({
            let mut c = env.cmd(["run", "--name", "sleeper", "busybox", "sleep", "30"]);
            c.stdin(std::process::Stdio::null());
            c
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let row = loop {
            let ps = env.ok(["ps"]);
            if let Some(l) = ps.lines().find(|l| l.contains("sleeper")) {
                break l.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "container never showed as running: {ps}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(row.contains("Up "), "{row}");
        assert!(row.contains("\"sleep 30\""), "{row}");
        let c = &json(&env.ok(["container", "inspect", "sleeper"]))[0];
        assert_eq!(c["State"]["Running"], true);
        assert!(c["State"]["Pid"].as_i64().unwrap() > 0);
        // Names are unique.
        let o = env.run(["run", "--name", "sleeper", "busybox", "true"]);
        assert_eq!(o.status.code(), Some(125));
        assert!(stderr(&o).contains("is already in use"), "{}", stderr(&o));
        // rm refuses a running container; rm -f kills and removes it.
        let o = env.run(["rm", "sleeper"]);
        assert_eq!(o.status.code(), Some(125));
        assert!(
            stderr(&o).contains("cannot remove a running container"),
            "{}",
            stderr(&o)
        );
        env.ok(["rm", "-f", "sleeper"]);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(137), "killed container ends 137");
        assert!(!env.ok(["ps", "-a"]).contains("sleeper"));
        // Several at once, by name and id prefix; unknown names are errors.
        env.ok(["run", "--name", "a1", "busybox", "true"]);
        env.ok(["run", "--name", "a2", "busybox", "true"]);
        let id2 = json(&env.ok(["inspect", "a2"]))[0]["Id"].as_str().unwrap()[..8].to_string();
        assert!(env.ok(["ps", "-a"]).contains("Exited (0)"));
        let o = env.run(["rm", "a1", &id2, "ghost"]);
        // Docker's code when every failure is a missing name.
        assert_eq!(o.status.code(), Some(1));
        assert!(
            stderr(&o).contains("No such container: ghost"),
            "{}",
            stderr(&o)
        );
        assert_eq!(env.ok(["ps", "-aq"]).trim(), "");
    }
}

/// `docker run --rm` returns once the container is gone from `ps -a`. A
/// `run --rm` under a monitor (a pty, a timer) whose command ends at once
/// must not have its record written again (the monitor's note that it
/// runs) after its end removed it: such a record was listed until the
/// directory's removal caught up, or for good when the write landed in a
/// directory being removed. One run meets that only now and then, so each
/// way runs many times, each followed by `ps -a`, in four stores at once
/// (two per test user): the contention widens the window.
#[test]
fn a_removed_container_is_not_listed_once_run_returns() {
    const RUNS: usize = 30;
    let envs: Vec<Env> = (0..2)
        .flat_map(|lane| users(&format!("rm_gone{lane}")))
        .collect();
    let failed: Vec<String> = std::thread::scope(|s| {
        let lanes: Vec<_> = envs
            .iter()
            .map(|env| s.spawn(move || removed_once_run_returns(env, RUNS)))
            .collect();
        lanes
            .into_iter()
            .flat_map(|l| l.join().expect("a lane of runs"))
            .collect()
    });
    assert!(
        failed.is_empty(),
        "{} failures:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

/// `runs` of `run --rm -t` and of `run --rm --timeout` in `env`'s store:
/// what went wrong, each run's `ps -a` included.
fn removed_once_run_returns(env: &Env, runs: usize) -> Vec<String> {
    env.import_busybox("busybox");
    let mut failed = Vec::new();
    for how in [&["-t"][..], &["--timeout", "30"][..]] {
        for i in 0..runs {
            // The last run's own code tells it from burrow's.
            let (cmd, want) = if i == runs - 1 {
                ("false", 1)
            } else {
                ("true", 0)
            };
            let args: Vec<&str> = ["run", "--rm"]
                .into_iter()
                .chain(how.iter().copied())
                .chain(["busybox", cmd])
                .collect();
            let o = env.run(&args);
            common::check_removed_run(
                env,
                &o,
                want,
                &format!("{how:?} run {i} ({cmd})"),
                &mut failed,
            );
        }
    }
    failed
}

#[test]
fn a_terminal_without_i_is_still_stdin() {
    // Docker's `run -dt IMG sh`: the shell reads its terminal and waits,
    // instead of reading /dev/null and ending at once; `tty` names it.
    for env in users("tty_no_i") {
        env.import_busybox("busybox");
        env.ok(["run", "-d", "-t", "--name", "shell", "busybox", "sh"]);
        std::thread::sleep(Duration::from_millis(500));
        let c = &json(&env.ok(["inspect", "shell"]))[0];
        assert_eq!(c["State"]["Running"], true, "{}", c["State"]);
        let pid1_stdin = env.ok(["exec", "shell", "readlink", "/proc/1/fd/0"]);
        assert!(
            pid1_stdin.trim().starts_with("/dev/pts/"),
            "PID 1's stdin: {pid1_stdin}"
        );
        env.ok(["rm", "-f", "shell"]);
    }
}

#[test]
fn a_dead_supervisor_never_leaves_a_container_up() {
    let Some(env) = Env::new(Who::Range, "dead_sup").or_else(|| Env::new(Who::Single, "dead_sup"))
    else {
        return;
    };
    env.import_busybox("busybox");
    let mut child = spawn(env.cmd(["run", "--name", "orphan", "busybox", "sleep", "30"]));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !env.ok(["ps"]).contains("orphan") {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(50));
    }
    // SIGKILL the burrow process: its children die with it (parent-death signal).
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while env.ok(["ps"]).contains("orphan") {
        assert!(
            Instant::now() < deadline,
            "container still Up after its supervisor died"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(env.ok(["ps", "-a"]).contains("Exited (137)"));
    env.ok(["rm", "orphan"]);
}

#[test]
fn copy_rootfs_fallback_runs_the_same() {
    for env in users("copy_mode") {
        env.import_busybox("busybox");
        let out = env.ok_with_env(
            "BURROW_ROOTFS",
            "copy",
            [
                "run",
                "--name",
                "copied",
                "busybox",
                "sh",
                "-c",
                "echo hi > /f; cat /f; ls /bin/sh",
            ],
        );
        assert_eq!(out, "hi\n/bin/sh\n");
        let c = &json(&env.ok(["container", "inspect", "copied"]))[0];
        assert_eq!(c["RootfsMode"], "copy");
        let c2 = env.ok(["run", "--name", "overlaid", "busybox", "true"]);
        assert!(c2.is_empty());
        assert_eq!(
            json(&env.ok(["container", "inspect", "overlaid"]))[0]["RootfsMode"],
            "overlay"
        );
        env.ok(["rm", "copied", "overlaid"]);
    }
}

#[test]
fn concurrent_runs_with_one_name_leave_exactly_one_container() {
    let Some(env) = Env::new(Who::Range, "names").or_else(|| Env::new(Who::Single, "names")) else {
        return;
    };
    env.import_busybox("busybox");
    let children: Vec<_> = (0..20)
        .map(|_| spawn(env.cmd(["run", "--name", "same", "busybox", "true"])))
        .collect();
    let outs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let ok = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(ok, 1, "exactly one run wins the name");
    for o in outs.iter().filter(|o| !o.status.success()) {
        assert_eq!(o.status.code(), Some(125));
        assert!(stderr(o).contains("is already in use"), "{}", stderr(o));
    }
    assert_eq!(env.ok(["ps", "-aq"]).lines().count(), 1);
}

#[test]
fn info_reports_the_host_and_completion_prints_scripts() {
    for env in users("info") {
        let j = json(&env.ok(["info", "--format", "json"]));
        assert_eq!(j["UserNamespaces"]["Works"], true, "{j}");
        assert_eq!(
            j["IdMapping"]["Mode"],
            if env.who == Who::Range {
                "range"
            } else {
                "single"
            }
        );
        assert_eq!(j["Rootfs"], "overlay");
        assert!(["v1", "v2", "hybrid"].contains(&j["Cgroup"]["mode"].as_str().unwrap()));
        assert_eq!(j["Store"], env.root.to_str().unwrap());
        let text = env.ok(["info"]);
        assert!(text.contains("User namespaces:   work"), "{text}");
    }
    let env = users("completion").into_iter().next().unwrap();
    for sh in ["bash", "zsh", "fish"] {
        assert!(env.ok(["completion", sh]).contains("burrow"), "{sh}");
    }
    let help = env.ok(["run", "--help"]);
    assert!(help.contains("Examples:"), "{help}");
}

#[test]
fn container_root_keeps_only_dockers_default_capabilities() {
    for env in users("caps") {
        env.import_busybox("busybox");
        let caps = |args: &[&str]| {
            let mut full = vec!["run", "--rm"];
            full.extend(args);
            full.extend(["busybox", "sh", "-c", "grep -E '^Cap(Eff|Bnd)' /proc/self/status | tr -s '\\t' ' '; mkdir -p /m; mount -t tmpfs none /m 2>/dev/null && echo mounted || echo no-mount"]);
            env.ok(&full)
        };
        // Docker's default set: a80425fb, in the bounding set too; no mounts.
        assert_eq!(
            caps(&[]),
            "CapEff: 00000000a80425fb\nCapBnd: 00000000a80425fb\nno-mount\n"
        );
        assert!(caps(&["--cap-add", "SYS_ADMIN"]).ends_with("mounted\n"));
        assert!(caps(&["--cap-drop", "ALL"]).starts_with("CapEff: 0000000000000000\n"));
        // seccomp: no new user namespaces inside (Docker's profile does the
        // same), unless unconfined or CAP_SYS_ADMIN was granted.
        let userns = |args: &[&str]| {
            let mut full = vec!["run", "--rm"];
            full.extend(args);
            full.extend(["busybox", "sh", "-c", "grep Seccomp: /proc/self/status | tr -d '\\t'; unshare -U true 2>/dev/null && echo userns || echo no-userns"]);
            env.ok(&full)
        };
        assert_eq!(userns(&[]), "Seccomp:2\nno-userns\n");
        assert_eq!(
            userns(&["--security-opt", "seccomp=unconfined"]),
            "Seccomp:0\nuserns\n"
        );
        assert_eq!(userns(&["--cap-add", "SYS_ADMIN"]), "Seccomp:2\nuserns\n");
        assert_eq!(
            env.run([
                "run",
                "--rm",
                "--security-opt",
                "apparmor=x",
                "busybox",
                "true"
            ])
            .status
            .code(),
            Some(125)
        );
        let o = env.run(["run", "--rm", "--cap-add", "NOPE", "busybox", "true"]);
        assert_eq!(o.status.code(), Some(125));
        assert!(stderr(&o).contains("unknown capability"), "{}", stderr(&o));
    }
}
