//! seccomp profiles: burrow's own serde types for Docker/podman profile JSON
//! (and a plain OCI `LinuxSeccomp` object), and how a profile becomes a
//! filter for this host the way Docker's `setupSeccomp` does it: the
//! native architecture and its sub-architectures from `archMap`, rules kept
//! or dropped by `includes`/`excludes` on the container's bounding set, the
//! native arch and the kernel version, names resolved per ABI (a name an
//! ABI's table lacks is skipped, as libseccomp does), and ahead of the
//! profile's rules burrow's own refusal of the ioctl requests that type
//! into or paste from a terminal. The built-in default is
//! `seccomp_default`; `linux::seccomp` compiles and installs the result.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::linux::caps;
use crate::linux::seccomp::{self as bpf, AbiFilter, Action, ArgCmp, Cmp, Filter, Insn, Rule};

/// A profile as Docker and podman write it; `architectures` and
/// `syscalls[].names` are also the OCI `LinuxSeccomp` fields, so a plain
/// OCI object reads as well. Unknown fields are ignored (`flags`,
/// `listenerPath`, `comment`), as Docker does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub default_action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arch_map: Vec<ArchMap>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub syscalls: Vec<SyscallRule>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMap {
    pub architecture: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub sub_architectures: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyscallRule {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub names: Vec<String>,
    /// Docker's older single-name form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub args: Vec<Arg>,
    #[serde(default, skip_serializing_if = "Conditions::is_empty")]
    pub includes: Conditions,
    #[serde(default, skip_serializing_if = "Conditions::is_empty")]
    pub excludes: Conditions,
}

/// `includes` / `excludes`: which hosts a rule is for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conditions {
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub caps: Vec<String>,
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub arches: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_kernel: Option<String>,
}

impl Conditions {
    fn is_empty(&self) -> bool {
        self.caps.is_empty() && self.arches.is_empty() && self.min_kernel.is_none()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Arg {
    pub index: u8,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: String,
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeccompError {
    #[error("reading seccomp profile {path}: {detail}")]
    Read { path: String, detail: String },
    #[error("parsing seccomp profile: {0}")]
    Parse(String),
    #[error("seccomp profile: unknown action {0:?}")]
    Action(String),
    #[error("seccomp profile: unknown argument operator {0:?}")]
    Operator(String),
    #[error("seccomp profile: argument index {0} is not 0..5")]
    ArgIndex(u8),
    #[error("seccomp profile: minKernel {0:?} is not MAJOR.MINOR")]
    MinKernel(String),
    #[error("seccomp: burrow has no system call table for the {0} architecture; refusing to run without a filter (use --security-opt seccomp=unconfined to run unconfined)")]
    UnsupportedArch(String),
    #[error(transparent)]
    Compile(#[from] bpf::CompileError),
}

/// The ABIs burrow can filter: the SCMP_ARCH name, the Go name Docker
/// matches `arches` against, the audit arch, and the number table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abi {
    X86_64,
    X86,
    X32,
    Aarch64,
    Arm,
}

impl Abi {
    fn scmp(self) -> &'static str {
        match self {
            Abi::X86_64 => "SCMP_ARCH_X86_64",
            Abi::X86 => "SCMP_ARCH_X86",
            Abi::X32 => "SCMP_ARCH_X32",
            Abi::Aarch64 => "SCMP_ARCH_AARCH64",
            Abi::Arm => "SCMP_ARCH_ARM",
        }
    }

    /// Go's GOARCH for a native arch: what `includes.arches` names.
    fn go_name(self) -> &'static str {
        match self {
            Abi::X86_64 => "amd64",
            Abi::X86 => "386",
            Abi::X32 => "x32",
            Abi::Aarch64 => "arm64",
            Abi::Arm => "arm",
        }
    }

    /// The ABIs a native arch can run (the kernel's compat layers).
    fn family(self) -> &'static [Abi] {
        match self {
            Abi::X86_64 | Abi::X86 | Abi::X32 => &[Abi::X86_64, Abi::X86, Abi::X32],
            Abi::Aarch64 | Abi::Arm => &[Abi::Aarch64, Abi::Arm],
        }
    }

