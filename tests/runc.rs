//! burrow as an OCI runtime under a real engine: Debian's rootless podman,
//! through conmon, with `--runtime` pointing at a `burrow-runc` link to the
//! built binary, as the unprivileged test users. Images come from the
//! busybox tarball the harness builds; nothing leaves loopback
//! (`--network none`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::podman::{chown, have_podman, Podman};
use common::{stderr, stdout, Env, Who};

#[test]
fn version_and_missing_containers_speak_runcs_words() {
    let Some(env) = Env::new(Who::Range, "runc-words") else {
        return;
    };
    let pm = Podman::new(&env);
    let o = pm.runtime(&["--version"]);
    assert!(o.status.success());
    let lines: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].starts_with("runc version "), "{lines:?}");
    assert!(lines[1].starts_with("commit: "), "{lines:?}");
    assert!(lines[2].starts_with("spec: "), "{lines:?}");
    for verb in [
        &["state", "nope"][..],
        &["kill", "nope", "KILL"],
        &["delete", "nope"],
        &["start", "nope"],
    ] {
        let o = pm.runtime(verb);
        assert_eq!(o.status.code(), Some(1), "{verb:?}");
        assert!(
            stderr(&o).contains("container \"nope\" does not exist"),
            "{verb:?}: {}",
            stderr(&o)
        );
    }
    // An engine cleaning up after a failed create: nothing to do.
    let o = pm.runtime(&["delete", "--force", "nope"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = pm.runtime(&["features"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["linux"]["seccomp"]["enabled"], true);
}

#[test]
fn podman_runs_containers_through_conmon_and_burrow_runc() {
    if !have_podman("podman_runs_containers_through_conmon_and_burrow_runc") {
        return;
    }
    for env in common::users("runc-podman") {
        let who = env.who;
        let pm = Podman::new(&env);
        pm.ok(&[
            "import",
            "--change",
            "CMD [\"sh\"]",
            env.busybox_tar().to_str().unwrap(),
            "localhost/bb:1",
        ]);
        let run = |extra: &[&str]| {
            let mut a = vec!["run", "--rm", "--network", "none"];
            a.extend_from_slice(extra);
            pm.run(&a)
        };

        // run --rm, the output and exit code through conmon.
        let o = run(&["localhost/bb:1", "echo", "hi"]);
        assert_eq!(o.status.code(), Some(0), "[{who:?}] {}", stderr(&o));
        assert_eq!(stdout(&o), "hi\n", "[{who:?}]");
        let o = run(&["localhost/bb:1", "sh", "-c", "exit 3"]);
        assert_eq!(o.status.code(), Some(3), "[{who:?}] {}", stderr(&o));

        // -e and -w; the bundle's hostname, caps and sysctl took effect.
        let o = run(&[
            "-e",
            "FOO=bar",
            "-w",
            "/tmp",
            "--hostname",
            "boxy",
            "localhost/bb:1",
            "sh",
            "-c",
            "echo $FOO $(pwd) $(hostname) $(id -u); grep CapBnd /proc/self/status; \
             cat /proc/sys/net/ipv4/ping_group_range; \
             grep -cE ' /proc/(keys|timer_list) ' /proc/self/mountinfo; \
             (echo x > /proc/sys/kernel/hostname) 2>/dev/null || echo read-only",
        ]);
        assert_eq!(o.status.code(), Some(0), "[{who:?}] {}", stderr(&o));
        let out = stdout(&o);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "bar /tmp boxy 0", "[{who:?}] {out}");
        // podman's default set, not everything root of the namespace holds.
        assert_eq!(lines[1], "CapBnd:\t00000000800405fb", "[{who:?}] {out}");
        assert_eq!(lines[2].split_whitespace().collect::<Vec<_>>(), ["0", "0"]);
        // podman's masked paths (those this kernel has) and read-only ones.
        assert_eq!(
            lines[3], "2",
            "[{who:?}] /proc/keys and timer_list masked: {out}"
        );
        assert_eq!(lines.get(4), Some(&"read-only"), "[{who:?}] {out}");

        // Another user: mapped with a subuid range; without one, refused
        // at create with the reason.
        let o = run(&["-u", "1000:1000", "localhost/bb:1", "id", "-u"]);
        if who == Who::Range {
            assert_eq!(o.status.code(), Some(0), "[{who:?}] {}", stderr(&o));
            assert_eq!(stdout(&o), "1000\n", "[{who:?}]");
            // --cap-add for a non-root user: podman asks for it in every
            // set, ambient included, so it survives exec.
            let o = run(&[
                "-u",
                "1000",
                "--cap-add",
                "net_bind_service",
                "localhost/bb:1",
                "grep",
                "-E",
                "CapEff|CapAmb",
                "/proc/self/status",
            ]);
            assert_eq!(
                stdout(&o),
                "CapEff:\t0000000000000400\nCapAmb:\t0000000000000400\n",
                "[{who:?}] {}",
                stderr(&o)
            );
        } else {
            assert_eq!(o.status.code(), Some(126), "[{who:?}] {}", stderr(&o));
            assert!(
                stderr(&o).contains("not mapped"),
                "[{who:?}] {}",
                stderr(&o)
            );
        }

        // A missing command: podman's 127 and runc's words.
        let o = run(&["localhost/bb:1", "nosuchcmd"]);
        assert_eq!(o.status.code(), Some(127), "[{who:?}] {}", stderr(&o));
        assert!(
            stderr(&o).contains("executable file not found in $PATH"),
            "[{who:?}] {}",
            stderr(&o)
        );

        // -t: the pty comes over conmon's console socket.
        let o = run(&["-t", "localhost/bb:1", "tty"]);
        assert_eq!(o.status.code(), Some(0), "[{who:?}] {}", stderr(&o));
        assert!(
            stdout(&o).trim().starts_with("/dev/pts/"),
            "[{who:?}] {}",
            stdout(&o)
        );

        // run -d, exec, stop, rm.
        let id = pm
            .ok(&[
                "run",
                "-d",
                "--network",
                "none",
                "--name",
                "bg1",
                "localhost/bb:1",
                "sleep",
                "1000",
            ])
            .trim()
            .to_string();
        let st = pm.runtime(&["state", &id]);
        assert!(st.status.success(), "[{who:?}] {}", stderr(&st));
        let state: serde_json::Value = serde_json::from_str(&stdout(&st)).unwrap();
        assert_eq!(state["status"], "running", "[{who:?}] {state}");
        assert!(state["pid"].as_i64().unwrap() > 0);
        let o = pm.ok(&[
            "exec",
            "bg1",
            "sh",
            "-c",
            "cat /proc/1/cmdline; echo; echo $$",
        ]);
        let lines: Vec<&str> = o.lines().collect();
        assert_eq!(lines[0], "sleep\x001000\x00", "[{who:?}] {o:?}");
        assert_ne!(lines[1], "1", "[{who:?}] exec'd shell is not PID 1");
        let o = pm.run(&[
            "exec",
            "-e",
            "X=7",
            "-w",
            "/etc",
            "bg1",
            "sh",
            "-c",
            "echo $X $(pwd); exit 5",
        ]);
        assert_eq!(o.status.code(), Some(5), "[{who:?}] {}", stderr(&o));
        assert_eq!(stdout(&o), "7 /etc\n", "[{who:?}]");
        let o = pm.run(&["exec", "-t", "bg1", "tty"]);
        assert!(
            stdout(&o).starts_with("/dev/pts/"),
            "[{who:?}] {}",
            stderr(&o)
        );
        let o = pm.run(&["exec", "bg1", "nosuchcmd"]);
        assert_eq!(o.status.code(), Some(127), "[{who:?}] {}", stderr(&o));
        // sleep as PID 1 ignores SIGTERM: stop ends it with SIGKILL.
        pm.ok(&["stop", "-t", "1", "bg1"]);
        let o = pm.ok(&[
            "inspect",
            "bg1",
            "--format",
            "{{.State.ExitCode}} {{.State.Status}}",
        ]);
        assert_eq!(o.trim(), "137 exited", "[{who:?}]");
        let st = pm.runtime(&["state", &id]);
        assert!(
            !st.status.success() || stdout(&st).contains("\"stopped\""),
            "[{who:?}] {}",
            stdout(&st)
        );
        pm.ok(&["rm", "bg1"]);
        // The name is not hex, so it can only match by name, never as the
        // prefix of some other container's or image's random id.
        let o = pm.run(&["container", "inspect", "bg1"]);
        assert!(
            !o.status.success(),
            "[{who:?}] bg1 is still there: {}",
            stdout(&o)
        );
        let left = std::fs::read_dir(pm.xdg().join("burrow-runc"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(left, 0, "[{who:?}] runtime state left behind");
    }
}

/// A bundle of the busybox image for `who`, asking for a user namespace of
/// its own mapped from the bundle (the path podman's default does not
/// take): the test user's own id as root, plus its subuid range if it has
/// one (written through newuidmap/newgidmap).
fn userns_bundle(env: &Env, args: &[&str]) -> PathBuf {
    let bundle = env.user_dir("bundle");
    let rootfs = bundle.join("rootfs");
    let _ = std::fs::remove_dir_all(&rootfs);
    std::fs::create_dir_all(&rootfs).unwrap();
    let (uid, gid) = env.ids();
    chown(&rootfs, uid, gid);
    let mut tar = Command::new("tar");
    tar.arg("-xf").arg(env.busybox_tar()).arg("-C").arg(&rootfs);
    if nix::unistd::Uid::effective().is_root() {
        use std::os::unix::process::CommandExt;
        tar.uid(uid).gid(gid);
    }
    assert!(tar.status().unwrap().success());
    let map = |own: u32| {
        let mut m = vec![serde_json::json!({"containerID": 0, "hostID": own, "size": 1})];
        if env.who == Who::Range {
            m.push(serde_json::json!({"containerID": 1, "hostID": 400000, "size": 65536}));
        }
        m
    };
    let config = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/bin:/usr/bin"],
            "cwd": "/",
            "capabilities": {"bounding": ["CAP_KILL", "CAP_CHOWN"]},
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "inside",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "nodev", "mode=1777"]}
        ],
        "linux": {
            "namespaces": [{"type": "user"}, {"type": "mount"}, {"type": "pid"},
                           {"type": "uts"}, {"type": "ipc"}, {"type": "network"}],
            "uidMappings": map(uid),
            "gidMappings": map(gid),
            "maskedPaths": ["/proc/keys"],
            "readonlyPaths": ["/proc/sys"],
            "cgroupsPath": "/burrow-runc-test",
            "resources": {"pids": {"limit": 100}}
        }
    });
    std::fs::write(bundle.join("config.json"), config.to_string()).unwrap();
    env.share(&bundle.join("config.json"));
    bundle
}

