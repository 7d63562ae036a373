//! An OCI bundle's `config.json` translated into burrow's process path: the
//! mount plan as `sandbox::MountOp`s, the namespaces to create or join, the
//! id maps, and the `sandbox::Process` PID 1 runs. A pure function of the
//! parsed spec (unit-tested below); nothing here forks or mounts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxDeviceType, LinuxNamespaceType, Spec};

use crate::linux::caps;
use crate::sandbox::seccomp::Profile;
use crate::sandbox::{Entry, MountOp, Symlinks, DEVICES};

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

    // Namespaces: each one created, or joined by path.
    let mut create = CloneFlags::empty();
    let mut join = Vec::new();
    let mut user_ns = UserNs::Inherit;
    let mut has_mount = false;
    let mut has_uts = false;
    let mut new_net = false;
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
            LinuxNamespaceType::Uts => has_uts = ns.path().is_none(),
            LinuxNamespaceType::Network => new_net = ns.path().is_none(),
            _ => {}
        }
        match (ns.typ(), ns.path()) {
            (LinuxNamespaceType::User, None) => user_ns = UserNs::Create,
            (LinuxNamespaceType::User, Some(p)) => user_ns = UserNs::Join(p.clone()),
            (_, None) => create |= flag,
            (_, Some(p)) => join.push((flag, p.clone())),
        }
    }
    if !has_mount {
        return Err(invalid(
            "no mount namespace: burrow-runc pivots into the root in a mount namespace of its own",
        ));
    }
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
    if user_ns == UserNs::Create {
        // A new user namespace with no mappings maps root to the caller,
        // as crun does (`crun spec --rootless` writes none).
        if uid_map.is_empty() {
            uid_map = vec![(0, nix::unistd::geteuid().as_raw(), 1)];
        }
        if gid_map.is_empty() {
            gid_map = vec![(0, nix::unistd::getegid().as_raw(), 1)];
        }
    }

    // The mount tree.
    let mut ops = vec![MountOp::PrepareRoot {
        propagation: propagation_of(linux.rootfs_propagation().as_deref())?,
    }];
    let mut dev_tmpfs = false;
    let mut skipped_devices = Vec::new();
    for m in spec.mounts().clone().unwrap_or_default() {
        let target = m.destination().to_string_lossy().into_owned();
        if !target.starts_with('/') {
            return Err(invalid(format!(
                "mount destination {target:?} is not absolute"
            )));
        }
        let typ = m.typ().clone().unwrap_or_default();
        let options = m.options().clone().unwrap_or_default();
        let source = m
            .source()
            .as_ref()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| typ.clone());
        let o = parse_options(&options)?;
        let bind = o.bind || typ == "bind";
        if typ == "cgroup" || typ == "cgroup2" {
            // A cgroup filesystem cannot be mounted from a user namespace on
            // a v1 or hybrid host; the host's hierarchy, read-only, shows
            // the same files (what crun does rootless).
            ops.push(MountOp::BindTreeReadonly {
                source: "/sys/fs/cgroup".into(),
                target: target.trim_start_matches('/').to_string(),
            });
            continue;
        }
        if typ == "sysfs" && !new_net {
            // Only the user namespace owning the network namespace may
            // mount sysfs: without a new one, bind the host's read-only.
            ops.push(MountOp::BindTreeReadonly {
                source: "/sys".into(),
                target: target.trim_start_matches('/').to_string(),
            });
            continue;
        }
        if target == "/dev" && typ == "tmpfs" {
            dev_tmpfs = true;
        }
        let source = if bind && !Path::new(&source).is_absolute() {
            bundle.join(&source).to_string_lossy().into_owned()
        } else {
            source
        };
        ops.push(MountOp::Mount {
            source,
            fstype: if bind { String::new() } else { typ },
            target,
            flags: o.flags,
            data: o.data,
            bind,
            recursive: o.recursive,
            propagation: o.propagation,
            symlinks: o.symlinks,
        });
    }
    // A fresh /dev gets the devices every container has, bound from the
    // host (a user namespace cannot mknod) nosuid and noexec as runc and
    // crun bind them, and the usual links.
    if !dev_tmpfs {
        skipped_devices.extend(linux.devices().iter().flatten().map(|d| d.path().clone()));
    }
    if dev_tmpfs {
        for d in DEVICES {
            ops.push(MountOp::Mount {
                source: format!("/dev/{d}"),
                fstype: String::new(),
                target: format!("dev/{d}"),
                flags: MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
                data: String::new(),
                bind: true,
                recursive: false,
                propagation: MsFlags::empty(),
                symlinks: Symlinks::default(),
            });
        }
        // `linux.devices`: a user namespace cannot mknod, so the host's
        // node is bound in, when the host has that very device at that path
        // (as crun does rootless); any other is left out, and named.
        for d in linux.devices().clone().unwrap_or_default() {
            let path = d.path();
            let name = path.strip_prefix("/dev").ok().and_then(|p| p.to_str());
            if name.is_some_and(|n| DEVICES.contains(&n)) {
                continue;
            }
            let wanted = match d.typ() {
                LinuxDeviceType::C | LinuxDeviceType::U => Some(false),
                LinuxDeviceType::B => Some(true),
                _ => None,
            };
            let same = wanted.is_some_and(|block| {
                path.is_absolute()
                    && host(path) == Some((block, d.major().max(0) as u64, d.minor().max(0) as u64))
            });
            if !same {
                skipped_devices.push(path.clone());
                continue;
            }
            ops.push(MountOp::Mount {
                source: path.to_string_lossy().into_owned(),
                fstype: String::new(),
                target: path.to_string_lossy().trim_start_matches('/').to_string(),
                flags: MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
                data: String::new(),
                bind: true,
                recursive: false,
                propagation: MsFlags::empty(),
                symlinks: Symlinks::default(),
            });
        }
        for (link, points_to) in crate::sandbox::DEV_LINKS {
            ops.push(MountOp::Symlink {
                link: format!("dev/{link}"),
                points_to,
            });
        }
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("process is missing"))?;
    let process = process_plan(process)?;
    // The working directory exists before the root may go read-only, as
    // runc makes it.
    ops.push(MountOp::MakeDirs {
        target: process.cwd.clone(),
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
    if root.readonly().unwrap_or(false) {
        ops.push(MountOp::RemountRootReadonly);
    }

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
        user_ns,
        uid_map,
        gid_map,
        create,
        join,
        process,
        mempolicy,
        skipped_devices,
    })
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

