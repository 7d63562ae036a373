//! A private store: a container's root is the user, so it can leave a
//! set-user-id file in its upper directory; another local user must not
//! be able to reach it (or anything else of the store) and run it as the
//! container's owner. Also the store's repair of an older, open store.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use super::common::{self, Env, Who};
use super::{evil_image, plant_secret, probe, SECRET};

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// The other test user's ids, or None (loudly) when not running as root.
fn other_user(env: &Env, test: &str) -> Option<(u32, u32)> {
    if !nix::unistd::Uid::effective().is_root() {
        common::loud(&format!(
            "SKIPPED {test}: needs root to act as a second local user"
        ));
        return None;
    }
    let other = match env.who {
        Who::Range => Who::Single,
        Who::Single => Who::Range,
    };
    Env::new(other, &format!("{test}-other")).map(|o| o.ids())
}

#[test]
fn another_user_cannot_run_a_containers_setuid_file() {
    for env in common::users("store-setuid") {
        let Some((uid, gid)) = other_user(&env, "store-setuid") else {
            return;
        };
        let Some(bin) = probe(&env, "readfile") else {
            return;
        };
        let secret = plant_secret(&env);
        evil_image(&env, "setuid", &[(&bin, "/readfile")], &[]);
        // Root of the container is the user: the copy in the upper
        // directory is the user's, set-user-id.
        env.ok([
            "run",
            "--name",
            "planter",
            "setuid",
            "sh",
            "-c",
            "cp /readfile /x && chmod 4755 /x",
        ]);
        let id = env
            .ok(["inspect", "--format", "{{.Id}}", "planter"])
            .trim()
            .to_string();
        let planted = env.root.join("containers").join(&id).join("upper/x");
        let meta = std::fs::metadata(&planted)
            .unwrap_or_else(|e| panic!("[{:?}] {}: {e}", env.who, planted.display()));
        assert_eq!(meta.mode() & 0o7777, 0o4755, "[{:?}] setup", env.who);
        assert_eq!(meta.uid(), env.ids().0, "[{:?}] setup", env.who);
        // The other user runs it directly, to read the owner's 0600 secret.
        let run = Command::new(&planted)
            .arg(&secret)
            .env_clear()
            .current_dir("/")
            .uid(uid)
            .gid(gid)
            .output();
        match run {
            Err(e) => assert_eq!(
                e.kind(),
                std::io::ErrorKind::PermissionDenied,
                "[{:?}] running {}: {e}",
                env.who,
                planted.display()
            ),
            Ok(out) => panic!(
                "[{:?}] another user ran {}: {}{}{}",
                env.who,
                planted.display(),
                common::stdout(&out),
                common::stderr(&out),
                if common::stdout(&out).contains(SECRET) {
                    " (and read the secret)"
                } else {
                    ""
                }
            ),
        }
    }
}

#[test]
fn a_fresh_store_and_its_runtime_dir_are_private_with_every_parent_burrow_made() {
    for env in common::users("store-fresh") {
        // No BURROW_ROOT: the default store under a HOME with no ~/.local;
        // a runtime directory of its own (the test user's /tmp one is
        // shared by every test, and may be older than this run).
        let xdg = env.user_dir("xdg-run");
        let info = |args: &[&str]| {
            let mut c = env.cmd(args);
            c.env_remove("BURROW_ROOT").env("XDG_RUNTIME_DIR", &xdg);
            let out = c.output().unwrap();
            assert!(out.status.success(), "{}", common::stderr(&out));
            common::stdout(&out).trim().to_string()
        };
        let store = info(&["info", "--format", "{{.Store}}"]);
        let runtime = info(&["info", "--format", "{{.Runtime}}"]);
        assert_eq!(
            Path::new(&store),
            env.home.join(".local/share/burrow"),
            "[{:?}]",
            env.who
        );
        for d in [
            env.home.join(".local"),
            env.home.join(".local/share"),
            env.home.join(".local/share/burrow"),
        ] {
            assert_eq!(mode(&d), 0o700, "[{:?}] {}", env.who, d.display());
        }
        let runtime = Path::new(&runtime);
        assert!(runtime.starts_with(xdg.join("burrow")), "{runtime:?}");
        for d in [runtime, runtime.parent().unwrap()] {
            assert_eq!(mode(d), 0o700, "[{:?}] {}", env.who, d.display());
        }
    }
}

#[test]
fn system_check_finds_an_open_store_and_repair_closes_it() {
    for env in common::users("store-check") {
        let xdg = env.user_dir("xdg-run");
        let burrow = |args: &[&str]| {
            let mut c = env.cmd(args);
            c.env("XDG_RUNTIME_DIR", &xdg);
            c.output().unwrap()
        };
        let ok = |args: &[&str]| {
            let out = burrow(args);
            assert!(out.status.success(), "{}", common::stderr(&out));
            common::stdout(&out)
        };
        ok(&["import", env.busybox_tar().to_str().unwrap(), "busybox"]);
        let runtime = ok(&["info", "--format", "{{.Runtime}}"]);
        let runtime = Path::new(runtime.trim());
        // A store made before stores were private.
        let open = [env.root.as_path(), runtime, runtime.parent().unwrap()];
        for d in open {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let out = burrow(&["system", "check"]);
        let text = common::stdout(&out);
        assert_eq!(out.status.code(), Some(1), "[{:?}] {text}", env.who);
        for d in open {
            assert!(
                text.contains(&format!(
                    "{} is open to other users (mode 0755)",
                    d.display()
                )),
                "[{:?}] {} not reported: {text}",
                env.who,
                d.display()
            );
        }
        let repaired = ok(&["system", "check", "--repair"]);
        assert!(
            repaired.contains(&format!("made {} private (0700)", env.root.display())),
            "[{:?}] {repaired}",
            env.who
        );
        for d in open {
            assert_eq!(mode(d), 0o700, "[{:?}] {repaired}", env.who);
        }
        assert!(
            ok(&["system", "check"]).contains("store is consistent"),
            "[{:?}]",
            env.who
        );
    }
}
