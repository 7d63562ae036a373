//! Package managers without a subordinate range: apt's download sandbox
//! (setgroups, setresgid/setresuid to `_apt`, seteuid in the http method;
//! with fake ids burrow tells apt to stay root, since apt checks the switch
//! with getgid) and dpkg's chown of every file it unpacks (to an id the
//! single-id mapping lacks, in a package of the test's own), in a Debian
//! image, from a
//! flat apt repository this test serves on 127.0.0.1 (the container uses
//! `--network host` and reaches nothing else). Changes of ids and owners
//! are faked for a single-id mapping, not for a range, and
//! `--security-opt fake-ids=off|on` says otherwise.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::common::{self, stderr, stdout, Env, Who};

/// The uid and gid that own the file of the test's own package: mapped for
/// a range user, not for a user without one.
const OWNER: u32 = 4242;

/// The repository's directory (hello's .deb from the host's mirror, a
/// package with a file owned by [`OWNER`], and their Packages index), made
/// once per run; None, said loudly, when hello cannot be fetched.
fn repo(test: &str) -> Option<PathBuf> {
    static REPO: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let made = REPO.get_or_init(|| {
        let env = Env::new(Who::Single, "fakeroot-repo").ok_or("no test user")?;
        let dir = env.shared_dir().join("apt-repo");
        std::fs::create_dir_all(&dir).unwrap();
        fetch_hello(&dir)?;
        owned_package(&dir);
        write_packages(&dir);
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let mode = if e.path().is_dir() { 0o755 } else { 0o644 };
            std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        Ok(dir)
    });
    match made {
        Ok(d) => Some(d.clone()),
        Err(why) => {
            common::loud(&format!("SKIPPED {test}: {why}"));
            None
        }
    }
}

/// `apt-get download hello` on the host, with apt's lists and cache in a
/// directory of the test's own (the host's apt state is not touched).
fn fetch_hello(dir: &Path) -> Result<(), String> {
    let state = dir.join("apt-state");
    let script = r#"
        s=$1
        mkdir -p "$s/lists/partial" "$s/archives/partial"
        set -- -o Dir::State::Lists="$s/lists" -o Dir::Cache::Archives="$s/archives" \
            -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o Debug::NoLocking=1 \
            -o APT::Sandbox::User=root
        apt-get -qq "$@" update
        apt-get -qq "$@" download hello
    "#;
    let o = Command::new("sh")
        .args(["-ec", script, "sh"])
        .arg(&state)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("apt-get: {e}"))?;
    let _ = std::fs::remove_dir_all(&state);
    let fetched = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with("hello_"));
    if !o.status.success() || !fetched {
        return Err(format!(
            "hello's .deb cannot be fetched from the host's mirror (apt-get download hello):\n{}",
            stderr(&o)
        ));
    }
    Ok(())
}

