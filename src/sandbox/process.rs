//! A process in a container, one type for `run` (PID 1) and `exec`, and
//! its way into the container and exec as data: [`plan`], a pure function
//! of the `Process` and its [`ContainerType`], lists the steps in their
//! fixed order, and the forked process runs them in one loop
//! (`process/apply.rs`): not dumpable, what it will exec through, the
//! entry (mounts and pivot_root, a new container's PID 1 only), stdio and
//! a session of its own, every other descriptor closed, the user looked
//! up, the working directory made, no_new_privs, seccomp, bounding set,
//! ids, capability sets, the working directory entered, a bundle's start
//! gate, exec (of the command, or with `--init` of a static init program
//! that runs it). Unit tests check the order without forking.
//!
//! The kinds differ only where youki's `ContainerType` does: PID 1 of a
//! new container (`Init`, and `Bundle` for an OCI bundle's) builds the
//! mount tree and pivots into it; a process joining a running container
//! (`Joined`) finds all that done, as its joiner has setns'd before
//! forking it (setns(2) of a pid namespace only applies to children, so
//! the join cannot happen here).

use std::fmt;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::path::{Path, PathBuf};

use super::entry::Entry;
use super::seccomp::Seccomp;
use crate::linux::caps;

mod apply;

pub use apply::enter_and_exec;
pub(super) use apply::{drop_bounding, install_seccomp, open_null};

/// Docker's PATH when the image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What runs in the container, and as whom.
#[derive(Debug, Clone)]
pub struct Process {
    pub argv: Vec<String>,
    /// The full environment (container's Env, HOSTNAME, overrides); HOME is
    /// added from /etc/passwd when missing.
    pub env: Vec<String>,
    /// Absolute working directory; empty means `/`.
    pub cwd: String,
    /// `name|uid[:group|gid]`, resolved in the container's /etc/passwd.
    pub user: String,
    /// Capabilities the process keeps (see `sandbox::caps`), as a mask.
    pub caps: u64,
    /// The seccomp filter to install (see `sandbox::seccomp`).
    pub seccomp: Seccomp,
    /// The filter fakes changes of ids (`seccomp::FAKED_ID_CALLS`): the
    /// process must already be the user it runs as.
    pub fake_ids: bool,
    /// Keep stdin (`-i`); otherwise it reads /dev/null, as Docker's does.
    pub stdin: bool,
    pub stdio: Stdio,
    /// `--init`: PID 1 is an init that forwards signals to the command and
    /// reaps orphans, so `stop` works on programs that ignore SIGTERM as
    /// PID 1: `init_program` (see `sandbox::init`), else a fork of ours.
    pub init: bool,
    /// A static init program on the host, exec'd as PID 1 for `init`.
    pub init_program: Option<PathBuf>,
    /// `--security-opt no-new-privileges`: prctl(PR_SET_NO_NEW_PRIVS)
    /// before exec, so setuid programs and file capabilities grant nothing.
    pub no_new_privs: bool,
    /// The supplementary groups exactly (an OCI bundle's `additionalGids`);
    /// None looks them up in the container's /etc/group.
    pub groups: Option<Vec<u32>>,
    /// No parent-death signal and nobody waits: an engine's shim, a
    /// subreaper, inherits and reaps the process (the runc contract).
    pub outlives_parent: bool,
    /// An OCI process's five capability sets, each applied as given (a
    /// non-root user keeps them across the user switch, ambient ones
    /// across exec); None gives `caps` to bounding, effective and
    /// permitted, with inheritable and ambient empty.
    pub cap_sets: Option<caps::Sets>,
}

impl Process {
    /// Whether the process dies with the process that forked it (and what
    /// forks it with its own caller): a detached exec, or a process an
    /// engine's shim inherits, outlives its caller by design.
    pub fn dies_with_parent(&self) -> bool {
        self.stdio != Stdio::Detached && !self.outlives_parent
    }

    /// The bounding set it keeps.
    pub fn bounding(&self) -> u64 {
        self.cap_sets.map_or(self.caps, |s| s.bounding)
    }

