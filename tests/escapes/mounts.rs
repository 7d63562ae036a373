//! runc's mount-time CVEs against burrow's mount tree, as a hostile image
//! would try them: a second container racing symlink swaps in a shared
//! volume while a victim starts (`:ro` remount, CVE-2021-30465,
//! CVE-2025-31133, the runc mode's device files in a shared /dev), a
//! console and procfs aimed elsewhere (CVE-2025-52565, CVE-2025-52881), and
//! volumes or image content over /proc (CVE-2019-16884, CVE-2023-27561).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::common::{self, stderr, stdout, Env};
use super::{evil_image, plant_secret, probe, SECRET};

/// The image every racing test here uses: busybox with the swap probe at
/// /swap and the relink probe at /relink.
fn racer_image(env: &Env) -> Option<()> {
    let swap = probe(env, "swap")?;
    let relink = probe(env, "relink")?;
    evil_image(env, "evil", &[(&swap, "/swap"), (&relink, "/relink")], &[]);
    Some(())
}

/// Start the attacker: a container sharing volume `shared` at /shared that
/// prepares it with `setup` (shell) and then swaps /shared/A and
/// /shared/B for ten minutes.
fn start_racer(env: &Env, setup: &str, a: &str, b: &str) {
    // Three swappers, so that one is on a CPU whenever the victim is.
    let swap = format!("/swap /shared/{a} /shared/{b} 600");
    let script = format!("{setup}; {swap} & {swap} & exec {swap}");
    env.ok([
        "run",
        "-d",
        "--name",
        "racer",
        "-v",
        "shared:/shared",
        "evil",
        "sh",
        "-c",
        &script,
    ]);
    // Let it prepare the volume before the victim starts.
    common::wait_until(
        "the racer's setup",
        std::time::Duration::from_secs(10),
        || {
            env.root
                .join("volumes/shared/_data")
                .join(b)
                .symlink_metadata()
                .is_ok()
                || env
                    .root
                    .join("volumes/shared/_data")
                    .join(a)
                    .symlink_metadata()
                    .is_ok()
        },
    );
}

/// Import image `tag`: busybox with the entries of `extra` (symlinks kept
/// as symlinks, which `cp` would follow) added at the top of its tree.
fn image_with(env: &Env, tag: &str, extra: &Path) {
    let tar = env.user_dir("tars").join(format!("{tag}.tar"));
    std::fs::copy(env.busybox_tar(), &tar).unwrap();
    let names: Vec<String> = std::fs::read_dir(extra)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let ok = Command::new("tar")
        .arg("-rf")
        .arg(&tar)
        .arg("-C")
        .arg(extra)
        .args(&names)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    env.share(&tar);
    env.ok(["import", tar.to_str().unwrap(), tag]);
}

fn stop_racer(env: &Env) {
    let _ = env.run(["rm", "-f", "racer"]);
}

/// A directory of the test user's holding a copy of the secret.
fn data_dir(env: &Env, name: &str) -> PathBuf {
    let d = env.user_dir(name);
    let f = d.join("secret.txt");
    std::fs::write(&f, SECRET).unwrap();
    let (uid, gid) = env.ids();
    nix::unistd::chown(
        &f,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
    )
    .unwrap();
    d
}

fn assert_secret(env: &Env, file: &Path) {
    assert_eq!(
        std::fs::read_to_string(file).unwrap(),
        SECRET,
        "[{:?}] {file:?} was written",
        env.who
    );
}

/// Starts of the victim while the racer swaps: enough for the unfixed
/// remount (a second lookup of the target) to lose the race several times
/// on a 2-core machine.
const STARTS: usize = 60;

