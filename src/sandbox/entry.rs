//! A new container's entry as data: the mount plan, then pivot_root into
//! the root and the container's names, one list of operations that PID 1
//! runs in one loop ([`Entry::run`]), as bubblewrap runs its setup ops. The
//! same list serves `run`'s containers ([`Entry::for_spec`]) and OCI
//! bundles (built by `runtime::bundle`), so what a container's PID 1 does
//! before it sets up its own process is checked by unit tests.

use std::path::Path;

use super::mounts::{self, MountOp};
use super::{Failure, Spec, Step};
use crate::exit;

/// One step of a new container's entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryOp {
    /// A step of the mount tree, under the root (see [`MountOp`]).
    Mount(MountOp),
    /// The root becomes `/`; the host's tree is detached.
    PivotRoot,
    /// sethostname(2), in the container's UTS namespace.
    Hostname(String),
    /// setdomainname(2) (the NIS domain name).
    Domainname(String),
}

/// The steps of a new container's entry, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub ops: Vec<EntryOp>,
}

impl Entry {
    /// The mount tree `mounts`, the pivot into the root, then the names
    /// given.
    pub fn new(mounts: Vec<MountOp>, hostname: Option<String>, domainname: Option<String>) -> Self {
        let mut ops: Vec<EntryOp> = mounts.into_iter().map(EntryOp::Mount).collect();
        ops.push(EntryOp::PivotRoot);
        ops.extend(hostname.map(EntryOp::Hostname));
        ops.extend(domainname.map(EntryOp::Domainname));
        Entry { ops }
    }

    /// A `run` container's entry: its mount plan, the pivot, its hostname.
    pub fn for_spec(spec: &Spec) -> Self {
        Entry::new(mounts::plan(spec), Some(spec.hostname.clone()), None)
    }

    /// Run the steps with `root` as the new root, in order; the first
    /// failure stops.
    pub fn run(&self, root: &Path) -> Result<(), Failure> {
        let sys = |step| move |e| Failure::sys(step, e, exit::BURROW);
        for op in &self.ops {
            match op {
                EntryOp::Mount(m) => mounts::apply_one(root, m)?,
                EntryOp::PivotRoot => crate::linux::mount::pivot_into(root)
                    .map_err(|e| Failure::sys(Step::PivotRoot, e.source, exit::BURROW).at(root))?,
                EntryOp::Hostname(h) => nix::unistd::sethostname(h).map_err(sys(Step::Hostname))?,
                EntryOp::Domainname(d) => {
                    crate::linux::ns::set_domainname(d).map_err(sys(Step::Hostname))?
                }
            }
        }
        Ok(())
    }
}

