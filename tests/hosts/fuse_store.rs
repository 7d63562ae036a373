//! A store on a FUSE file system (bindfs), where overlayfs cannot be mounted
//! from a user namespace: containers get a fuse-overlayfs mount where that
//! program works, else a copy (here: fuse-overlayfs hidden by a /dev/null
//! bound over it); the user hears which once, `info` names the mode, builds
//! (COPY, WORKDIR, RUN), `diff` and `commit` work, and no fuse-overlayfs
//! outlives its container.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{self, stderr, stdout, Env};

/// A bindfs mount made for one test; unmounted when dropped, even when the
/// test fails.
struct FuseMount(PathBuf);

impl Drop for FuseMount {
    fn drop(&mut self) {
        let ok = Command::new("fusermount3")
            .arg("-u")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// bindfs, installed when missing and possible (root, apt).
fn have_bindfs(test: &str) -> bool {
    if common::have("bindfs") {
        return true;
    }
    let _ = Command::new("apt-get")
        .args(["install", "-y", "bindfs"])
        .output();
    if common::have("bindfs") {
        return true;
    }
    common::loud(&format!(
        "SKIPPED {test}: bindfs is missing and cannot be installed (apt-get install bindfs)"
    ));
    false
}

/// Put `env`'s store on a bindfs mount (as root, `allow_other`) of a
/// directory the test user owns.
fn store_on_fuse(env: &mut Env) -> FuseMount {
    let back = env.user_dir("fuse-back");
    let mnt = env.user_dir("fuse-store");
    let st = Command::new("bindfs")
        .args(["-o", "allow_other"])
        .arg(&back)
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(st.success(), "mounting bindfs");
    let guard = FuseMount(mnt.clone());
    env.root = mnt.join("store");
    guard
}

fn on_fuse(path: &Path) -> bool {
    let o = Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(path)
        .output()
        .unwrap();
    stdout(&o).trim().starts_with("fuse")
}

/// The fuse-overlayfs daemons serving this store (their command line names
/// its directories), as `pid cmdline` lines.
fn daemons_of(store: &Path) -> Vec<String> {
    let want = store.to_string_lossy().into_owned();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(comm) = std::fs::read_to_string(e.path().join("comm")) else {
            continue;
        };
        if comm.trim() != "fuse-overlayfs" {
            continue;
        }
        let cmdline = std::fs::read(e.path().join("cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        if cmdline.contains(&want) {
            out.push(format!("{} {cmdline}", e.file_name().to_string_lossy()));
        }
    }
    out
}

/// Whether this host can serve a container from fuse-overlayfs: the
/// program is installed and /dev/fuse opens for the test users.
fn have_fuse_overlayfs(test: &str) -> bool {
    if !common::have("fuse-overlayfs") {
        let _ = Command::new("apt-get")
            .args(["install", "-y", "fuse-overlayfs"])
            .output();
    }
    if !common::have("fuse-overlayfs") {
        common::loud(&format!(
            "SKIPPED {test}: fuse-overlayfs is missing and cannot be installed (apt-get install fuse-overlayfs)"
        ));
        return false;
    }
    let mode = std::fs::metadata("/dev/fuse").map(|m| {
        use std::os::unix::fs::PermissionsExt;
        m.permissions().mode() & 0o006
    });
    if !matches!(mode, Ok(0o006)) {
        common::loud(&format!(
            "SKIPPED {test}: /dev/fuse is missing or not open to every user ({mode:?})"
        ));
        return false;
    }
    true
}

fn root_with_bindfs(test: &str) -> bool {
    if !nix::unistd::Uid::effective().is_root() {
        common::loud(&format!(
            "SKIPPED {test}: mounting a FUSE file system for the store needs root"
        ));
        return false;
    }
    have_bindfs(test)
}

#[test]
fn a_store_on_fuse_runs_builds_and_commits_on_fuse_overlayfs() {
    let test = "fuse_store_fuse_overlayfs";
    if !root_with_bindfs(test) || !have_fuse_overlayfs(test) {
        return;
    }
    for mut env in common::users(test) {
        let _mounted = store_on_fuse(&mut env);
        exercise(&env, "fuse-overlayfs");

        // A detached container is served by one daemon while it runs, and
        // by none once it is stopped; its command is PID 1.
        let store = env.root.clone();
        let who = env.who;
        env.ok([
            "run",
            "-d",
            "--name",
            "bg",
            "--network",
            "none",
            "bb",
            "sleep",
            "60",
        ]);
        assert_eq!(
            daemons_of(&store).len(),
            1,
            "[{who:?}] {:?}",
            daemons_of(&store)
        );
        let out = env.ok(["exec", "bg", "cat", "/proc/1/comm"]);
        assert_eq!(out, "sleep\n", "[{who:?}]");
        env.ok(["stop", "-t", "1", "bg"]);
        env.ok(["rm", "bg"]);
        assert_eq!(
            daemons_of(&store),
            Vec::<String>::new(),
            "[{who:?}] left running"
        );
    }
}

#[test]
fn a_store_on_fuse_without_fuse_overlayfs_gets_a_copy() {
    let test = "fuse_store_copy";
    if !root_with_bindfs(test) {
        return;
    }
    // Hidden in each command's own mount namespace: the host keeps it.
    let hide = "if [ -e /usr/bin/fuse-overlayfs ]; then mount --bind /dev/null /usr/bin/fuse-overlayfs; fi";
    for env in common::users(test) {
        let mut env = env.on_host(test, hide);
        let _mounted = store_on_fuse(&mut env);
        exercise(&env, "copy");
    }
}

/// run, info, diff, commit and build on `env`'s FUSE store, whose
/// containers get `mode`; no daemon is left after each container.
fn exercise(env: &Env, mode: &str) {
    assert!(on_fuse(env.root.parent().unwrap()), "the store is on FUSE");
    env.import_busybox("bb");
    let who = env.who;
    let store = env.root.clone();
    let none_left = |when: &str| {
        assert_eq!(
            daemons_of(&store),
            Vec::<String>::new(),
            "[{who:?}] fuse-overlayfs left running after {when}"
        );
    };

    // run: output and exit code; the notice said on the first run only,
    // naming what containers get.
    let notice = "overlayfs cannot be mounted on this store's file system (fuse)";
    let gets = if mode == "copy" {
        "each container gets a full copy of its image"
    } else {
        "containers get a fuse-overlayfs mount"
    };
    let o = env.run([
        "run",
        "--rm",
        "--network",
        "none",
        "bb",
        "sh",
        "-c",
        "echo hello $$; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3), "[{who:?}] {}", stderr(&o));
    assert_eq!(stdout(&o), "hello 1\n", "[{who:?}] the command is PID 1");
    assert_eq!(
        stderr(&o).matches(notice).count(),
        1,
        "[{who:?}] the notice, once: {}",
        stderr(&o)
    );
    assert!(stderr(&o).contains(gets), "[{who:?}] {}", stderr(&o));
    none_left("run --rm");
    let o = env.run(["run", "--rm", "--network", "none", "bb", "true"]);
    assert!(o.status.success(), "[{who:?}] {}", stderr(&o));
    assert!(
        !stderr(&o).contains(notice),
        "[{who:?}] said twice: {}",
        stderr(&o)
    );

    // info names the mode, in text and JSON.
    let text = env.ok(["info"]);
    let line = text
        .lines()
        .find(|l| l.starts_with("Rootfs mode:"))
        .unwrap_or_default();
    assert!(
        line.contains(&format!("Rootfs mode:       {mode} ")) && line.contains("fuse"),
        "[{who:?}] {text}"
    );
    let j: serde_json::Value =
        serde_json::from_str(&env.ok(["info", "--format", "json"])).expect("info JSON");
    assert_eq!(j["Rootfs"], mode, "[{who:?}] {j}");
    assert_eq!(j["RootfsFileSystem"], "fuse", "[{who:?}] {j}");

    // diff and commit of a container on this mode.
    let o = env.run([
        "run",
        "--name",
        "changed",
        "--network",
        "none",
        "bb",
        "sh",
        "-c",
        "echo new > /new; rm /bin/cat; echo more >> /etc/passwd",
    ]);
    assert!(o.status.success(), "[{who:?}] {}", stderr(&o));
    none_left("run");
    let diff = env.ok(["diff", "changed"]);
    for want in ["A /new", "D /bin/cat", "C /etc/passwd", "C /bin"] {
        assert!(
            diff.lines().any(|l| l == want),
            "[{who:?}] {want} in:\n{diff}"
        );
    }
    assert_eq!(diff.lines().count(), 5, "[{who:?}] {diff}");
    env.ok(["commit", "changed", "committed"]);
    none_left("commit");
    let out = env.ok([
        "run",
        "--rm",
        "--network",
        "none",
        "committed",
        "sh",
        "-c",
        "cat /new; test ! -e /bin/cat && echo gone; tail -n 1 /etc/passwd",
    ]);
    assert_eq!(out, "new\ngone\nmore\n", "[{who:?}]");

    // export of the stopped container: its changes, read the mode's way.
    let o = env.run(["export", "changed"]);
    assert!(o.status.success(), "[{who:?}] export: {}", stderr(&o));
    let names: Vec<String> = tar::Archive::new(&o.stdout[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n.trim_start_matches("./") == "new"),
        "[{who:?}]"
    );
    assert!(
        !names
            .iter()
            .any(|n| n.trim_start_matches("./") == "bin/cat" || n.contains(".wh.")),
        "[{who:?}] {names:?}"
    );
    none_left("export");

    // A build: COPY and WORKDIR on the stage's filesystem, a RUN step in a
    // container of this mode, each committed as a layer.
    let ctx = env.user_dir("ctx");
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM bb\nCOPY f /copied\nWORKDIR /w/x\nRUN echo built > /built && rm /bin/ls && cat /copied\n",
    )
    .unwrap();
    std::fs::write(ctx.join("f"), "from the context\n").unwrap();
    env.share(&ctx.join("Dockerfile"));
    env.share(&ctx.join("f"));
    let o = env.run([
        "build",
        "--network",
        "none",
        "-t",
        "built",
        ctx.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "[{who:?}] build: {}", stderr(&o));
    assert!(
        stdout(&o).contains("from the context"),
        "[{who:?}] the RUN step read the COPY: {}",
        stdout(&o)
    );
    let out = env.ok([
        "run",
        "--rm",
        "--network",
        "none",
        "built",
        "sh",
        "-c",
        "cat /built /copied; pwd; test ! -e /bin/ls && echo gone",
    ]);
    assert_eq!(out, "built\nfrom the context\n/w/x\ngone\n", "[{who:?}]");
    env.ok(["rm", "changed"]);
    none_left("build");
}

#[test]
fn fuse_overlayfs_forced_on_a_normal_store_keeps_its_mode() {
    let test = "fuse_overlayfs_forced";
    if !have_fuse_overlayfs(test) {
        return;
    }
    for env in common::users(test) {
        let who = env.who;
        env.import_busybox("bb");
        let out = env.ok_with_env(
            "BURROW_ROOTFS",
            "fuse-overlayfs",
            [
                "run",
                "--name",
                "f",
                "--network",
                "none",
                "bb",
                "sh",
                "-c",
                "echo hi >> /f; rm -f /bin/cat; cat /f",
            ],
        );
        assert_eq!(out, "hi\n", "[{who:?}]");
        let mode = |env: &Env| {
            let j: serde_json::Value =
                serde_json::from_str(&env.ok(["container", "inspect", "f"])).unwrap();
            j[0]["RootfsMode"].as_str().unwrap_or_default().to_string()
        };
        assert_eq!(mode(&env), "fuse-overlayfs", "[{who:?}]");
        assert_eq!(daemons_of(&env.root), Vec::<String>::new(), "[{who:?}]");
        // Started again without the setting (overlayfs works here): its
        // files are where fuse-overlayfs wrote them, so it keeps the mode.
        let out = env.ok(["start", "-a", "f"]);
        assert_eq!(out, "hi\nhi\n", "[{who:?}]");
        assert_eq!(mode(&env), "fuse-overlayfs", "[{who:?}]");
        let diff = env.ok(["diff", "f"]);
        for want in ["A /f", "D /bin/cat"] {
            assert!(
                diff.lines().any(|l| l == want),
                "[{who:?}] {want} in:\n{diff}"
            );
        }
        assert_eq!(daemons_of(&env.root), Vec::<String>::new(), "[{who:?}]");
        env.ok(["rm", "f"]);
    }
}
