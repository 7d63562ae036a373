//! An OCI bundle's `config.json` translated into burrow's process path: the
//! mount plan as `sandbox::MountOp`s, the namespaces to create or join, the
//! id maps, and the `sandbox::Process` PID 1 runs. A pure function of the
//! parsed spec (unit-tested below); nothing here forks or mounts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

mod mounts;
mod process;

use crate::sandbox::seccomp::Profile;
use crate::sandbox::{Entry, MountOp};
use mounts::{device_ops, mount_ops, propagation_of};
use process::mempolicy;
pub use process::process_plan;

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("config.json: {0}")]
    Invalid(String),
}

type Result<T> = std::result::Result<T, BundleError>;

fn invalid(s: impl Into<String>) -> BundleError {
    BundleError::Invalid(s.into())
}

/// A bundle's config, as read: the oci-spec types, and the raw
/// `linux.seccomp` object (burrow's own profile reader keeps what
/// oci-spec's types would drop).
#[derive(Debug, Clone)]
pub struct Config {
    pub spec: Spec,
    pub seccomp: Option<serde_json::Value>,
}

impl Config {
    /// Read `dir/config.json`.
    pub fn read(dir: &Path) -> Result<Config> {
        Config::read_file(&dir.join("config.json"))
    }

    /// Read the config at `path`.
    pub fn read_file(path: &Path) -> Result<Config> {
        let path = path.to_path_buf();
        let bytes = std::fs::read(&path).map_err(|source| BundleError::Read {
            path: path.clone(),
            source,
        })?;
        Config::parse(&bytes).map_err(|source| BundleError::Parse { path, source })
    }

    pub fn parse(bytes: &[u8]) -> std::result::Result<Config, serde_json::Error> {
        let spec: Spec = serde_json::from_slice(bytes)?;
        let raw: serde_json::Value = serde_json::from_slice(bytes)?;
        let seccomp = raw
            .get("linux")
            .and_then(|l| l.get("seccomp"))
            .filter(|s| !s.is_null())
            .cloned();
        Ok(Config { spec, seccomp })
    }

    /// The seccomp profile, if the bundle has one.
    pub fn seccomp_profile(&self) -> Result<Option<Profile>> {
        let Some(v) = &self.seccomp else {
            return Ok(None);
        };
        if v.get("listenerPath").is_some_and(|p| !p.is_null()) {
            return Err(invalid(
                "linux.seccomp.listenerPath: seccomp user notification is not supported",
            ));
        }
        let bytes = serde_json::to_vec(v).map_err(|e| invalid(e.to_string()))?;
        let profile = Profile::parse(&bytes).map_err(|e| invalid(format!("linux.seccomp: {e}")))?;
        // A syscall no architecture has is skipped, unless the bundle asks
        // (crun's annotation) that a profile naming one be refused.
        let strict = self
            .spec
            .annotations()
            .as_ref()
            .and_then(|a| a.get(FAIL_UNKNOWN_SYSCALL))
            .is_some_and(|v| v != "0" && v != "false");
        if strict {
            if let Some(name) = unknown_syscall(&profile) {
                return Err(invalid(format!(
                    "linux.seccomp: unknown syscall {name:?} ({FAIL_UNKNOWN_SYSCALL} is set)"
                )));
            }
        }
        Ok(Some(profile))
    }
}

/// The annotation that makes an unknown syscall in the profile an error.
const FAIL_UNKNOWN_SYSCALL: &str = "run.oci.seccomp_fail_unknown_syscall";

/// The first syscall `profile` names that no architecture burrow filters
/// knows.
fn unknown_syscall(profile: &Profile) -> Option<&str> {
    use crate::sandbox::seccomp::Abi;
    let abis = [Abi::X86_64, Abi::X86, Abi::Aarch64, Abi::Arm];
    profile
        .syscalls
        .iter()
        .flat_map(|r| r.names.iter().chain(&r.name))
        .map(String::as_str)
        .find(|n| abis.iter().all(|abi| abi.number(n).is_none()))
}

/// How the container gets its user namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserNs {
    /// None asked for: the runtime's own (an engine that runs us as root
    /// of a user namespace it made, as rootless podman does).
    Inherit,
    /// A new one, mapped with `uid_map`/`gid_map`.
    Create,
    Join(PathBuf),
}

/// Everything `create` needs, checked before anything forks.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The root filesystem, absolute.
    pub root: PathBuf,
    pub ops: Vec<MountOp>,
    pub hostname: Option<String>,
    /// The NIS domain name (setdomainname(2)), with a new UTS namespace.
    pub domainname: Option<String>,
    pub user_ns: UserNs,
    /// (container, host, size) lines.
    pub uid_map: Vec<(u32, u32, u32)>,
    pub gid_map: Vec<(u32, u32, u32)>,
    /// Namespaces to create (besides the user namespace).
    pub create: CloneFlags,
    /// Namespaces to join, by path, besides the user namespace.
    pub join: Vec<(CloneFlags, PathBuf)>,
    pub process: ProcessPlan,
    /// `linux.memoryPolicy` as set_mempolicy(2) takes it: the mode with
    /// its flags, and the node mask.
    pub mempolicy: Option<(i32, Vec<libc::c_ulong>)>,
    /// `linux.devices` entries not bound: the host has no such device at
    /// that path, or /dev is not a fresh tmpfs.
    pub skipped_devices: Vec<PathBuf>,
}