/// Bundles other runtimes' `spec --rootless` write run as they are:
/// runc's lists ambient capabilities with no inheritable set (runc leaves
/// those out, and so does burrow), crun's has no id mappings (root is the
/// caller, as crun makes it).
#[test]
fn bundles_from_runc_and_crun_spec_rootless_run() {
    let generators: Vec<&str> = ["runc", "crun"]
        .into_iter()
        .filter(|g| {
            let found = Command::new(g)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success());
            if !found {
                common::loud(&format!(
                    "SKIPPED bundles from `{g} spec --rootless`: {g} is not installed (apt-get install {g})"
                ));
            }
            found
        })
        .collect();
    for env in common::users("runc-spec") {
        let who = env.who;
        let pm = Podman::new(&env);
        let state_root = env.user_dir("spec-root");
        for gen in &generators {
            let bundle = userns_bundle(&env, &["true"]);
            std::fs::remove_file(bundle.join("config.json")).unwrap();
            let mut c = pm.base(Path::new(gen));
            c.args(["spec", "--rootless"]).current_dir(&bundle);
            let o = c.output().unwrap();
            assert!(o.status.success(), "[{who:?}] {gen} spec: {}", stderr(&o));
            let path = bundle.join("config.json");
            let mut config: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            config["process"]["terminal"] = false.into();
            config["process"]["args"] = serde_json::json!([
                "sh",
                "-c",
                "echo $(id -u) $(hostname); grep CapAmb /proc/self/status"
            ]);
            std::fs::write(&path, config.to_string()).unwrap();
            env.share(&path);
            let id = format!("spec-{gen}");
            let o = pm.runtime(&[
                "--root",
                state_root.to_str().unwrap(),
                "run",
                "--bundle",
                bundle.to_str().unwrap(),
                &id,
            ]);
            assert!(
                o.status.success(),
                "[{who:?}] a `{gen} spec --rootless` bundle: {}",
                stderr(&o)
            );
            let out = stdout(&o);
            assert!(
                out.starts_with("0 ") && out.contains("CapAmb:\t0000000000000000"),
                "[{who:?}] {gen}'s bundle runs as root of its namespace, no ambient capabilities: {out}"
            );
        }
    }
}

