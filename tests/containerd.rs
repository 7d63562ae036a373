//! burrow as the runtime of a rootless containerd (Debian's 1.6): the test
//! starts containerd under rootlesskit as the unprivileged test user, and
//! `ctr` drives containerd's runc shim (`containerd-shim-runc-v2`), which
//! runs burrow-runc: named with `ctr run --runc-binary`, and as `runc`
//! first on the daemon's PATH (the shim's default runtime). Nothing is
//! pulled: the image is burrow's busybox, saved and imported. The verbs
//! ctr 1.6 cannot reach (`update`; `restore`) are run as the shim runs
//! them, with its flags, its `--log` JSON file and the resources on stdin.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::podman::{chown, Podman};
use common::{stderr, stdout, Env, Who};

const IMAGE: &str = "localhost/ctd-busybox:1";

/// A rootless containerd of the test user's, under rootlesskit, in a
/// private directory; killed, with its shims, on drop.
struct Containerd<'a> {
    env: &'a Env,
    dir: tempfile::TempDir,
    daemon: Child,
    /// rootlesskit's child: the process whose user and mount namespaces
    /// the daemon lives in, which `ctr` must join.
    child_pid: String,
}

impl<'a> Containerd<'a> {
    /// Start it; `runc_dir` goes first on the daemon's PATH.
    fn start(env: &'a Env, runc_dir: &Path) -> Containerd<'a> {
        let dir = tempfile::Builder::new()
            .prefix("ctd")
            .tempdir_in("/tmp")
            .unwrap();
        let d = dir.path();
        let (uid, gid) = env.ids();
        chown(d, uid, gid);
        std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let config = format!(
            "version = 2\nroot = \"{0}/data\"\nstate = \"{0}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{0}/state/containerd.sock\"\n",
            d.display()
        );
        std::fs::write(d.join("config.toml"), config).unwrap();
        env.share(&d.join("config.toml"));
        let mut c = Command::new("rootlesskit");
        c.args(["--net=host", "--copy-up=/run", "--state-dir"])
            .arg(d.join("rk"))
            .args(["sh", "-c"])
            .arg(format!(
                "rm -f /run/containerd; exec containerd -c {}/config.toml",
                d.display()
            ));
        user_env(&mut c, env, d);
        c.env(
            "PATH",
            format!("{}:/usr/bin:/bin:/usr/sbin:/sbin", runc_dir.display()),
        );
        c.stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("daemon.log")).unwrap());
        std::os::unix::process::CommandExt::process_group(&mut c, 0);
        let daemon = c.spawn().expect("starting rootlesskit");
        let sock = d.join("state/containerd.sock");
        let pid_file = d.join("rk/child_pid");
        let mut me = Containerd {
            env,
            dir,
            daemon,
            child_pid: String::new(),
        };
        common::wait_until(
            "containerd under rootlesskit",
            Duration::from_secs(30),
            || sock.exists() && pid_file.exists(),
        );
        me.child_pid = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .to_string();
        me
    }

    /// `ctr ARGS` as the user, in the daemon's namespaces.
    fn ctr(&self, args: &[&str]) -> Output {
        let d = self.dir.path();
        let mut c = Command::new("nsenter");
        c.args(["-U", "--preserve-credentials", "-m", "-t", &self.child_pid])
            .arg("ctr")
            .arg("--address")
            .arg(d.join("state/containerd.sock"))
            .args(args);
        user_env(&mut c, self.env, d);
        c.stdin(Stdio::null());
        c.output().unwrap()
    }

    fn ctr_ok(&self, args: &[&str]) -> String {
        let o = self.ctr(args);
        assert!(
            o.status.success(),
            "[{:?}] ctr {args:?}: {}\ndaemon log:\n{}",
            self.env.who,
            stderr(&o),
            self.log()
        );
        stdout(&o)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// The pid and status `ctr task ls` shows for `id`.
    fn task(&self, id: &str) -> Option<(i32, String)> {
        let out = self.ctr_ok(&["task", "ls"]);
        out.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&id)).then(|| (f[1].parse().unwrap_or(0), f[2].to_string()))
        })
    }
}

impl Drop for Containerd<'_> {
    fn drop(&mut self) {
        // The shims left running (a failed test) belong to this daemon by
        // its address on their command line.
        let address = self.dir.path().join("state/containerd.sock");
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for e in entries.flatten() {
                let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                let text = String::from_utf8_lossy(&cmdline);
                if text.starts_with("containerd-shim") && text.contains(&*address.to_string_lossy())
                {
                    if let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                }
            }
        }
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.daemon.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.daemon.wait();
    }
}

