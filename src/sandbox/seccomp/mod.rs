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

mod abi;
mod own_rules;

pub use abi::{Abi, Host};
pub use own_rules::FAKED_ID_CALLS;

use abi::kernel_version;
use own_rules::terminal_wall;

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

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("reading seccomp profile {}: {source}", path.display())]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing seccomp profile: {0}")]
    Parse(#[source] serde_json::Error),
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

impl Profile {
    /// Parse profile JSON (Docker/podman or OCI `LinuxSeccomp`) and check
    /// every action and operator, so a bad file is refused at create time.
    pub fn parse(bytes: &[u8]) -> Result<Profile, SeccompError> {
        let p: Profile = serde_json::from_slice(bytes).map_err(SeccompError::Parse)?;
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
        let bytes = std::fs::read(path).map_err(|source| SeccompError::Read {
            path: path.to_path_buf(),
            source,
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
mod tests;