/// `burrow-owned`: one directory and file owned by OWNER:OWNER, so dpkg
/// chowns to an id a single-id mapping does not have.
fn owned_package(dir: &Path) {
    let src = dir.join("owned-src");
    let share = src.join("usr/share/burrow-owned");
    std::fs::create_dir_all(src.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(&share).unwrap();
    std::fs::write(
        src.join("DEBIAN/control"),
        "Package: burrow-owned\nVersion: 1.0\nArchitecture: all\nMaintainer: burrow tests <tests@burrow.invalid>\nDescription: a file owned by another user than root\n",
    )
    .unwrap();
    std::fs::write(share.join("owned"), "owned\n").unwrap();
    for p in [&share, &share.join("owned")] {
        let id = Some(OWNER);
        std::os::unix::fs::chown(p, id, id).unwrap();
    }
    let o = Command::new("dpkg-deb")
        .args(["--build", "-Zgzip"])
        .arg(&src)
        .arg(dir.join("burrow-owned_1.0_all.deb"))
        .output()
        .unwrap();
    assert!(o.status.success(), "dpkg-deb --build: {}", stderr(&o));
    std::fs::remove_dir_all(&src).unwrap();
}

/// A flat repository's `Packages`: each .deb's control fields
/// (`dpkg-deb -f`), then Filename, Size and SHA256 (deb-packages(5)).
fn write_packages(dir: &Path) {
    let mut index = String::new();
    let mut debs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    debs.sort();
    for deb in debs {
        let fields = Command::new("dpkg-deb")
            .arg("-f")
            .arg(&deb)
            .output()
            .unwrap();
        assert!(fields.status.success(), "dpkg-deb -f: {}", stderr(&fields));
        let sum = Command::new("sha256sum").arg(&deb).output().unwrap();
        let name = deb.file_name().unwrap().to_string_lossy().into_owned();
        index.push_str(stdout(&fields).trim_end());
        index.push_str(&format!(
            "\nFilename: ./{name}\nSize: {}\nSHA256: {}\n\n",
            std::fs::metadata(&deb).unwrap().len(),
            stdout(&sum).split_whitespace().next().unwrap()
        ));
    }
    std::fs::write(dir.join("Packages"), index).unwrap();
}

/// `python3 -m http.server` serving `dir` on a free port of 127.0.0.1,
/// killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m http.server");
        common::wait_until(
            "the apt repository's server",
            Duration::from_secs(20),
            || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        );
        Server { child, port }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The image's only apt source is the test's repository; then apt fetches
/// over http (its sandboxed method) and dpkg unpacks, and hello runs.
fn apt_script(port: u16) -> String {
    format!(
        "set -e
rm -f /etc/apt/sources.list.d/*
echo 'deb [trusted=yes] http://127.0.0.1:{port} ./' >/etc/apt/sources.list
apt-get update
apt-get install -y hello burrow-owned
hello
echo owner=$(stat -c %u:%g /usr/share/burrow-owned/owned)"
    )
}

/// The Debian image imported for `env`, and the running repository.
fn setup(test: &str, env: &Env) -> Option<Server> {
    let tar = common::debian_tar(test)?;
    let repo = repo(test)?;
    env.ok(["import", tar.to_str().unwrap(), "debian"]);
    Some(Server::start(&repo))
}

fn show(o: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    )
}

/// What a user with a range (real ids) and without (faked ones) sees as
/// the owner of the package's file.
fn expected_owner(who: Who) -> String {
    match who {
        Who::Range => format!("owner={OWNER}:{OWNER}"),
        // Faked: dpkg's chown did nothing, the file is the user's (root).
        Who::Single => "owner=0:0".into(),
    }
}

#[test]
fn apt_installs_hello_without_a_range() {
    let test = "apt_installs_hello_without_a_range";
    for env in common::users(test) {
        let Some(server) = setup(test, &env) else {
            return;
        };
        let script = apt_script(server.port);
        let o = env.run([
            "run",
            "--rm",
            "--network",
            "host",
            "debian",
            "sh",
            "-c",
            &script,
        ]);
        assert!(o.status.success(), "[{:?}] {}", env.who, show(&o));
        let out = stdout(&o);
        assert!(out.contains("Hello, world!"), "{}", show(&o));
        assert!(
            out.contains(&expected_owner(env.who)),
            "[{:?}] {}",
            env.who,
            show(&o)
        );
        // apt really fetched over http, through its method.
        assert!(out.contains("http://127.0.0.1"), "{}", show(&o));
    }
}

/// Without fake ids apt fails as it does today; with a range the default
/// leaves ids real and `fake-ids=on` fakes them.
#[test]
fn fake_ids_off_restores_the_failure() {
    let test = "fake_ids_off_restores_the_failure";
    for env in common::users(test) {
        let Some(server) = setup(test, &env) else {
            return;
        };
        let script = apt_script(server.port);
        let (opt, ok) = match env.who {
            Who::Single => ("fake-ids=off", false),
            Who::Range => ("fake-ids=on", true),
        };
        let o = env.run([
            "run",
            "--rm",
            "--network",
            "host",
            "--security-opt",
            opt,
            "debian",
            "sh",
            "-c",
            &script,
        ]);
        assert_eq!(
            o.status.success(),
            ok,
            "[{:?}] {opt}: {}",
            env.who,
            show(&o)
        );
        let all = format!("{}{}", stdout(&o), stderr(&o));
        match env.who {
            // The calls the kernel refuses under a single-id mapping.
            Who::Single => assert!(
                all.contains("setgroups") || all.contains("seteuid"),
                "{}",
                show(&o)
            ),
            // Faked on request: dpkg's chown did nothing.
            Who::Range => assert!(all.contains("owner=0:0"), "{}", show(&o)),
        }
    }
}

#[test]
fn a_build_run_step_installs_hello_without_a_range() {
    let test = "a_build_run_step_installs_hello_without_a_range";
    for env in common::users(test) {
        let Some(server) = setup(test, &env) else {
            return;
        };
        let ctx = env.user_dir("build-ctx");
        let mut df = std::fs::File::create(ctx.join("Dockerfile")).unwrap();
        let script = apt_script(server.port)
            .replace('\n', " && ")
            .replace("set -e && ", "");
        writeln!(df, "FROM debian\nRUN {script}").unwrap();
        drop(df);
        env.share(&ctx.join("Dockerfile"));
        let o = env.run([
            "build",
            "--network",
            "host",
            "-t",
            "with-hello",
            ctx.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "[{:?}] {}", env.who, show(&o));
        assert!(
            format!("{}{}", stdout(&o), stderr(&o)).contains(&expected_owner(env.who)),
            "{}",
            show(&o)
        );
        let out = env.ok(["run", "--rm", "--network", "none", "with-hello", "hello"]);
        assert_eq!(out.trim(), "Hello, world!");
        // The apt setting bound in for fake ids is not part of the image.
        let out = env.ok([
            "run",
            "--rm",
            "--network",
            "none",
            "--security-opt",
            "fake-ids=off",
            "with-hello",
            "ls",
            "/etc/apt/apt.conf.d",
        ]);
        assert!(!out.contains("burrow"), "{out}");
    }
}

/// The switch without Debian: chown in busybox. Default per mapping, the
/// choice kept by `create` for `start` and shown by `inspect`, `-u` to an
/// unmapped user still refused, and the no-range line said once.
#[test]
fn fake_ids_follow_the_mapping_and_the_switch() {
    let chown = "touch /f && chown 42:42 /f && stat -c %u /f";
    for env in common::users("fake_ids_switch") {
        env.import_busybox("busybox");
        let real = match env.who {
            Who::Range => "42",
            Who::Single => "0",
        };
        let out = env.ok([
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            chown,
        ]);
        assert_eq!(out.trim(), real, "[{:?}] the default", env.who);
        let out = env.ok([
            "run",
            "--rm",
            "--network",
            "none",
            "--security-opt",
            "fake-ids=on",
            "busybox",
            "sh",
            "-c",
            chown,
        ]);
        assert_eq!(out.trim(), "0", "[{:?}] fake-ids=on", env.who);
        // Over any policy: unconfined and a profile file too.
        // A profile that refuses the chown family: fake ids still win.
        let profile = env.home.join("no-chown.json");
        std::fs::write(
            &profile,
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["chown","fchown","fchownat","lchown"],"action":"SCMP_ACT_ERRNO"}]}"#,
        )
        .unwrap();
        env.share(&profile);
        let from_file = format!("seccomp={}", profile.display());
        for policy in ["seccomp=unconfined", from_file.as_str()] {
            let out = env.ok([
                "run",
                "--rm",
                "--network",
                "none",
                "--security-opt",
                policy,
                "--security-opt",
                "fake-ids=on",
                "busybox",
                "sh",
                "-c",
                chown,
            ]);
            assert_eq!(out.trim(), "0", "[{:?}] {policy}", env.who);
        }
        if env.who == Who::Single {
            // No policy asked for, no filter: ids stay real unless
            // fake-ids=on says otherwise (above).
            let no_filters: [&[&str]; 2] =
                [&["--security-opt", "seccomp=unconfined"], &["--privileged"]];
            for no_filter in no_filters {
                let mut args = vec!["run", "--rm", "--network", "none"];
                args.extend(no_filter);
                args.extend(["busybox", "sh", "-c", chown]);
                let o = env.run(&args);
                assert!(!o.status.success(), "{no_filter:?}: {}", show(&o));
                assert!(stderr(&o).contains("chown"), "{}", show(&o));
            }
            // create keeps the switch for start; inspect shows it.
            env.ok([
                "create",
                "--network",
                "none",
                "--name",
                "real-ids",
                "--security-opt",
                "fake-ids=off",
                "busybox",
                "sh",
                "-c",
                chown,
            ]);
            let o = env.run(["start", "-a", "real-ids"]);
            assert!(!o.status.success(), "{}", show(&o));
            assert!(stderr(&o).contains("chown"), "{}", show(&o));
            let opts = env.ok([
                "inspect",
                "-f",
                "{{json .HostConfig.SecurityOpt}}",
                "real-ids",
            ]);
            assert_eq!(opts.trim(), r#"["fake-ids=off"]"#);
            // A faked setuid must not make `-u` look as if it worked.
            let o = env.run([
                "run",
                "--rm",
                "--network",
                "none",
                "-u",
                "1000",
                "busybox",
                "id",
                "-u",
            ]);
            assert_eq!(o.status.code(), Some(126), "{}", show(&o));
            assert!(stderr(&o).contains("not mapped"), "{}", show(&o));
            // pull and run say once what having no range means: a fresh
            // runtime directory of this test's own.
            let rt = env.user_dir("runtime");
            std::fs::set_permissions(&rt, std::fs::Permissions::from_mode(0o700)).unwrap();
            let said =
                |o: &std::process::Output| stderr(o).matches("no subuid/subgid range").count();
            let run = || {
                env.cmd(["run", "--rm", "--network", "none", "busybox", "true"])
                    .env("XDG_RUNTIME_DIR", &rt)
                    .output()
                    .unwrap()
            };
            let first = run();
            assert!(first.status.success(), "{}", show(&first));
            assert_eq!(said(&first), 1, "{}", show(&first));
            assert_eq!(said(&run()), 0);
            // pull too, from a registry on loopback, in another fresh one.
            if !common::have("docker-registry") {
                common::loud("SKIPPED fake_ids_follow_the_mapping_and_the_switch (pull's line): docker-registry is not installed");
                continue;
            }
            let reg = common::Registry::start(&env.home.join("registry"));
            let dest = format!("127.0.0.1:{}/bb:1", reg.port);
            env.ok(["tag", "busybox", &dest]);
            env.ok(["push", &dest]);
            let rt = env.user_dir("runtime-pull");
            std::fs::set_permissions(&rt, std::fs::Permissions::from_mode(0o700)).unwrap();
            let pull = || {
                env.cmd(["pull", &dest])
                    .env("XDG_RUNTIME_DIR", &rt)
                    .output()
                    .unwrap()
            };
            let first = pull();
            assert!(first.status.success(), "{}", show(&first));
            assert_eq!(said(&first), 1, "{}", show(&first));
            assert_eq!(said(&pull()), 0);
        }
    }
}

/// A hostile image whose /etc/apt/apt.conf.d is a symlink to a directory
/// of the host: the apt setting burrow binds in with fake ids is placed
/// inside the container's root, never in the host directory the link
/// names.
#[test]
fn the_apt_setting_is_bound_inside_the_root_whatever_the_image_links() {
    for env in common::users("fake_ids_apt_link") {
        let host_dir = env.user_dir("host-apt-dir");
        let extra = env.user_dir("apt-link-image");
        std::fs::create_dir_all(extra.join("etc/apt")).unwrap();
        let link = extra.join("etc/apt/apt.conf.d");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&host_dir, &link).unwrap();
        let tar = env.user_dir("tars").join("apt-link.tar");
        std::fs::copy(env.busybox_tar(), &tar).unwrap();
        let ok = Command::new("tar")
            .arg("-rf")
            .arg(&tar)
            .arg("-C")
            .arg(&extra)
            .arg("etc/apt")
            .status()
            .unwrap()
            .success();
        assert!(ok);
        env.share(&tar);
        env.ok(["import", tar.to_str().unwrap(), "apt-link"]);
        let o = env.run([
            "run",
            "--rm",
            "--network",
            "none",
            "--security-opt",
            "fake-ids=on",
            "apt-link",
            "sh",
            "-c",
            "cat /etc/apt/apt.conf.d/99burrow-fake-ids",
        ]);
        // Started or refused, the host directory the link names got nothing.
        let entries: Vec<_> = std::fs::read_dir(&host_dir).unwrap().flatten().collect();
        assert!(
            entries.is_empty(),
            "[{:?}] the host directory got {:?} ({})",
            env.who,
            entries.iter().map(|e| e.file_name()).collect::<Vec<_>>(),
            show(&o)
        );
        // And the container did get the setting, in its own root.
        assert!(o.status.success(), "[{:?}] {}", env.who, show(&o));
        assert!(
            stdout(&o).contains("APT::Sandbox::User \"root\""),
            "{}",
            show(&o)
        );
    }
}