#[test]
fn a_readonly_bind_stays_readonly_while_a_shared_volume_swaps_its_target() {
    for env in common::users("esc-ro-race") {
        let who = env.who;
        if racer_image(&env).is_none() {
            return;
        }
        let secret = plant_secret(&env);
        let data = data_dir(&env, "ro-data");
        // /shared/target is a directory, /shared/link a symlink to /dev (a
        // mount root of the victim's): swapped, a victim looking the
        // target up again after its bind finds /dev instead.
        start_racer(
            &env,
            "mkdir -p /shared/target && ln -sfn /dev /shared/link",
            "target",
            "link",
        );
        let ro = format!("{}:/shared/target:ro", data.display());
        // Anything reachable that may be the bind: write to it (from
        // inside it, as the names keep swapping).
        let payload = "for d in /shared/* /dev; do \
             (cd $d 2>/dev/null && [ -f secret.txt ] && echo pwned >> secret.txt 2>/dev/null \
             && echo WROTE $d); done; grep -E 'shared|dev' /proc/self/mountinfo; true";
        let mut started = 0;
        for i in 0..STARTS {
            let o = env.run([
                "run",
                "--rm",
                "-v",
                "shared:/shared",
                "-v",
                &ro,
                "evil",
                "sh",
                "-c",
                payload,
            ]);
            if o.status.success() {
                started += 1;
            }
            assert!(
                !stdout(&o).contains("WROTE"),
                "[{who:?}] start {i}: the :ro bind was writable: {}",
                stdout(&o)
            );
            assert_secret(&env, &data.join("secret.txt"));
        }
        stop_racer(&env);
        assert_secret(&env, &secret);
        assert!(started > 0, "[{who:?}] the victim never started");
    }
}

#[test]
fn cve_2021_30465_a_bind_target_swapped_for_a_symlink_stays_in_the_root() {
    for env in common::users("esc-30465") {
        let who = env.who;
        if racer_image(&env).is_none() {
            return;
        }
        let secret = plant_secret(&env);
        let data = env.user_dir("rw-data");
        // The symlink aims at the test user's home as the host sees it: a
        // runtime that mounted by path after its check would put the bind
        // there, outside the root.
        let setup = format!(
            "mkdir -p /shared/target && ln -sfn {} /shared/link",
            env.home.display()
        );
        start_racer(&env, &setup, "target", "link");
        let rw = format!("{}:/shared/target", data.display());
        let payload = "find / -path /proc -prune -o -path /sys -prune -o -name secret.txt -print \
             | while read f; do cat $f; echo; echo pwned > $f && echo WROTE $f; done; true";
        for _ in 0..STARTS / 3 {
            let o = env.run([
                "run",
                "--rm",
                "-v",
                "shared:/shared",
                "-v",
                &rw,
                "evil",
                "sh",
                "-c",
                payload,
            ]);
            assert!(
                !stdout(&o).contains(SECRET) && !stdout(&o).contains("WROTE"),
                "[{who:?}] the host's home reached the container: {}",
                stdout(&o)
            );
            assert_secret(&env, &secret);
        }
        stop_racer(&env);
        assert!(
            std::fs::read_dir(&data).unwrap().next().is_none(),
            "[{who:?}]"
        );
    }
}

#[test]
fn cve_2025_31133_masks_are_the_real_null_device_whatever_the_containers_dev_holds() {
    for env in common::users("esc-31133") {
        let who = env.who;
        if racer_image(&env).is_none() {
            return;
        }
        let secret = plant_secret(&env);
        let core_pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
        // The victim's /dev is the shared volume; its `null` flips between
        // a symlink to a writable kernel file and a regular file.
        start_racer(
            &env,
            "touch /shared/plain && ln -sfn /proc/sys/kernel/core_pattern /shared/null",
            "null",
            "plain",
        );
        let payload = "stat -c '%t:%T %F' /proc/keys /proc/timer_list; \
             echo '|/tmp/x' > /proc/keys 2>/dev/null; true";
        let mut started = 0;
        for _ in 0..STARTS / 3 {
            let o = env.run([
                "run",
                "--rm",
                "-v",
                "shared:/dev",
                "evil",
                "sh",
                "-c",
                payload,
            ]);
            if !o.status.success() {
                continue;
            }
            started += 1;
            assert_eq!(
                stdout(&o),
                "1:3 character special file\n1:3 character special file\n",
                "[{who:?}] a mask was not the null device: {}",
                stderr(&o)
            );
        }
        stop_racer(&env);
        assert_eq!(
            std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(),
            core_pattern
        );
        assert_secret(&env, &secret);
        // Without the race the volume's /dev holds no null device, and the
        // masks are still the host's.
        let o = env.run(["run", "--rm", "evil", "sh", "-c", payload]);
        assert_eq!(
            stdout(&o),
            "1:3 character special file\n1:3 character special file\n",
            "[{who:?}] {started} {}",
            stderr(&o)
        );
    }
}