/// `burrow bundle IMAGE DIR` writes a bundle that burrow-runc and runc
/// itself run as they are, as both test users; a second bundle into the
/// same directory, and one of an image that does not exist, are refused.
#[test]
fn burrow_bundle_writes_a_bundle_runc_runs() {
    let have_runc = Command::new("runc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_runc {
        common::loud("SKIPPED running `burrow bundle`'s bundle with runc: runc is not installed (apt-get install runc)");
    }
    for env in common::users("bundle") {
        let who = env.who;
        env.import_busybox("busybox");
        let pm = Podman::new(&env);
        let dir = env.user_dir("made").join("bb");
        let out = env.ok(["bundle", "busybox", dir.to_str().unwrap()]);
        assert_eq!(out.trim(), dir.to_str().unwrap(), "[{who:?}]");
        assert!(dir.join("rootfs/bin/busybox").is_file(), "[{who:?}]");
        let path = dir.join("config.json");
        let mut config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            config["process"]["args"],
            serde_json::json!(["sh"]),
            "[{who:?}] the image's Cmd"
        );
        let lines = if who == Who::Range { 2 } else { 1 };
        assert_eq!(
            config["linux"]["uidMappings"].as_array().unwrap().len(),
            lines,
            "[{who:?}] {}",
            config["linux"]
        );
        config["process"]["args"] = serde_json::json!([
            "sh",
            "-c",
            "echo $(id -u) $(hostname) $(wc -l < /proc/self/uid_map)"
        ]);
        std::fs::write(&path, config.to_string()).unwrap();
        env.share(&path);
        let want = format!("0 burrow {lines}\n");
        let state_root = env.user_dir("bundle-state");
        let o = pm.runtime(&[
            "--root",
            state_root.to_str().unwrap(),
            "run",
            "--bundle",
            dir.to_str().unwrap(),
            "made-bb",
        ]);
        assert!(o.status.success(), "[{who:?}] burrow-runc: {}", stderr(&o));
        assert_eq!(stdout(&o), want, "[{who:?}] burrow-runc");
        if have_runc {
            let runc_root = env.user_dir("bundle-runc");
            let mut c = pm.base(Path::new("runc"));
            c.args(["--root", runc_root.to_str().unwrap(), "run", "--bundle"])
                .arg(&dir)
                .arg("made-bb-runc");
            let o = c.output().unwrap();
            assert!(o.status.success(), "[{who:?}] runc: {}", stderr(&o));
            assert_eq!(stdout(&o), want, "[{who:?}] runc");
        }
        let o = env.run(["bundle", "busybox", dir.to_str().unwrap()]);
        assert_eq!(
            o.status.code(),
            Some(125),
            "[{who:?}] a bundle into a full directory"
        );
        assert!(
            stderr(&o).contains("is not empty"),
            "[{who:?}] {}",
            stderr(&o)
        );
        let o = env.run([
            "bundle",
            "no-such-image",
            env.user_dir("made").join("x").to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(1), "[{who:?}] {}", stderr(&o));
        assert!(
            !env.user_dir("made").join("x").exists(),
            "[{who:?}] nothing written for a missing image"
        );
    }
}

