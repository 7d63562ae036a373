//! `cp` against a container that plants symlinks for it: copying out never
//! follows a symlink at the host destination (a first copy's symlink cannot
//! steer the second copy into the user's home), and copying in resolves
//! everything inside the container's root, even while the container swaps
//! the destination for a symlink.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::{users, Env};
use crate::{plant_secret, SECRET};

/// Every path under `dir` (symlinks not followed), leaving out the top-level
/// names in `skip`: what the test user's home holds besides the store and
/// the copy destinations.
fn tree(dir: &Path, skip: &[&str]) -> BTreeSet<PathBuf> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeSet<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            out.insert(p.strip_prefix(base).unwrap().to_path_buf());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(base, &p, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out.retain(|p| {
        let top = p.components().next().unwrap().as_os_str();
        !skip.iter().any(|s| top == *s)
    });
    out
}

/// Wait until `cmd` succeeds inside the running container `name`.
fn wait_exec(env: &Env, name: &str, cmd: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut args = vec!["exec", name];
        args.extend_from_slice(cmd);
        if env.run(&args).status.success() {
            return;
        }
        assert!(Instant::now() < deadline, "{name}: {cmd:?} never succeeded");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn is_symlink(p: &Path) -> bool {
    p.symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
}

/// The two-step attack: the container makes `/k -> HOME` and
/// `/x/bin -> HOME/.local`; the user copies both out (each copy is that
/// symlink, as in Docker); the container then makes them real directories
/// holding `.ssh/authorized_keys` and `bin/evil`; the user copies again.
/// Before the fix the second copies followed the symlinks and wrote
/// `~/k/.ssh/authorized_keys` and `~/.local/bin/evil` (a directory on PATH).
#[test]
fn cp_out_twice_never_writes_through_a_symlink_it_made() {
    for env in users("escape-cp-out") {
        let secret = plant_secret(&env);
        let home = env.home.to_str().unwrap().to_string();
        env.user_dir(".local");
        env.user_dir(".local/bin");
        let dl = env.user_dir("dl");
        env.import_busybox("busybox");
        env.ok([
            "run",
            "-d",
            "--name",
            "c",
            "busybox",
            "sh",
            "-c",
            &format!(
                "ln -s {home} /k && mkdir -p /x && ln -s {home}/.local /x/bin && touch /ready; exec sleep 600"
            ),
        ]);
        wait_exec(&env, "c", &["test", "-e", "/ready"]);
        let before = tree(&env.home, &["store", "dl"]);
        let out = dl.join("out");
        let out_bin = dl.join("out-bin");
        let out_slash = dl.join("out-slash");
        for (src, dst) in [("c:/k", &out), ("c:/x/bin", &out_bin), ("c:/k", &out_slash)] {
            env.ok(["cp", src, dst.to_str().unwrap()]);
            assert!(
                is_symlink(dst),
                "the first copy of a symlink is that symlink"
            );
        }
        // Docker's everyday form, into an existing directory: `dl/k`.
        env.ok(["cp", "c:/k", dl.to_str().unwrap()]);
        assert!(is_symlink(&dl.join("k")));

        // The container turns its symlinks into directories with payloads.
        env.ok([
            "exec",
            "c",
            "sh",
            "-c",
            "rm /k /x/bin && mkdir -p /k/.ssh /x/bin \
             && echo 'ssh-ed25519 AAAA attacker' > /k/.ssh/authorized_keys \
             && printf '#!/bin/sh\\necho pwned\\n' > /x/bin/evil && chmod 755 /x/bin/evil",
        ]);

        // A trailing slash asks for an existing directory: a symlink is not one.
        let o0 = env.run(["cp", "c:/k", &format!("{}/", out_slash.display())]);
        let o1 = env.run(["cp", "c:/k", out.to_str().unwrap()]);
        let o2 = env.run(["cp", "c:/x/bin", out_bin.to_str().unwrap()]);
        let o3 = env.run(["cp", "c:/k", dl.to_str().unwrap()]);

        let after = tree(&env.home, &["store", "dl"]);
        assert_eq!(
            before, after,
            "[{:?}] nothing written in the home outside the destination",
            env.who
        );
        assert!(!env.home.join("k").exists() && !env.home.join(".ssh").exists());
        assert!(!env.home.join(".local/bin/evil").exists());
        assert_eq!(std::fs::read_to_string(&secret).unwrap(), SECRET);

        assert!(
            !o0.status.success(),
            "copying into a symlink named with a trailing slash is refused"
        );
        // The copies replaced the symlinks (as `cp -r` onto a new name would).
        for o in [&o1, &o2, &o3] {
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
        assert!(!is_symlink(&out) && out.join(".ssh/authorized_keys").is_file());
        assert!(!is_symlink(&out_bin) && out_bin.join("evil").is_file());
        assert!(!is_symlink(&dl.join("k")) && dl.join("k/.ssh/authorized_keys").is_file());
        assert!(is_symlink(&out_slash), "the refused copy left it alone");
        env.ok(["rm", "-f", "c"]);
    }
}

/// Copying in: the destination is a symlink to the user's home (planted by
/// an earlier copy into a stopped container), or a running container swaps
/// it between a directory and such symlinks (to the host path, and through
/// its own /proc) while the user copies into it over and over. Paths
/// resolve in the container's root, so nothing reaches the home.
#[test]
fn cp_in_resolves_in_the_root_while_the_container_swaps_symlinks() {
    for env in users("escape-cp-in") {
        let secret = plant_secret(&env);
        let home = env.home.to_str().unwrap().to_string();
        let src = env.user_dir("src");
        std::fs::write(src.join("payload"), "copied in\n").unwrap();
        env.share(&src.join("payload"));
        std::os::unix::fs::symlink(&env.home, src.join("home-link")).unwrap();
        env.import_busybox("busybox");
        let before = tree(&env.home, &["store", "src"]);

        // Stopped: /dst is a symlink to the home's host path.
        env.ok(["create", "--name", "s", "busybox", "true"]);
        let link = src.join("home-link");
        env.ok(["cp", link.to_str().unwrap(), "s:/dst"]);
        let payload = src.join("payload");
        for dst in ["s:/dst/", "s:/dst", "s:/dst/payload"] {
            let _ = env.run(["cp", payload.to_str().unwrap(), dst]);
        }
        let _ = env.run(["cp", src.to_str().unwrap(), "s:/dst/"]);

        // Running: the container swaps /d/in as fast as it can.
        env.ok([
            "run",
            "-d",
            "--name",
            "r",
            "busybox",
            "sh",
            "-c",
            &format!(
                "mkdir -p /d; touch /ready; while :; do \
                 rm -rf /d/in; ln -s {home} /d/in; rm -f /d/in; \
                 ln -s /proc/1/root{home} /d/in; rm -f /d/in; \
                 ln -s /proc/self/cwd /d/in; rm -f /d/in; mkdir /d/in; done"
            ),
        ]);
        wait_exec(&env, "r", &["test", "-e", "/ready"]);
        let deadline = Instant::now() + Duration::from_secs(8);
        let mut tries = 0;
        while Instant::now() < deadline && tries < 40 {
            tries += 1;
            let _ = env.run(["cp", payload.to_str().unwrap(), "r:/d/in/"]);
            let _ = env.run(["cp", payload.to_str().unwrap(), "r:/d/in/payload"]);
            let _ = env.run(["cp", src.to_str().unwrap(), "r:/d/in"]);
        }

        let after = tree(&env.home, &["store", "src"]);
        assert_eq!(
            before, after,
            "[{:?}] nothing written in the home by copies into the container",
            env.who
        );
        assert_eq!(std::fs::read_to_string(&secret).unwrap(), SECRET);
        env.ok(["rm", "-f", "r", "s"]);
    }
}
