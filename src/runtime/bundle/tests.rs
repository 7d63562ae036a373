//! Unit tests of the bundle's translation: real engines' configs, the
//! default spec, options, devices, and the entry init runs.

use super::mounts::parse_options;
use super::*;
use crate::linux::caps;
use crate::sandbox::{EntryOp, Symlinks};
use nix::mount::MsFlags;

/// The shape rootless podman 4.3 sends (trimmed): no user namespace,
/// binds from its storage, a cgroup mount, a sysctl, masks.
const PODMAN: &str = r#"{
  "ociVersion": "1.0.2-dev",
  "process": {
    "user": {"uid": 0, "gid": 0, "umask": 18, "additionalGids": [10]},
    "args": ["echo", "hi"],
    "env": ["PATH=/usr/bin:/bin", "TERM=xterm"],
    "cwd": "/",
    "capabilities": {"bounding": ["CAP_CHOWN", "CAP_KILL"], "effective": ["CAP_CHOWN"]},
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 20000, "soft": 10000}],
    "noNewPrivileges": true
  },
  "root": {"path": "rootfs", "readonly": true},
  "hostname": "abc",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/etc/hosts", "type": "bind", "source": "/run/x/hosts", "options": ["bind", "rprivate"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro"]}
  ],
  "linux": {
    "sysctl": {"net.ipv4.ping_group_range": "0 0"},
    "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
    "maskedPaths": ["/proc/kcore"],
    "readonlyPaths": ["/proc/sys"],
    "seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
  }
}"#;

#[test]
fn podman_rootless_config_becomes_a_plan() {
    let cfg = Config::parse(PODMAN.as_bytes()).unwrap();
    let p = plan(&cfg, Path::new("/b")).unwrap();
    assert_eq!(p.root, Path::new("/b/rootfs"));
    assert_eq!(p.user_ns, UserNs::Inherit);
    assert_eq!(
        p.create,
        CloneFlags::CLONE_NEWPID
            | CloneFlags::CLONE_NEWNET
            | CloneFlags::CLONE_NEWIPC
            | CloneFlags::CLONE_NEWUTS
            | CloneFlags::CLONE_NEWNS
    );
    assert_eq!(p.hostname.as_deref(), Some("abc"));
    assert_eq!(
        p.ops.first(),
        Some(&MountOp::PrepareRoot {
            propagation: MsFlags::MS_SLAVE | MsFlags::MS_REC
        })
    );
    assert!(p.ops.contains(&MountOp::Mount {
        source: "tmpfs".into(),
        fstype: "tmpfs".into(),
        target: "/dev".into(),
        flags: MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        data: "mode=755,size=65536k".into(),
        bind: false,
        recursive: false,
        propagation: MsFlags::empty(),
        symlinks: Symlinks::default(),
    }));
    assert!(p.ops.contains(&MountOp::Mount {
        source: "/run/x/hosts".into(),
        fstype: String::new(),
        target: "/etc/hosts".into(),
        flags: MsFlags::empty(),
        data: String::new(),
        bind: true,
        recursive: false,
        propagation: MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        symlinks: Symlinks::default(),
    }));
    assert!(p.ops.contains(&MountOp::BindTreeReadonly {
        source: "/sys/fs/cgroup".into(),
        target: "sys/fs/cgroup".into()
    }));
    assert!(p
        .ops
        .iter()
        .any(|o| matches!(o, MountOp::Mount { fstype, .. } if fstype == "sysfs")));
    assert!(p.ops.contains(&MountOp::Symlink {
        link: "dev/ptmx".into(),
        points_to: "pts/ptmx"
    }));
    // sysctls after every mount, then masks, then the read-only root.
    let at = |f: &dyn Fn(&MountOp) -> bool| p.ops.iter().position(f).unwrap();
    let sysctl = at(&|o| matches!(o, MountOp::Sysctl { .. }));
    let mask = at(&|o| matches!(o, MountOp::MaskPath { .. }));
    let ro = at(&|o| matches!(o, MountOp::ReadonlyPath { .. }));
    assert!(sysctl < mask && mask < ro);
    assert_eq!(p.ops.last(), Some(&MountOp::RemountRootReadonly));

    let pr = &p.process;
    assert_eq!(pr.argv, ["echo", "hi"]);
    assert_eq!((pr.uid, pr.gid, pr.groups.clone()), (0, 0, vec![10]));
    assert_eq!(pr.umask, Some(18));
    assert_eq!(pr.caps.bounding, caps::bit(0) | caps::bit(5));
    assert_eq!(pr.caps.effective, caps::bit(0));
    assert_eq!(pr.caps.ambient, 0);
    assert!(pr.no_new_privs && !pr.terminal);
    assert_eq!(pr.rlimits, [("RLIMIT_NOFILE".to_string(), 10000, 20000)]);
    assert!(cfg.seccomp_profile().unwrap().is_some());
}