#[test]
fn burrow_runc_lifecycle_with_a_user_namespace_from_the_bundle() {
    for env in common::users("runc-userns") {
        let who = env.who;
        let pm = Podman::new(&env);
        let state_root = env.user_dir("runc-root");
        let root = state_root.to_str().unwrap();
        let bundle = userns_bundle(
            &env,
            &[
                "sh",
                "-c",
                "echo $(id -u) $(hostname) $(wc -l < /proc/self/uid_map); exec sleep 1000",
            ],
        );
        let b = bundle.to_str().unwrap();

        // create: init waits; its stdio is ours (a file here).
        let out_path = env.user_dir("out").join("c1.out");
        let out = std::fs::File::create(&out_path).unwrap();
        chown(&out_path, env.ids().0, env.ids().1);
        let pid_file = env.user_dir("out").join("c1.pid");
        let mut c = pm.base(&pm.runtime);
        c.args(["--root", root, "create", "--bundle", b, "--pid-file"])
            .arg(&pid_file)
            .arg("c1")
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        let st = c.status().unwrap();
        assert!(
            st.success(),
            "[{who:?}] create: {}",
            std::fs::read_to_string(&out_path).unwrap()
        );
        let state = |id: &str| {
            let o = pm.runtime(&["--root", root, "state", id]);
            assert!(o.status.success(), "[{who:?}] {}", stderr(&o));
            serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap()
        };
        let s = state("c1");
        assert_eq!(s["status"], "created", "[{who:?}] {s}");
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        assert_eq!(s["pid"].as_i64().unwrap().to_string(), pid, "[{who:?}]");
        // Nothing ran before start.
        assert_eq!(std::fs::read_to_string(&out_path).unwrap(), "", "[{who:?}]");

        let o = pm.runtime(&["--root", root, "start", "c1"]);
        assert!(o.status.success(), "[{who:?}] {}", stderr(&o));
        assert_eq!(state("c1")["status"], "running");
        let lines = if who == Who::Range { 2 } else { 1 };
        common::wait_until("init's output", std::time::Duration::from_secs(10), || {
            std::fs::read_to_string(&out_path).unwrap() == format!("0 inside {lines}\n")
        });

        // exec joins the bundle's user namespace and the others.
        let o = pm.runtime(&[
            "--root",
            root,
            "exec",
            "c1",
            "sh",
            "-c",
            "echo $(id -u) $(hostname); grep -c ' /proc/keys ' /proc/self/mountinfo; \
             touch /x 2>/dev/null || echo read-only root",
        ]);
        assert!(o.status.success(), "[{who:?}] {}", stderr(&o));
        assert_eq!(stdout(&o), "0 inside\n1\nread-only root\n", "[{who:?}]");
        let o = pm.runtime(&["--root", root, "exec", "c1", "sh", "-c", "exit 7"]);
        assert_eq!(o.status.code(), Some(7), "[{who:?}] {}", stderr(&o));

        // A running container is not deleted without --force.
        let o = pm.runtime(&["--root", root, "delete", "c1"]);
        assert_eq!(o.status.code(), Some(1));
        assert!(
            stderr(&o).contains("not stopped"),
            "[{who:?}] {}",
            stderr(&o)
        );
        let o = pm.runtime(&["--root", root, "kill", "c1", "9"]);
        assert!(o.status.success(), "[{who:?}] {}", stderr(&o));
        common::wait_until("init to die", std::time::Duration::from_secs(10), || {
            state("c1")["status"] == "stopped"
        });
        let o = pm.runtime(&["--root", root, "delete", "c1"]);
        assert!(o.status.success(), "[{who:?}] {}", stderr(&o));
        let o = pm.runtime(&["--root", root, "state", "c1"]);
        assert!(stderr(&o).contains("does not exist"), "[{who:?}]");

        // run in the foreground: we are the subreaper and get the exit code.
        let bundle = userns_bundle(&env, &["sh", "-c", "exit 3"]);
        let o = pm.runtime(&[
            "--root",
            root,
            "--debug",
            "run",
            "--bundle",
            bundle.to_str().unwrap(),
            "c2",
        ]);
        assert_eq!(o.status.code(), Some(3), "[{who:?}] {}", stderr(&o));
        // Rootless without delegation, cgroups are left alone, and --debug
        // says so.
        assert!(
            stderr(&o).contains("cgroupsPath /burrow-runc-test and linux.resources ignored"),
            "[{who:?}] {}",
            stderr(&o)
        );
        let o = pm.runtime(&["--root", root, "list", "-q"]);
        assert_eq!(stdout(&o), "", "[{who:?}] run removes its container");

        // spec --rootless writes a config that runs as it is (but for the
        // command and the terminal).
        std::fs::remove_file(bundle.join("config.json")).unwrap();
        let o = pm.runtime(&["spec", "--rootless", "--bundle", bundle.to_str().unwrap()]);
        assert!(o.status.success(), "[{who:?}] {}", stderr(&o));
        let path = bundle.join("config.json");
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        v["process"]["args"] =
            serde_json::json!(["sh", "-c", "exit $(wc -l < /proc/self/uid_map)"]);
        v["process"]["terminal"] = serde_json::json!(false);
        std::fs::write(&path, v.to_string()).unwrap();
        let o = pm.runtime(&[
            "--root",
            root,
            "run",
            "--bundle",
            bundle.to_str().unwrap(),
            "c3",
        ]);
        assert_eq!(o.status.code(), Some(1), "[{who:?}] {}", stderr(&o));
    }
}