    /// The syscall number of `name` in this ABI's table (looked up in a
    /// map built once per ABI: the crate's own lookup is a long `match`).
    pub fn number(self, name: &str) -> Option<u32> {
        use std::collections::HashMap;
        use std::sync::OnceLock;
        type Table = OnceLock<HashMap<&'static str, u32>>;
        fn table<I: Iterator<Item = (&'static str, i32)>>(
            t: &'static Table,
            all: impl FnOnce() -> I,
        ) -> &'static HashMap<&'static str, u32> {
            t.get_or_init(|| {
                all()
                    .filter_map(|(n, id)| Some((n, u32::try_from(id).ok()?)))
                    .collect()
            })
        }
        static X86_64: Table = OnceLock::new();
        static X86: Table = OnceLock::new();
        static AARCH64: Table = OnceLock::new();
        static ARM: Table = OnceLock::new();
        let map = match self {
            Abi::X86_64 => table(&X86_64, || {
                syscalls::x86_64::Sysno::iter().map(|s| (s.name(), s.id()))
            }),
            Abi::X86 => table(&X86, || {
                syscalls::x86::Sysno::iter().map(|s| (s.name(), s.id()))
            }),
            Abi::Aarch64 => table(&AARCH64, || {
                syscalls::aarch64::Sysno::iter().map(|s| (s.name(), s.id()))
            }),
            Abi::Arm => table(&ARM, || {
                syscalls::arm::Sysno::iter().map(|s| (s.name(), s.id()))
            }),
            // No x32 table: linux::seccomp refuses x32 calls with ENOSYS.
            Abi::X32 => return None,
        };
        map.get(name).copied()
    }

    fn audit_arch(self) -> Option<u32> {
        match self {
            Abi::X86_64 => Some(bpf::AUDIT_ARCH_X86_64),
            Abi::X86 => Some(bpf::AUDIT_ARCH_I386),
            Abi::Aarch64 => Some(bpf::AUDIT_ARCH_AARCH64),
            Abi::Arm => Some(bpf::AUDIT_ARCH_ARM),
            Abi::X32 => None,
        }
    }

    /// The ABI this binary was built for; None on architectures burrow has
    /// no table for (the filter is then refused, never left open).
    pub fn native() -> Option<Abi> {
        if cfg!(target_arch = "x86_64") {
            Some(Abi::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Abi::Aarch64)
        } else {
            None
        }
    }
}

/// What a profile is resolved against.
#[derive(Debug, Clone, Copy)]
pub struct Host {
    pub native: Abi,
    /// The container's bounding set (after --cap-add/--cap-drop).
    pub bounding: u64,
    /// (major, minor) of the running kernel.
    pub kernel: (u32, u32),
}

impl Host {
    /// This machine, for a container with `bounding`.
    pub fn this(bounding: u64) -> Result<Host, SeccompError> {
        let native = Abi::native()
            .ok_or_else(|| SeccompError::UnsupportedArch(std::env::consts::ARCH.to_string()))?;
        let release = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Host {
            native,
            bounding,
            kernel: kernel_version(&release).unwrap_or((0, 0)),
        })
    }
}