/// An op's kind and where it acts (`proc proc`, `bind-file etc/hosts`,
/// `pivot`): what a log or a test compares.
impl std::fmt::Display for EntryOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = match self {
            EntryOp::Mount(m) => m,
            EntryOp::PivotRoot => return write!(f, "pivot"),
            EntryOp::Hostname(h) => return write!(f, "hostname {h}"),
            EntryOp::Domainname(d) => return write!(f, "domainname {d}"),
        };
        match m {
            MountOp::Dir { target } => write!(f, "dir {target}"),
            MountOp::Fs { fstype, target, .. } => write!(f, "{fstype} {target}"),
            MountOp::BindFile { target, .. } => write!(f, "bind-file {target}"),
            MountOp::BindTreeReadonly { target, .. } => write!(f, "bind-tree-ro {target}"),
            MountOp::Symlink { link, .. } => write!(f, "symlink {link}"),
            MountOp::UserBind { target, .. } => write!(f, "user-bind {target}"),
            MountOp::UserTmpfs { target, .. } => write!(f, "user-tmpfs {target}"),
            MountOp::RemountRootReadonly => write!(f, "root-ro"),
            MountOp::MaskPath { target } => write!(f, "mask {target}"),
            MountOp::ReadonlyPath { target } => write!(f, "ro {target}"),
            MountOp::PrepareRoot { .. } => write!(f, "prepare-root"),
            MountOp::Mount {
                target, bind: true, ..
            } => write!(f, "bind {target}"),
            MountOp::Mount { fstype, target, .. } => write!(f, "{fstype} {target}"),
            MountOp::MakeDirs { target } => write!(f, "mkdirs {target}"),
            MountOp::Sysctl { key, .. } => write!(f, "sysctl {key}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux::userns::{IdMapping, IdRange};
    use crate::sandbox::{Mount, PathRules};

    /// What `burrow run --rm -v /data:/srv busybox true` asks for under a
    /// subordinate range, with a private network and Docker's masks.
    fn typical_run() -> Spec {
        let range = IdRange {
            start: 100000,
            count: 65536,
        };
        let mapping = IdMapping {
            uid: 1000,
            gid: 1000,
            sub_uids: Some(range),
            sub_gids: Some(range),
            newuidmap: Some("/usr/bin/newuidmap".into()),
            newgidmap: Some("/usr/bin/newgidmap".into()),
            uid_map: Vec::new(),
            gid_map: Vec::new(),
        };
        let mapping = crate::sandbox::user::container_mapping(mapping);
        let bind = Mount::Bind {
            source: "/data".into(),
            target: "/srv".into(),
            readonly: false,
        };
        let mut spec = crate::sandbox::mounts::tests::spec(mapping, vec![bind], false);
        spec.lowers = vec!["/store/layers/l1".into()];
        spec.hostname = "c0ffee".into();
        spec.private_network = true;
        spec.remove_after = vec!["/store/containers/c/record".into()];
        spec.remove_dir_after = true;
        spec.paths = PathRules::default();
        spec
    }

    #[test]
    fn a_typical_run_mounts_then_pivots_then_names_the_host() {
        let entry = Entry::for_spec(&typical_run());
        let got: Vec<String> = entry.ops.iter().map(ToString::to_string).collect();
        let want = [
            "proc proc",
            "tmpfs dev",
            "bind-file dev/null",
            "bind-file dev/zero",
            "bind-file dev/full",
            "bind-file dev/random",
            "bind-file dev/urandom",
            "bind-file dev/tty",
            "devpts dev/pts",
            "tmpfs dev/shm",
            "symlink dev/ptmx",
            "symlink dev/fd",
            "symlink dev/stdin",
            "symlink dev/stdout",
            "symlink dev/stderr",
            "symlink dev/core",
            "sysfs sys",
            "dir etc",
            "bind-file etc/hosts",
            "bind-file etc/hostname",
            "bind-file etc/resolv.conf",
            "bind-file etc/passwd",
            "bind-file etc/group",
            "user-bind /srv",
            "mask proc/asound",
            "mask proc/acpi",
            "mask proc/kcore",
            "mask proc/keys",
            "mask proc/latency_stats",
            "mask proc/timer_list",
            "mask proc/timer_stats",
            "mask proc/sched_debug",
            "mask proc/scsi",
            "mask sys/firmware",
            "mask sys/devices/virtual/powercap",
            "ro proc/bus",
            "ro proc/fs",
            "ro proc/irq",
            "ro proc/sys",
            "ro proc/sysrq-trigger",
            "pivot",
            "hostname c0ffee",
        ];
        assert_eq!(got, want);
        // A gid range maps the tty group devpts names.
        assert!(entry.ops.iter().any(|op| matches!(op,
            EntryOp::Mount(MountOp::Fs { fstype: "devpts", data: Some(d), .. }) if d.contains("gid=5"))));
    }

    #[test]
    fn a_readonly_root_goes_readonly_before_the_pivot() {
        let mut spec = typical_run();
        spec.readonly_rootfs = true;
        let ops = Entry::for_spec(&spec).ops;
        let n = ops.len();
        assert_eq!(
            ops[n - 3..],
            [
                EntryOp::Mount(MountOp::RemountRootReadonly),
                EntryOp::PivotRoot,
                EntryOp::Hostname("c0ffee".into())
            ]
        );
    }

    #[test]
    fn names_follow_the_pivot_only_when_given() {
        let e = Entry::new(Vec::new(), None, None);
        assert_eq!(e.ops, [EntryOp::PivotRoot]);
        let e = Entry::new(Vec::new(), Some("h".into()), Some("d".into()));
        assert_eq!(
            e.ops,
            [
                EntryOp::PivotRoot,
                EntryOp::Hostname("h".into()),
                EntryOp::Domainname("d".into())
            ]
        );
    }
}
