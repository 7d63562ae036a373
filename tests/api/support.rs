//! The shared world of the API tests: one `burrow system service` per test
//! user on a socket in a directory of its own, the busybox image imported
//! into that user's store, and the real clients run as that same user
//! (the socket is 0600).

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::common::{self, host, loud, stderr, stdout, wait_until, Env};

/// Debian's docker 20.10 CLI, named by its path: a newer CLI may be
/// earlier on PATH on a developer's machine.
pub const DOCKER: &str = "/usr/bin/docker";
pub const COMPOSE: &str = "/usr/bin/docker-compose";
pub const PYTHON: &str = "/usr/bin/python3";

/// The image every test runs: the harness's busybox, imported once per
/// user under the name clients use.
pub const IMAGE: &str = "busybox";

/// A running `burrow system service`, ended when this value drops or when
/// the test process goes (whichever is first).
pub struct Service {
    child: Child,
    /// The watcher in the wrapper shell ends the service when this pipe
    /// closes, so a service outlives no test process, even one killed.
    _stdin: ChildStdin,
    pub sock: PathBuf,
    pub log: PathBuf,
}

/// The shell that runs the service: it kills the service when its stdin
/// closes (the test process ended), and exits with the service's status
/// when the service ends by itself.
const WRAPPER: &str = r#"exec 3<&0
"$@" <&- 3<&- &
pid=$!
(cat <&3 >/dev/null; kill $pid 2>/dev/null) &
watcher=$!
exec 3<&-
wait $pid
st=$?
kill $watcher 2>/dev/null
exit $st"#;

