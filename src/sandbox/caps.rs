//! Docker's capability policy: the default set a container's processes keep,
//! and the `--cap-add`/`--cap-drop` rules. `linux::caps` applies the result.

use crate::linux::caps::{bit, number, ALL};

/// Docker's (and podman's) default set for a container's root.
pub const DEFAULT: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "NET_RAW",
    "SYS_CHROOT",
    "MKNOD",
    "AUDIT_WRITE",
    "SETFCAP",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown capability {0:?}")]
pub struct UnknownCapability(pub String);

/// A set of capabilities as a 64-bit mask (unknown names are skipped).
pub fn mask(names: &[&str]) -> u64 {
    names
        .iter()
        .filter_map(|n| number(n))
        .fold(0, |m, c| m | bit(c))
}

/// The set Docker gives for `--cap-add`/`--cap-drop`: the default set, the
/// drops, then the adds (ALL allowed in both).
pub fn resolve(add: &[String], drop: &[String]) -> Result<u64, UnknownCapability> {
    let known = |n: &String| number(n).ok_or_else(|| UnknownCapability(n.clone()));
    let mut m = mask(&DEFAULT);
    for d in drop {
        if d.eq_ignore_ascii_case("ALL") {
            m = 0;
        } else {
            m &= !bit(known(d)?);
        }
    }
    for a in add {
        if a.eq_ignore_ascii_case("ALL") {
            m = ALL;
        } else {
            m |= bit(known(a)?);
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_masks_and_docker_default() {
        assert_eq!(number("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(number("net_raw"), Some(13));
        assert_eq!(number("NOPE"), None);
        // Docker's documented default CapEff.
        assert_eq!(mask(&DEFAULT), 0xa80425fb);
        let m = resolve(&["SYS_ADMIN".into()], &["NET_RAW".into()]).unwrap();
        assert_eq!(m, (0xa80425fb | 1 << 21) & !(1 << 13));
        assert_eq!(resolve(&[], &["ALL".into()]).unwrap(), 0);
        assert!(resolve(&["BOGUS".into()], &[]).is_err());
    }
}
