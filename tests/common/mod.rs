//! Integration-test harness: runs the real `burrow` binary as an unprivileged
//! user. As root (CI) it creates two test users, one with a subuid/subgid
//! range and one without, and drops to them; as an ordinary user it runs as
//! that user and says loudly which variant it cannot cover.

#![allow(dead_code)]

pub mod podman;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const RANGE_USER: &str = "burrow-it";
pub const SINGLE_USER: &str = "burrow-it-nosub";
const RANGE_START: u32 = 400000;

/// Which kind of unprivileged user runs burrow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// Has a subuid/subgid range: container ids 0..65536 are mapped.
    Range,
    /// Has no range: only container root (= the user) is mapped.
    Single,
}

struct Shared {
    dir: PathBuf,
    bin: PathBuf,
    busybox_tar: PathBuf,
    as_root: bool,
}

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

fn shared() -> &'static Shared {
    static S: OnceLock<Shared> = OnceLock::new();
    S.get_or_init(|| {
        let as_root = is_root();
        if as_root {
            ensure_users();
        }
        remove_dead_runs();
        // World-traversable: the test users must reach the binary and
        // fixtures, and cargo's target dir may be in root's 0700 home.
        let dir = std::env::temp_dir().join(format!("burrow-it-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin = dir.join("burrow");
        std::fs::copy(env!("CARGO_BIN_EXE_burrow"), &bin).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let busybox_tar = dir.join("busybox.tar");
        build_busybox(&busybox_tar, "tar");
        Shared {
            dir,
            bin,
            busybox_tar,
            as_root,
        }
    })
}

/// Remove the temp dirs of earlier test runs whose process is gone (each
/// holds stores of ~100 MB; as root everything in them can be deleted).
fn remove_dead_runs() {
    let Ok(rd) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name
            .strip_prefix("burrow-it-")
            .and_then(|p| p.parse::<u32>().ok())
        {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// Say that (part of) a test could not run here, where `cargo test` shows
/// it: libtest captures `eprintln!`, but not a direct write to stderr.
pub fn loud(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{msg}");
}

/// Build a busybox rootfs tarball with the project's own script.
pub fn build_busybox(out: &Path, format: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("rootfs-tools/busybox.sh");
    let st = Command::new("bash")
        .arg(&script)
        .arg(out)
        .arg(format)
        .stdout(Stdio::null())
        .status()
        .expect("running rootfs-tools/busybox.sh");
    assert!(
        st.success(),
        "rootfs-tools/busybox.sh failed (is busybox-static installed?)"
    );
    std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// Compile the C file `src` into a static program at `out`, readable and
/// runnable by the test users; false without a compiler or a static libc.
pub fn compile_static(src: &Path, out: &Path) -> bool {
    let ok = Command::new("cc")
        .args(["-static", "-O1", "-o"])
        .arg(out)
        .arg(src)
        .status()
        .is_ok_and(|s| s.success());
    ok && std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o755)).is_ok()
}

/// Create the two test users (idempotent; serialized across test binaries
/// with a lock file, since several may start at once).
fn ensure_users() {
    let lock = std::fs::File::create("/tmp/.burrow-it-users.lock").unwrap();
    let _l = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).unwrap();
    for user in [RANGE_USER, SINGLE_USER] {
        if !user_exists(user) {
            let st = Command::new("useradd")
                .args([
                    "--system",
                    "--shell",
                    "/usr/sbin/nologin",
                    "--no-create-home",
                    user,
                ])
                .status()
                .expect("useradd");
            assert!(st.success(), "useradd {user} failed");
        }
    }
    for file in ["/etc/subuid", "/etc/subgid"] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| {
                !l.starts_with(&format!("{RANGE_USER}:"))
                    && !l.starts_with(&format!("{SINGLE_USER}:"))
            })
            .map(str::to_string)
            .collect();
        lines.push(format!("{RANGE_USER}:{RANGE_START}:65536"));
        let new = lines.join("\n") + "\n";
        if new != text {
            std::fs::write(file, new).unwrap();
        }
    }
}