#[test]
fn cve_2025_52565_a_console_symlink_in_the_image_changes_nothing() {
    for env in common::users("esc-52565") {
        let who = env.who;
        let secret = plant_secret(&env);
        // Links burrow's /dev hides.
        let extra = env.user_dir("console-image");
        std::fs::create_dir_all(extra.join("dev")).unwrap();
        for (name, to) in [
            ("dev/console", "/proc/sys/kernel/core_pattern".to_string()),
            ("dev/ptmx", secret.display().to_string()),
        ] {
            let _ = std::fs::remove_file(extra.join(name));
            std::os::unix::fs::symlink(to, extra.join(name)).unwrap();
        }
        image_with(&env, "evil-console", &extra);
        let out = env.ok([
            "run",
            "-d",
            "-t",
            "--name",
            "tty",
            "evil-console",
            "sh",
            "-c",
            "tty; grep -cE ' /dev/console | /proc/sys/kernel/core_pattern ' /proc/self/mountinfo; \
             readlink /dev/ptmx; cat /dev/console 2>&1 | head -c 100; echo; sleep 1",
        ]);
        assert!(!out.trim().is_empty());
        common::wait_until(
            "the -t container to exit",
            std::time::Duration::from_secs(20),
            || env.ok(["ps", "-q"]).trim().is_empty(),
        );
        let logs = env.ok(["logs", "tty"]);
        assert!(logs.starts_with("/dev/pts/0"), "[{who:?}] {logs:?}");
        assert!(logs.contains("\r\n0\r\n"), "[{who:?}] {logs:?}");
        assert!(logs.contains("pts/ptmx"), "[{who:?}] {logs:?}");
        assert!(!logs.contains(SECRET), "[{who:?}] {logs:?}");
        env.ok(["rm", "tty"]);
        // A volume over /dev/pts whose ptmx leads to a kernel file: the
        // terminal is a devpts pty or the start fails.
        env.ok([
            "run",
            "--rm",
            "-v",
            "ptsvol:/v",
            "evil-console",
            "sh",
            "-c",
            "ln -s /proc/sys/kernel/core_pattern /v/ptmx; ln -s /proc/sys/kernel/core_pattern /v/0",
        ]);
        let o = env.run([
            "run",
            "-d",
            "-t",
            "--name",
            "tty2",
            "-v",
            "ptsvol:/dev/pts",
            "evil-console",
            "sh",
            "-c",
            "tty; ls -l /proc/self/fd/0",
        ]);
        if o.status.success() {
            common::wait_until(
                "the second -t container to exit",
                std::time::Duration::from_secs(20),
                || env.ok(["ps", "-q"]).trim().is_empty(),
            );
            let logs = env.ok(["logs", "tty2"]);
            assert!(!logs.contains("core_pattern"), "[{who:?}] {logs:?}");
        }
        let _ = env.run(["rm", "-f", "tty2"]);
        assert_secret(&env, &secret);
    }
}

#[test]
fn cve_2019_16884_and_2023_27561_nothing_is_mounted_over_proc() {
    for env in common::users("esc-16884") {
        let who = env.who;
        let secret = plant_secret(&env);
        let fake = env.user_dir("fakeproc");
        // An image whose /proc is a symlink to a fake tree, and whose /data
        // points into /proc.
        let extra = env.user_dir("proc-image");
        std::fs::create_dir_all(extra.join("fake/sys/kernel")).unwrap();
        std::fs::write(extra.join("fake/sys/kernel/core_pattern"), "fake").unwrap();
        for (name, to) in [("proc", "/fake"), ("data", "/proc/sys")] {
            let _ = std::fs::remove_file(extra.join(name));
            std::os::unix::fs::symlink(to, extra.join(name)).unwrap();
        }
        image_with(&env, "evil-proc", &extra);
        // /proc is a fresh procfs whatever the image has there.
        let o = env.ok([
            "run",
            "--rm",
            "evil-proc",
            "stat",
            "-f",
            "-c",
            "%T",
            "/proc",
            "/proc/sys",
        ]);
        assert_eq!(o, "proc\nproc\n", "[{who:?}]");
        // Volumes, binds and tmpfs over procfs are refused, also through
        // an image's symlink.
        let v = format!("{}:", fake.display());
        for args in [
            vec!["-v", "vol:/proc"],
            vec!["-v", &*format!("{v}/proc/sys/kernel")],
            vec!["-v", "vol:/proc/self/attr"],
            vec!["-v", "vol:/data"],
            vec!["--tmpfs", "/proc/sys"],
            vec!["--mount", "type=volume,source=vol,target=/proc/1"],
        ] {
            let mut a = vec!["run", "--rm"];
            a.extend(args.iter().copied());
            a.extend([
                "evil-proc",
                "sh",
                "-c",
                "stat -f -c %T /proc/sys/kernel; echo RAN",
            ]);
            let o = env.run(&a);
            assert!(
                !o.status.success() && !stdout(&o).contains("RAN"),
                "[{who:?}] {args:?} was mounted over procfs: {}",
                stdout(&o)
            );
            assert!(
                stderr(&o).contains("procfs"),
                "[{who:?}] {args:?}: {}",
                stderr(&o)
            );
        }
        assert_secret(&env, &secret);
    }
}

