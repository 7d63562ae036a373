//! Capabilities, the mechanism: names and numbers (capability(7)), and
//! dropping everything but a given set (bounding set, then effective and
//! permitted, with inheritable and ambient emptied). Which set a container
//! gets is policy, in `sandbox::caps`.

use std::io;

/// Capability names in number order (capability(7)); index = number.
pub const NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// CAP_SYS_ADMIN (capability(7)): what a seccomp policy asks about.
pub const CAP_SYS_ADMIN: u32 = 21;

/// The number of a capability named `CAP_X`, `x` or `X`.
pub fn number(name: &str) -> Option<u32> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    NAMES.iter().position(|n| *n == bare).map(|i| i as u32)
}

/// Capability `cap` as a bit of a 64-bit set.
pub const fn bit(cap: u32) -> u64 {
    1u64 << cap
}

/// Every capability this list knows, as a set.
pub const ALL: u64 = (1u64 << NAMES.len()) - 1;

/// Drop everything but `keep` from the bounding set, so nothing can regain
/// it through exec of a setuid or file-capability program. Needs
/// CAP_SETPCAP: call before switching to a non-root user. One already out
/// of the set is left alone: reading is cheap, where each drop has the
/// kernel copy and replace the process's credentials (a resident joiner
/// drops its own set once, so its processes find little left to drop).
pub fn drop_bounding(keep: u64) -> io::Result<()> {
    for c in 0..=last_cap() {
        // SAFETY: PR_CAPBSET_READ takes the capability number as an
        // integer argument; no memory is passed.
        let held = || unsafe { libc::prctl(libc::PR_CAPBSET_READ, c as libc::c_ulong, 0, 0, 0) };
        if keep & (1u64 << c) == 0 && held() != 0 {
            // SAFETY: PR_CAPBSET_DROP takes the capability number as an
            // integer argument; no memory is passed.
            let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, c as libc::c_ulong, 0, 0, 0) };
            // EINVAL: a capability this kernel does not know.
            if r != 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// The highest capability this kernel knows, read once: a process that
/// starts many others (a resident joiner) asks before they do.
pub fn last_cap() -> u32 {
    static LAST: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *LAST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(40)
    })
}

/// Set effective and permitted to `keep` (intersected with what we have; a
/// non-root user has none left after setuid anyway), and empty the
/// inheritable and ambient sets. Inheritable survives setuid, so a process
/// that later becomes a non-root user would gain `pI & fI` by exec of a
/// file with inheritable file capabilities (CVE-2022-29162, capabilities(7)).
pub fn set_sets(keep: u64) -> io::Result<()> {
    let (mut hdr, mut data) = header_and_data();
    // SAFETY: capget fills two __user_cap_data_struct (version 3), both of
    // which live in `data` for the call.
    if unsafe { libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let have = |i: usize| u64::from(data[i].permitted) << (32 * i);
    let want = keep & (have(0) | have(1));
    for (i, d) in data.iter_mut().enumerate() {
        let word = (want >> (32 * i)) as u32;
        d.effective = word;
        d.permitted = word;
        d.inheritable = 0;
    }
    // SAFETY: capset reads the header and two data structs from memory we
    // own for the duration of the call.
    if unsafe { libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // Emptying inheritable already lowers every ambient capability
    // (capabilities(7)); clearing says so outright.
    // SAFETY: PR_CAP_AMBIENT_CLEAR_ALL takes only integer arguments.
    let r = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The five capability sets of an OCI process, as masks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

/// Keep the permitted set across a switch from uid 0 to another user
/// (PR_SET_KEEPCAPS, prctl(2)), so `set_each` can give a non-root process
/// the capabilities its config names.
pub fn keep_across_setuid(keep: bool) -> io::Result<()> {
    nix::sys::prctl::set_keepcaps(keep).map_err(io::Error::from)
}

/// Set effective, permitted and inheritable each as `sets` says, then
/// raise the ambient ones (which must be permitted and inheritable), so
/// they survive exec for a non-root user (capabilities(7)).
pub fn set_each(sets: &Sets) -> io::Result<()> {
    let (mut hdr, mut data) = header_and_data();
    for (i, d) in data.iter_mut().enumerate() {
        d.effective = (sets.effective >> (32 * i)) as u32;
        d.permitted = (sets.permitted >> (32 * i)) as u32;
        d.inheritable = (sets.inheritable >> (32 * i)) as u32;
    }
    // SAFETY: capset reads the header and two data structs from memory we
    // own for the duration of the call.
    if unsafe { libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    for c in 0..64u32 {
        if sets.ambient & (1u64 << c) == 0 {
            continue;
        }
        // SAFETY: PR_CAP_AMBIENT_RAISE takes the capability number as an
        // integer argument; no memory is passed.
        let r = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                c as libc::c_ulong,
                0,
                0,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// _LINUX_CAPABILITY_VERSION_3: 64-bit sets in two words.
fn header_and_data() -> (CapHeader, [CapData; 2]) {
    (
        CapHeader {
            version: 0x2008_0522,
            pid: 0,
        },
        [CapData::default(); 2],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_bits() {
        assert_eq!(number("CAP_SYS_ADMIN"), Some(CAP_SYS_ADMIN));
        assert_eq!(number("net_raw"), Some(13));
        assert_eq!(number("NOPE"), None);
        assert_eq!(bit(CAP_SYS_ADMIN), 1 << 21);
    }
}
