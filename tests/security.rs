//! `--security-opt` end to end, as the unprivileged test users: Docker's
//! default seccomp profile against a probe program that tries the calls it
//! refuses, a custom profile file, bad files refused before anything runs,
//! no-new-privileges, and Docker's masked and read-only paths.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{loud, stderr, users, Env};

/// The probe, compiled static once per test binary into the harness's
/// shared directory (None: no compiler).
fn probe(shared: &Path) -> Option<&'static Path> {
    static P: OnceLock<Option<PathBuf>> = OnceLock::new();
    P.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/probes/seccomp_probe.c");
        let out = shared.join("seccomp-probe");
        common::compile_static(&src, &out).then_some(out)
    })
    .as_deref()
}

/// An image `probe` with the probe at /bin/probe, made with `cp` and
/// `commit`.
fn probe_image(env: &Env, probe: &Path) {
    env.import_busybox("busybox");
    env.ok(["create", "--name", "probe-src", "busybox", "true"]);
    env.ok(["cp", probe.to_str().unwrap(), "probe-src:/bin/probe"]);
    env.ok(["commit", "probe-src", "probe"]);
    env.ok(["rm", "probe-src"]);
}

/// The probe's "NAME ERRNO" lines from one run.
fn run_probe(env: &Env, args: &[&str]) -> BTreeMap<String, i32> {
    let mut full = vec!["run", "--rm"];
    full.extend(args);
    full.extend(["probe", "/bin/probe"]);
    env.ok(&full)
        .lines()
        .filter_map(|l| {
            let (name, errno) = l.split_once(' ')?;
            Some((name.to_string(), errno.parse().ok()?))
        })
        .collect()
}

const EPERM: i32 = 1;
const ENOSYS: i32 = 38;

/// What Docker's default profile answers each probe with. ptrace and
/// process_vm_readv are allowed from kernel 4.8 on (the profile's
/// `minKernel`), so reading one's own memory works.
const EXPECTED: &[(&str, i32)] = &[
    ("keyctl", EPERM),
    ("add_key", EPERM),
    ("bpf", EPERM),
    ("userfaultfd", EPERM),
    ("perf_event_open", EPERM),
    ("kcmp", EPERM),
    ("process_vm_readv", 0),
    ("name_to_handle_at", EPERM),
    ("mbind", EPERM),
    ("set_mempolicy", EPERM),
    ("get_mempolicy", EPERM),
    ("move_pages", EPERM),
    ("io_uring_setup", EPERM),
    ("personality", EPERM),
    ("clone3", ENOSYS),
    ("uname", 0),
    ("mount", EPERM),
    ("unshare_user", EPERM),
];

#[test]
fn dockers_default_profile_refuses_what_docker_refuses() {
    for env in users("seccomp-default") {
        let Some(probe) = probe(env.shared_dir()) else {
            loud("SKIPPED dockers_default_profile_refuses_what_docker_refuses: no C compiler able to link static binaries (apt-get install gcc libc6-dev)");
            return;
        };
        probe_image(&env, probe);
        let confined = run_probe(&env, &[]);
        let unconfined = run_probe(&env, &["--security-opt", "seccomp=unconfined"]);
        for (name, want) in EXPECTED {
            assert_eq!(
                confined.get(*name),
                Some(want),
                "{name} under the default profile [{:?}]: {confined:?}",
                env.who
            );
        }
        // Without the filter the kernel answers: the calls it lets an
        // ordinary process make show the filter was what refused them.
        let shown: Vec<&str> = EXPECTED
            .iter()
            .filter(|(n, want)| *want != 0 && unconfined.get(*n) != Some(want))
            .map(|(n, _)| *n)
            .collect();
        for must in [
            "keyctl",
            "add_key",
            "kcmp",
            "personality",
            "clone3",
            "unshare_user",
            "get_mempolicy",
            "set_mempolicy",
            "mbind",
            "mount",
        ] {
            assert!(
                shown.contains(&must),
                "{must} is refused without the filter too [{:?}]: {unconfined:?}",
                env.who
            );
        }
        // CAP_SYS_ADMIN brings clone3, unshare and mount back, as in Docker.
        let admin = run_probe(&env, &["--cap-add", "SYS_ADMIN"]);
        assert_ne!(admin["clone3"], ENOSYS, "{admin:?}");
        assert_eq!(admin["unshare_user"], 0, "{admin:?}");
    }
}