/// A busybox bundle for `who` (see `userns_bundle`) running `args`, its
/// config changed by `edit` (given the config and the rootfs), run in the
/// foreground under `root`.
fn run_edited(
    env: &Env,
    pm: &Podman,
    id: &str,
    args: &[&str],
    edit: impl FnOnce(&mut serde_json::Value, &Path),
) -> std::process::Output {
    let bundle = userns_bundle(env, args);
    let path = bundle.join("config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut v, &bundle.join("rootfs"));
    std::fs::write(&path, v.to_string()).unwrap();
    let root = env.user_dir("edited-root");
    pm.runtime(&[
        "--root",
        root.to_str().unwrap(),
        "run",
        "--bundle",
        bundle.to_str().unwrap(),
        id,
    ])
}

/// `create` with its output in a file: init inherits stdout and stderr,
/// so a pipe would stay open until the container ends.
fn create_quiet(env: &Env, pm: &Podman, root: &str, bundle: &Path, id: &str) {
    let out_path = env.user_dir("out").join(format!("{id}.create"));
    let out = std::fs::File::create(&out_path).unwrap();
    chown(&out_path, env.ids().0, env.ids().1);
    let mut c = pm.base(&pm.runtime);
    c.args(["--root", root, "create", "--bundle"])
        .arg(bundle)
        .arg(id)
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    let st = c.status().unwrap();
    assert!(
        st.success(),
        "[{:?}] create {id}: {}",
        env.who,
        std::fs::read_to_string(&out_path).unwrap()
    );
}

/// A path in the rootfs made as the test user would own it.
fn own(env: &Env, p: &Path) {
    chown(p, env.ids().0, env.ids().1);
}

/// A bundle that mounts no /proc is created and started: init waits on
/// the FIFO's descriptor `create` opened, never reopening it through
/// /proc. A container whose init died before `start` fails the start.
#[test]
fn a_bundle_without_proc_is_created_and_started() {
    for env in common::users("runc-noproc") {
        let who = env.who;
        let pm = Podman::new(&env);
        let o = run_edited(
            &env,
            &pm,
            "noproc",
            &[
                "sh",
                "-c",
                "echo started; test -e /proc/self || echo no-proc",
            ],
            |v, _| {
                let m = v["mounts"].as_array_mut().unwrap();
                m.retain(|m| m["destination"] != "/proc");
            },
        );
        assert_eq!(o.status.code(), Some(0), "[{who:?}] {}", stderr(&o));
        assert_eq!(stdout(&o), "started\nno-proc\n", "[{who:?}]");

        let root = env.user_dir("noproc-root");
        let root = root.to_str().unwrap();
        let bundle = userns_bundle(&env, &["true"]);
        create_quiet(&env, &pm, root, &bundle, "dies");
        let o = pm.runtime(&["--root", root, "kill", "dies", "KILL"]);
        assert!(o.status.success(), "[{who:?}] {}", stderr(&o));
        common::wait_until("init to die", std::time::Duration::from_secs(10), || {
            let o = pm.runtime(&["--root", root, "state", "dies"]);
            stdout(&o).contains("\"stopped\"")
        });
        let o = pm.runtime(&["--root", root, "start", "dies"]);
        assert_eq!(o.status.code(), Some(1), "[{who:?}]");
        assert!(stderr(&o).contains("stopped"), "[{who:?}] {}", stderr(&o));
        let o = pm.runtime(&["--root", root, "delete", "dies"]);
        assert!(o.status.success(), "[{who:?}] {}", stderr(&o));
    }
}

/// A bundle's tmpfs without `mode=` keeps the mode of the directory it
/// covers (runc's and crun's); over a directory that was not there it has
/// tmpfs's 1777, and an explicit mode wins.
#[test]
fn a_bundle_tmpfs_without_mode_keeps_its_mount_points_mode() {
    use std::os::unix::fs::PermissionsExt;
    for env in common::users("runc-tmpfs-mode") {
        let who = env.who;
        let pm = Podman::new(&env);
        let o = run_edited(
            &env,
            &pm,
            "tmode",
            &["stat", "-c", "%a", "/kept", "/fresh", "/given"],
            |v, rootfs| {
                for d in ["kept", "given"] {
                    let p = rootfs.join(d);
                    std::fs::create_dir(&p).unwrap();
                    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o712)).unwrap();
                    own(&env, &p);
                }
                let m = v["mounts"].as_array_mut().unwrap();
                for (d, opts) in [
                    ("/kept", serde_json::json!(["ro"])),
                    ("/fresh", serde_json::json!([])),
                    ("/given", serde_json::json!(["mode=700"])),
                ] {
                    m.push(serde_json::json!({"destination": d, "type": "tmpfs",
                        "source": "tmpfs", "options": opts}));
                }
            },
        );
        assert_eq!(o.status.code(), Some(0), "[{who:?}] {}", stderr(&o));
        assert_eq!(stdout(&o), "712\n1777\n700\n", "[{who:?}]");
    }
}