/// "6.1.0-18-amd64" → (6, 1).
fn kernel_version(s: &str) -> Option<(u32, u32)> {
    let mut it = s.split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

impl Profile {
    /// Parse profile JSON (Docker/podman or OCI `LinuxSeccomp`) and check
    /// every action and operator, so a bad file is refused at create time.
    pub fn parse(bytes: &[u8]) -> Result<Profile, SeccompError> {
        let p: Profile =
            serde_json::from_slice(bytes).map_err(|e| SeccompError::Parse(e.to_string()))?;
        action(&p.default_action, p.default_errno_ret)?;
        for r in &p.syscalls {
            action(&r.action, r.errno_ret)?;
            for a in &r.args {
                cmp(a)?;
            }
            for k in [&r.includes.min_kernel, &r.excludes.min_kernel]
                .into_iter()
                .flatten()
            {
                kernel_version(k).ok_or_else(|| SeccompError::MinKernel(k.clone()))?;
            }
        }
        Ok(p)
    }

    /// The profile in a file.
    pub fn read(path: &std::path::Path) -> Result<Profile, SeccompError> {
        let bytes = std::fs::read(path).map_err(|e| SeccompError::Read {
            path: path.display().to_string(),
            detail: e.to_string(),
        })?;
        Profile::parse(&bytes)
    }

    /// The ABIs the filter covers: the native one and its sub-architectures
    /// from `archMap` (Docker), else those listed in `architectures` (OCI)
    /// that this machine can run; the native one always.
    fn abis(&self, native: Abi) -> Vec<Abi> {
        let family = native.family();
        let named: Vec<&str> = match self
            .arch_map
            .iter()
            .find(|m| m.architecture == native.scmp())
        {
            Some(m) => m.sub_architectures.iter().map(String::as_str).collect(),
            None => self.architectures.iter().map(String::as_str).collect(),
        };
        let mut out = vec![native];
        for abi in family {
            if *abi != native && named.contains(&abi.scmp()) {
                out.push(*abi);
            }
        }
        out
    }

    /// Whether Docker keeps rule `r` for `host`.
    fn keeps(r: &SyscallRule, host: &Host) -> bool {
        let has = |c: &String| caps::number(c).is_some_and(|n| host.bounding & caps::bit(n) != 0);
        let arch = host.native.go_name();
        let at_least = |k: &Option<String>| {
            k.as_deref()
                .and_then(kernel_version)
                .map(|v| host.kernel >= v)
        };
        if r.excludes.arches.iter().any(|a| a == arch)
            || r.excludes.caps.iter().any(has)
            || at_least(&r.excludes.min_kernel) == Some(true)
        {
            return false;
        }
        if !r.includes.arches.is_empty() && !r.includes.arches.iter().any(|a| a == arch) {
            return false;
        }
        if !r.includes.caps.iter().all(has) {
            return false;
        }
        at_least(&r.includes.min_kernel) != Some(false)
    }

    /// The filter for `host`.
    pub fn resolve(&self, host: &Host) -> Result<Filter, SeccompError> {
        let default = action(&self.default_action, self.default_errno_ret)?;
        let wall = terminal_wall();
        let kept: Vec<&SyscallRule> = wall
            .iter()
            .chain(self.syscalls.iter().filter(|r| Profile::keeps(r, host)))
            .collect();
        let mut abis = Vec::new();
        for abi in self.abis(host.native) {
            // x32 shares x86_64's audit arch: its calls are told apart by
            // the number's x32 bit, and refused in x86_64's block (no x32
            // table) whether or not the profile lists SCMP_ARCH_X32.
            let Some(arch) = abi.audit_arch() else {
                continue;
            };
            let mut rules = Vec::new();
            for r in &kept {
                let act = action(&r.action, r.errno_ret)?;
                let args = r.args.iter().map(cmp).collect::<Result<Vec<_>, _>>()?;
                for name in r.names.iter().chain(&r.name) {
                    if let Some(nr) = abi.number(name) {
                        rules.push(Rule {
                            nr,
                            args: args.clone(),
                            action: act,
                        });
                    }
                }
            }
            abis.push(AbiFilter {
                arch,
                refuse_x32: abi == Abi::X86_64,
                rules,
                default,
            });
        }
        Ok(Filter {
            abis,
            // Calls of an ABI the filter does not cover never reach the
            // kernel: ENOSYS, as for any unknown call.
            other_arch: Action::Errno(libc::ENOSYS as u16),
        })
    }

    /// The compiled program for `host`.
    pub fn compile(&self, host: &Host) -> Result<Vec<Insn>, SeccompError> {
        Ok(bpf::compile(&self.resolve(host)?)?)
    }
}

/// The calls that change ids and owners, which a container with a
/// single-id mapping cannot make for any id but its one (user_namespaces(7):
/// setgroups is denied, chown(2) and setuid(2) to an unmapped id fail with
/// EINVAL): with fake ids they succeed without doing anything, so programs
/// that only believe they are root go on (apt's download sandbox drops to
/// `_apt` with setgroups/setresgid/setresuid, dpkg chowns every file it
/// unpacks). Charliecloud's `ch-image --force=seccomp` fakes the same
/// family. capset(2) stays real: a program that drops capabilities to
/// sandbox itself must really lose them.
pub const FAKED_ID_CALLS: &[&str] = &[
    "chown",
    "chown32",
    "fchown",
    "fchown32",
    "fchownat",
    "lchown",
    "lchown32",
    "setuid",
    "setuid32",
    "setgid",
    "setgid32",
    "setreuid",
    "setreuid32",
    "setregid",
    "setregid32",
    "setresuid",
    "setresuid32",
    "setresgid",
    "setresgid32",
    "setfsuid",
    "setfsuid32",
    "setfsgid",
    "setfsgid32",
    "setgroups",
    "setgroups32",
];

/// mknod(2) and mknodat(2) of a character or block device are faked too
/// (a user namespace may not create device nodes: mknod(2), EPERM), as
/// Charliecloud does, so a package that ships or makes a device node
/// installs; the node is not there afterwards. Other kinds (FIFOs,
/// sockets, regular files) stay real. The mode is the argument after the
/// path: (call, index of mode).
const FAKED_MKNOD: [(&str, u8); 2] = [("mknod", 1), ("mknodat", 2)];

impl Profile {
    /// This profile with [`FAKED_ID_CALLS`] and device [`FAKED_MKNOD`]s
    /// succeeding without effect, whatever the profile says of them: a
    /// faked call does nothing, so it gives no more than the profile's
    /// refusal would. Every other call is the profile's.
    pub fn with_fake_ids(&self) -> Profile {
        let faked = |n: &String| FAKED_ID_CALLS.contains(&n.as_str());
        let mut syscalls: Vec<SyscallRule> = vec![SyscallRule {
            names: FAKED_ID_CALLS.iter().map(|n| n.to_string()).collect(),
            action: "SCMP_ACT_ERRNO".into(),
            // SECCOMP_RET_ERRNO with 0: the call returns 0 (seccomp(2)).
            errno_ret: Some(0),
            ..Default::default()
        }];
        for (name, index) in FAKED_MKNOD {
            for kind in [libc::S_IFCHR, libc::S_IFBLK] {
                syscalls.push(SyscallRule {
                    names: vec![name.into()],
                    action: "SCMP_ACT_ERRNO".into(),
                    errno_ret: Some(0),
                    args: vec![Arg {
                        index,
                        value: u64::from(libc::S_IFMT),
                        value_two: u64::from(kind),
                        op: "SCMP_CMP_MASKED_EQ".into(),
                    }],
                    ..Default::default()
                });
            }
        }
        for r in &self.syscalls {
            let mut r = r.clone();
            r.names.retain(|n| !faked(n));
            if r.name.as_ref().is_some_and(faked) {
                r.name = None;
            }
            if !r.names.is_empty() || r.name.is_some() {
                syscalls.push(r);
            }
        }
        Profile {
            syscalls,
            ..self.clone()
        }
    }

    /// A profile that allows every call: what fake ids are added to when
    /// the container has no filter of its own (`seccomp=unconfined`,
    /// `--privileged`). It covers every ABI burrow has a table for, so
    /// 32-bit programs run too (x32 calls, which burrow has no table for,
    /// fail with ENOSYS as under any filter).
    pub fn allow_all() -> Profile {
        Profile {
            default_action: "SCMP_ACT_ALLOW".into(),
            architectures: [Abi::X86_64, Abi::X86, Abi::Aarch64, Abi::Arm]
                .iter()
                .map(|a| a.scmp().to_string())
                .collect(),
            ..Default::default()
        }
    }
}

/// ioctl(2) requests that act on a terminal the caller may not own: TIOCSTI
/// pushes bytes into a terminal's input queue, to be read as if typed
/// (bubblewrap's CVE-2017-5226: a sandbox that shares the user's terminal
/// types commands into the user's shell), and TIOCLINUX's subcodes copy and
/// paste a virtual console's selection (Flatpak's CVE-2023-28100). The
/// values are the same on every ABI burrow has a table for
/// (asm-generic/ioctls.h).
const TERMINAL_INJECTION: [(&str, u64); 2] = [("TIOCSTI", 0x5412), ("TIOCLINUX", 0x541c)];

/// Rules every filter burrow builds puts ahead of the profile's own: the
/// [`TERMINAL_INJECTION`] requests fail with EPERM, whatever the profile
/// says about ioctl. Docker's profile allows them because a Docker
/// container never shares a session with the user's shell; a burrow
/// container is the shell's own child, so a profile written for Docker
/// does not know that risk. The container also gets a session of its own
/// (no controlling terminal to inject into); this is the second wall.
///
/// The kernel reads ioctl's request as an `unsigned int` (ioctl(2)), so
/// only its low 32 bits are compared: a request with high bits set is the
/// same request to the tty driver, which an equality test on all 64 bits
/// let through in Flatpak (CVE-2019-10063).
fn terminal_wall() -> Vec<SyscallRule> {
    TERMINAL_INJECTION
        .iter()
        .map(|(_, request)| SyscallRule {
            names: vec!["ioctl".into()],
            action: "SCMP_ACT_ERRNO".into(),
            errno_ret: Some(libc::EPERM as u32),
            args: vec![Arg {
                index: 1,
                value: u64::from(u32::MAX),
                value_two: *request,
                op: "SCMP_CMP_MASKED_EQ".into(),
            }],
            ..Default::default()
        })
        .collect()
}

/// A profile action with its errno (Docker: EPERM when none is given).
fn action(name: &str, errno: Option<u32>) -> Result<Action, SeccompError> {
    let e = |default: u32| u16::try_from(errno.unwrap_or(default)).unwrap_or(libc::EPERM as u16);
    Ok(match name {
        "SCMP_ACT_ALLOW" => Action::Allow,
        "SCMP_ACT_ERRNO" => Action::Errno(e(libc::EPERM as u32)),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
        "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
        "SCMP_ACT_TRAP" => Action::Trap,
        "SCMP_ACT_LOG" => Action::Log,
        "SCMP_ACT_TRACE" => Action::Trace(e(libc::ENOSYS as u32)),
        other => return Err(SeccompError::Action(other.to_string())),
    })
}

/// An argument condition; in Docker's JSON `MASKED_EQ` has the mask in
/// `value` and the expected value in `valueTwo`.
fn cmp(a: &Arg) -> Result<ArgCmp, SeccompError> {
    if a.index > 5 {
        return Err(SeccompError::ArgIndex(a.index));
    }
    let cmp = match a.op.as_str() {
        "SCMP_CMP_EQ" => Cmp::Eq(a.value),
        "SCMP_CMP_NE" => Cmp::Ne(a.value),
        "SCMP_CMP_LT" => Cmp::Lt(a.value),
        "SCMP_CMP_LE" => Cmp::Le(a.value),
        "SCMP_CMP_GT" => Cmp::Gt(a.value),
        "SCMP_CMP_GE" => Cmp::Ge(a.value),
        "SCMP_CMP_MASKED_EQ" => Cmp::MaskedEq {
            mask: a.value,
            value: a.value_two,
        },
        other => return Err(SeccompError::Operator(other.to_string())),
    };
    Ok(ArgCmp {
        index: a.index,
        cmp,
    })
}

/// What PID 1 (and every exec'd process) installs, built in the parent
/// before anything forks.
#[derive(Debug, Clone)]
pub enum Seccomp {
    /// `--security-opt seccomp=unconfined`.
    Unconfined,
    /// A compiled program.
    Filter(Arc<[Insn]>),
    /// Why no program could be built (reported by the process as its
    /// seccomp step's failure, so it never runs unfiltered).
    Unusable(String),
}

impl Seccomp {
    /// `profile` (None: unconfined) compiled for a container whose
    /// bounding set is `bounding`.
    ///
    /// The last program built is remembered: `run` checks that the filter
    /// builds before it creates anything, then builds it again to start
    /// the container, in the same process.
    pub fn build(profile: Option<&Profile>, bounding: u64) -> Seccomp {
        use std::sync::Mutex;
        type Built = Option<(Profile, u64, Arc<[Insn]>)>;
        static LAST: Mutex<Built> = Mutex::new(None);
        let Some(p) = profile else {
            return Seccomp::Unconfined;
        };
        let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((lp, lb, prog)) = last.as_ref() {
            if *lb == bounding && lp == p {
                return Seccomp::Filter(prog.clone());
            }
        }
        match Host::this(bounding).and_then(|h| p.compile(&h)) {
            Ok(prog) => {
                let prog: Arc<[Insn]> = prog.into();
                *last = Some((p.clone(), bounding, prog.clone()));
                Seccomp::Filter(prog)
            }
            Err(e) => Seccomp::Unusable(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x86_64_numbers_match_libc() {
        let check = [
            ("read", libc::SYS_read),
            ("clone", libc::SYS_clone),
            ("clone3", libc::SYS_clone3),
            ("unshare", libc::SYS_unshare),
            ("keyctl", libc::SYS_keyctl),
            ("add_key", libc::SYS_add_key),
            ("personality", libc::SYS_personality),
            ("socket", libc::SYS_socket),
            ("io_uring_setup", libc::SYS_io_uring_setup),
            ("name_to_handle_at", libc::SYS_name_to_handle_at),
            ("uname", libc::SYS_uname),
            ("mount", libc::SYS_mount),
        ];
        if cfg!(target_arch = "x86_64") {
            for (name, nr) in check {
                assert_eq!(Abi::X86_64.number(name), Some(nr as u32), "{name}");
            }
        }
        assert_eq!(Abi::X86.number("unshare"), Some(310));
        assert_eq!(Abi::X86.number("arch_prctl"), Some(384));
        assert_eq!(Abi::X86_64.number("no_such_call"), None);
    }

    #[test]
    fn every_profile_refuses_terminal_injection() {
        use crate::linux::seccomp::{run, AUDIT_ARCH_ARM, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64};
        let parse = |s: &str| Profile::parse(s.as_bytes()).unwrap();
        let allow_ioctl = r#"{"names":["ioctl"],"action":"SCMP_ACT_ALLOW"}"#;
        let profiles = [
            ("the default", crate::sandbox::seccomp_default::profile()),
            (
                "one allowing ioctl",
                parse(&format!(
                    r#"{{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{allow_ioctl}]}}"#
                )),
            ),
            (
                "one allowing everything",
                parse(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#),
            ),
            (
                "one allowing TIOCSTI by name",
                parse(&format!(
                    r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["ioctl"],"action":"SCMP_ACT_ALLOW","args":[{{"index":1,"value":21522,"op":"SCMP_CMP_EQ"}}]}},{allow_ioctl}]}}"#
                )),
            ),
        ];
        let eperm = Action::Errno(libc::EPERM as u16).ret();
        let allow = Action::Allow.ret();
        for native in [Abi::X86_64, Abi::Aarch64] {
            let host = Host {
                native,
                bounding: crate::sandbox::caps::mask(&crate::sandbox::caps::DEFAULT),
                kernel: (6, 1),
            };
            let abis: &[(u32, Abi)] = match native {
                Abi::X86_64 => &[
                    (AUDIT_ARCH_X86_64, Abi::X86_64),
                    (AUDIT_ARCH_I386, Abi::X86),
                ],
                _ => &[
                    (crate::linux::seccomp::AUDIT_ARCH_AARCH64, Abi::Aarch64),
                    (AUDIT_ARCH_ARM, Abi::Arm),
                ],
            };
            for (what, p) in &profiles {
                let prog = p.compile(&host).unwrap();
                // The profiles naming no architectures cover the native one.
                let covered: Vec<u32> = p
                    .resolve(&host)
                    .unwrap()
                    .abis
                    .iter()
                    .map(|a| a.arch)
                    .collect();
                for (arch, abi) in abis.iter().filter(|(arch, _)| covered.contains(arch)) {
                    let ioctl = |request: u64| {
                        run(
                            &prog,
                            *arch,
                            abi.number("ioctl").unwrap(),
                            [1, request, 0, 0, 0, 0],
                        )
                    };
                    for (name, request) in TERMINAL_INJECTION {
                        assert_eq!(ioctl(request), eperm, "{name} under {what} ({abi:?})");
                        // The kernel truncates the request to 32 bits.
                        assert_eq!(
                            ioctl(0xffff_ffff_0000_0000 | request),
                            eperm,
                            "{name} with high bits under {what} ({abi:?})"
                        );
                    }
                    // Every other request is the profile's: TCGETS, FIONREAD.
                    for other in [0x5401, 0x541b, 0x1_0000_5401] {
                        assert_eq!(ioctl(other), allow, "{other:#x} under {what} ({abi:?})");
                    }
                }
            }
        }
        // A profile that refuses ioctl altogether still does; a profile
        // that kills on it refuses these two with EPERM (first) instead.
        let host = Host {
            native: Abi::X86_64,
            bounding: 0,
            kernel: (6, 1),
        };
        let kill = parse(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["ioctl"],"action":"SCMP_ACT_KILL_PROCESS"}]}"#)
            .compile(&host)
            .unwrap();
        let nr = Abi::X86_64.number("ioctl").unwrap();
        assert_eq!(
            run(&kill, AUDIT_ARCH_X86_64, nr, [1, 0x5412, 0, 0, 0, 0]),
            eperm
        );
        assert_eq!(
            run(&kill, AUDIT_ARCH_X86_64, nr, [1, 0x5401, 0, 0, 0, 0]),
            Action::KillProcess.ret()
        );
    }

    #[test]
    fn fake_ids_succeed_without_effect_over_any_policy() {
        use crate::linux::seccomp::{run, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64};
        let parse = |s: &str| Profile::parse(s.as_bytes()).unwrap();
        let host = Host {
            native: Abi::X86_64,
            bounding: crate::sandbox::caps::mask(&crate::sandbox::caps::DEFAULT),
            kernel: (6, 1),
        };
        let faked = Action::Errno(0).ret();
        let allow = Action::Allow.ret();
        let policies = [
            ("the default", crate::sandbox::seccomp_default::profile()),
            ("none", Profile::allow_all()),
            (
                "one that kills on setuid and refuses chown by argument",
                parse(
                    r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],"syscalls":[{"names":["setuid","uname"],"action":"SCMP_ACT_KILL_PROCESS"},{"names":["chown"],"action":"SCMP_ACT_ERRNO","args":[{"index":1,"value":42,"op":"SCMP_CMP_EQ"}]}]}"#,
                ),
            ),
        ];
        for (what, policy) in &policies {
            let prog = policy.with_fake_ids().compile(&host).unwrap();
            let call = |arch: u32, abi: Abi, name: &str, args: [u64; 6]| {
                run(&prog, arch, abi.number(name).unwrap(), args)
            };
            let x64 = |name: &str, args| call(AUDIT_ARCH_X86_64, Abi::X86_64, name, args);
            for name in FAKED_ID_CALLS {
                if let Some(nr) = Abi::X86_64.number(name) {
                    let got = run(&prog, AUDIT_ARCH_X86_64, nr, [42, 42, 42, 0, 0, 0]);
                    assert_eq!(got, faked, "{name} under {what}");
                }
                if let Some(nr) = Abi::X86.number(name) {
                    let got = run(&prog, AUDIT_ARCH_I386, nr, [42, 42, 42, 0, 0, 0]);
                    assert_eq!(got, faked, "{name} (i386) under {what}");
                }
            }
            // Device nodes are faked; a FIFO and a regular file are not.
            let chr = u64::from(libc::S_IFCHR | 0o600);
            let blk = u64::from(libc::S_IFBLK | 0o600);
            let fifo = u64::from(libc::S_IFIFO | 0o600);
            assert_eq!(x64("mknod", [0, chr, 0, 0, 0, 0]), faked, "{what}");
            assert_eq!(x64("mknodat", [0, 0, blk, 0, 0, 0]), faked, "{what}");
            assert_eq!(x64("mknodat", [0, 0, fifo, 0, 0, 0]), allow, "{what}");
            assert_eq!(
                x64("mknod", [0, u64::from(libc::S_IFREG), 0, 0, 0, 0]),
                allow
            );
            // The rest is the policy's, the terminal wall included.
            assert_eq!(
                x64("ioctl", [1, 0x5412, 0, 0, 0, 0]),
                Action::Errno(1).ret()
            );
            assert_eq!(x64("getuid", [0; 6]), allow, "{what}");
            assert_eq!(x64("capset", [0; 6]), allow, "{what}");
        }
        let killer = policies[2].1.with_fake_ids().compile(&host).unwrap();
        let uname = Abi::X86_64.number("uname").unwrap();
        assert_eq!(
            run(&killer, AUDIT_ARCH_X86_64, uname, [0; 6]),
            Action::KillProcess.ret()
        );
        // The default still refuses what it refuses.
        let default = crate::sandbox::seccomp_default::profile()
            .with_fake_ids()
            .compile(&host)
            .unwrap();
        let mount = Abi::X86_64.number("mount").unwrap();
        assert_eq!(
            run(&default, AUDIT_ARCH_X86_64, mount, [0; 6]),
            Action::Errno(libc::EPERM as u16).ret()
        );
    }

    #[test]
    fn kernel_versions() {
        assert_eq!(kernel_version("6.1.0-18-amd64"), Some((6, 1)));
        assert_eq!(kernel_version("4.8"), Some((4, 8)));
        assert_eq!(kernel_version("x"), None);
    }

    #[test]
    fn bad_profiles_are_refused_with_the_reason() {
        let bad = |s: &str| Profile::parse(s.as_bytes()).unwrap_err().to_string();
        assert!(bad("{").contains("parsing"));
        assert!(bad(r#"{"defaultAction":"SCMP_ACT_NOPE"}"#).contains("SCMP_ACT_NOPE"));
        assert!(bad(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["x"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_WHAT"}]}]}"#
        )
        .contains("SCMP_CMP_WHAT"));
        // A plain OCI LinuxSeccomp object reads too.
        let oci = Profile::parse(
            br#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],"flags":[],"syscalls":[{"names":["uname"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#,
        )
        .unwrap();
        let host = Host {
            native: Abi::X86_64,
            bounding: 0,
            kernel: (6, 1),
        };
        let f = oci.resolve(&host).unwrap();
        assert_eq!(f.abis.len(), 2);
        // After the two ioctl refusals every filter starts with.
        assert_eq!(
            f.abis[0].rules[TERMINAL_INJECTION.len()..],
            [Rule {
                nr: 63,
                args: vec![],
                action: Action::Errno(1)
            }]
        );
    }
}