#[test]
fn a_profile_file_replaces_the_default() {
    for env in users("seccomp-file") {
        let Some(probe) = probe(env.shared_dir()) else {
            loud("SKIPPED a_profile_file_replaces_the_default: no C compiler able to link static binaries (apt-get install gcc libc6-dev)");
            return;
        };
        probe_image(&env, probe);
        let dir = env.user_dir("profiles");
        let file = dir.join("deny-uname.json");
        std::fs::write(
            &file,
            r#"{
  "defaultAction": "SCMP_ACT_ALLOW",
  "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
  "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
}"#,
        )
        .unwrap();
        env.share(&file);
        let opt = format!("seccomp={}", file.display());
        let custom = run_probe(&env, &["--security-opt", &opt]);
        let unconfined = run_probe(&env, &["--security-opt", "seccomp=unconfined"]);
        assert_eq!(custom["uname"], EPERM, "{custom:?}");
        // Everything else is the kernel's answer, as unconfined.
        for name in ["keyctl", "kcmp", "personality", "clone3"] {
            assert_eq!(custom[name], unconfined[name], "{name}: {custom:?}");
        }
        // The profile is stored with the container: the file can go.
        let id = env.ok(["create", "--security-opt", &opt, "probe", "/bin/probe"]);
        std::fs::remove_file(&file).unwrap();
        let out = env.ok(["start", "-a", id.trim()]);
        assert!(out.contains("uname 1\n"), "{out}");

        // Bad files: one line, exit 125, nothing created.
        let before = env.ok(["ps", "-aq"]);
        for (content, says) in [
            (None, "No such file"),
            (Some("{not json"), "parsing seccomp profile"),
            (
                Some(r#"{"defaultAction": "SCMP_ACT_SOMETIMES"}"#),
                "SCMP_ACT_SOMETIMES",
            ),
        ] {
            let bad = dir.join("bad.json");
            let _ = std::fs::remove_file(&bad);
            if let Some(c) = content {
                std::fs::write(&bad, c).unwrap();
                env.share(&bad);
            }
            let o = env.run([
                "run",
                "--rm",
                "--security-opt",
                &format!("seccomp={}", bad.display()),
                "probe",
                "true",
            ]);
            assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
            let err = stderr(&o);
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(err.contains("bad.json") && err.contains(says), "{err}");
        }
        assert_eq!(env.ok(["ps", "-aq"]), before);
    }
}

