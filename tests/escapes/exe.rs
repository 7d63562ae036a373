//! runc's CVE-2019-5736 against burrow: a container reaches the runtime's
//! own executable through `/proc/PID/exe` of a burrow process in its pid
//! namespace (or makes one re-execute itself inside with a
//! `#!/proc/self/exe` script), holds it, and writes a payload into it once
//! nothing runs it. The target is a copy of burrow the test user owns (as
//! `cargo install` leaves `~/.cargo/bin/burrow`), run as that user; each
//! test asserts that the container never held that file, that its bytes are
//! unchanged and that the payload never ran.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{self, Env, Who};
use crate::{evil_image, probe};

/// What the probe's payload leaves in the test user's home when it runs.
const PWNED: &str = "pwned-by-container";

/// The script that makes the process exec'ing it run its own executable
/// again inside the container (the kernel resolves the interpreter there).
const SHEBANG: &str = "#!/proc/self/exe\n";

/// A copy of the built burrow owned by the test user, in their home, with
/// a `burrow-runc` link beside it; returns the binary's path.
fn user_binary(env: &Env) -> PathBuf {
    let dir = env.user_dir("bin");
    let bin = dir.join("burrow");
    install(env, &bin);
    let link = dir.join("burrow-runc");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink("burrow", &link).unwrap();
    let (uid, gid) = env.ids();
    let _ = nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        &link,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    );
    bin
}

/// Copy the harness's burrow to `path` as the test user's own 0755 file.
fn install(env: &Env, path: &Path) {
    let _ = std::fs::remove_file(path);
    std::fs::copy(env.shared_dir().join("burrow"), path).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (uid, gid) = env.ids();
    nix::unistd::chown(
        path,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
    )
    .unwrap();
}

/// `program` (the user's burrow, or its burrow-runc link) with `args`, as
/// the test user, in the environment the harness gives burrow.
fn as_user(env: &Env, program: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(program);
    c.args(args)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .env("HOME", &env.home)
        .env("BURROW_ROOT", &env.root)
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .current_dir(&env.home)
        .stdin(Stdio::null());
    if nix::unistd::Uid::effective().is_root() {
        let (uid, gid) = env.ids();
        c.uid(uid).gid(gid);
    } else if env.who == Who::Single {
        c.env("BURROW_USERNS", "single");
    }
    c
}

fn output(env: &Env, program: &Path, args: &[&str]) -> Output {
    as_user(env, program, args).output().unwrap()
}

fn ok(env: &Env, program: &Path, args: &[&str]) -> String {
    let o = output(env, program, args);
    assert!(
        o.status.success(),
        "[{:?}] {program:?} {args:?}: {}",
        env.who,
        common::stderr(&o)
    );
    common::stdout(&o)
}

fn sha256(path: &Path) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(path).unwrap()).to_vec()
}

/// A file as the probe names it: (st_dev, st_ino).
type FileId = (u64, u64);

/// The file's identity, as the probe prints it.
fn identity(path: &Path) -> FileId {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).unwrap();
    (m.dev(), m.ino())
}

/// The (dev, ino) of every executable the probe held, and of every one it
/// wrote, from its output.
fn held_and_written(out: &str) -> (Vec<FileId>, Vec<FileId>) {
    let mut held = Vec::new();
    let mut wrote = Vec::new();
    for line in out.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        let num = |i: usize| w.get(i).and_then(|s| s.parse::<u64>().ok());
        match w.first() {
            Some(&"exe") => held.extend(num(2).zip(num(3))),
            Some(&"wrote") => wrote.extend(num(1).zip(num(2))),
            _ => {}
        }
    }
    (held, wrote)
}

/// What the container must not have done to the user's binary at `bin`
/// (whose content hashed to `before`): held it, written it, or had its
/// payload run by the user's next command.
fn assert_untouched(env: &Env, bin: &Path, before: &[u8], probe_out: &str, what: &str) {
    let who = env.who;
    let me = identity(bin);
    let (held, wrote) = held_and_written(probe_out);
    // Reaching no process of burrow's at all is safe too, but then this run
    // proved nothing: say so.
    if held.is_empty() {
        common::loud(&format!(
            "note [{who:?}] {what}: the probe reached no process of burrow's"
        ));
    }
    // The next thing the user runs: the payload, if the binary was replaced.
    let _ = output(env, bin, &["ps", "-a"]);
    assert!(
        !env.home.join(PWNED).exists(),
        "[{who:?}] {what}: the container's payload ran as the user\n{probe_out}"
    );
    assert_eq!(
        sha256(bin),
        before,
        "[{who:?}] {what}: the user's burrow binary was rewritten\n{probe_out}"
    );
    assert!(
        !wrote.contains(&me),
        "[{who:?}] {what}: the container wrote the user's binary\n{probe_out}"
    );
    assert!(
        !held.contains(&me),
        "[{who:?}] {what}: /proc/PID/exe of a burrow process in the container was the user's binary\n{probe_out}"
    );
}

