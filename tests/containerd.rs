//! burrow as the runtime of a rootless containerd (Debian's 1.6): the test
//! starts containerd under rootlesskit as the unprivileged test user, and
//! `ctr` drives containerd's runc shim (`containerd-shim-runc-v2`), which
//! runs burrow-runc: named with `ctr run --runc-binary`, and as `runc`
//! first on the daemon's PATH (the shim's default runtime). Nothing is
//! pulled: the image is burrow's busybox, saved and imported.

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
        assert!(stderr(&o).contains("checkpoint"), "{}", stderr(&o));
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