    /// Its working directory (`/` when none is given).
    fn workdir(&self) -> &str {
        if self.cwd.is_empty() {
            "/"
        } else {
            &self.cwd
        }
    }
}

/// Where the process's stdin, stdout and stderr come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdio {
    /// The caller's own (the foreground `run`, `exec` without `-t`).
    Inherit,
    /// A monitor's pipes (or /dev/null): stdin, stdout, stderr. Helpers
    /// close their copies once the process is forked, so the monitor sees
    /// EOF when it ends.
    Pipes([RawFd; 3]),
    /// `-t` under a monitor: a unix socket on which the process sends the
    /// master of a pty it opens in the container's own devpts (runc's
    /// console socket); the slave becomes its stdio and controlling
    /// terminal.
    ConsoleSocket(RawFd),
    /// `exec -t`: a pty from the container's devpts, which the joiner opens
    /// and relays to the caller's terminal.
    Pty,
    /// `exec -d`: /dev/null, a session of its own (no terminal signals from
    /// the caller's), and nobody waits for it.
    Detached,
}

impl Stdio {
    /// Descriptors from 3 up that the process needs and its helpers must
    /// keep open until it is forked.
    pub fn passed_fds(&self) -> Vec<RawFd> {
        match *self {
            Stdio::Pipes(fds) => fds.into_iter().filter(|fd| *fd > 2).collect(),
            Stdio::ConsoleSocket(fd) => vec![fd],
            _ => Vec::new(),
        }
    }
}

/// Which way into the container.
#[derive(Clone, Copy)]
pub enum ContainerType<'a> {
    /// PID 1 of a new container: runs its `entry` (the mount tree under
    /// `root`, the pivot into it, the hostname).
    Init { root: &'a Path, entry: &'a Entry },
    /// A process forked by a joiner already inside the container's
    /// namespaces; `terminal` is the slave of the pty it opened for `-t`.
    Joined { terminal: Option<RawFd> },
    /// PID 1 of a container an engine created from an OCI bundle.
    Bundle(&'a BundleInit<'a>),
}

/// What PID 1 of a container made from an OCI bundle sets up besides the
/// shared order: like `Init`, its `entry` (the hostname and NIS domain name
/// in it only when the bundle gives a UTS namespace them), and `start_gate`
/// (a FIFO open for reading and writing): once set up, the process says
/// `Ready` on its report channel, then blocks reading the FIFO until the
/// engine's `start` writes a byte into it.
#[derive(Debug, Clone, Copy)]
pub struct BundleInit<'a> {
    pub root: &'a Path,
    pub entry: &'a Entry,
    pub start_gate: BorrowedFd<'a>,
    /// Descriptors 3..3+N the engine passed (`--preserve-fds`), kept open
    /// across exec.
    pub preserve_fds: u32,
}

