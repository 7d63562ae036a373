//! The ids a container's processes have: the id maps of its user namespace
//! (the caller as root or, with podman's keep-id, as itself, and at most
//! 65536 subordinate ids), and `-u USER[:GROUP]` resolved against the
//! container's own /etc/passwd and /etc/group, and applied (groups, gid,
//! uid) just before exec.

use std::path::Path;

use nix::unistd::{Gid, Uid};

use crate::linux::userns::{IdMapping, IdRange, MapLine};

/// Ids 1..=65536 inside at most, as podman maps them.
pub const MAX_RANGE: u32 = 65536;

/// The caller's mapping as a container has it: the caller is root inside,
/// and at most [`MAX_RANGE`] ids of its range follow from 1.
pub fn container_mapping(m: IdMapping) -> IdMapping {
    m.with_maps(|own, range| map_lines(own, range, false))
}

/// The same ids with the caller's own kept inside (podman's
/// `--userns=keep-id`).
pub fn keep_id(m: &IdMapping) -> IdMapping {
    m.clone()
        .with_maps(|own, range| map_lines(own, range, true))
}

/// The (inside, outside, count) lines of a uid or gid map. Normally the
/// caller is 0 inside and the range follows from 1. With keep-id the caller
/// keeps its own id, and the range fills the ids around it, as podman does.
pub fn map_lines(own: u32, range: Option<IdRange>, keep_id: bool) -> Vec<MapLine> {
    match (range, keep_id) {
        (None, false) => vec![(0, own, 1)],
        (None, true) => vec![(own, own, 1)],
        (Some(r), false) => vec![(0, own, 1), (1, r.start, r.count.min(MAX_RANGE))],
        (Some(r), true) => {
            let count = r.count.min(MAX_RANGE);
            let below = own.min(count);
            let mut v = vec![(0, r.start, below), (own, own, 1)];
            if count > below {
                v.push((own + 1, r.start + below, count - below));
            }
            v.retain(|l| l.2 > 0);
            v
        }
    }
}

/// Why a user could not be found or switched to. The errno of a refused
/// switch is kept (shown after the message by `Failure`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    NoGroup(String),
    #[error("bad uid in /etc/passwd for {0}")]
    BadUid(String),
    #[error("setgroups")]
    Setgroups(nix::Error),
    #[error("cannot switch to {what} {id}: it is not mapped in the container's user namespace{}",
        if *single { " (you have no subuid/subgid range, so only root (0) exists inside)" } else { "" })]
    Unmapped {
        what: &'static str,
        id: u32,
        single: bool,
        errno: nix::Error,
    },
    #[error("cannot switch to {what} {id}: --security-opt fake-ids=on fakes the switch, so the process would stay root (0); run it as root or with fake-ids=off")]
    Faked { what: &'static str, id: u32 },
}

impl UserError {
    /// The refused system call's errno, for a switch that failed.
    pub fn errno(&self) -> Option<nix::Error> {
        match self {
            UserError::Setgroups(e) | UserError::Unmapped { errno: e, .. } => Some(*e),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    /// Supplementary groups from /etc/group.
    pub groups: Vec<u32>,
}

/// Resolve `spec` (`""`, `name`, `uid`, `name:group`, `uid:gid`) in `etc`.
pub fn resolve(spec: &str, etc: &Path) -> Result<Ids, UserError> {
    let passwd = std::fs::read_to_string(etc.join("passwd")).unwrap_or_default();
    let group = std::fs::read_to_string(etc.join("group")).unwrap_or_default();
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user = if user.is_empty() { "0" } else { user };
    let entry = passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && (f[0] == user || f[2] == user)).then(|| (f[0], f[2], f[3], f[5]))
    });
    let (name, uid, mut gid, home) = match (entry, user.parse::<u32>()) {
        (Some((n, u, g, h)), _) => (
            n.to_string(),
            u.parse().map_err(|_| UserError::BadUid(n.to_string()))?,
            g.parse().unwrap_or(0),
            h.to_string(),
        ),
        // A numeric uid need not exist in /etc/passwd (Docker allows it).
        (None, Ok(n)) => (String::new(), n, 0, "/".to_string()),
        (None, Err(_)) => return Err(UserError::NoUser(user.to_string())),
    };
    if let Some(g) = grp {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group
                .lines()
                .find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() >= 3 && f[0] == g).then(|| f[2].parse().ok())?
                })
                .ok_or_else(|| UserError::NoGroup(g.to_string()))?,
        };
    }
    let groups = if name.is_empty() {
        Vec::new()
    } else {
        group
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 4 && f[3].split(',').any(|m| m == name))
                    .then(|| f[2].parse().ok())
                    .flatten()
            })
            .collect()
    };
    Ok(Ids {
        uid,
        gid,
        home: if home.is_empty() { "/".into() } else { home },
        groups,
    })
}