/// The user's identity and a private runtime directory for `c`.
fn user_env(c: &mut Command, env: &Env, dir: &Path) {
    let (uid, gid) = env.ids();
    c.env_clear()
        .env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin")
        .env("HOME", dir)
        .env("XDG_RUNTIME_DIR", dir)
        .current_dir(dir);
    if nix::unistd::Uid::effective().is_root() {
        std::os::unix::process::CommandExt::uid(c, uid);
        std::os::unix::process::CommandExt::gid(c, gid);
    }
}

fn have_tools() -> bool {
    for tool in ["containerd", "ctr", "rootlesskit", "nsenter"] {
        if !common::have(tool) {
            common::loud(&format!(
                "SKIPPED containerd: {tool} is not installed (apt-get install containerd rootlesskit)"
            ));
            return false;
        }
    }
    true
}

/// burrow's busybox as an image archive containerd imports.
fn image_archive(env: &Env) -> PathBuf {
    env.import_busybox(IMAGE);
    let tar = env.user_dir("ctd-image").join("busybox.tar");
    let _ = std::fs::remove_file(&tar);
    env.ok(["save", "-o", tar.to_str().unwrap(), IMAGE]);
    tar
}

#[test]
fn containerd_runs_burrow_through_its_runc_shim() {
    if !have_tools() {
        return;
    }
    for env in common::users("containerd") {
        if env.who == Who::Single {
            common::loud(
                "SKIPPED containerd as the user without a subordinate range: rootlesskit maps one, and refuses without it",
            );
            continue;
        }
        let pm = Podman::new(&env);
        let runtime = pm.runtime.to_str().unwrap().to_string();
        // A link named `runc`, first on the daemon's PATH: the shim's
        // default runtime becomes burrow.
        let runc_dir = env.user_dir("ctd-bin");
        let link = runc_dir.join("runc");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&pm.runtime, &link).unwrap();
        let tar = image_archive(&env);
        let ctd = Containerd::start(&env, &runc_dir);
        let imported = ctd.ctr_ok(&[
            "images",
            "import",
            "--snapshotter",
            "native",
            tar.to_str().unwrap(),
        ]);
        assert!(imported.contains(IMAGE), "{imported}");
        let run = |extra: &[&str], id: &str, cmd: &[&str]| {
            let mut a = vec!["run", "--snapshotter", "native", "--cgroup", ""];
            a.extend_from_slice(extra);
            a.push(IMAGE);
            a.push(id);
            a.extend_from_slice(cmd);
            ctd.ctr(&a)
        };
        let with_binary = ["--rm", "--runc-binary", runtime.as_str()];

        // Output and the exit code.
        let o = run(
            &with_binary,
            "t1",
            &["sh", "-c", "echo hi from $(id -u); exit 3"],
        );
        assert_eq!(stdout(&o), "hi from 0\n", "{}", stderr(&o));
        assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));

        // A failure is told the way the shim reads it: the last error of
        // burrow-runc's --log JSON.
        let o = run(&with_binary, "t2", &["/no/such/program"]);
        assert!(!o.status.success());
        assert!(
            stderr(&o).contains("/no/such/program"),
            "the shim passes burrow-runc's error on: {}",
            stderr(&o)
        );

        // Detached: the task's pid is a child of the shim (nothing of
        // burrow's stays in between), exec with exit codes, pause and
        // resume, ps, a numeric kill, delete.
        let o = run(
            &["-d", "--runc-binary", runtime.as_str()],
            "d1",
            &["sleep", "1000"],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let (pid, status) = ctd.task("d1").expect("d1 is listed");
        assert_eq!(status, "RUNNING");
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let ppid = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap();
        let parent = std::fs::read_to_string(format!("/proc/{ppid}/comm")).unwrap();
        assert_eq!(parent.trim(), "containerd-shim", "the task's parent");
        let o = ctd.ctr(&[
            "task",
            "exec",
            "--exec-id",
            "e1",
            "d1",
            "sh",
            "-c",
            "echo in; exit 5",
        ]);
        assert_eq!(
            (stdout(&o).as_str(), o.status.code()),
            ("in\n", Some(5)),
            "{}",
            stderr(&o)
        );
        ctd.ctr_ok(&["task", "pause", "d1"]);
        assert_eq!(ctd.task("d1").unwrap().1, "PAUSED");
        ctd.ctr_ok(&["task", "resume", "d1"]);
        assert_eq!(ctd.task("d1").unwrap().1, "RUNNING");
        assert!(ctd.ctr_ok(&["task", "ps", "d1"]).contains(&pid.to_string()));
        let o = ctd.ctr(&["task", "checkpoint", "d1"]);
        assert!(!o.status.success(), "a checkpoint is refused");
        assert!(
            stderr(&o).contains("checkpoint is not supported by burrow"),
            "burrow-runc's own refusal reaches ctr: {}",
            stderr(&o)
        );
        ctd.ctr_ok(&["task", "kill", "--signal", "9", "d1"]);
        common::wait_until("d1 stopped", Duration::from_secs(10), || {
            ctd.task("d1").is_some_and(|(_, s)| s == "STOPPED")
        });
        ctd.ctr_ok(&["task", "delete", "d1"]);
        ctd.ctr_ok(&["container", "rm", "d1"]);

        // delete --force of a running task.
        let o = run(
            &["-d", "--runc-binary", runtime.as_str()],
            "d2",
            &["sleep", "1000"],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        ctd.ctr_ok(&["task", "delete", "--force", "d2"]);
        ctd.ctr_ok(&["container", "rm", "d2"]);

        // No --runc-binary: the daemon's own `runc`, first on its PATH, is
        // burrow (its state file is burrow-runc's, not runc's).
        let o = run(&["-d"], "p1", &["sleep", "1000"]);
        assert!(o.status.success(), "{}\n{}", stderr(&o), ctd.log());
        let mut c = Command::new("nsenter");
        c.args(["-U", "--preserve-credentials", "-m", "-t", &ctd.child_pid])
            .args(["cat", "/run/containerd/runc/default/p1/state.json"]);
        user_env(&mut c, &env, ctd.dir.path());
        let state = stdout(&c.output().unwrap());
        assert!(
            state.contains("\"start_time\""),
            "burrow-runc's state: {state}"
        );
        ctd.ctr_ok(&["task", "delete", "--force", "p1"]);
        ctd.ctr_ok(&["container", "rm", "p1"]);

        let left = ctd.ctr_ok(&["task", "ls", "-q"]);
        assert_eq!(left.trim(), "", "no task left");
    }
}