/// A bundle for burrow's runc mode from the busybox tarball, running
/// `args`, with `mounts` after /proc and /dev and `sysctl` set.
fn bundle(
    env: &Env,
    args: &[&str],
    mounts: serde_json::Value,
    sysctl: serde_json::Value,
) -> PathBuf {
    let bundle = env.user_dir("bundle");
    let rootfs = bundle.join("rootfs");
    let _ = std::fs::remove_dir_all(&rootfs);
    std::fs::create_dir_all(&rootfs).unwrap();
    let (uid, gid) = env.ids();
    common::podman::chown(&rootfs, uid, gid);
    let mut tar = Command::new("tar");
    tar.arg("-xf").arg(env.busybox_tar()).arg("-C").arg(&rootfs);
    if nix::unistd::Uid::effective().is_root() {
        use std::os::unix::process::CommandExt;
        tar.uid(uid).gid(gid);
    }
    assert!(tar.status().unwrap().success());
    let map = |own: u32| serde_json::json!([{"containerID": 0, "hostID": own, "size": 1}]);
    let mut all = vec![
        serde_json::json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        serde_json::json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                           "options": ["nosuid", "mode=755"]}),
    ];
    all.extend(mounts.as_array().unwrap().iter().cloned());
    let config = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/bin:/usr/bin"],
            "cwd": "/",
            "capabilities": {"bounding": ["CAP_KILL"]},
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs"},
        "mounts": all,
        "linux": {
            "namespaces": [{"type": "user"}, {"type": "mount"}, {"type": "pid"},
                           {"type": "ipc"}, {"type": "network"}],
            "uidMappings": map(uid),
            "gidMappings": map(gid),
            "sysctl": sysctl,
            "maskedPaths": ["/proc/kcore"],
            "readonlyPaths": ["/proc/sys"]
        }
    });
    std::fs::write(bundle.join("config.json"), config.to_string()).unwrap();
    env.share(&bundle.join("config.json"));
    bundle
}