/// crun's symlink options on binds: `src-nofollow` binds a source symlink
/// itself, `dest-nofollow` mounts over a target symlink instead of where
/// it points, `copy-symlink` makes the source's link again at the target
/// with nothing mounted. A target on procfs stays refused, and
/// `copy-symlink` with either nofollow is an error.
#[test]
fn bundle_binds_treat_symlinks_as_crun_options_say() {
    for env in common::users("runc-symlinks") {
        let who = env.who;
        let pm = Podman::new(&env);
        let host = env.user_dir("symlink-src");
        let file = host.join("f");
        std::fs::write(&file, "inside\n").unwrap();
        env.share(&file);
        let link = host.join("l");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let link_s = link.to_str().unwrap().to_string();
        let bind = |dest: &str, opts: &[&str]| {
            serde_json::json!({"destination": dest, "type": "bind", "source": link_s,
                "options": opts})
        };
        let o = run_edited(
            &env,
            &pm,
            "links",
            &[
                "sh",
                "-c",
                "readlink /t1; cat /t2; readlink /t3; grep -c ' /t3 ' /proc/self/mountinfo",
            ],
            |v, rootfs| {
                for t in ["t1", "t2"] {
                    std::os::unix::fs::symlink("nowhere", rootfs.join(t)).unwrap();
                }
                let m = v["mounts"].as_array_mut().unwrap();
                m.push(bind("/t1", &["bind", "src-nofollow", "dest-nofollow"]));
                m.push(bind("/t2", &["bind", "dest-nofollow"]));
                m.push(bind("/t3", &["rbind", "copy-symlink"]));
            },
        );
        let want = format!("{0}\ninside\n{0}\n0\n", file.display());
        assert_eq!(stdout(&o), want, "[{who:?}] {}", stderr(&o));

        let o = run_edited(&env, &pm, "links2", &["true"], |v, _| {
            let m = v["mounts"].as_array_mut().unwrap();
            m.push(bind(
                "/proc/self",
                &["bind", "src-nofollow", "dest-nofollow"],
            ));
        });
        assert_eq!(o.status.code(), Some(1), "[{who:?}]");
        assert!(
            stderr(&o).contains("a mount over procfs is refused"),
            "[{who:?}] {}",
            stderr(&o)
        );
        let o = run_edited(&env, &pm, "links3", &["true"], |v, _| {
            let m = v["mounts"].as_array_mut().unwrap();
            m.push(bind("/t4", &["bind", "copy-symlink", "src-nofollow"]));
        });
        assert_eq!(o.status.code(), Some(1), "[{who:?}]");
        assert!(stderr(&o).contains("excludes"), "[{who:?}] {}", stderr(&o));
    }
}