/// The message the shim reports for a failed runtime command: the last
/// `"level":"error"` entry of the `--log` JSON file.
fn shim_error(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["level"] == "error")
        .and_then(|v| v["msg"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Whether root can give a container a cgroup v2 of its own with the
/// memory and pids controllers (a pure cgroup v2 host).
fn cgroup_v2_for_containers() -> Option<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let controllers = std::fs::read_to_string(root.join("cgroup.controllers")).ok()?;
    let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
    (nix::unistd::Uid::effective().is_root() && has("memory") && has("pids"))
        .then(|| root.to_path_buf())
}

#[test]
fn update_checkpoint_and_restore_answer_as_the_shim_reads() {
    for env in common::users("ctd-update") {
        let who = env.who;
        let pm = Podman::new(&env);
        env.import_busybox("busybox");
        let bundle = env.user_dir("ctd-update-bundle").join("b");
        let _ = std::fs::remove_dir_all(&bundle);
        env.ok(["bundle", "busybox", bundle.to_str().unwrap()]);
        let config = bundle.join("config.json");
        let mut cfg: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
        cfg["process"]["args"] = serde_json::json!(["sleep", "1000"]);
        std::fs::write(&config, cfg.to_string()).unwrap();
        let work = env.user_dir("ctd-update-state");
        let root = work.join("root");
        let log = work.join("log.json");
        let _ = std::fs::remove_file(&log);
        let global = [
            "--root",
            root.to_str().unwrap(),
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
        ];
        // The shim's command line: globals, the verb's flags, stdin.
        let runc = |args: &[&str], stdin: &str| -> Output {
            let mut c = pm.base(&pm.runtime);
            c.args(global).args(args);
            c.stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = c.spawn().unwrap();
            std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
            child.wait_with_output().unwrap()
        };
        // A refusal: exit 1, one line on stderr, and the same words as the
        // last error of the log.
        let refused = |o: &Output, what: &str| -> String {
            assert_eq!(o.status.code(), Some(1), "[{who:?}] {what}: {}", stderr(o));
            let msg = shim_error(&log);
            assert_eq!(
                stderr(o).trim(),
                format!("burrow-runc: {msg}"),
                "[{who:?}] {what}"
            );
            assert_eq!(stderr(o).lines().count(), 1, "[{who:?}] {what}");
            msg
        };

        let pid_file = work.join("init.pid");
        let mut create = pm.base(&pm.runtime);
        create.args(global).args([
            "create",
            "--bundle",
            bundle.to_str().unwrap(),
            "--pid-file",
            pid_file.to_str().unwrap(),
            "u1",
        ]);
        // As the shim: the process's stdio handed over and not waited on.
        create
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        assert!(create.status().unwrap().success(), "[{who:?}] create");
        let o = runc(&["start", "u1"], "");
        assert!(o.status.success(), "[{who:?}] start: {}", stderr(&o));
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();

        // What burrow-runc never applies is refused by its field's name,
        // whatever the host.
        let o = runc(
            &["update", "--resources", "-", "u1"],
            r#"{"memory": {"limit": 33554432}, "blockIO": {"weight": 100}}"#,
        );
        let msg = refused(&o, "blockIO");
        assert!(
            msg.starts_with("update: burrow-runc cannot apply blockIO.weight"),
            "[{who:?}] {msg}"
        );
        let o = runc(
            &[
                "update",
                "--pids-limit",
                "-1",
                "--cpu-rt-runtime",
                "5",
                "u1",
            ],
            "",
        );
        let msg = refused(&o, "--cpu-rt-runtime");
        assert!(
            msg.contains("cannot apply cpu.realtimeRuntime (") && !msg.contains("pids.limit"),
            "[{who:?}] runc's flags, -1 as unlimited: {msg}"
        );

        // Limits it applies: into a cgroup that holds only the container,
        // when the host has one to give; refused with the reason when not.
        let resources = r#"{"memory": {"limit": 33554432, "swap": null}, "pids": {"limit": 50}, "cpu": {"quota": 50000, "period": 100000}}"#;
        match cgroup_v2_for_containers() {
            Some(sys) => {
                let cg = sys.join(format!("burrow-update-test-{}", std::process::id()));
                let _ = std::fs::create_dir(&cg);
                let _ = std::fs::write(sys.join("cgroup.subtree_control"), "+memory +pids +cpu");
                let (uid, gid) = env.ids();
                for f in ["", "memory.max", "pids.max", "cpu.max"] {
                    chown(&cg.join(f), uid, gid);
                }
                std::fs::write(cg.join("cgroup.procs"), pid.to_string()).unwrap();
                let o = runc(&["update", "--resources", "-", "u1"], resources);
                assert!(o.status.success(), "[{who:?}] update: {}", stderr(&o));
                let read = |f: &str| std::fs::read_to_string(cg.join(f)).unwrap();
                assert_eq!(read("memory.max").trim(), "33554432", "[{who:?}]");
                assert_eq!(read("pids.max").trim(), "50", "[{who:?}]");
                assert_eq!(read("cpu.max").trim(), "50000 100000", "[{who:?}]");
                let o = runc(&["update", "--memory", "64m", "u1"], "");
                assert!(o.status.success(), "[{who:?}] update: {}", stderr(&o));
                assert_eq!(read("memory.max").trim(), "67108864", "[{who:?}]");
                let o = runc(&["delete", "--force", "u1"], "");
                assert!(o.status.success(), "[{who:?}] {}", stderr(&o));
                common::wait_until("the test cgroup empty", Duration::from_secs(10), || {
                    std::fs::remove_dir(&cg).is_ok()
                });
            }
            None => {
                common::loud(
                    "SKIPPED applying limits with update: this host gives containers no cgroup v2 with the memory and pids controllers (a hybrid host, or not root); only the refusal is tested",
                );
                let o = runc(&["update", "--resources", "-", "u1"], resources);
                let msg = refused(&o, "update");
                assert!(
                    msg.starts_with("update: ") && msg.contains("cgroup"),
                    "[{who:?}] {msg}"
                );
            }
        }

        // checkpoint and restore, with the shim's flags.
        let images = work.join("images");
        let o = runc(
            &[
                "checkpoint",
                "--image-path",
                images.to_str().unwrap(),
                "--work-path",
                work.to_str().unwrap(),
                "--leave-running",
                "--file-locks",
                "u1",
            ],
            "",
        );
        let msg = refused(&o, "checkpoint");
        assert!(
            msg.starts_with("checkpoint is not supported by burrow: "),
            "[{who:?}] {msg}"
        );
        let o = runc(&["delete", "--force", "u1"], "");
        assert!(o.status.success(), "[{who:?}] {}", stderr(&o));
        let o = runc(
            &[
                "restore",
                "--image-path",
                images.to_str().unwrap(),
                "--work-path",
                work.to_str().unwrap(),
                "--detach",
                "--pid-file",
                pid_file.to_str().unwrap(),
                "--no-subreaper",
                "--bundle",
                bundle.to_str().unwrap(),
                "u2",
            ],
            "",
        );
        let msg = refused(&o, "restore");
        assert!(
            msg.starts_with("restore is not supported by burrow: "),
            "[{who:?}] {msg}"
        );
        let o = runc(&["list", "-q"], "");
        assert_eq!(stdout(&o).trim(), "", "[{who:?}] nothing left");
    }
}