impl Ids {
    /// Under fake ids (`seccomp::FAKED_ID_CALLS`) the switch (groups, gid,
    /// uid) would succeed without effect and leave the process as it is: a
    /// switch to other ids than the process has is refused here, before
    /// the filter, with the error the kernel gives for an unmapped id under
    /// a single-id mapping (EINVAL, setresuid(2)), or one that names fake
    /// ids otherwise.
    pub fn refuse_faked_switch(&self, groups_allowed: bool) -> Result<(), UserError> {
        let now = [
            ("gid", self.gid, nix::unistd::getgid().as_raw()),
            ("uid", self.uid, nix::unistd::getuid().as_raw()),
        ];
        for (what, id, current) in now {
            if id == current {
                continue;
            }
            return Err(if groups_allowed {
                UserError::Faked { what, id }
            } else {
                UserError::Unmapped {
                    what,
                    id,
                    single: true,
                    errno: nix::Error::EINVAL,
                }
            });
        }
        Ok(())
    }

    /// The supplementary groups (setgroups(2)); only where the mapping
    /// allows it (not under a single-id mapping: user_namespaces(7)).
    pub fn set_groups(&self) -> Result<(), UserError> {
        let gids: Vec<Gid> = self.groups.iter().map(|g| Gid::from_raw(*g)).collect();
        nix::unistd::setgroups(&gids).map_err(UserError::Setgroups)
    }

    /// The gid, real, effective and saved. Root's is kept as it is, except
    /// under a single-id mapping (`groups_allowed` false), where the
    /// groups could not be set either.
    pub fn set_gid(&self, groups_allowed: bool) -> Result<(), UserError> {
        if self.gid != 0 || !groups_allowed {
            let g = Gid::from_raw(self.gid);
            nix::unistd::setresgid(g, g, g).map_err(unmapped("gid", self.gid, groups_allowed))?;
        }
        Ok(())
    }

    /// The uid, real, effective and saved (root's is kept as it is).
    pub fn set_uid(&self, groups_allowed: bool) -> Result<(), UserError> {
        if self.uid != 0 {
            let u = Uid::from_raw(self.uid);
            nix::unistd::setresuid(u, u, u).map_err(unmapped("uid", self.uid, groups_allowed))?;
        }
        Ok(())
    }
}

/// A switch to `id` refused with `errno`.
fn unmapped(
    what: &'static str,
    id: u32,
    groups_allowed: bool,
) -> impl FnOnce(nix::Error) -> UserError {
    move |errno| UserError::Unmapped {
        what,
        id,
        single: !groups_allowed,
        errno,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_normal_single_and_keep_id() {
        let r = Some(IdRange {
            start: 100000,
            count: 65536,
        });
        assert_eq!(map_lines(1000, None, false), [(0, 1000, 1)]);
        assert_eq!(map_lines(1000, None, true), [(1000, 1000, 1)]);
        assert_eq!(
            map_lines(1000, r, false),
            [(0, 1000, 1), (1, 100000, 65536)]
        );
        assert_eq!(
            map_lines(1000, r, true),
            [(0, 100000, 1000), (1000, 1000, 1), (1001, 101000, 64536)]
        );
        // A uid above the range size keeps the whole range below it.
        assert_eq!(
            map_lines(70000, r, true),
            [(0, 100000, 65536), (70000, 70000, 1)]
        );
    }

    #[test]
    fn a_container_maps_at_most_65536_ids_of_a_range() {
        let m = IdMapping {
            uid: 1000,
            gid: 1000,
            sub_uids: Some(IdRange {
                start: 100000,
                count: 200000,
            }),
            sub_gids: Some(IdRange {
                start: 100000,
                count: 1000,
            }),
            newuidmap: Some("/usr/bin/newuidmap".into()),
            newgidmap: Some("/usr/bin/newgidmap".into()),
            uid_map: Vec::new(),
            gid_map: Vec::new(),
        };
        let c = container_mapping(m.clone());
        assert_eq!(c.uid_map, [(0, 1000, 1), (1, 100000, MAX_RANGE)]);
        assert_eq!(c.max_ids(), (65536, 1000));
        // The ranges as configured stay what `info` shows.
        assert_eq!(c.sub_uids, m.sub_uids);
        assert_eq!(keep_id(&c).gid_map, [(0, 100000, 1000), (1000, 1000, 1)]);
        assert_eq!(container_mapping(m.single()).uid_map, [(0, 1000, 1)]);
    }

    #[test]
    fn resolves_names_numbers_and_groups() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("passwd"),
            "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(d.path().join("group"), "root:x:0:\nstaff:x:50:alice,bob\n").unwrap();
        let r = resolve("", d.path()).unwrap();
        assert_eq!((r.uid, r.gid, r.home.as_str()), (0, 0, "/root"));
        let a = resolve("alice", d.path()).unwrap();
        assert_eq!((a.uid, a.gid, a.groups.clone()), (1000, 1000, vec![50]));
        assert_eq!(resolve("1000:staff", d.path()).unwrap().gid, 50);
        assert_eq!(resolve("4242:7", d.path()).unwrap().uid, 4242);
        assert!(resolve("nobody", d.path()).is_err());
        assert!(resolve("alice:nogroup", d.path()).is_err());
    }
}