#[test]
fn ambient_capabilities_without_inheritable_ones_are_left_out() {
    let mut v: serde_json::Value = serde_json::from_str(PODMAN).unwrap();
    let three = serde_json::json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    // What `runc spec --rootless` writes: no inheritable set.
    v["process"]["capabilities"] = serde_json::json!({
        "bounding": three, "effective": three, "permitted": three, "ambient": three
    });
    let parse = |v: &serde_json::Value| Config::parse(v.to_string().as_bytes()).unwrap();
    let p = plan(&parse(&v), Path::new("/b")).unwrap();
    assert_eq!(p.process.caps.ambient, 0);
    assert_ne!(p.process.caps.permitted, 0);
    // Inheritable for one of them: that one is raised.
    v["process"]["capabilities"]["inheritable"] = serde_json::json!(["CAP_KILL"]);
    let p = plan(&parse(&v), Path::new("/b")).unwrap();
    assert_eq!(
        p.process.caps.ambient,
        caps::bit(caps::number("CAP_KILL").unwrap())
    );
}

#[test]
fn user_namespaces_joined_paths_and_bad_input() {
    let mut v: serde_json::Value = serde_json::from_str(PODMAN).unwrap();
    v["linux"]["namespaces"] = serde_json::json!([
        {"type": "user"}, {"type": "mount"}, {"type": "network", "path": "/proc/1/ns/net"}
    ]);
    let parse = |v: &serde_json::Value| Config::parse(v.to_string().as_bytes()).unwrap();
    // No mappings: root is the caller.
    let p = plan(&parse(&v), Path::new("/b")).unwrap();
    let me = nix::unistd::geteuid().as_raw();
    assert_eq!(p.uid_map, [(0, me, 1)]);
    v["linux"]["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    v["linux"]["gidMappings"] = serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    let p = plan(&parse(&v), Path::new("/b")).unwrap();
    assert_eq!(p.user_ns, UserNs::Create);
    assert_eq!(p.uid_map, [(0, 1000, 1)]);
    assert_eq!(
        p.join,
        [(CloneFlags::CLONE_NEWNET, PathBuf::from("/proc/1/ns/net"))]
    );
    // No UTS namespace: the hostname is not ours to set; a joined
    // network: sysfs is the host's, bound.
    assert_eq!(p.hostname, None);
    assert!(p.ops.contains(&MountOp::BindTreeReadonly {
        source: "/sys".into(),
        target: "sys".into()
    }));

    v["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}]);
    let err = plan(&parse(&v), Path::new("/b")).unwrap_err().to_string();
    assert!(err.contains("mount namespace"), "{err}");
    v["linux"]["namespaces"] = serde_json::json!([{"type": "mount"}]);
    v["process"]["args"] = serde_json::json!([]);
    let err = plan(&parse(&v), Path::new("/b")).unwrap_err().to_string();
    assert!(err.contains("args"), "{err}");
}

#[test]
fn devices_the_host_has_are_bound_the_others_named() {
    let mut v = default_config(true, 1000, 1000);
    v["linux"]["devices"] = serde_json::json!([
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229},
        {"path": "/dev/other", "type": "c", "major": 10, "minor": 1},
        {"path": "/dev/sdz", "type": "c", "major": 8, "minor": 0},
        {"path": "/dev/null", "type": "c", "major": 1, "minor": 3}
    ]);
    let cfg = Config::parse(v.to_string().as_bytes()).unwrap();
    let host = |p: &Path| match p.to_str() {
        Some("/dev/fuse") => Some((false, 10, 229)),
        Some("/dev/other") => Some((false, 10, 2)),
        Some("/dev/sdz") => Some((true, 8, 0)),
        _ => None,
    };
    let p = plan_with(&cfg, Path::new("/b"), &host).unwrap();
    let bound: Vec<&str> = p
        .ops
        .iter()
        .filter_map(|op| match op {
            MountOp::Mount {
                target, bind: true, ..
            } if target.starts_with("dev/") => Some(target.as_str()),
            _ => None,
        })
        .collect();
    assert!(bound.contains(&"dev/fuse"), "{bound:?}");
    assert_eq!(bound.iter().filter(|t| **t == "dev/null").count(), 1);
    assert_eq!(
        p.skipped_devices,
        [PathBuf::from("/dev/other"), PathBuf::from("/dev/sdz")]
    );
}

#[test]
fn the_default_specs_translate() {
    for rootless in [false, true] {
        let v = default_config(rootless, 1000, 1000);
        let cfg = Config::parse(v.to_string().as_bytes()).unwrap();
        let p = plan(&cfg, Path::new("/b")).unwrap();
        assert_eq!(p.root, Path::new("/b/rootfs"));
        assert!(p.process.terminal);
        assert_eq!(p.user_ns == UserNs::Create, rootless, "rootless {rootless}");
        if rootless {
            assert_eq!(p.uid_map, [(0, 1000, 1)]);
        }
    }
}

#[test]
fn memory_policies_as_set_mempolicy_takes_them() {
    let p = |v: serde_json::Value| {
        mempolicy(&serde_json::from_value::<oci_spec::runtime::LinuxMemoryPolicy>(v).unwrap())
    };
    let (mode, mask) = p(serde_json::json!({
        "mode": "MPOL_BIND", "nodes": "0-2,65", "flags": ["MPOL_F_STATIC_NODES"]
    }))
    .unwrap();
    assert_eq!(mode, 2 | 1 << 15);
    assert_eq!(mask, [0b111, 0b10]);
    assert_eq!(
        p(serde_json::json!({"mode": "MPOL_LOCAL"})).unwrap(),
        (4, vec![])
    );
    for bad in ["1-a", "5-3", "bad", "99999999"] {
        assert!(
            p(serde_json::json!({"mode": "MPOL_BIND", "nodes": bad})).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn mount_options_follow_runcs_table() {
    let o =
        |s: &[&str]| parse_options(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>()).unwrap();
    let x = o(&["rbind", "ro", "nosuid", "rslave", "size=1m"]);
    assert!(x.bind && x.recursive);
    assert_eq!(x.flags, MsFlags::MS_RDONLY | MsFlags::MS_NOSUID);
    assert_eq!(x.propagation, MsFlags::MS_SLAVE | MsFlags::MS_REC);
    assert_eq!(x.data, "size=1m");
    assert_eq!(o(&["ro", "rw"]).flags, MsFlags::empty());
    assert_eq!(o(&["rro"]).flags, MsFlags::MS_RDONLY);
    assert_eq!(o(&["rro"]).data, "");
    assert!(parse_options(&["idmap".to_string()]).is_err());
    let x = o(&["bind", "src-nofollow", "dest-nofollow"]);
    assert!(x.symlinks.src_nofollow && x.symlinks.dest_nofollow && !x.symlinks.copy);
    assert_eq!(x.data, "");
    assert!(o(&["rbind", "copy-symlink"]).symlinks.copy);
    let both = ["copy-symlink", "src-nofollow"].map(String::from);
    assert!(parse_options(&both).is_err());
}

#[test]
fn an_unknown_syscall_is_refused_only_when_the_annotation_asks() {
    let cfg = |annotations: &str| {
        Config::parse(
            format!(
                r#"{{"ociVersion": "1.0.0", "root": {{"path": "r"}}, {annotations}
                "linux": {{"seccomp": {{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {{"names": ["getpid", "no_such_call_12345"], "action": "SCMP_ACT_ERRNO"}}]}}}}}}"#
            )
            .as_bytes(),
        )
        .unwrap()
    };
    assert!(cfg("").seccomp_profile().unwrap().is_some());
    let strict = r#""annotations": {"run.oci.seccomp_fail_unknown_syscall": "1"},"#;
    let e = cfg(strict).seccomp_profile().unwrap_err().to_string();
    assert!(e.contains("no_such_call_12345"), "{e}");
    // socketcall exists on x86 only: known.
    assert_eq!(
        unknown_syscall(
            &Profile::parse(
                br#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["socketcall"], "action": "SCMP_ACT_ERRNO"}]}"#
            )
            .unwrap()
        ),
        None
    );
}

#[test]
fn a_typical_bundles_entry_prepares_mounts_pivots_then_names() {
    let cfg = Config::parse(PODMAN.as_bytes()).unwrap();
    let entry = plan(&cfg, Path::new("/b")).unwrap().entry();
    let got: Vec<String> = entry.ops.iter().map(ToString::to_string).collect();
    let want = [
        "prepare-root",
        "proc /proc",
        "tmpfs /dev",
        "sysfs /sys",
        "bind /etc/hosts",
        "bind-tree-ro sys/fs/cgroup",
        "bind dev/null",
        "bind dev/zero",
        "bind dev/full",
        "bind dev/random",
        "bind dev/urandom",
        "bind dev/tty",
        "symlink dev/ptmx",
        "symlink dev/fd",
        "symlink dev/stdin",
        "symlink dev/stdout",
        "symlink dev/stderr",
        "mkdirs /",
        "sysctl net.ipv4.ping_group_range",
        "mask proc/kcore",
        "ro proc/sys",
        "root-ro",
        "pivot",
        "hostname abc",
    ];
    assert_eq!(got, want);

    // The rootless default: a user namespace and no network namespace of
    // its own, so the host's /sys is bound; the hostname is set in its own
    // UTS namespace, after the pivot.
    let v = default_config(true, 1000, 1000);
    let cfg = Config::parse(v.to_string().as_bytes()).unwrap();
    let ops = plan(&cfg, Path::new("/b")).unwrap().entry().ops;
    let n = ops.len();
    assert_eq!(
        ops[n - 3..],
        [
            EntryOp::Mount(MountOp::RemountRootReadonly),
            EntryOp::PivotRoot,
            EntryOp::Hostname("burrow".into())
        ]
    );
    assert!(ops.contains(&EntryOp::Mount(MountOp::Mount {
        source: "/sys".into(),
        fstype: String::new(),
        target: "/sys".into(),
        flags: MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        data: String::new(),
        bind: true,
        recursive: true,
        propagation: MsFlags::empty(),
        symlinks: Symlinks::default(),
    })));
}

#[test]
fn a_domain_name_follows_the_hostname() {
    let mut v: serde_json::Value = serde_json::from_str(PODMAN).unwrap();
    v["domainname"] = serde_json::json!("example.org");
    let cfg = Config::parse(v.to_string().as_bytes()).unwrap();
    let ops = plan(&cfg, Path::new("/b")).unwrap().entry().ops;
    assert_eq!(
        ops[ops.len() - 2..],
        [
            EntryOp::Hostname("abc".into()),
            EntryOp::Domainname("example.org".into())
        ]
    );
}
