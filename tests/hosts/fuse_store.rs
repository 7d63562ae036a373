//! A store on a FUSE file system (bindfs), where overlayfs cannot be mounted
//! from a user namespace: containers get a copy, the user hears it once,
//! `info` names the mode, and builds (COPY, WORKDIR, RUN), `diff` and
//! `commit` work.

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

#[test]
fn a_store_on_fuse_runs_builds_and_commits_on_a_copy() {
    let test = "fuse_store";
    if !nix::unistd::Uid::effective().is_root() {
        common::loud(&format!(
            "SKIPPED {test}: mounting a FUSE file system for the store needs root"
        ));
        return;
    }
    if !have_bindfs(test) {
        return;
    }
    for mut env in common::users(test) {
        let _mounted = store_on_fuse(&mut env);
        assert!(on_fuse(env.root.parent().unwrap()), "the store is on FUSE");
        env.import_busybox("bb");
        let who = env.who;

        // run: output and exit code; the notice said on the first run only.
        let notice = "overlayfs cannot be mounted on this store's file system (fuse)";
        let o = env.run([
            "run",
            "--rm",
            "--network",
            "none",
            "bb",
            "sh",
            "-c",
            "echo hello; exit 3",
        ]);
        assert_eq!(o.status.code(), Some(3), "[{who:?}] {}", stderr(&o));
        assert_eq!(stdout(&o), "hello\n", "[{who:?}]");
        assert_eq!(
            stderr(&o).matches(notice).count(),
            1,
            "[{who:?}] the notice, once: {}",
            stderr(&o)
        );
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
            line.contains("copy") && line.contains("fuse"),
            "[{who:?}] {text}"
        );
        let j: serde_json::Value =
            serde_json::from_str(&env.ok(["info", "--format", "json"])).expect("info JSON");
        assert_eq!(j["Rootfs"], "copy", "[{who:?}] {j}");
        assert_eq!(j["RootfsFileSystem"], "fuse", "[{who:?}] {j}");

        // diff and commit of a container on the copy.
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
        let diff = env.ok(["diff", "changed"]);
        for want in ["A /new", "D /bin/cat", "C /etc/passwd", "C /bin"] {
            assert!(
                diff.lines().any(|l| l == want),
                "[{who:?}] {want} in:\n{diff}"
            );
        }
        assert_eq!(diff.lines().count(), 5, "[{who:?}] {diff}");
        env.ok(["commit", "changed", "committed"]);
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

        // A build: COPY and WORKDIR on the stage's filesystem, a RUN step
        // on a copy, each committed as a layer.
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
    }
}
