//! A test user's rootless podman with burrow as its OCI runtime: private
//! storage and run root, and a `burrow-runc` link to the built binary.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::{stderr, stdout, Env};

/// One test user's podman: its own storage, run root, runtime dir and
/// config home, the cgroupfs manager (nothing asks systemd) and a file
/// events logger; the run root and runtime dir are short paths in /tmp
/// (podman and conmon's socket paths have length limits).
pub struct Podman<'a> {
    env: &'a Env,
    pub runtime: PathBuf,
    short: tempfile::TempDir,
}

impl<'a> Podman<'a> {
    pub fn new(env: &'a Env) -> Podman<'a> {
        let short = tempfile::Builder::new()
            .prefix("brc")
            .tempdir_in("/tmp")
            .unwrap();
        let (uid, gid) = env.ids();
        for d in ["run", "xdg"] {
            let p = short.path().join(d);
            std::fs::create_dir_all(&p).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).unwrap();
            chown(&p, uid, gid);
        }
        chown(short.path(), uid, gid);
        // The runtime is the test binary under the name engines call it by.
        let bin_dir = env.user_dir("bin");
        let runtime = bin_dir.join("burrow-runc");
        let _ = std::fs::remove_file(&runtime);
        std::os::unix::fs::symlink(env.shared_dir().join("burrow"), &runtime).unwrap();
        Podman {
            env,
            runtime,
            short,
        }
    }

    pub fn xdg(&self) -> PathBuf {
        self.short.path().join("xdg")
    }

    pub fn base(&self, program: &Path) -> Command {
        let (uid, gid) = self.env.ids();
        let mut c = Command::new(program);
        c.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("HOME", &self.env.home)
            .env("XDG_RUNTIME_DIR", self.xdg())
            .env("XDG_CONFIG_HOME", self.env.home.join(".config"))
            .current_dir(&self.env.home)
            .stdin(Stdio::null());
        if nix::unistd::Uid::effective().is_root() {
            use std::os::unix::process::CommandExt;
            c.uid(uid).gid(gid);
        }
        c
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.base(Path::new("podman"));
        c.arg("--root")
            .arg(self.env.home.join("podman-storage"))
            .arg("--runroot")
            .arg(self.short.path().join("run"))
            .args([
                "--storage-driver",
                "vfs",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
            ])
            .arg("--runtime")
            .arg(&self.runtime)
            .args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("running podman")
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "podman {args:?} failed ({:?})\nstdout: {}\nstderr: {}",
            o.status.code(),
            stdout(&o),
            stderr(&o)
        );
        stdout(&o)
    }

    /// burrow-runc itself, as the engine runs it (same runtime dir).
    pub fn runtime(&self, args: &[&str]) -> Output {
        let mut c = self.base(&self.runtime);
        c.args(args);
        c.output().expect("running burrow-runc")
    }
}

impl Drop for Podman<'_> {
    /// Leave nothing running: containers a failed assertion left behind,
    /// and the pause process rootless podman keeps for its user namespace.
    fn drop(&mut self) {
        let _ = self
            .cmd(&["rm", "-af", "-t", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let pause = self.xdg().join("libpod/tmp/pause.pid");
        if let Some(pid) = std::fs::read_to_string(pause)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

pub fn chown(p: &Path, uid: u32, gid: u32) {
    if nix::unistd::Uid::effective().is_root() {
        nix::unistd::chown(
            p,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
        )
        .unwrap();
    }
}

/// podman and conmon are installed; else say so loudly.
pub fn have_podman(test: &str) -> bool {
    for tool in ["podman", "conmon"] {
        let found = Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            super::loud(&format!(
                "SKIPPED {test}: {tool} is not installed (apt-get install podman conmon)"
            ));
            return false;
        }
    }
    true
}