/// An OCI process object (PID 1's, or `exec --process`'s).
pub fn process_plan(p: &oci_spec::runtime::Process) -> Result<ProcessPlan> {
    let argv = p.args().clone().unwrap_or_default();
    if argv.is_empty() {
        return Err(invalid("process.args must not be empty"));
    }
    let cwd = p.cwd().to_string_lossy().into_owned();
    if !cwd.starts_with('/') {
        return Err(invalid(format!("process.cwd {cwd:?} is not absolute")));
    }
    let mut sets = caps::Sets::default();
    if let Some(c) = p.capabilities() {
        let mask = |set: &Option<oci_spec::runtime::Capabilities>| {
            let mut m = 0u64;
            for cap in set.clone().unwrap_or_default() {
                let name = serde_json::to_value(cap)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                // One this list does not know is left out, as runc leaves
                // out those the kernel lacks.
                if let Some(n) = caps::number(&name) {
                    m |= caps::bit(n);
                }
            }
            m
        };
        let (permitted, inheritable) = (mask(c.permitted()), mask(c.inheritable()));
        sets = caps::Sets {
            bounding: mask(c.bounding()),
            effective: mask(c.effective()),
            permitted,
            inheritable,
            // The kernel raises an ambient capability only when it is both
            // permitted and inheritable; runc leaves the others out rather
            // than fail (`runc spec --rootless` lists ambient capabilities
            // with no inheritable set), and so does burrow.
            ambient: mask(c.ambient()) & permitted & inheritable,
        };
    }
    let mut rlimits = Vec::new();
    for r in p.rlimits().clone().unwrap_or_default() {
        let name = serde_json::to_value(r.typ())
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        rlimits.push((name, r.soft(), r.hard()));
    }
    let user = p.user();
    Ok(ProcessPlan {
        argv,
        env: p.env().clone().unwrap_or_default(),
        cwd,
        uid: user.uid(),
        gid: user.gid(),
        groups: user.additional_gids().clone().unwrap_or_default(),
        umask: user.umask(),
        caps: sets,
        terminal: p.terminal().unwrap_or(false),
        no_new_privs: p.no_new_privileges().unwrap_or(false),
        rlimits,
        oom_score_adj: p.oom_score_adj(),
    })
}