fn user_exists(name: &str) -> bool {
    Command::new("id")
        .arg(name)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn ids_of(name: &str) -> (u32, u32) {
    let out = |flag: &str| {
        let o = Command::new("id").arg(flag).arg(name).output().unwrap();
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse::<u32>()
            .unwrap()
    };
    (out("-u"), out("-g"))
}

/// One test's private burrow world: its own HOME and store, run as `who`.
pub struct Env {
    pub who: Who,
    pub home: PathBuf,
    pub root: PathBuf,
    uid: u32,
    gid: u32,
    /// Running as ourselves but forcing the single mapping (no test user).
    force_single: bool,
    /// A host condition every command of this environment runs on (see
    /// `on_host`).
    host: Option<String>,
    /// Settings every command of this environment gets (see `with_env`).
    settings: Vec<(String, String)>,
}

impl Env {
    /// A fresh environment for `who`, or None (after saying why, loudly) when
    /// this host cannot provide that kind of user.
    pub fn new(who: Who, name: &str) -> Option<Env> {
        let s = shared();
        let (uid, gid, force_single) = if s.as_root {
            let (u, g) = ids_of(match who {
                Who::Range => RANGE_USER,
                Who::Single => SINGLE_USER,
            });
            (u, g, false)
        } else {
            let me = nix::unistd::Uid::current().as_raw();
            let has_range = std::fs::read_to_string("/etc/subuid")
                .unwrap_or_default()
                .lines()
                .any(|l| {
                    let who = l.split(':').next().unwrap_or("");
                    who == me.to_string() || Some(who.to_string()) == whoami()
                });
            match who {
                Who::Range if !has_range => {
                    loud(&format!("SKIPPED {name} [{who:?}]: not root and the current user has no /etc/subuid range; run the suite as root (it creates test users) or add a range"));
                    return None;
                }
                Who::Single if has_range => {
                    loud(&format!("NOTE {name} [{who:?}]: not root, so no range-less test user can be created; forcing the single-id mapping with BURROW_USERNS=single instead"));
                    (me, nix::unistd::Gid::current().as_raw(), true)
                }
                _ => (me, nix::unistd::Gid::current().as_raw(), false),
            }
        };
        let home = s.dir.join(format!("{name}-{who:?}"));
        std::fs::create_dir_all(&home).unwrap();
        if s.as_root {
            nix::unistd::chown(
                &home,
                Some(nix::unistd::Uid::from_raw(uid)),
                Some(nix::unistd::Gid::from_raw(gid)),
            )
            .unwrap();
        }
        Some(Env {
            who,
            root: home.join("store"),
            home,
            uid,
            gid,
            force_single,
            host: None,
            settings: Vec::new(),
        })
    }

    /// Every command of this environment with `key=value` in its
    /// environment (a burrow setting such as `BURROW_KEEPER`).
    pub fn with_env(mut self, key: &str, value: &str) -> Env {
        self.settings.push((key.to_string(), value.to_string()));
        self
    }

    /// A directory under this test's home owned by the test user (to bind
    /// into containers or copy to).
    pub fn user_dir(&self, name: &str) -> PathBuf {
        let d = self.home.join(name);
        std::fs::create_dir_all(&d).unwrap();
        nix::unistd::chown(
            &d,
            Some(nix::unistd::Uid::from_raw(self.uid)),
            Some(nix::unistd::Gid::from_raw(self.gid)),
        )
        .unwrap();
        d
    }

    /// The uid and gid burrow runs as.
    /// Move this user's store onto a fresh tmpfs of `size` (mount's
    /// notation, e.g. `20m`) owned by the user: a small disk to fill. Needs
    /// root; the tmpfs goes when the returned guard drops.
    pub fn store_on_tmpfs(&mut self, size: &str) -> Tmpfs {
        let small = self.user_dir("small-store");
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755")])
            .arg("tmpfs")
            .arg(&small)
            .status()
            .unwrap();
        assert!(st.success(), "mounting a tmpfs");
        let mounted = Tmpfs(small.clone());
        let (uid, gid) = self.ids();
        nix::unistd::chown(
            &small,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
        )
        .unwrap();
        self.root = small.join("store");
        mounted
    }

    pub fn ids(&self) -> (u32, u32) {
        (self.uid, self.gid)
    }

    pub fn busybox_tar(&self) -> &Path {
        &shared().busybox_tar
    }

    pub fn shared_dir(&self) -> &Path {
        &shared().dir
    }

    /// A `burrow` command as the test user, with a clean environment, on
    /// the host as it is.
    fn plain_cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut c = Command::new(&shared().bin);
        c.args(args)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("HOME", &self.home)
            .env("BURROW_ROOT", &self.root)
            // Tests talk only to registries on loopback: anything else goes
            // to a closed loopback port and fails at once.
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env("HTTP_PROXY", "http://127.0.0.1:9")
            .env("NO_PROXY", "localhost,127.0.0.1,::1")
            .current_dir(&self.home)
            .stdin(Stdio::null());
        if self.force_single {
            c.env("BURROW_USERNS", "single");
        }
        for (k, v) in &self.settings {
            c.env(k, v);
        }
        if shared().as_root {
            c.uid(self.uid).gid(self.gid);
        }
        c
    }

    /// A `burrow` command as the test user, with a clean environment (on
    /// this environment's host condition, when it has one).
    pub fn cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        match &self.host {
            Some(setup) if shared().as_root => self.wrap_on_host(setup, self.plain_cmd(args)),
            _ => self.plain_cmd(args),
        }
    }

    /// Run every later command of this environment on a host condition
    /// (`setup`, as for `cmd_on_host`). Not root: says loudly that the
    /// host's own state is used instead, since nothing can be made.
    pub fn on_host(mut self, test: &str, setup: &str) -> Env {
        if !shared().as_root {
            loud(&format!(
                "NOTE {test} [{:?}]: not root, so the host condition cannot be made; using this host as it is",
                self.who
            ));
        }
        self.host = Some(setup.to_string());
        self
    }

    /// A `burrow` command as the test user on a host condition this test
    /// makes: `setup` is a shell snippet run as root in a private mount
    /// namespace created for this one command (see `host`), so the host
    /// itself is never changed and no earlier step's state is inherited.
    /// None, after saying why loudly, when not root (nothing can be made).
    pub fn cmd_on_host<I, S>(&self, test: &str, setup: &str, args: I) -> Option<Command>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        if !shared().as_root {
            loud(&format!(
                "SKIPPED {test} [{:?}]: making a host condition needs root; run the suite as root",
                self.who
            ));
            return None;
        }
        Some(self.wrap_on_host(setup, self.plain_cmd(args)))
    }

    /// `inner` (a burrow command as the test user) run from a private
    /// mount namespace where `setup` ran as root first.
    fn wrap_on_host(&self, setup: &str, inner: Command) -> Command {
        // The setup runs with the system's PATH, burrow with the test's.
        let mut c = Command::new("/usr/bin/unshare");
        c.args(["--mount", "--propagation", "private", "--", "/bin/sh", "-ec"])
            .arg(format!(
                "test_path=\"$PATH\"\nPATH=/usr/sbin:/usr/bin:/sbin:/bin\n{setup}\nPATH=\"$test_path\" exec /usr/bin/setpriv --reuid {} --regid {} --clear-groups -- \"$@\"",
                self.uid, self.gid
            ))
            .arg("sh")
            .arg(inner.get_program())
            .args(inner.get_args())
            .env_clear()
            .current_dir(&self.home)
            .stdin(Stdio::null());
        for (k, v) in inner.get_envs() {
            if let Some(v) = v {
                c.env(k, v);
            }
        }
        c
    }

    /// Run burrow and capture its output.
    pub fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd(args).output().expect("running burrow")
    }

    /// Run burrow, asserting success; returns stdout.
    pub fn ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S> + Clone,
        S: AsRef<std::ffi::OsStr>,
    {
        let shown: Vec<String> = args
            .clone()
            .into_iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect();
        let o = self.run(args);
        assert!(
            o.status.success(),
            "burrow {shown:?} failed ({:?})\nstdout: {}\nstderr: {}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// Like `ok`, with one extra environment variable.
    pub fn ok_with_env<I, S>(&self, key: &str, value: &str, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let o = self
            .cmd(args)
            .env(key, value)
            .output()
            .expect("running burrow");
        assert!(
            o.status.success(),
            "burrow with {key}={value} failed ({:?}): {}",
            o.status.code(),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// Have the once-per-boot lines about this host (no subordinate range,
    /// no usable tun device, ...) said now, by a throwaway run of `image`,
    /// for a test that checks a later command's stderr exactly.
    pub fn settle(&self, image: &str) {
        self.ok(["run", "--rm", image, "true"]);
    }

    /// Import the shared busybox tarball as `reference` with a shell Cmd.
    pub fn import_busybox(&self, reference: &str) -> String {
        self.ok([
            "import",
            self.busybox_tar().to_str().unwrap(),
            reference,
            "--change",
            r#"CMD ["sh"]"#,
        ])
        .trim()
        .to_string()
    }

    /// Make `path` (a fixture the test wrote as root) readable by the test user.
    pub fn share(&self, path: &Path) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }

    /// The host uid the container's uid `n` maps to.
    pub fn host_uid_of(&self, n: u32) -> u32 {
        match (n, self.who) {
            (0, _) => self.uid,
            (n, Who::Range) if shared().as_root => RANGE_START + n - 1,
            _ => panic!("container uid {n} is not mapped for {:?}", self.who),
        }
    }
}

fn whoami() -> Option<String> {
    let o = Command::new("id").arg("-un").output().ok()?;
    Some(String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// The Debian minbase tarball rootfs-tools/debian.sh builds (mmdebstrap,
/// about a minute), made once per test binary in the shared directory and
/// readable by the test users. None, after saying why loudly under `test`'s
/// name, when mmdebstrap is not installed or the mirror is unreachable (the
/// environment, not burrow); a failure of the script itself panics.
pub fn debian_tar(test: &str) -> Option<PathBuf> {
    static TAR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let made = TAR.get_or_init(|| {
        if !have("mmdebstrap") {
            return Err("mmdebstrap is not installed (apt-get install mmdebstrap)".into());
        }
        let tar = shared().dir.join("debian.tar.zst");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("rootfs-tools/debian.sh");
        let o = Command::new("bash")
            .arg(&script)
            .arg(&tar)
            .output()
            .unwrap();
        if !o.status.success() {
            let err = String::from_utf8_lossy(&o.stderr);
            if err.contains("Could not resolve")
                || err.contains("Failed to fetch")
                || err.contains("Temporary failure")
            {
                return Err(format!("the Debian mirror is unreachable:\n{err}"));
            }
            panic!("rootfs-tools/debian.sh failed:\n{err}");
        }
        std::fs::set_permissions(&tar, std::fs::Permissions::from_mode(0o644)).unwrap();
        Ok(tar)
    });
    match made {
        Ok(tar) => Some(tar.clone()),
        Err(why) => {
            loud(&format!("SKIPPED {test}: {why}"));
            None
        }
    }
}

/// Every user kind this host can provide.
pub fn users(name: &str) -> Vec<Env> {
    [Who::Range, Who::Single]
        .into_iter()
        .filter_map(|w| Env::new(w, name))
        .collect()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Run a command as root-of-nothing: a helper for spawning burrow in the
/// background (returns the child).
pub fn spawn(mut c: Command) -> std::process::Child {
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    // Own process group, so a test can signal burrow without hitting cargo.
    c.process_group(0);
    c.spawn().expect("spawning burrow")
}

/// Poll `f` until it holds, failing the test after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A shell command line that runs burrow as the test user (for tmux).
pub fn shell_line(env: &Env, args: &str) -> String {
    let c = env.plain_cmd(["--version"]);
    let bin = c.get_program().to_string_lossy().into_owned();
    let envs: Vec<String> = c
        .get_envs()
        .filter_map(|(k, v)| Some(format!("{}={}", k.to_string_lossy(), v?.to_string_lossy())))
        .collect();
    let who = if nix::unistd::Uid::effective().is_root() {
        let (u, g) = env.ids();
        // The environment's host condition, made in a mount namespace of
        // this line's own (the setup strings hold no single quote).
        let host = env.host.as_deref().map_or(String::new(), |setup| {
            format!(
                "unshare --mount --propagation private -- sh -ec '{}; exec \"$@\"' sh ",
                setup.replace('\n', "; ")
            )
        });
        format!("{host}setpriv --reuid {u} --regid {g} --init-groups ")
    } else {
        String::new()
    };
    format!("{who}env -i TERM=xterm {} {bin} {args}", envs.join(" "))
}

/// A tmux session running one burrow command as the test user: a real
/// terminal for the tests that need one.
pub struct Term {
    pub session: String,
    done: std::path::PathBuf,
}

impl Term {
    pub fn start(env: &Env, tag: &str, args: &str, cols: u16, rows: u16) -> Term {
        Term::start_shell(env, tag, &shell_line(env, args), cols, rows)
    }

    /// Like `start`, with a whole shell command line (pipes and all).
    pub fn start_shell(env: &Env, tag: &str, command: &str, cols: u16, rows: u16) -> Term {
        let session = format!("burrow-{tag}-{}-{:?}", std::process::id(), env.who);
        let done = env.home.join(format!("{tag}-exit"));
        let _ = std::fs::remove_file(&done);
        let line = format!(
            "cd {} && {command}; echo $? > {}",
            env.home.display(),
            done.display()
        );
        let (c, r) = (cols.to_string(), rows.to_string());
        let t = Term { session, done };
        t.tmux(&[
            "new-session",
            "-d",
            "-s",
            &t.session,
            "-x",
            &c,
            "-y",
            &r,
            &line,
        ]);
        t
    }

    pub fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux").args(args).output().unwrap()
    }

    pub fn screen(&self) -> String {
        stdout(&self.tmux(&["capture-pane", "-p", "-t", &self.session]))
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", self.session.as_str()];
        args.extend(keys);
        self.tmux(&args);
    }

    pub fn shows_line(&self, line: &str) -> bool {
        self.screen().lines().any(|l| l.trim() == line)
    }

    /// burrow's exit code, once it has ended. The shell creates the file
    /// before it writes the code into it: wait for the whole line.
    pub fn exit_code(&self) -> String {
        let read = || std::fs::read_to_string(&self.done).unwrap_or_default();
        wait_until("burrow exited", Duration::from_secs(15), || {
            read().ends_with('\n')
        });
        read().trim().to_string()
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        self.tmux(&["kill-session", "-t", &self.session]);
    }
}

pub fn have_tmux(test: &str) -> bool {
    let ok = Command::new("tmux").arg("-V").output().is_ok();
    if !ok {
        loud(&format!(
            "SKIPPED {test}: tmux is not installed (apt-get install tmux)"
        ));
    }
    ok
}

/// A tmpfs mounted for a test, lazily unmounted when dropped.
pub struct Tmpfs(PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Every path under `dir` with its size (directories as 0), sorted: what
/// a store holds, to compare before and after.
pub fn listing(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                todo.push(e.path());
                out.push((e.path(), 0));
            } else {
                out.push((e.path(), m.len()));
            }
        }
    }
    out.sort();
    out
}

/// Is `tool` on PATH?
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A plain `docker-registry` (no auth, deletes allowed) on a free loopback
/// port, its storage and config under `dir`; killed on drop.
pub struct Registry {
    child: std::process::Child,
    pub port: u16,
}

impl Registry {
    pub fn start(dir: &Path) -> Registry {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::create_dir_all(dir.join("storage")).unwrap();
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.join("storage").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting docker-registry");
        let r = Registry { child, port };
        wait_until("registry listening", Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        r
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Env {
    /// `system check` passes (exit 0) on this user's store.
    pub fn check_passes(&self, what: &str) {
        let o = self.run(["system", "check"]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{what}: system check failed:\n{}{}",
            stdout(&o),
            stderr(&o)
        );
    }
}

/// Host conditions for `Env::cmd_on_host`, as shell run as root in the
/// command's private mount namespace.
pub mod host {
    /// `/dev/net/tun` exists but only root may open it (mode 0600, as on
    /// hosts whose udev rules or image builders leave it so).
    pub const TUN_ROOT_ONLY: &str = "mkdir -p /dev/net\nmount -t tmpfs -o mode=0755 tmpfs /dev/net\nmknod -m 0600 /dev/net/tun c 10 200";
    /// No `/dev/net/tun` at all (CI job containers, Kubernetes pods).
    pub const NO_TUN: &str =
        "if [ -d /dev/net ]; then mount -t tmpfs -o mode=0755 tmpfs /dev/net; fi";
    /// `/dev/net/tun` open to everyone (Debian's default mode), made here
    /// rather than trusted from the host.
    pub const TUN_OPEN: &str = "mkdir -p /dev/net\nmount -t tmpfs -o mode=0755 tmpfs /dev/net\nmknod -m 0666 /dev/net/tun c 10 200";
}

/// Whether the host has a default route (pasta will not start without
/// one); says loudly when not, for the test that needs it.
pub fn route_to_anywhere() -> bool {
    let has = std::fs::read_to_string("/proc/net/route")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .any(|l| l.split_whitespace().nth(1) == Some("00000000"));
    if !has {
        loud("SKIPPED (part): this host has no default route, so no network helper can start here");
    }
    has
}

/// After a `run --rm` that returned `o`: note in `failed` an exit code
/// other than `want`, and a container still listed once it returned
/// (removed then, so the next check starts from an empty list).
pub fn check_removed_run(env: &Env, o: &Output, want: i32, what: &str, failed: &mut Vec<String>) {
    if o.status.code() != Some(want) {
        failed.push(format!(
            "[{:?}] {what}: exit {:?}: {}",
            env.who,
            o.status.code(),
            stderr(o).trim()
        ));
    }
    let left = env.ok(["ps", "-aq"]);
    if !left.trim().is_empty() {
        failed.push(format!(
            "[{:?}] {what}: still listed after it returned: {}",
            env.who,
            left.trim()
        ));
        let _ = env
            .cmd(["rm", "-f"].into_iter().chain(left.split_whitespace()))
            .output();
    }
}

/// GET / on `addr` over HTTP/1.0, retried for `patience` while the server
/// starts; the whole answer (head and body) once it says 200 OK.
pub fn http_get(addr: std::net::SocketAddr, patience: Duration) -> String {
    use std::io::{Read, Write};
    let deadline = Instant::now() + patience;
    loop {
        let got = (|| -> std::io::Result<String> {
            let mut s = std::net::TcpStream::connect(addr)?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
            let mut body = String::new();
            s.read_to_string(&mut body)?;
            Ok(body)
        })();
        match got {
            Ok(b) if b.contains("200 OK") => return b,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            other => panic!("no page on {addr}: {other:?}"),
        }
    }
}
