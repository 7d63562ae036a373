//! The ABIs a filter covers (the native one and its compat ABIs, their
//! audit arches and syscall tables) and the host a profile is resolved
//! against.

use crate::linux::seccomp as bpf;

use super::SeccompError;

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
    pub(super) fn scmp(self) -> &'static str {
        match self {
            Abi::X86_64 => "SCMP_ARCH_X86_64",
            Abi::X86 => "SCMP_ARCH_X86",
            Abi::X32 => "SCMP_ARCH_X32",
            Abi::Aarch64 => "SCMP_ARCH_AARCH64",
            Abi::Arm => "SCMP_ARCH_ARM",
        }
    }

    /// Go's GOARCH for a native arch: what `includes.arches` names.
    pub(super) fn go_name(self) -> &'static str {
        match self {
            Abi::X86_64 => "amd64",
            Abi::X86 => "386",
            Abi::X32 => "x32",
            Abi::Aarch64 => "arm64",
            Abi::Arm => "arm",
        }
    }

    /// The ABIs a native arch can run (the kernel's compat layers).
    pub(super) fn family(self) -> &'static [Abi] {
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

    pub(super) fn audit_arch(self) -> Option<u32> {
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
pub(super) fn kernel_version(s: &str) -> Option<(u32, u32)> {
    let mut it = s.split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}