/// One step of a process's way into the container, up to its exec.
#[derive(Debug, Clone)]
pub enum ProcessOp<'a> {
    /// Not dumpable until exec: nothing in the container may trace us or
    /// read our memory, environment or descriptors (runc's CVE-2016-9962).
    NotDumpable,
    /// SIGKILL when the parent dies, so nothing outlives its supervisor.
    DieWithParent,
    /// Open `--init`'s static init program while the host's tree is still
    /// ours, so nothing in the container's can stand in for it.
    OpenInit(&'a Path),
    /// Load the trampoline the program is exec'd through (see
    /// `sandbox::trampoline`), before seccomp, which may refuse memfds.
    LoadTrampoline,
    /// A new container's entry: the mount tree under `root`, the pivot
    /// into it, its names.
    Entry { root: &'a Path, entry: &'a Entry },
    /// stdin, stdout and stderr as `stdio` says (or `terminal`, the slave
    /// of a joiner's pty), in a session of our own.
    Stdio {
        stdio: Stdio,
        terminal: Option<RawFd>,
    },
    /// /dev/null as stdin (no `-i`).
    NullStdin,
    /// Close every descriptor but stdio, the report channel, what the exec
    /// needs, a bundle's start gate and the `preserve_fds` from 3 up.
    CloseFds {
        gate: Option<RawFd>,
        preserve_fds: u32,
    },
    /// Resolve `user` in the container's /etc/passwd and /etc/group
    /// (`groups`, when given, are the supplementary groups exactly); HOME
    /// from it when the environment has none.
    User {
        user: &'a str,
        groups: Option<&'a [u32]>,
    },
    /// Create the working directory if it is missing (a new container
    /// does, as Docker does; `exec` never does).
    MakeWorkdir(&'a str),
    /// Refuse a switch of ids that fake ids would turn into none.
    RefuseFakedSwitch,
    /// prctl(PR_SET_NO_NEW_PRIVS).
    NoNewPrivs,
    /// Install the seccomp filter (or fail, when none could be built).
    Seccomp(&'a Seccomp),
    /// Drop all but these from the bounding set.
    CapBounding(u64),
    /// PR_SET_KEEPCAPS on or off around the switch of ids.
    KeepCaps(bool),
    /// setgroups(2).
    Groups,
    /// setresgid(2).
    Gid,
    /// setresuid(2).
    Uid,
    /// Effective and permitted to this set, inheritable and ambient empty.
    CapSets(u64),
    /// An OCI process's five sets, each as given.
    CapSetsEach(caps::Sets),
    /// Enter the working directory, which must be inside the root.
    Workdir(&'a str),
    /// Fail as exec would if the program does not exist.
    FindProgram,
    /// Say `Ready` on the report channel.
    Ready,
    /// Block until the engine's `start` writes into the FIFO.
    WaitForStart(BorrowedFd<'a>),
    /// Exec the static init program opened by `OpenInit`, which runs the
    /// command.
    ExecInit(&'a Path),
    /// Fork the command and stay PID 1 as its init.
    RunInit,
    /// Exec the command, keeping `preserve_fds` descriptors from 3 up.
    Exec { preserve_fds: u32 },
}

/// A process's steps, and what they act on.
#[derive(Debug, Clone)]
pub struct Plan<'a> {
    pub ops: Vec<ProcessOp<'a>>,
    pub argv: &'a [String],
    /// The environment before HOME is added.
    pub env: &'a [String],
    /// setgroups(2) is allowed: false under a single-id mapping, where it
    /// is denied (user_namespaces(7)).
    pub groups_allowed: bool,
}

/// The steps `p` takes into the container as `kind` says, in their fixed
/// order. The order is the security: the working directory is made only
/// after every descriptor but the ones we need is closed (runc's
/// CVE-2024-21626) and entered only after the ids changed (so a user's
/// permissions apply to it); no_new_privs comes before the filter
/// (prctl(2)); the filter while we still hold CAP_SYS_ADMIN in the
/// container's user namespace, so no_new_privs is not needed and setuid
/// programs keep working; the bounding set before the ids (dropping needs
/// CAP_SETPCAP, which a non-root user loses at setuid), the process's own
/// sets after them.
pub fn plan<'a>(kind: ContainerType<'a>, p: &'a Process, groups_allowed: bool) -> Plan<'a> {
    use ProcessOp as Op;
    let mut ops = Vec::with_capacity(24);
    // While the host's tree is still ours: not dumpable, the parent-death
    // signal, what the program will be exec'd through.
    ops.push(Op::NotDumpable);
    if p.dies_with_parent() {
        ops.push(Op::DieWithParent);
    }
    let init_program = p.init_program.as_deref().filter(|_| p.init);
    ops.push(init_program.map_or(Op::LoadTrampoline, Op::OpenInit));
    let (terminal, gate, preserve_fds) = match kind {
        ContainerType::Init { root, entry } => {
            ops.push(Op::Entry { root, entry });
            (None, None, 0)
        }
        ContainerType::Bundle(b) => {
            ops.push(Op::Entry {
                root: b.root,
                entry: b.entry,
            });
            (None, Some(b.start_gate), b.preserve_fds)
        }
        ContainerType::Joined { terminal } => (terminal, None, 0),
    };
    // stdio after pivot_root: a console pty comes from the container's own
    // devpts.
    ops.push(Op::Stdio {
        stdio: p.stdio,
        terminal,
    });
    if !p.stdin && p.stdio != Stdio::Detached {
        ops.push(Op::NullStdin);
    }
    ops.push(Op::CloseFds {
        gate: gate.map(|g| g.as_raw_fd()),
        preserve_fds,
    });
    ops.push(Op::User {
        user: &p.user,
        groups: p.groups.as_deref(),
    });
    let cwd = p.workdir();
    if !matches!(kind, ContainerType::Joined { .. }) {
        ops.push(Op::MakeWorkdir(cwd));
    }
    if p.fake_ids {
        ops.push(Op::RefuseFakedSwitch);
    }
    if p.no_new_privs {
        ops.push(Op::NoNewPrivs);
    }
    if !matches!(p.seccomp, Seccomp::Unconfined) {
        ops.push(Op::Seccomp(&p.seccomp));
    }
    ops.push(Op::CapBounding(p.bounding()));
    let ids: &[ProcessOp] = match groups_allowed {
        true => &[Op::Groups, Op::Gid, Op::Uid],
        false => &[Op::Gid, Op::Uid],
    };
    let ids = ids.iter().cloned();
    match p.cap_sets {
        None => {
            ops.extend(ids);
            ops.push(Op::CapSets(p.caps));
        }
        Some(sets) => {
            // A non-root user keeps its permitted set across the switch,
            // so the sets can be given after it.
            ops.push(Op::KeepCaps(true));
            ops.extend(ids);
            ops.push(Op::KeepCaps(false));
            ops.push(Op::CapSetsEach(sets));
        }
    }
    ops.push(Op::Workdir(cwd));
    if let Some(gate) = gate {
        // A missing program fails `create`, where the engine reads the
        // error (and maps "not found" to 127), not a later `start`.
        ops.extend([Op::FindProgram, Op::Ready, Op::WaitForStart(gate)]);
    }
    match init_program {
        // The init cannot tell us a command is missing; say it the way the
        // command's own exec would have.
        Some(path) => ops.extend([Op::FindProgram, Op::ExecInit(path)]),
        None if p.init => ops.push(Op::RunInit),
        None => ops.push(Op::Exec { preserve_fds }),
    }
    Plan {
        ops,
        argv: &p.argv,
        env: &p.env,
        groups_allowed,
    }
}

/// An op's kind and what it acts on (`stdio pipes`, `workdir /srv`,
/// `cap-bounding 0xa80425fb`): what a log or a test compares.
impl fmt::Display for ProcessOp<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ProcessOp as Op;
        match self {
            Op::NotDumpable => write!(f, "not-dumpable"),
            Op::DieWithParent => write!(f, "die-with-parent"),
            Op::OpenInit(path) => write!(f, "open-init {}", path.display()),
            Op::LoadTrampoline => write!(f, "trampoline"),
            Op::Entry { entry, .. } => write!(f, "entry ({} ops)", entry.ops.len()),
            Op::Stdio {
                terminal: Some(_), ..
            } => write!(f, "stdio terminal"),
            Op::Stdio { stdio, .. } => match stdio {
                Stdio::Inherit => write!(f, "stdio inherit"),
                Stdio::Pipes(_) => write!(f, "stdio pipes"),
                Stdio::ConsoleSocket(_) => write!(f, "stdio console-socket"),
                Stdio::Pty => write!(f, "stdio pty"),
                Stdio::Detached => write!(f, "stdio detached"),
            },
            Op::NullStdin => write!(f, "stdin-null"),
            Op::CloseFds { gate, preserve_fds } => {
                write!(f, "close-fds")?;
                if gate.is_some() {
                    write!(f, " but-gate")?;
                }
                if *preserve_fds > 0 {
                    write!(f, " but-{preserve_fds}")?;
                }
                Ok(())
            }
            Op::User { user, groups } => {
                write!(f, "user {user:?}")?;
                match groups {
                    Some(g) => write!(f, " groups {g:?}"),
                    None => Ok(()),
                }
            }
            Op::MakeWorkdir(d) => write!(f, "mkdir-workdir {d}"),
            Op::RefuseFakedSwitch => write!(f, "refuse-faked-switch"),
            Op::NoNewPrivs => write!(f, "no-new-privs"),
            Op::Seccomp(_) => write!(f, "seccomp"),
            Op::CapBounding(m) => write!(f, "cap-bounding {m:#x}"),
            Op::KeepCaps(on) => write!(f, "keep-caps {}", if *on { "on" } else { "off" }),
            Op::Groups => write!(f, "setgroups"),
            Op::Gid => write!(f, "setgid"),
            Op::Uid => write!(f, "setuid"),
            Op::CapSets(m) => write!(f, "cap-sets {m:#x}"),
            Op::CapSetsEach(s) => write!(
                f,
                "cap-sets e={:#x} p={:#x} i={:#x} a={:#x}",
                s.effective, s.permitted, s.inheritable, s.ambient
            ),
            Op::Workdir(d) => write!(f, "workdir {d}"),
            Op::FindProgram => write!(f, "find-program"),
            Op::Ready => write!(f, "ready"),
            Op::WaitForStart(_) => write!(f, "wait-for-start"),
            Op::ExecInit(path) => write!(f, "exec-init {}", path.display()),
            Op::RunInit => write!(f, "run-init"),
            Op::Exec { preserve_fds: 0 } => write!(f, "exec"),
            Op::Exec { preserve_fds } => write!(f, "exec keeping {preserve_fds}"),
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::sandbox::caps::{mask, DEFAULT};

    /// `true` as root with nothing asked for: no capabilities, unconfined,
    /// the caller's stdio, no `-i`.
    pub(in crate::sandbox) fn bare() -> Process {
        Process {
            argv: vec!["true".into()],
            env: Vec::new(),
            cwd: String::new(),
            user: String::new(),
            caps: 0,
            seccomp: Seccomp::Unconfined,
            fake_ids: false,
            stdin: false,
            stdio: Stdio::Inherit,
            init: false,
            init_program: None,
            no_new_privs: false,
            groups: None,
            outlives_parent: false,
            cap_sets: None,
        }
    }

    /// `burrow run busybox true` as `container` builds it: Docker's default
    /// capabilities and seccomp profile.
    fn run_process() -> Process {
        Process {
            env: vec!["PATH=/bin".into()],
            caps: mask(&DEFAULT),
            seccomp: Seccomp::Filter(Vec::new().into()),
            ..bare()
        }
    }

    fn ops(plan: &Plan) -> Vec<String> {
        plan.ops.iter().map(ToString::to_string).collect()
    }

    fn entry() -> Entry {
        Entry::new(Vec::new(), Some("c0ffee".into()), None)
    }

    #[test]
    fn a_typical_run_enters_then_confines_then_execs() {
        let (p, entry) = (run_process(), entry());
        let init = ContainerType::Init {
            root: Path::new("/store/mnt"),
            entry: &entry,
        };
        let plan = plan(init, &p, true);
        let want = [
            "not-dumpable",
            "die-with-parent",
            "trampoline",
            "entry (2 ops)",
            "stdio inherit",
            "stdin-null",
            "close-fds",
            "user \"\"",
            "mkdir-workdir /",
            "seccomp",
            "cap-bounding 0xa80425fb",
            "setgroups",
            "setgid",
            "setuid",
            "cap-sets 0xa80425fb",
            "workdir /",
            "exec",
        ];
        assert_eq!(ops(&plan), want);
        assert!(plan.groups_allowed);
        assert_eq!(plan.argv, ["true"]);
    }

    #[test]
    fn a_user_and_workdir_switch_ids_before_the_workdir_is_entered() {
        // `run -u 1000:1000 -w /srv --security-opt no-new-privileges -i`
        // under a single-id mapping (fake ids, no setgroups), on a
        // monitor's pipes.
        let mut p = run_process();
        p.user = "1000:1000".into();
        p.cwd = "/srv".into();
        p.no_new_privs = true;
        p.fake_ids = true;
        p.stdin = true;
        p.stdio = Stdio::Pipes([5, 6, 7]);
        let entry = entry();
        let init = ContainerType::Init {
            root: Path::new("/store/mnt"),
            entry: &entry,
        };
        let want = [
            "not-dumpable",
            "die-with-parent",
            "trampoline",
            "entry (2 ops)",
            "stdio pipes",
            "close-fds",
            "user \"1000:1000\"",
            "mkdir-workdir /srv",
            "refuse-faked-switch",
            "no-new-privs",
            "seccomp",
            "cap-bounding 0xa80425fb",
            "setgid",
            "setuid",
            "cap-sets 0xa80425fb",
            "workdir /srv",
            "exec",
        ];
        assert_eq!(ops(&plan(init, &p, false)), want);
    }

    #[test]
    fn an_exec_skips_the_entry_and_never_makes_its_workdir() {
        // `exec -t -w /tmp` on the joiner's pty, unconfined.
        let mut p = run_process();
        p.argv = vec!["sh".into()];
        p.cwd = "/tmp".into();
        p.stdin = true;
        p.stdio = Stdio::Pty;
        p.seccomp = Seccomp::Unconfined;
        let joined = ContainerType::Joined { terminal: Some(9) };
        let want = [
            "not-dumpable",
            "die-with-parent",
            "trampoline",
            "stdio terminal",
            "close-fds",
            "user \"\"",
            "cap-bounding 0xa80425fb",
            "setgroups",
            "setgid",
            "setuid",
            "cap-sets 0xa80425fb",
            "workdir /tmp",
            "exec",
        ];
        assert_eq!(ops(&plan(joined, &p, true)), want);
        // Detached: nobody it dies with, /dev/null for all of stdio.
        p.stdio = Stdio::Detached;
        p.stdin = false;
        let got = ops(&plan(ContainerType::Joined { terminal: None }, &p, true));
        assert_eq!(got[..3], ["not-dumpable", "trampoline", "stdio detached"]);
        assert_eq!(got[3], "close-fds");
    }

    #[test]
    fn a_bundle_process_is_confined_before_it_waits_for_start() {
        let sets = caps::Sets {
            bounding: 0xff,
            effective: 0x3,
            permitted: 0x3,
            inheritable: 0,
            ambient: 0x1,
        };
        let mut p = run_process();
        p.user = "1000:1000".into();
        p.cwd = "/work".into();
        p.stdin = true;
        p.groups = Some(vec![10, 20]);
        p.outlives_parent = true;
        p.no_new_privs = true;
        p.caps = sets.bounding;
        p.cap_sets = Some(sets);
        let (entry, stdin) = (entry(), std::io::stdin());
        let init = BundleInit {
            root: Path::new("/bundle/rootfs"),
            entry: &entry,
            start_gate: std::os::fd::AsFd::as_fd(&stdin),
            preserve_fds: 2,
        };
        let want = [
            "not-dumpable",
            "trampoline",
            "entry (2 ops)",
            "stdio inherit",
            "close-fds but-gate but-2",
            "user \"1000:1000\" groups [10, 20]",
            "mkdir-workdir /work",
            "no-new-privs",
            "seccomp",
            "cap-bounding 0xff",
            "keep-caps on",
            "setgroups",
            "setgid",
            "setuid",
            "keep-caps off",
            "cap-sets e=0x3 p=0x3 i=0x0 a=0x1",
            "workdir /work",
            "find-program",
            "ready",
            "wait-for-start",
            "exec keeping 2",
        ];
        assert_eq!(ops(&plan(ContainerType::Bundle(&init), &p, true)), want);
    }

    #[test]
    fn init_runs_the_command_from_a_static_program_or_a_fork_of_ours() {
        let mut p = run_process();
        p.init = true;
        let entry = entry();
        let init = ContainerType::Init {
            root: Path::new("/store/mnt"),
            entry: &entry,
        };
        let got = ops(&plan(init, &p, true));
        assert_eq!(got[2], "trampoline");
        assert_eq!(got.last().map(String::as_str), Some("run-init"));
        // A static init program is opened instead of the trampoline, and
        // the command looked for before it is exec'd.
        p.init_program = Some("/usr/libexec/burrow/init".into());
        let got = ops(&plan(init, &p, true));
        assert_eq!(got[2], "open-init /usr/libexec/burrow/init");
        assert!(!got.contains(&"trampoline".to_string()));
        assert_eq!(
            got[got.len() - 2..],
            ["find-program", "exec-init /usr/libexec/burrow/init"]
        );
    }
}