/// `delete --regex`: every container whose id matches goes, the others
/// stay; a bad expression is an error.
#[test]
fn delete_regex_deletes_every_matching_container() {
    for env in common::users("runc-regex") {
        let who = env.who;
        let pm = Podman::new(&env);
        let root = env.user_dir("regex-root");
        let root = root.to_str().unwrap();
        let bundle = userns_bundle(&env, &["true"]);
        for id in ["rx-a", "rx-b", "keep-rx"] {
            create_quiet(&env, &pm, root, &bundle, id);
        }
        let o = pm.runtime(&["--root", root, "delete", "--regex", "^rx-"]);
        assert!(o.status.success(), "[{who:?}] {}", stderr(&o));
        let o = pm.runtime(&["--root", root, "list", "-q"]);
        assert_eq!(stdout(&o), "keep-rx\n", "[{who:?}]");
        let o = pm.runtime(&["--root", root, "delete", "-r", "("]);
        assert_eq!(o.status.code(), Some(1), "[{who:?}]");
        assert!(
            stderr(&o).contains("invalid regular expression"),
            "[{who:?}] {}",
            stderr(&o)
        );
        let o = pm.runtime(&["--root", root, "delete", "-f", "keep-rx"]);
        assert!(o.status.success(), "[{who:?}] {}", stderr(&o));
    }
}

/// Socket activation passes through: with the caller's `LISTEN_FDS` (and
/// no `LISTEN_PID` naming another process) the container gets the sockets
/// at 3.., `LISTEN_FDS` and `LISTEN_PID=1`.
#[test]
fn socket_activation_reaches_the_containers_pid_1() {
    for env in common::users("runc-listen") {
        let who = env.who;
        let pm = Podman::new(&env);
        let sock = env.user_dir("listen").join("fd3");
        std::fs::write(&sock, "from fd 3\n").unwrap();
        env.share(&sock);
        let bundle = userns_bundle(
            &env,
            &["sh", "-c", "echo \"$LISTEN_FDS $LISTEN_PID\"; cat <&3"],
        );
        let root = env.user_dir("listen-root");
        let run = |listen_pid: Option<&str>, id: &str| {
            // fd 3 is opened by a shell that then execs the runtime.
            let mut c = pm.base(Path::new("/bin/sh"));
            c.args(["-c", "exec 3<\"$F\" && exec \"$@\"", "sh"])
                .arg(&pm.runtime)
                .args(["--root", root.to_str().unwrap(), "run", "--bundle"])
                .arg(&bundle)
                .arg(id)
                .env("F", &sock)
                .env("LISTEN_FDS", "1");
            if let Some(p) = listen_pid {
                c.env("LISTEN_PID", p);
            }
            c.output().unwrap()
        };
        let o = run(None, "listen1");
        assert_eq!(o.status.code(), Some(0), "[{who:?}] {}", stderr(&o));
        assert_eq!(stdout(&o), "1 1\nfrom fd 3\n", "[{who:?}]");
        // For another process: not ours to pass on.
        let o = run(Some("1"), "listen2");
        assert!(
            stdout(&o).starts_with(" \n"),
            "[{who:?}] {} {}",
            stdout(&o),
            stderr(&o)
        );
    }
}