impl Plan {
    /// What init runs before it sets up its own process: the mount tree,
    /// the pivot into the root, the names the bundle gives.
    pub fn entry(&self) -> Entry {
        Entry::new(
            self.ops.clone(),
            self.hostname.clone(),
            self.domainname.clone(),
        )
    }
}

/// PID 1 (or an exec'd process) as the bundle describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessPlan {
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub umask: Option<u32>,
    /// The five capability sets.
    pub caps: crate::linux::caps::Sets,
    pub terminal: bool,
    pub no_new_privs: bool,
    /// (RLIMIT_* name, soft, hard).
    pub rlimits: Vec<(String, u64, u64)>,
    pub oom_score_adj: Option<i32>,
}

/// A host device node: whether it is a block device, its major and minor.
pub type HostDevice = (bool, u64, u64);

/// The device node at `path` on the host, if it is one.
fn host_device(path: &Path) -> Option<HostDevice> {
    use nix::sys::stat::{major, minor, stat, SFlag};
    let st = stat(path).ok()?;
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    let block = match kind {
        SFlag::S_IFBLK => true,
        SFlag::S_IFCHR => false,
        _ => return None,
    };
    Some((block, major(st.st_rdev), minor(st.st_rdev)))
}

/// Translate `cfg` of the bundle in `bundle` into a plan.
pub fn plan(cfg: &Config, bundle: &Path) -> Result<Plan> {
    plan_with(cfg, bundle, &host_device)
}

/// [`plan`], with `host` telling what device node a host path is.
fn plan_with(
    cfg: &Config,
    bundle: &Path,
    host: &dyn Fn(&Path) -> Option<HostDevice>,
) -> Result<Plan> {
    let spec = &cfg.spec;
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| invalid("root.path is missing"))?;
    let root_path = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    let linux = spec.linux().clone().unwrap_or_default();
    let ns = namespaces(&linux)?;
    let (uid_map, gid_map) = id_maps(&linux, &ns.user_ns);

    // The mount tree.
    let mut ops = vec![MountOp::PrepareRoot {
        propagation: propagation_of(linux.rootfs_propagation().as_deref())?,
    }];
    let dev_tmpfs = mount_ops(spec, bundle, ns.new_net, &mut ops)?;
    let skipped_devices = device_ops(&linux, dev_tmpfs, host, &mut ops);
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("process is missing"))?;
    let process = process_plan(process)?;
    let readonly_root = root.readonly().unwrap_or(false);
    path_ops(&linux, &process.cwd, readonly_root, &mut ops);

    let (hostname, domainname) = names(spec, &linux, ns.has_uts)?;
    let mempolicy = linux.memory_policy().as_ref().map(mempolicy).transpose()?;
    if linux.intel_rdt().is_some() {
        return Err(invalid("linux.intelRdt is not supported"));
    }
    if linux.personality().is_some() {
        return Err(invalid("linux.personality is not supported"));
    }
    Ok(Plan {
        root: root_path,
        ops,
        hostname,
        domainname,
        user_ns: ns.user_ns,
        uid_map,
        gid_map,
        create: ns.create,
        join: ns.join,
        process,
        mempolicy,
        skipped_devices,
    })
}

/// The bundle's namespaces: each one created, or joined by path.
struct Namespaces {
    create: CloneFlags,
    join: Vec<(CloneFlags, PathBuf)>,
    user_ns: UserNs,
    /// A new UTS namespace (the hostname is ours to set).
    has_uts: bool,
    /// A new network namespace (sysfs is ours to mount).
    new_net: bool,
}

fn namespaces(linux: &oci_spec::runtime::Linux) -> Result<Namespaces> {
    let mut n = Namespaces {
        create: CloneFlags::empty(),
        join: Vec::new(),
        user_ns: UserNs::Inherit,
        has_uts: false,
        new_net: false,
    };
    let mut has_mount = false;
    for ns in linux.namespaces().clone().unwrap_or_default() {
        let flag = match ns.typ() {
            LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
            LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
            LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
            LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
            LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
            LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
            LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
            LinuxNamespaceType::Time => return Err(invalid("the time namespace is not supported")),
        };
        match ns.typ() {
            LinuxNamespaceType::Mount => has_mount = true,
            LinuxNamespaceType::Uts => n.has_uts = ns.path().is_none(),
            LinuxNamespaceType::Network => n.new_net = ns.path().is_none(),
            _ => {}
        }
        match (ns.typ(), ns.path()) {
            (LinuxNamespaceType::User, None) => n.user_ns = UserNs::Create,
            (LinuxNamespaceType::User, Some(p)) => n.user_ns = UserNs::Join(p.clone()),
            (_, None) => n.create |= flag,
            (_, Some(p)) => n.join.push((flag, p.clone())),
        }
    }
    if !has_mount {
        return Err(invalid(
            "no mount namespace: burrow-runc pivots into the root in a mount namespace of its own",
        ));
    }
    Ok(n)
}

