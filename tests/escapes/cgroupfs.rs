//! CVE-2023-25809: a container without a cgroup namespace must not write
//! the host's cgroup files through /sys/fs/cgroup, even where the user owns
//! them (a delegated cgroup): not its limits, not which processes it
//! holds, not new children.

use std::path::PathBuf;

use crate::common::{self, Env};

/// A cgroup in every cgroup hierarchy the host has mounted, owned by the
/// test user as a delegated one would be; removed on drop.
struct Delegated(Vec<PathBuf>);

impl Delegated {
    fn make(env: &Env, name: &str) -> Delegated {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let (uid, gid) = env.ids();
        let mut dirs = Vec::new();
        for line in mountinfo.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            let Some(dash) = f.iter().position(|x| *x == "-") else {
                continue;
            };
            if !f[dash + 1].starts_with("cgroup") || f[3] != "/" {
                continue;
            }
            let d = PathBuf::from(f[4]).join(name);
            let _ = std::fs::remove_dir(&d);
            if std::fs::create_dir(&d).is_err() {
                continue;
            }
            let own = |p: &std::path::Path| {
                let _ = nix::unistd::chown(
                    p,
                    Some(nix::unistd::Uid::from_raw(uid)),
                    Some(nix::unistd::Gid::from_raw(gid)),
                );
            };
            own(&d);
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                own(&e.path());
            }
            dirs.push(d);
        }
        Delegated(dirs)
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        for d in &self.0 {
            let _ = std::fs::remove_dir(d.join("evil"));
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// What the attack would change in `d`: its children, its processes and
/// its memory limit.
fn state(d: &std::path::Path) -> String {
    let read = |f: &str| std::fs::read_to_string(d.join(f)).unwrap_or_default();
    format!(
        "evil={} procs={:?} max={:?} limit={:?}",
        d.join("evil").exists(),
        read("cgroup.procs"),
        read("memory.max"),
        read("memory.limit_in_bytes")
    )
}

#[test]
fn a_container_cannot_write_the_hosts_cgroup_files() {
    if !nix::unistd::Uid::effective().is_root() {
        common::loud(
            "SKIPPED CVE-2023-25809 test: making a delegated cgroup for the test user needs root",
        );
        return;
    }
    for env in common::users("esc-cgroupfs") {
        env.import_busybox("busybox");
        let name = format!("burrow-esc-cgroupfs-{}", env.ids().0);
        let cg = Delegated::make(&env, &name);
        if cg.0.is_empty() {
            common::loud("SKIPPED CVE-2023-25809 test: no cgroup hierarchy to make a cgroup in");
            return;
        }
        let before: Vec<String> = cg.0.iter().map(|d| state(d)).collect();
        // Every write the attack tries, in every hierarchy the container sees.
        let script = format!(
            "for d in /sys/fs/cgroup/{name} /sys/fs/cgroup/*/{name}; do \
               [ -d $d ] || continue; echo seen $d; \
               echo 4096 > $d/memory.max; echo 4096 > $d/memory.limit_in_bytes; \
               echo $$ > $d/cgroup.procs; mkdir $d/evil; \
             done 2>/dev/null; \
             mount -o remount,rw /sys/fs/cgroup 2>/dev/null; \
             for m in /sys/fs/cgroup /sys/fs/cgroup/*; do \
               mount -o remount,bind,rw $m 2>/dev/null; done; \
             for d in /sys/fs/cgroup/{name} /sys/fs/cgroup/*/{name}; do \
               [ -d $d ] || continue; mkdir $d/evil; echo $$ > $d/cgroup.procs; \
             done 2>/dev/null; true"
        );
        // The runc mode: podman hands burrow-runc a bundle with a cgroup
        // mount at /sys/fs/cgroup and, with the host's network, no sysfs
        // of its own to mount.
        if common::podman::have_podman("CVE-2023-25809 through burrow-runc") {
            let pm = common::podman::Podman::new(&env);
            pm.ok(&[
                "import",
                "--change",
                "CMD [\"sh\"]",
                env.busybox_tar().to_str().unwrap(),
                "localhost/bb:1",
            ]);
            for net in ["none", "host"] {
                let o = pm.run(&[
                    "run",
                    "--rm",
                    "--network",
                    net,
                    "--cgroupns",
                    "host",
                    "localhost/bb:1",
                    "sh",
                    "-c",
                    &script,
                ]);
                let after: Vec<String> = cg.0.iter().map(|d| state(d)).collect();
                assert_eq!(
                    before,
                    after,
                    "[{:?}] podman run --network {net} through burrow-runc wrote the host's cgroup files\nstdout: {}\nstderr: {}",
                    env.who,
                    common::stdout(&o),
                    common::stderr(&o)
                );
            }
        }
        for extra in [
            &[][..],
            &["--network", "host"][..],
            &["--privileged"][..],
            &["--network", "host", "--privileged"][..],
        ] {
            let mut args = vec!["run", "--rm"];
            args.extend(extra);
            args.extend(["busybox", "sh", "-c", &script]);
            let out = env.run(&args);
            let after: Vec<String> = cg.0.iter().map(|d| state(d)).collect();
            if extra == ["--network", "host", "--privileged"] {
                // CAP_SYS_ADMIN over the container's own mount namespace may
                // remount any bind burrow made there read-write; only a
                // cgroup namespace (none without a delegated v2 hierarchy)
                // or the files' ownership keeps it out.
                if before != after {
                    common::loud(&format!(
                        "KNOWN LIMIT CVE-2023-25809 [{:?}]: --privileged --network host remounted the host's cgroup hierarchy read-write and wrote a cgroup the user owns",
                        env.who
                    ));
                }
                continue;
            }
            assert_eq!(
                before,
                after,
                "[{:?}] run {extra:?} wrote the host's cgroup files\nstdout: {}\nstderr: {}",
                env.who,
                common::stdout(&out),
                common::stderr(&out)
            );
        }
    }
}