#[test]
fn cve_2025_52881_runc_mode_sysctls_go_to_procfs_or_nowhere() {
    for env in common::users("esc-52881") {
        let who = env.who;
        let secret = plant_secret(&env);
        let pm = common::podman::Podman::new(&env);
        let state = env.user_dir("runc-root");
        // The container's volume, seeded by a hostile image: a fake
        // net/ipv4 whose ping_group_range the sysctl write would fill.
        let fake = data_dir(&env, "fake-ipv4");
        let victim = fake.join("ping_group_range");
        std::fs::write(&victim, "untouched").unwrap();
        common::podman::chown(&victim, env.ids().0, env.ids().1);
        let cases = [
            // A bind over a /proc/sys directory.
            serde_json::json!([{"destination": "/proc/sys/net/ipv4", "type": "bind",
                                "source": fake, "options": ["rbind"]}]),
            // A bind of a host file over the sysctl itself.
            serde_json::json!([{"destination": "/proc/sys/net/ipv4/ping_group_range",
                                "type": "bind", "source": victim, "options": ["bind"]}]),
            // A tmpfs over /proc/sys.
            serde_json::json!([{"destination": "/proc/sys", "type": "tmpfs",
                                "source": "tmpfs", "options": []}]),
        ];
        for (i, mounts) in cases.into_iter().enumerate() {
            let b = bundle(
                &env,
                &[
                    "sh",
                    "-c",
                    "cat /proc/sys/net/ipv4/ping_group_range; echo RAN",
                ],
                mounts,
                serde_json::json!({"net.ipv4.ping_group_range": "0 0"}),
            );
            let o = pm.runtime(&[
                "--root",
                state.to_str().unwrap(),
                "run",
                "--bundle",
                b.to_str().unwrap(),
                &format!("c{i}"),
            ]);
            assert_eq!(
                std::fs::read_to_string(&victim).unwrap(),
                "untouched",
                "[{who:?}] case {i}: the sysctl was written into a host file ({})",
                stderr(&o)
            );
            assert!(
                !o.status.success() && !stdout(&o).contains("RAN"),
                "[{who:?}] case {i}: ran over a fake /proc: {}",
                stdout(&o)
            );
        }
        // The same sysctl with /proc left alone is set in the container.
        let b = bundle(
            &env,
            &["cat", "/proc/sys/net/ipv4/ping_group_range"],
            serde_json::json!([]),
            serde_json::json!({"net.ipv4.ping_group_range": "0 0"}),
        );
        let o = pm.runtime(&[
            "--root",
            state.to_str().unwrap(),
            "run",
            "--bundle",
            b.to_str().unwrap(),
            "ok",
        ]);
        assert!(o.status.success(), "[{who:?}] {}", stderr(&o));
        assert_eq!(
            stdout(&o).split_whitespace().collect::<Vec<_>>(),
            ["0", "0"],
            "[{who:?}]"
        );
        assert_secret(&env, &secret);
    }
}

#[test]
fn runc_mode_dev_files_are_made_in_a_shared_dev_without_following_a_symlink() {
    for env in common::users("esc-runc-dev") {
        let who = env.who;
        if racer_image(&env).is_none() {
            return;
        }
        let secret = plant_secret(&env);
        let pm = common::podman::Podman::new(&env);
        let state = env.user_dir("runc-root");
        // A directory the engine binds over the container's /dev (as
        // `podman run -v DIR:/dev` does), shared with a racer that keeps
        // `null` and the other device names symlinks to the test user's
        // secret: a runtime that removes such a symlink and then creates
        // the file by path opens (and truncates) the secret.
        let shared = env.user_dir("shared-dev");
        // Every device file the runtime makes there.
        let links: Vec<String> = ["null", "zero", "full", "random", "urandom", "tty"]
            .iter()
            .map(|d| format!("/shared/{d}"))
            .collect();
        let relink = format!("/relink {} 600 {}", secret.display(), links.join(" "));
        let script = format!("{relink} & {relink} & exec {relink}");
        env.ok([
            "run",
            "-d",
            "--name",
            "racer",
            "-v",
            &format!("{}:/shared", shared.display()),
            "evil",
            "sh",
            "-c",
            &script,
        ]);
        common::wait_until(
            "the racer's link",
            std::time::Duration::from_secs(10),
            || shared.join("null").symlink_metadata().is_ok(),
        );
        let b = bundle(
            &env,
            &["true"],
            serde_json::json!([{"destination": "/dev", "type": "bind",
                                "source": shared, "options": ["rbind"]}]),
            serde_json::json!({}),
        );
        for i in 0..STARTS {
            // What the last start left (its device files and links) goes;
            // the racer's links stay.
            for e in std::fs::read_dir(&shared).unwrap() {
                let p = e.unwrap().path();
                let name = format!("/shared/{}", p.file_name().unwrap().to_string_lossy());
                let racers = links.contains(&name)
                    && p.symlink_metadata()
                        .is_ok_and(|m| m.file_type().is_symlink());
                if !racers {
                    let _ = std::fs::remove_file(&p).or_else(|_| std::fs::remove_dir_all(&p));
                }
            }
            let o = pm.runtime(&[
                "--root",
                state.to_str().unwrap(),
                "run",
                "--bundle",
                b.to_str().unwrap(),
                &format!("c{i}"),
            ]);
            let _ = pm.runtime(&[
                "--root",
                state.to_str().unwrap(),
                "delete",
                "--force",
                &format!("c{i}"),
            ]);
            assert_eq!(
                std::fs::read_to_string(&secret).unwrap(),
                SECRET,
                "[{who:?}] start {i}: the secret was truncated through /dev/null ({})",
                stderr(&o)
            );
        }
        stop_racer(&env);
        assert_secret(&env, &secret);
    }
}