/// `linux.memoryPolicy` for set_mempolicy(2): the mode's number with the
/// flags' bits, and `nodes` ("0-3,5") as a mask. The kernel checks the
/// combination (an empty mask where the mode needs nodes, a node it does
/// not have) and refuses it at create.
fn mempolicy(p: &oci_spec::runtime::LinuxMemoryPolicy) -> Result<(i32, Vec<libc::c_ulong>)> {
    use oci_spec::runtime::{MemoryPolicyFlagType as F, MemoryPolicyModeType as M};
    // include/uapi/linux/mempolicy.h
    let mut mode = match p.mode() {
        M::MpolDefault => 0,
        M::MpolPreferred => 1,
        M::MpolBind => 2,
        M::MpolInterleave => 3,
        M::MpolLocal => 4,
        M::MpolPreferredMany => 5,
        M::MpolWeightedInterleave => 6,
    };
    for f in p.flags().clone().unwrap_or_default() {
        mode |= match f {
            F::MpolFNumaBalancing => 1 << 13,
            F::MpolFRelativeNodes => 1 << 14,
            F::MpolFStaticNodes => 1 << 15,
        };
    }
    // Far above any kernel's MAX_NUMNODES (1 << 10): a mask of that size
    // is refused by the kernel anyway.
    const MAX_NODE: usize = 1 << 16;
    let bits = libc::c_ulong::BITS as usize;
    let mut mask: Vec<libc::c_ulong> = Vec::new();
    let nodes = p.nodes().clone().unwrap_or_default();
    for part in nodes.split(',').filter(|s| !s.trim().is_empty()) {
        let bad = || {
            invalid(format!(
                "linux.memoryPolicy.nodes {nodes:?}: use a list like 0-3,5"
            ))
        };
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let a: usize = a.trim().parse().map_err(|_| bad())?;
        let b: usize = b.trim().parse().map_err(|_| bad())?;
        if a > b || b >= MAX_NODE {
            return Err(bad());
        }
        if mask.len() <= b / bits {
            mask.resize(b / bits + 1, 0);
        }
        for n in a..=b {
            mask[n / bits] |= 1 << (n % bits);
        }
    }
    Ok((mode, mask))
}

/// Mount options split as runc's table does: flags, propagation, bind,
/// and the rest as filesystem data.
#[derive(Debug, PartialEq, Eq)]
struct Options {
    flags: MsFlags,
    propagation: MsFlags,
    bind: bool,
    recursive: bool,
    symlinks: Symlinks,
    data: String,
}

fn parse_options(options: &[String]) -> Result<Options> {
    let mut o = Options {
        flags: MsFlags::empty(),
        propagation: MsFlags::empty(),
        bind: false,
        recursive: false,
        symlinks: Symlinks::default(),
        data: String::new(),
    };
    let mut data = Vec::new();
    for opt in options {
        let (set, clear) = match opt.as_str() {
            // runtime-spec's recursive read-only: a read-only rbind is made
            // read-only in every mount below it anyway, and a bind or a new
            // file system has no mount below it.
            "ro" | "rro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" | "rrw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "bind" => {
                o.bind = true;
                continue;
            }
            "rbind" => {
                o.bind = true;
                o.recursive = true;
                continue;
            }
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => {
                o.propagation = propagation_of(Some(opt))?;
                continue;
            }
            "idmap" | "ridmap" => {
                return Err(invalid(format!(
                    "mount option {opt:?} (id-mapped mounts) is not supported"
                )))
            }
            // crun's: what a bind does with a symlink at either end.
            "src-nofollow" => {
                o.symlinks.src_nofollow = true;
                continue;
            }
            "dest-nofollow" => {
                o.symlinks.dest_nofollow = true;
                continue;
            }
            "copy-symlink" => {
                o.symlinks.copy = true;
                continue;
            }
            // podman's own markers, resolved before the runtime runs.
            "tmpcopyup" | "notmpcopyup" | "z" | "Z" | "U" | "copy" | "nocopy" => continue,
            other if other.starts_with("x-") => continue,
            other => {
                data.push(other.to_string());
                continue;
            }
        };
        o.flags.insert(set);
        o.flags.remove(clear);
    }
    if o.symlinks.copy && (o.symlinks.src_nofollow || o.symlinks.dest_nofollow) {
        return Err(invalid(
            "mount option \"copy-symlink\" excludes \"src-nofollow\" and \"dest-nofollow\"",
        ));
    }
    o.data = data.join(",");
    Ok(o)
}

/// `rootfsPropagation` or a mount's propagation option as flags; the
/// root's default is rslave, as runc's.
fn propagation_of(name: Option<&str>) -> Result<MsFlags> {
    Ok(match name.unwrap_or("rslave") {
        "" | "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "private" => MsFlags::MS_PRIVATE,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        other => return Err(invalid(format!("unknown propagation {other:?}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        v["linux"]["uidMappings"] =
            serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
        v["linux"]["gidMappings"] =
            serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
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
        let o = |s: &[&str]| {
            parse_options(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>()).unwrap()
        };
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
}