#[test]
fn no_new_privileges_is_set_and_shown() {
    for env in users("nnp") {
        env.import_busybox("busybox");
        let grep = ["busybox", "grep", "NoNewPrivs", "/proc/self/status"];
        let mut with = vec!["run", "--rm", "--security-opt", "no-new-privileges"];
        with.extend(grep);
        assert_eq!(env.ok(&with).replace('\t', " "), "NoNewPrivs: 1\n");
        let mut without = vec!["run", "--rm"];
        without.extend(grep);
        assert_eq!(env.ok(&without).replace('\t', " "), "NoNewPrivs: 0\n");
        let id = env.ok([
            "create",
            "--security-opt",
            "no-new-privileges=true",
            "busybox",
            "true",
        ]);
        let shown = env.ok([
            "inspect",
            "--format",
            "{{json .HostConfig.SecurityOpt}}",
            id.trim(),
        ]);
        assert_eq!(shown.trim(), r#"["no-new-privileges=true"]"#);
        let o = env.run([
            "run",
            "--rm",
            "--security-opt",
            "no-new-privileges=perhaps",
            "busybox",
            "true",
        ]);
        assert_eq!(o.status.code(), Some(125));
    }
}

#[test]
fn dockers_masked_and_readonly_paths() {
    for env in users("masks") {
        env.import_busybox("busybox");
        // Masked files that exist on this host (/proc/kcore is missing
        // from some kernels).
        let files: Vec<&str> = ["/proc/kcore", "/proc/keys", "/proc/timer_list"]
            .into_iter()
            .filter(|p| Path::new(p).exists())
            .collect();
        let script = format!(
            "for f in {}; do echo \"$f $(stat -c %F $f)\"; done; \
             grep -c ' /proc/sys proc ro,' /proc/self/mounts; \
             echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo sys-writable || echo sys-readonly; \
             ls /sys/firmware | wc -l",
            files.join(" ")
        );
        let run = |args: &[&str]| {
            let mut full = vec!["run", "--rm"];
            full.extend(args);
            full.extend(["busybox", "sh", "-c", &script]);
            env.ok(&full)
        };
        let masked = run(&[]);
        for f in &files {
            assert!(
                masked.contains(&format!("{f} character special file\n")),
                "{f}: {masked}"
            );
        }
        // /proc/sys mounted read-only; /sys/firmware an empty tmpfs.
        assert!(masked.ends_with("1\nsys-readonly\n0\n"), "{masked}");

        let open = run(&["--security-opt", "unmask=ALL"]);
        for f in &files {
            assert!(!open.contains(&format!("{f} character")), "{f}: {open}");
        }
        let tail: Vec<&str> = open.lines().rev().take(3).collect();
        assert_eq!(tail[2], "0", "/proc/sys stays as proc mounted it: {open}");
        if Path::new("/sys/firmware")
            .read_dir()
            .is_ok_and(|mut d| d.next().is_some())
        {
            assert_ne!(tail[0], "0", "/sys/firmware is the host's: {open}");
        }

        // unmask= one path, mask= another.
        let some = env.ok([
            "run",
            "--rm",
            "--security-opt",
            "unmask=/proc/keys",
            "--security-opt",
            "mask=/etc/hostname",
            "busybox",
            "sh",
            "-c",
            "stat -c %F /proc/keys /etc/hostname",
        ]);
        assert_eq!(some, "regular empty file\ncharacter special file\n");
    }
}

#[test]
fn privileged_has_every_namespaced_capability_and_nothing_of_the_host() {
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let full = format!("{:016x}", (1u64 << (last + 1)) - 1);
    let script = "grep -E '^(CapEff|Seccomp):' /proc/self/status | tr -d '\\t'; \
         for f in /proc/timer_list /proc/keys; do [ -e $f ] && echo \"$f $(stat -c %F $f)\"; done; \
         echo ro-proc-sys $(grep -c ' /proc/sys proc ro,' /proc/self/mounts); \
         echo sys $(awk '$2==\"/sys\" {split($4, o, \",\"); print o[1]}' /proc/self/mounts); \
         echo 64 > /proc/sys/net/ipv4/ip_default_ttl 2>/dev/null && echo netns-sysctl-written || echo netns-sysctl-refused; \
         echo 1 > /proc/sys/vm/drop_caches 2>/dev/null && echo host-sysctl-written || echo host-sysctl-refused; \
         mknod /tmp/mem c 1 1 2>/dev/null && echo mknod-made || echo mknod-refused";
    for env in users("privileged") {
        env.import_busybox("busybox");
        let out = env.ok(["run", "--rm", "--privileged", "busybox", "sh", "-c", script]);
        assert!(out.contains(&format!("CapEff:{full}\n")), "{out}");
        assert!(out.contains("Seccomp:0\n"), "no filter: {out}");
        assert!(!out.contains("character special"), "nothing masked: {out}");
        assert!(out.contains("ro-proc-sys 0\n"), "{out}");
        assert!(
            out.contains("sys rw\n"),
            "the private network's sysfs: {out}"
        );
        assert!(
            out.contains("netns-sysctl-written\n"),
            "what the namespace owns: {out}"
        );
        // Never more than the user has: the host's sysctls and devices stay
        // out of reach.
        assert!(out.contains("host-sysctl-refused\n"), "{out}");
        assert!(out.contains("mknod-refused\n"), "{out}");
        let plain = env.ok(["run", "--rm", "busybox", "sh", "-c", script]);
        assert!(!plain.contains(&format!("CapEff:{full}\n")), "{plain}");
        assert!(plain.contains("Seccomp:2\n"), "{plain}");
        assert!(plain.contains("ro-proc-sys 1\n"), "{plain}");
        assert!(plain.contains("sys ro\n"), "{plain}");
        assert!(plain.contains("netns-sysctl-refused\n"), "{plain}");
        let id = env.ok(["create", "--privileged", "busybox", "true"]);
        let shown = env.ok([
            "inspect",
            "--format",
            "{{.HostConfig.Privileged}}",
            id.trim(),
        ]);
        assert_eq!(shown.trim(), "true");
        env.ok(["rm", id.trim()]);
    }
}