/// The uid and gid map lines, (container, host, size).
type IdMaps = (Vec<(u32, u32, u32)>, Vec<(u32, u32, u32)>);

/// The id maps of the bundle's user namespace.
fn id_maps(linux: &oci_spec::runtime::Linux, user_ns: &UserNs) -> IdMaps {
    let lines = |m: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| -> Vec<(u32, u32, u32)> {
        m.as_ref()
            .map(|v| {
                v.iter()
                    .map(|l| (l.container_id(), l.host_id(), l.size()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut uid_map = lines(linux.uid_mappings());
    let mut gid_map = lines(linux.gid_mappings());
    if *user_ns == UserNs::Create {
        // A new user namespace with no mappings maps root to the caller,
        // as crun does (`crun spec --rootless` writes none).
        if uid_map.is_empty() {
            uid_map = vec![(0, nix::unistd::geteuid().as_raw(), 1)];
        }
        if gid_map.is_empty() {
            gid_map = vec![(0, nix::unistd::getegid().as_raw(), 1)];
        }
    }
    (uid_map, gid_map)
}

/// What follows the mounts, onto `ops`: the working directory `cwd`, the
/// sysctls, the masked and read-only paths, the read-only root.
fn path_ops(
    linux: &oci_spec::runtime::Linux,
    cwd: &str,
    readonly_root: bool,
    ops: &mut Vec<MountOp>,
) {
    // The working directory exists before the root may go read-only, as
    // runc makes it.
    ops.push(MountOp::MakeDirs {
        target: cwd.to_string(),
    });
    let mut sysctls: Vec<(String, String)> = linux
        .sysctl()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect::<HashMap<_, _>>()
        .into_iter()
        .collect();
    sysctls.sort();
    for (key, value) in sysctls {
        ops.push(MountOp::Sysctl { key, value });
    }
    for p in linux.masked_paths().clone().unwrap_or_default() {
        ops.push(MountOp::MaskPath {
            target: p.trim_start_matches('/').to_string(),
        });
    }
    for p in linux.readonly_paths().clone().unwrap_or_default() {
        ops.push(MountOp::ReadonlyPath {
            target: p.trim_start_matches('/').to_string(),
        });
    }
    if readonly_root {
        ops.push(MountOp::RemountRootReadonly);
    }
}

/// The hostname and NIS domain name to set: only with a new UTS namespace.
fn names(
    spec: &Spec,
    linux: &oci_spec::runtime::Linux,
    has_uts: bool,
) -> Result<(Option<String>, Option<String>)> {
    let hostname = spec.hostname().clone().filter(|h| has_uts && !h.is_empty());
    let domainname = match spec.domainname().clone().filter(|d| !d.is_empty()) {
        Some(_) if !has_uts => return Err(invalid("domainname needs a new UTS namespace")),
        Some(d) => {
            let sysctl = linux
                .sysctl()
                .as_ref()
                .and_then(|m| m.get("kernel.domainname").cloned());
            if sysctl.is_some_and(|v| v != d) {
                return Err(invalid(
                    "domainname and linux.sysctl kernel.domainname disagree",
                ));
            }
            Some(d)
        }
        None => None,
    };
    Ok((hostname, domainname))
}

/// The config `spec` writes: a shell on a terminal in `rootfs`, burrow's
/// default mounts, masks and capabilities. `rootless` adds a user
/// namespace mapping only the caller (`own_uid`, `own_gid`) to root, keeps
/// the host's network namespace (so binds the host's /sys read-only: only
/// the owner of a network namespace may mount sysfs) and leaves devpts
/// without a tty group, which a single-id map lacks.
pub fn default_config(rootless: bool, own_uid: u32, own_gid: u32) -> serde_json::Value {
    use serde_json::json;
    let caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
        "options": if rootless {
            json!(["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"])
        } else {
            json!(["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"])
        }}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
    ];
    mounts.push(if rootless {
        json!({"destination": "/sys", "type": "none", "source": "/sys",
               "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
    } else {
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", "ro"]})
    });
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    if !rootless {
        namespaces.push(json!({"type": "network"}));
    }
    let mut linux = json!({
        "namespaces": namespaces,
        "maskedPaths": crate::sandbox::MASKED_PATHS,
        "readonlyPaths": crate::sandbox::READONLY_PATHS,
    });
    if rootless {
        linux["namespaces"]
            .as_array_mut()
            .expect("an array")
            .push(json!({"type": "user"}));
        linux["uidMappings"] = json!([{"containerID": 0, "hostID": own_uid, "size": 1}]);
        linux["gidMappings"] = json!([{"containerID": 0, "hostID": own_gid, "size": 1}]);
    }
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [format!("PATH={}", crate::sandbox::DEFAULT_PATH), "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "burrow",
        "mounts": mounts,
        "linux": linux
    })
}

#[cfg(test)]
mod tests;