/// The probe and the `#!/proc/self/exe` script as host files, or None
/// (said loudly) without a static C compiler.
fn weapons(env: &Env) -> Option<(PathBuf, PathBuf)> {
    let grab = probe(env, "exe_grab")?;
    let evil = env.shared_dir().join("exe-evil.sh");
    if !evil.exists() {
        std::fs::write(&evil, SHEBANG).unwrap();
        std::fs::set_permissions(&evil, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    Some((grab, evil))
}

/// An image holding `/probe` and `/evil`.
fn exe_image(env: &Env, grab: &Path, evil: &Path) {
    evil_image(
        env,
        "exe-evil",
        &[(grab, "/probe"), (evil, "/evil")],
        &[r#"CMD ["/probe", "20"]"#],
    );
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    common::loud(&format!("note: gave up waiting for {what}"));
    false
}

/// `burrow exec` of a `#!/proc/self/exe` script into a running container:
/// the exec'd process runs burrow again inside, and the container's PID 1
/// grabs its executable.
#[test]
fn exec_of_a_proc_self_exe_script_reaches_no_burrow_binary() {
    for env in common::users("exe-exec") {
        let Some((grab, evil)) = weapons(&env) else {
            return;
        };
        exe_image(&env, &grab, &evil);
        let bin = user_binary(&env);
        let before = sha256(&bin);
        ok(&env, &bin, &["run", "-d", "--name", "c", "exe-evil"]);
        let logs = || common::stdout(&output(&env, &bin, &["logs", "c"]));
        wait_for("the probe", 20, || logs().contains("ready"));
        let o = output(&env, &bin, &["exec", "c", "/evil"]);
        let _ = o;
        // The probe says what it held as soon as it holds it; the user's
        // monitor keeps running burrow, so a write would wait for it.
        wait_for("the probe to hold an executable", 5, || {
            logs().contains("exe ")
        });
        let out = logs();
        ok(&env, &bin, &["rm", "-f", "c"]);
        assert_untouched(&env, &bin, &before, &out, "burrow exec");
    }
}

/// `run --init`: PID 1 is burrow's init and the container's program its
/// child, which opens `/proc/1/exe`.
#[test]
fn run_init_shows_the_container_no_burrow_binary() {
    for env in common::users("exe-init") {
        let Some((grab, evil)) = weapons(&env) else {
            return;
        };
        exe_image(&env, &grab, &evil);
        let bin = user_binary(&env);
        let before = sha256(&bin);
        let o = output(
            &env,
            &bin,
            &[
                "run",
                "--rm",
                "--init",
                "--network",
                "none",
                "exe-evil",
                "/probe",
                "2",
            ],
        );
        let out = common::stdout(&o);
        assert!(
            out.contains("done"),
            "[{:?}] {out}{}",
            env.who,
            common::stderr(&o)
        );
        assert_untouched(&env, &bin, &before, &out, "run --init");
    }
}

/// The in-place upgrade: a container's monitor runs the old binary, the
/// user renames a new one over it, and `burrow exec` (the new binary) runs
/// a `#!/proc/self/exe` script in the old container. Nothing runs the new
/// file once exec ends, so a container holding it could write it.
#[test]
fn exec_after_an_in_place_upgrade_cannot_rewrite_the_new_binary() {
    for env in common::users("exe-upgrade") {
        let Some((grab, evil)) = weapons(&env) else {
            return;
        };
        exe_image(&env, &grab, &evil);
        let bin = user_binary(&env);
        ok(
            &env,
            &bin,
            &["run", "-d", "--name", "c", "exe-evil", "/probe", "20"],
        );
        let logs = || common::stdout(&output(&env, &bin, &["logs", "c"]));
        wait_for("the probe", 20, || logs().contains("ready"));
        // The upgrade: a new file renamed over the old one.
        let new = bin.with_file_name("burrow.new");
        install(&env, &new);
        std::fs::rename(&new, &bin).unwrap();
        let before = sha256(&bin);
        let _ = output(&env, &bin, &["exec", "c", "/evil"]);
        wait_for("the probe to finish", 25, || logs().contains("done"));
        let out = logs();
        let _ = output(&env, &bin, &["rm", "-f", "c"]);
        assert_untouched(&env, &bin, &before, &out, "exec after an upgrade");
    }
}

/// `burrow-runc` under an engine: the container's init has exec'd the
/// bundle's program, so nothing of burrow runs once `exec` returns; a
/// container holding the exec's executable can write it then.
#[test]
fn runc_exec_of_a_proc_self_exe_script_cannot_rewrite_burrow_runc() {
    for env in common::users("exe-runc") {
        let Some((grab, evil)) = weapons(&env) else {
            return;
        };
        let bin = user_binary(&env);
        let runc = bin.with_file_name("burrow-runc");
        let before = sha256(&bin);
        let bundle = bundle(&env, &grab, &evil);
        let root = env.user_dir("runc-root");
        let root = root.to_str().unwrap();
        let out_path = env.user_dir("out").join("probe.out");
        let out = std::fs::File::create(&out_path).unwrap();
        let (uid, gid) = env.ids();
        nix::unistd::chown(
            &out_path,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
        )
        .unwrap();
        let st = as_user(
            &env,
            &runc,
            &[
                "--root",
                root,
                "create",
                "--bundle",
                bundle.to_str().unwrap(),
                "c1",
            ],
        )
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .status()
        .unwrap();
        let read = || std::fs::read_to_string(&out_path).unwrap_or_default();
        assert!(st.success(), "[{:?}] create: {}", env.who, read());
        ok(&env, &runc, &["--root", root, "start", "c1"]);
        wait_for("the probe", 20, || read().contains("ready"));
        let _ = output(&env, &runc, &["--root", root, "exec", "c1", "/evil"]);
        wait_for("the probe to finish", 25, || read().contains("done"));
        let probe_out = read();
        let _ = output(&env, &runc, &["--root", root, "kill", "c1", "KILL"]);
        wait_for("init to die", 10, || {
            common::stdout(&output(&env, &runc, &["--root", root, "state", "c1"]))
                .contains("stopped")
        });
        let _ = output(&env, &runc, &["--root", root, "delete", "--force", "c1"]);
        assert_untouched(&env, &bin, &before, &probe_out, "burrow-runc exec");
    }
}

/// A bundle of busybox plus the probe (init) and the script, in a user
/// namespace of its own: the test user as root, and its subuid range if it
/// has one.
fn bundle(env: &Env, grab: &Path, evil: &Path) -> PathBuf {
    let bundle = env.user_dir("bundle");
    let rootfs = bundle.join("rootfs");
    let _ = std::fs::remove_dir_all(&rootfs);
    let rootfs = env.user_dir("bundle/rootfs");
    let (uid, gid) = env.ids();
    let mut tar = Command::new("tar");
    tar.arg("-xf").arg(env.busybox_tar()).arg("-C").arg(&rootfs);
    if nix::unistd::Uid::effective().is_root() {
        tar.uid(uid).gid(gid);
    }
    assert!(tar.status().unwrap().success());
    for (from, name) in [(grab, "probe"), (evil, "evil")] {
        let to = rootfs.join(name);
        std::fs::copy(from, &to).unwrap();
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let map = |own: u32| {
        let mut m = vec![serde_json::json!({"containerID": 0, "hostID": own, "size": 1})];
        if env.who == Who::Range && nix::unistd::Uid::effective().is_root() {
            m.push(
                serde_json::json!({"containerID": 1, "hostID": env.host_uid_of(1), "size": 65536}),
            );
        }
        m
    };
    let config = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {
            "user": {"uid": 0, "gid": 0},
            "args": ["/probe", "20"],
            "env": ["PATH=/bin"],
            "cwd": "/",
            "capabilities": {"bounding": ["CAP_KILL", "CAP_CHOWN", "CAP_DAC_OVERRIDE"],
                             "effective": ["CAP_KILL", "CAP_CHOWN", "CAP_DAC_OVERRIDE"],
                             "permitted": ["CAP_KILL", "CAP_CHOWN", "CAP_DAC_OVERRIDE"]}
        },
        "root": {"path": "rootfs"},
        "hostname": "evil",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "mode=755"]}
        ],
        "linux": {
            "namespaces": [{"type": "user"}, {"type": "mount"}, {"type": "pid"},
                           {"type": "uts"}, {"type": "ipc"}, {"type": "network"}],
            "uidMappings": map(uid),
            "gidMappings": map(gid)
        }
    });
    std::fs::write(bundle.join("config.json"), config.to_string()).unwrap();
    env.share(&bundle.join("config.json"));
    bundle
}