impl Service {
    /// Start a service for `env` on `sock` with `--time idle`, and wait until
    /// it accepts connections.
    pub fn start(env: &Env, sock: &Path, idle: u64) -> Service {
        let inner = env.cmd([
            "--log-level".to_string(),
            "debug".to_string(),
            "system".to_string(),
            "service".to_string(),
            "--time".to_string(),
            idle.to_string(),
            format!("unix://{}", sock.display()),
        ]);
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, Ordering::SeqCst);
        let log = env.home.join(format!("service-{n}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let mut c = Command::new("/bin/sh");
        c.arg("-c")
            .arg(WRAPPER)
            .arg("sh")
            .arg(inner.get_program())
            .args(inner.get_args())
            .env_clear()
            .current_dir(&env.home)
            .stdin(Stdio::piped())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .process_group(0);
        for (k, v) in inner.get_envs() {
            if let Some(v) = v {
                c.env(k, v);
            }
        }
        let mut child = c.spawn().expect("starting burrow system service");
        let stdin = child.stdin.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(sock).is_err() {
            if let Ok(Some(st)) = child.try_wait() {
                panic!(
                    "[{:?}] burrow system service exited ({st}) before listening:\n{}",
                    env.who,
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "[{:?}] burrow system service does not listen on {}:\n{}",
                env.who,
                sock.display(),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Service {
            child,
            _stdin: stdin,
            sock: sock.to_path_buf(),
            log,
        }
    }

    /// The service's exit status, once it has ended by itself.
    pub fn try_exit(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn uri(&self) -> String {
        format!("unix://{}", self.sock.display())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // Closing the wrapper's stdin (dropped with `self`) ends the
        // service; end the wrapper itself too, then reap it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn as_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// One test user's world: its environment and its service.
pub struct World {
    pub env: Env,
    pub service: Mutex<Service>,
    pub uri: String,
    /// HOME of the clients (the docker CLI's config directory is there).
    pub client_home: PathBuf,
    /// Whether the stand-in reaper image was built (once per world).
    reaper: OnceLock<bool>,
}

/// A directory for a socket: owned by the test user, 0700, as the service
/// wants its socket's directory.
pub fn socket_dir(env: &Env, name: &str) -> PathBuf {
    let d = env.user_dir(name);
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
    d
}

/// The worlds of every test user this host can provide, made once per test
/// process: tests share one service per user, as clients on one host do.
pub fn worlds() -> &'static [World] {
    static W: OnceLock<Vec<World>> = OnceLock::new();
    W.get_or_init(|| {
        common::users("api")
            .into_iter()
            .map(|e| e.on_host("api", host::TUN_OPEN))
            .map(|env| {
                env.import_busybox(IMAGE);
                // The once-per-boot notices are said now, not as warnings
                // of some test's first create.
                env.settle(IMAGE);
                let sock_dir = socket_dir(&env, "sock");
                let service = Service::start(&env, &sock_dir.join("api.sock"), 0);
                let client_home = env.user_dir("client-home");
                World {
                    uri: service.uri(),
                    service: Mutex::new(service),
                    env,
                    client_home,
                    reaper: OnceLock::new(),
                }
            })
            .collect()
    })
}

impl World {
    pub fn who(&self) -> String {
        format!("{:?}", self.env.who)
    }

    /// A client program as the test user, talking to this world's service.
    pub fn client(&self, program: &str) -> Command {
        client_for(&self.env, &self.client_home, &self.uri, program)
    }

    /// `docker ARGS` (Debian's 20.10 CLI).
    pub fn docker<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut c = self.client(DOCKER);
        c.args(args);
        c
    }

    /// Run `docker ARGS` and capture it (killed after `CLIENT_TIMEOUT`).
    pub fn docker_run(&self, args: &[&str]) -> Output {
        output_within(self.docker(args), None, CLIENT_TIMEOUT)
    }

    /// Run `docker ARGS`, asserting success; its stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let o = self.docker_run(args);
        assert!(
            o.status.success(),
            "[{}] docker {args:?} failed ({:?})\nstdout: {}\nstderr: {}\nservice log:\n{}",
            self.who(),
            o.status.code(),
            stdout(&o),
            stderr(&o),
            self.service_log()
        );
        stdout(&o)
    }

    /// Run `docker ARGS` with `input` on its stdin.
    pub fn docker_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        output_within(self.docker(args), Some(input), Duration::from_secs(30))
    }

    /// `burrow ARGS` on the same store, asserting success.
    pub fn burrow_ok(&self, args: &[&str]) -> String {
        self.env.ok(args)
    }

    /// The last lines of the service's log, for failure messages.
    pub fn service_log(&self) -> String {
        let log = self.service.lock().unwrap().log.clone();
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(12)..].join("\n")
    }

    /// A shell line running `docker ARGS` as the test user (for tmux).
    pub fn docker_line(&self, args: &str) -> String {
        let who = if as_root() {
            let (u, g) = self.env.ids();
            format!("setpriv --reuid {u} --regid {g} --clear-groups ")
        } else {
            String::new()
        };
        format!(
            "{who}env -i TERM=xterm PATH=/usr/bin:/bin HOME={} DOCKER_HOST={} {DOCKER} {args}",
            self.client_home.display(),
            self.uri
        )
    }
}

/// How long a client command may take before the test kills it and fails
/// (a client waiting forever on the service is a failure, not a hang).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(90);

/// Run `c` with `input` (or nothing) on its stdin and capture its output;
/// killed after `limit`, which its stderr then says.
pub fn output_within(mut c: Command, input: Option<&[u8]>, limit: Duration) -> Output {
    c.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let shown = format!("{:?}", c.get_args().collect::<Vec<_>>());
    let mut child = c.spawn().expect("starting a client");
    let feeder = child.stdin.take().map(|mut w| {
        let input = input.unwrap_or_default().to_vec();
        std::thread::spawn(move || {
            let _ = w.write_all(&input);
        })
    });
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = reader(Box::new(child.stdout.take().unwrap()));
    let err = reader(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + limit;
    let mut timed_out = false;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            timed_out = true;
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if let Some(f) = feeder {
        let _ = f.join();
    }
    let stdout = out.join().unwrap();
    let mut stderr = err.join().unwrap();
    if timed_out {
        stderr.extend_from_slice(format!("\n[test: {shown} killed after {limit:?}]\n").as_bytes());
    }
    Output {
        status,
        stdout,
        stderr,
    }
}

/// A client program as `env`'s user with `DOCKER_HOST=uri` and a clean
/// environment.
pub fn client_for(env: &Env, home: &Path, uri: &str, program: &str) -> Command {
    let mut c = Command::new(program);
    c.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .env("DOCKER_HOST", uri)
        .env("LANG", "C.UTF-8")
        .current_dir(&env.home)
        .stdin(Stdio::null());
    if as_root() {
        let (u, g) = env.ids();
        c.uid(u).gid(g);
    }
    c
}

/// Removes, when dropped (also when a test fails), every container that
/// carries the label `apitest=TAG` in `world`'s store.
pub struct Cleanup<'a> {
    world: &'a World,
    tag: String,
}

impl<'a> Cleanup<'a> {
    pub fn new(world: &'a World, tag: &str) -> Cleanup<'a> {
        Cleanup {
            world,
            tag: tag.to_string(),
        }
    }

    /// The `--label` value clients put on what they create.
    pub fn label(&self) -> String {
        format!("apitest={}", self.tag)
    }
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let o = self.world.env.run([
            "ps",
            "-aq",
            "--filter",
            &format!("label=apitest={}", self.tag),
        ]);
        let ids: Vec<String> = stdout(&o).split_whitespace().map(str::to_string).collect();
        if !ids.is_empty() {
            let _ = self
                .world
                .env
                .cmd(["rm", "-f"].into_iter().map(String::from).chain(ids))
                .output();
        }
    }
}

/// A TCP port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET / on 127.0.0.1:port, retried for 15 s while the server starts; the
/// whole answer (head and body).
pub fn http_get(port: u16) -> String {
    common::http_get(
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(15),
    )
}

/// A shell line for busybox: serve `body` on `port` with httpd, saying
/// `serving` first.
pub fn httpd_script(body: &str, port: u16) -> String {
    format!(
        "mkdir -p /www && echo {body} > /www/index.html && echo serving && exec httpd -f -p {port} -h /www"
    )
}

/// Write `text` to `path` (as root), readable by the test users.
pub fn write_shared(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// Wait until `f` holds (at most `secs` seconds).
pub fn eventually(what: &str, secs: u64, f: impl FnMut() -> bool) {
    wait_until(what, Duration::from_secs(secs), f);
}

/// Put an image of its own (busybox with a label naming `reference`, so
/// no container uses it) at `reference` in a loopback registry, and leave
/// nothing of it in the local store.
pub fn push_image(w: &World, reference: &str) {
    w.env.ok([
        "import",
        w.env.busybox_tar().to_str().unwrap(),
        reference,
        "--change",
        &format!("LABEL apitest.pushed={reference}"),
        "--change",
        r#"CMD ["sh"]"#,
    ]);
    w.burrow_ok(&["push", reference]);
    w.burrow_ok(&["rmi", reference]);
}

/// The stand-in reaper image: a static program (`reaper.c`) on busybox,
/// built with `burrow build` (not through the API: this test is about the
/// socket seen from inside a container).
pub fn build_reaper(w: &World) -> bool {
    *w.reaper.get_or_init(|| make_reaper(w))
}

fn make_reaper(w: &World) -> bool {
    let ctx = w.env.user_dir("reaper-ctx");
    let bin = ctx.join("reaper");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/reaper.c");
    if !bin.exists() && !common::compile_static(&src, &bin) {
        loud("SKIPPED api stand-in reaper tests: no C compiler or static libc (apt-get install gcc libc6-dev)");
        return false;
    }
    write_shared(
        &ctx.join("Dockerfile"),
        &format!("FROM {IMAGE}\nCOPY reaper /reaper\nEXPOSE 8080\nCMD [\"/reaper\"]\n"),
    );
    w.burrow_ok(&[
        "build",
        "-q",
        "-t",
        "apitest/reaper:1",
        ctx.to_str().unwrap(),
    ]);
    true
}
