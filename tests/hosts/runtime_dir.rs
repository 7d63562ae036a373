//! No usable `XDG_RUNTIME_DIR`: unset, set to a directory that is not the
//! user's, and a fallback directory in /tmp planted by someone else.
//!
//! Every case runs in a private mount namespace whose /tmp is a fresh
//! tmpfs (the test's own directory bound back in), so the real
//! /tmp/burrow-run-UID, shared by every test of that user, is never
//! touched, and nothing an earlier test left there is inherited.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

use crate::common::{self, stderr, stdout, Env, Who};

/// A mount namespace kept alive by a root process, with a fresh /tmp in
/// which `plant` (shell, as root) made the condition; commands enter it.
struct Ns {
    holder: Child,
}

impl Ns {
    fn new(test: &str, env: &Env, plant: &str) -> Option<Ns> {
        if !nix::unistd::Uid::effective().is_root() {
            common::loud(&format!(
                "SKIPPED {test} [{:?}]: making a private /tmp needs root; run the suite as root",
                env.who
            ));
            return None;
        }
        let shared = env.shared_dir();
        let rel = shared
            .strip_prefix("/tmp")
            .expect("the test directory is under /tmp")
            .display()
            .to_string();
        // /mnt keeps the real /tmp reachable while the fresh one is made;
        // both mounts exist only in this namespace.
        let script = format!(
            "mount --bind /tmp /mnt\n\
             mount -t tmpfs -o mode=1777 tmpfs /tmp\n\
             mkdir -p /tmp/{rel}\n\
             mount --bind /mnt/{rel} /tmp/{rel}\n\
             umount -l /mnt\n\
             {plant}\n\
             echo ready\n\
             exec sleep infinity"
        );
        let mut holder = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sh", "-ec"])
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("unshare");
        let mut line = String::new();
        BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "setting up the namespace failed");
        Some(Ns { holder })
    }

    fn mnt(&self) -> String {
        format!("--mount=/proc/{}/ns/mnt", self.holder.id())
    }

    /// `burrow args` as the test user inside, with `extra` environment.
    fn burrow(&self, env: &Env, extra: &[(&str, &str)], args: &[&str]) -> Output {
        let inner = env.cmd(args);
        let (uid, gid) = env.ids();
        let mut c = Command::new("nsenter");
        c.arg(self.mnt())
            .arg(format!("--wdns={}", env.home.display()))
            .args(["--", "setpriv"])
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .args(["--clear-groups", "--"])
            .arg(inner.get_program())
            .args(inner.get_args())
            .env_clear()
            .stdin(Stdio::null());
        for (k, v) in inner.get_envs() {
            if let Some(v) = v {
                c.env(k, v);
            }
        }
        for (k, v) in extra {
            c.env(k, v);
        }
        c.output().expect("nsenter")
    }

    /// A shell command as root inside (to look at what burrow made).
    fn root_sh(&self, script: &str) -> String {
        let o = Command::new("nsenter")
            .arg(self.mnt())
            .args(["--", "sh", "-c", script])
            .output()
            .expect("nsenter");
        stdout(&o)
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

fn ok(o: &Output, what: &str, who: Who) -> String {
    assert!(
        o.status.success(),
        "[{who:?}] {what}: {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

/// The other test user's uid and gid (owner of what "someone else" made).
fn other_user(env: &Env) -> (u32, u32) {
    let name = match env.who {
        Who::Range => common::SINGLE_USER,
        Who::Single => common::RANGE_USER,
    };
    let id = |flag: &str| -> u32 {
        let o = Command::new("id").arg(flag).arg(name).output().unwrap();
        stdout(&o).trim().parse().unwrap()
    };
    (id("-u"), id("-g"))
}

/// With XDG_RUNTIME_DIR unset, the fallback is made 0700 and a detached
/// container lives there through ps, logs, exec and stop; `info` names
/// the directory and why.
#[test]
fn detached_container_works_without_xdg_runtime_dir() {
    for env in common::users("runtime_dir_unset") {
        let image = env.import_busybox("rt-unset:latest");
        let Some(ns) = Ns::new("runtime_dir_unset", &env, "") else {
            return;
        };
        let who = env.who;
        let (uid, _) = env.ids();
        let run = ns.burrow(
            &env,
            &[],
            &[
                "run",
                "-d",
                "--network",
                "none",
                "--name",
                "rt",
                &image,
                "sh",
                "-c",
                "echo hello from rt; sleep 300",
            ],
        );
        ok(&run, "run -d", who);
        let base = format!("/tmp/burrow-run-{uid}");
        assert_eq!(
            ns.root_sh(&format!("stat -c '%a %u %F' {base}")).trim(),
            format!("700 {uid} directory"),
            "[{who:?}]"
        );
        let ps = ok(
            &ns.burrow(&env, &[], &["ps", "--format", "{{.Names}} {{.Status}}"]),
            "ps",
            who,
        );
        assert!(ps.starts_with("rt Up"), "[{who:?}] {ps}");
        common::wait_until("the log line", std::time::Duration::from_secs(10), || {
            stdout(&ns.burrow(&env, &[], &["logs", "rt"])).contains("hello from rt")
        });
        let exec = ok(
            &ns.burrow(&env, &[], &["exec", "rt", "echo", "inside"]),
            "exec",
            who,
        );
        assert_eq!(exec.trim(), "inside", "[{who:?}]");
        let info = ok(&ns.burrow(&env, &[], &["info"]), "info", who);
        assert!(
            info.lines()
                .any(|l| l.starts_with(&format!("Runtime directory: {base}/"))
                    && l.ends_with("(XDG_RUNTIME_DIR unset)")),
            "[{who:?}] {info}"
        );
        let json: serde_json::Value = serde_json::from_str(&ok(
            &ns.burrow(&env, &[], &["info", "--format", "json"]),
            "info json",
            who,
        ))
        .unwrap();
        assert!(
            json["Runtime"].as_str().unwrap().starts_with(&base),
            "[{who:?}] {json}"
        );
        assert_eq!(json["RuntimeReason"], "XDG_RUNTIME_DIR unset", "[{who:?}]");
        ok(
            &ns.burrow(&env, &[], &["stop", "-t", "1", "rt"]),
            "stop",
            who,
        );
        let ps = ok(
            &ns.burrow(
                &env,
                &[],
                &["ps", "-a", "--format", "{{.Names}} {{.Status}}"],
            ),
            "ps -a",
            who,
        );
        assert!(ps.starts_with("rt Exited"), "[{who:?}] {ps}");
        ok(&ns.burrow(&env, &[], &["rm", "rt"]), "rm", who);
    }
}

/// XDG_RUNTIME_DIR set to a directory root owns, one another user owns
/// (and lets everyone write to), or one of ours we cannot write to: the
/// fallback is used, one line says so (once, not on every command), and
/// nothing is written into the directory.
#[test]
fn an_unusable_xdg_runtime_dir_falls_back_and_says_so() {
    for env in common::users("runtime_dir_unusable") {
        let who = env.who;
        let (uid, gid) = env.ids();
        let (other, other_gid) = other_user(&env);
        let make = |name: &str, owner: (u32, u32), mode: u32| -> PathBuf {
            use std::os::unix::fs::PermissionsExt;
            let d = env.home.join(name);
            std::fs::create_dir_all(&d).unwrap();
            nix::unistd::chown(
                &d,
                Some(nix::unistd::Uid::from_raw(owner.0)),
                Some(nix::unistd::Gid::from_raw(owner.1)),
            )
            .unwrap();
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode)).unwrap();
            d
        };
        if !nix::unistd::Uid::effective().is_root() {
            common::loud(&format!(
                "SKIPPED runtime_dir_unusable [{who:?}]: directories of other users need root"
            ));
            return;
        }
        env.import_busybox("rt-none:latest");
        for (dir, why) in [
            (
                make("xdg-root", (0, 0), 0o755),
                "is not yours (owner uid 0)".to_string(),
            ),
            (
                make("xdg-other", (other, other_gid), 0o777),
                format!("is not yours (owner uid {other})"),
            ),
            (
                make("xdg-readonly", (uid, gid), 0o500),
                "is not writable".to_string(),
            ),
        ] {
            let Some(ns) = Ns::new("runtime_dir_unusable", &env, "") else {
                return;
            };
            let xdg = dir.to_str().unwrap();
            let extra = [("XDG_RUNTIME_DIR", xdg)];
            let line = format!(
                "burrow: XDG_RUNTIME_DIR={xdg} {why}: runtime state goes to /tmp/burrow-run-{uid} instead"
            );
            let first = ns.burrow(&env, &extra, &["ps"]);
            ok(&first, "ps", who);
            assert_eq!(stderr(&first).trim(), line, "[{who:?}]");
            let second = ns.burrow(&env, &extra, &["ps"]);
            ok(&second, "ps", who);
            assert_eq!(stderr(&second), "", "[{who:?}] said twice");
            let info = ok(&ns.burrow(&env, &extra, &["info"]), "info", who);
            assert!(
                info.lines().any(|l| l
                    .starts_with(&format!("Runtime directory: /tmp/burrow-run-{uid}/"))
                    && l.ends_with(&format!("(XDG_RUNTIME_DIR={xdg} {why})"))),
                "[{who:?}] {info}"
            );
            let out = ok(
                &ns.burrow(
                    &env,
                    &extra,
                    &["run", "--rm", "--network", "none", "rt-none", "echo", "ran"],
                ),
                "run",
                who,
            );
            assert_eq!(out.trim(), "ran", "[{who:?}]");
            assert!(
                std::fs::read_dir(&dir).unwrap().next().is_none(),
                "[{who:?}] burrow wrote into {dir:?}"
            );
        }
    }
}

/// A /tmp/burrow-run-UID made by someone else, a symlink planted there, or
/// one others may write to: refused with one line and exit 125, and
/// nothing is written into it (or through the link).
#[test]
fn a_planted_fallback_dir_is_refused() {
    for env in common::users("runtime_dir_planted") {
        let who = env.who;
        let (uid, gid) = env.ids();
        let (other, other_gid) = other_user(&env);
        let base = format!("/tmp/burrow-run-{uid}");
        for (what, plant, why, looked_at) in [
            (
                "another user's",
                format!("mkdir -m 0700 {base}\nchown {other}:{other_gid} {base}"),
                format!("is not a directory of yours (owner uid {other})"),
                base.clone(),
            ),
            (
                "another user's, open to all",
                format!("mkdir -m 0777 {base}\nchown {other}:{other_gid} {base}"),
                format!("is not a directory of yours (owner uid {other})"),
                base.clone(),
            ),
            (
                "a symlink",
                format!(
                    "mkdir -m 0700 /tmp/elsewhere\nchown {uid}:{gid} /tmp/elsewhere\nln -s /tmp/elsewhere {base}"
                ),
                "is a symbolic link, not a directory of yours".to_string(),
                "/tmp/elsewhere".to_string(),
            ),
            (
                "ours, writable by others",
                format!("mkdir {base}\nchown {uid}:{gid} {base}\nchmod 0777 {base}"),
                "is writable by others (mode 0777)".to_string(),
                base.clone(),
            ),
        ] {
            let Some(ns) = Ns::new("runtime_dir_planted", &env, &plant) else {
                return;
            };
            for args in [&["ps"][..], &["run", "--rm", "--network", "none", "rt-none", "true"][..]] {
                let o = ns.burrow(&env, &[], args);
                let err = stderr(&o);
                assert_eq!(o.status.code(), Some(125), "[{who:?}] {what}: {err}");
                assert_eq!(err.lines().count(), 1, "[{who:?}] {what}: {err}");
                assert!(
                    err.contains(&format!("runtime directory {base} {why}")),
                    "[{who:?}] {what}: {err}"
                );
            }
            assert_eq!(
                ns.root_sh(&format!("ls -A {looked_at}; stat -c %a {looked_at}"))
                    .trim(),
                if what.contains("open") || what.contains("writable") {
                    "777"
                } else {
                    "700"
                },
                "[{who:?}] {what}: something was written into, or changed, the planted directory"
            );
        }
    }
}

/// The runtime mode's default state directory, `/tmp/burrow-runc-UID`
/// without XDG_RUNTIME_DIR, is held to the same rule: a planted one is
/// refused and nothing is written into it.
#[test]
fn a_planted_runtime_mode_state_dir_is_refused() {
    for env in common::users("runc_dir_planted") {
        let who = env.who;
        let (uid, gid) = env.ids();
        let (other, other_gid) = other_user(&env);
        let base = format!("/tmp/burrow-runc-{uid}");
        for (what, plant, why) in [
            (
                "another user's",
                format!("mkdir -m 0777 {base}\nchown {other}:{other_gid} {base}"),
                format!("is not a directory of yours (owner uid {other})"),
            ),
            (
                "a symlink",
                format!(
                    "mkdir -m 0700 /tmp/elsewhere\nchown {uid}:{gid} /tmp/elsewhere\nln -s /tmp/elsewhere {base}"
                ),
                "is a symbolic link, not a directory of yours".to_string(),
            ),
        ] {
            let Some(ns) = Ns::new("runc_dir_planted", &env, &plant) else {
                return;
            };
            let o = ns.burrow(&env, &[], &["runtime", "list"]);
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(1), "[{who:?}] {what}: {err}");
            assert!(
                err.contains(&format!("state directory {base} {why}")),
                "[{who:?}] {what}: {err}"
            );
            assert_eq!(
                ns.root_sh(&format!("find {base}/ /tmp/elsewhere/ -mindepth 1 2>/dev/null"))
                    .trim(),
                "",
                "[{who:?}] {what}: something was written into the planted directory"
            );
        }
        // Unplanted, it is made private and used.
        let Some(ns) = Ns::new("runc_dir_planted", &env, "true") else {
            return;
        };
        let o = ns.burrow(&env, &[], &["runtime", "list"]);
        assert!(o.status.success(), "[{who:?}] {}", stderr(&o));
        assert_eq!(
            ns.root_sh(&format!("stat -c '%a %u' {base}")).trim(),
            format!("700 {uid}")
        );
    }
}