/// `run.oci.seccomp_fail_unknown_syscall` (crun's annotation) refuses a
/// profile naming a syscall no architecture has; without it the name is
/// skipped.
#[test]
fn an_annotation_makes_an_unknown_syscall_an_error() {
    for env in common::users("runc-unknown-syscall") {
        let who = env.who;
        let pm = Podman::new(&env);
        let seccomp = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["no_such_call_12345"], "action": "SCMP_ACT_ERRNO"}]});
        let s = seccomp.clone();
        let o = run_edited(&env, &pm, "lenient", &["true"], move |v, _| {
            v["linux"]["seccomp"] = s;
        });
        assert_eq!(o.status.code(), Some(0), "[{who:?}] {}", stderr(&o));
        let o = run_edited(&env, &pm, "strict", &["true"], move |v, _| {
            v["linux"]["seccomp"] = seccomp;
            v["annotations"] = serde_json::json!({"run.oci.seccomp_fail_unknown_syscall": "1"});
        });
        assert_eq!(o.status.code(), Some(1), "[{who:?}]");
        assert!(
            stderr(&o).contains("unknown syscall \"no_such_call_12345\""),
            "[{who:?}] {}",
            stderr(&o)
        );
    }
}

/// Usage lines and the version line name the program as it was called
/// (a `crun` link is what podman runs first); every verb has `--help`,
/// and crun's `mounts` verb is refused with the reason.
#[test]
fn usage_and_version_name_the_program_as_called() {
    for env in common::users("runc-usage") {
        let who = env.who;
        let pm = Podman::new(&env);
        let crun = env.user_dir("bin").join("crun");
        let _ = std::fs::remove_file(&crun);
        std::os::unix::fs::symlink(env.shared_dir().join("burrow"), &crun).unwrap();
        let as_crun = |args: &[&str]| {
            let mut c = pm.base(&crun);
            c.args(args);
            c.output().unwrap()
        };
        let o = as_crun(&["--version"]);
        assert!(stdout(&o).starts_with("crun version "), "[{who:?}]");
        for (verb, usage) in [
            ("delete", "Usage: crun [OPTION...] delete CONTAINER"),
            ("exec", "Usage: crun [OPTION...] exec CONTAINER cmd"),
            ("start", "Usage: crun [OPTION...] start CONTAINER"),
            (
                "mounts",
                "Usage: crun [OPTION...] mounts [add|remove] CONTAINER FILE",
            ),
        ] {
            let o = as_crun(&[verb, "--help"]);
            assert!(o.status.success(), "[{who:?}] {verb}");
            assert!(stdout(&o).contains(usage), "[{who:?}] {}", stdout(&o));
        }
        let o = pm.runtime(&["kill", "--help"]);
        assert!(
            stdout(&o).contains("Usage: burrow-runc [OPTION...] kill CONTAINER [SIGNAL]"),
            "[{who:?}] {}",
            stdout(&o)
        );
        let root = env.user_dir("usage-root");
        let bundle = userns_bundle(&env, &["true"]);
        let r = root.to_str().unwrap();
        create_quiet(&env, &pm, r, &bundle, "m");
        let o = as_crun(&["--root", r, "mounts", "add", "m", "/dev/null"]);
        assert_eq!(o.status.code(), Some(1), "[{who:?}]");
        assert!(
            stderr(&o).contains("mounts is not supported by burrow"),
            "[{who:?}] {}",
            stderr(&o)
        );
        let o = pm.runtime(&["--root", r, "delete", "-f", "m"]);
        assert!(o.status.success(), "[{who:?}] {}", stderr(&o));
    }
}
