//! The keeper process (`burrow __keeper DIR`): it forks the holder of the
//! shared user and network namespaces, maps it, starts the outbound helper
//! for it, writes `state.json`, and then watches: a helper that died is
//! started again, a holder that died ends the keeper, and once no
//! container has held `users` for the idle period it takes both down.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::{Proc, State, BRIDGE, GATEWAY, MTU, PREFIX, SUBNET, TICK};
use crate::linux::channel::{channel, Receiver, Sender};
use crate::linux::fs::{self, FileLock};
use crate::linux::newuser::{self, GrantError, MapsWritten, Report};
use crate::linux::userns::IdMapping;
use crate::linux::{net, netlink, process};
use crate::network::helper::{Helper, Running};
use crate::sandbox::{Failure, Step};

/// The exit code of a keeper or holder that could not do its job.
const FAILED: i32 = 1;
/// How often an orphaned holder looks whether anyone still uses it.
const ORPHAN_TICK: Duration = Duration::from_secs(30);

/// The holder: our child, or one adopted from a keeper that died.
#[derive(Debug, Clone, Copy)]
enum Holder {
    Child(Pid),
    Adopted(Proc),
}

impl Holder {
    fn pid(self) -> Pid {
        match self {
            Holder::Child(p) => p,
            Holder::Adopted(p) => Pid::from_raw(p.pid),
        }
    }

    fn ended(self) -> bool {
        match self {
            Holder::Child(p) => exited(p),
            Holder::Adopted(p) => !p.alive(),
        }
    }

    fn end(self) {
        match self {
            Holder::Child(p) => end_holder(p),
            Holder::Adopted(p) => {
                if p.alive() {
                    let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
                }
            }
        }
    }
}

/// Run the keeper in `dir` with `helper` for `mapping`, its idle period
/// `idle`, with a new holder or `adopt`ing one whose keeper died. Says
/// `ready` (or why not) on descriptor 3 when given.
pub fn serve(
    dir: &Path,
    helper: &Helper,
    mapping: &IdMapping,
    idle: Duration,
    adopt: Option<Proc>,
) -> i32 {
    let mut ready: Option<File> = process::adopt_inherited_fd(3)
        .ok()
        .flatten()
        .map(File::from);
    let mut say = |line: &str| {
        if let Some(mut r) = ready.take() {
            let _ = writeln!(r, "{line}");
        }
    };
    let holder = match adopt {
        Some(p) if p.alive() => Holder::Adopted(p),
        Some(_) => {
            say("the holder to adopt is gone");
            return FAILED;
        }
        None => match start_holder(dir, mapping) {
            Ok(h) => Holder::Child(h),
            Err(why) => {
                eprintln!("burrow keeper: {why}");
                say(&why);
                return FAILED;
            }
        },
    };
    let helper_log = dir.join("helper.log");
    let mut running = match helper.start(holder.pid().as_raw(), &helper_log) {
        Ok(r) => Some(r),
        Err(e) => {
            let why = format!("the network helper for the keeper's namespace: {e}");
            eprintln!("burrow keeper: {why}");
            say(&why);
            holder.end();
            return FAILED;
        }
    };
    let state = State {
        keeper: Proc::of(std::process::id() as i32).unwrap_or(Proc { pid: 0, start: 0 }),
        holder: match holder {
            Holder::Adopted(p) => p,
            Holder::Child(p) => Proc::of(p.as_raw()).unwrap_or(Proc { pid: 0, start: 0 }),
        },
        helper: helper.kind.name().to_string(),
    };
    if let Err(e) = write_state(dir, &state) {
        let why = format!("writing its state: {e}");
        say(&why);
        if let Some(r) = running.take() {
            r.stop();
        }
        holder.end();
        return FAILED;
    }
    say("ready");
    watch(dir, helper, holder, running, idle)
}

/// The keeper's loop: one look every tick, nothing in between.
fn watch(
    dir: &Path,
    helper: &Helper,
    holder: Holder,
    mut running: Option<Running>,
    idle: Duration,
) -> i32 {
    let mut idle_since: Option<Instant> = None;
    loop {
        std::thread::sleep(TICK);
        if holder.ended() {
            eprintln!("burrow keeper: the holder of the namespaces ended");
            let _ = std::fs::remove_file(dir.join("state.json"));
            if let Some(r) = running.take() {
                r.stop();
            }
            return FAILED;
        }
        if running.as_ref().is_none_or(|r| exited(r.pid())) {
            // Containers keep running without outbound access until the
            // helper is back.
            running = match helper.start(holder.pid().as_raw(), &dir.join("helper.log")) {
                Ok(r) => Some(r),
                Err(e) => {
                    eprintln!("burrow keeper: restarting the network helper: {e}");
                    None
                }
            };
        }
        // Free when nobody holds it shared: then held exclusively while
        // the keeper goes, so a starter waits and finds it gone.
        let users = File::options()
            .read(true)
            .write(true)
            .open(dir.join("users"));
        let free = users
            .as_ref()
            .map(|f| fs::flock_description(f, FileLock::ExclusiveNow).is_ok())
            .unwrap_or(true);
        if !free {
            idle_since = None;
            continue;
        }
        let since = *idle_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= idle {
            if let Some(r) = running.take() {
                r.stop();
            }
            holder.end();
            // Nothing of it is left: a keeper directory is per mount
            // namespace, and those come and go.
            let _ = std::fs::remove_dir_all(dir);
            drop(users);
            return 0;
        }
    }
}

/// Whether our child `pid` has ended (and reap it).
fn exited(pid: Pid) -> bool {
    !matches!(
        waitpid(pid, Some(WaitPidFlag::WNOHANG)),
        Ok(WaitStatus::StillAlive)
    )
}

fn end_holder(holder: Pid) {
    let _ = kill(holder, Signal::SIGKILL);
    let _ = process::wait_exit_code(holder);
}

fn write_state(dir: &Path, state: &State) -> std::io::Result<()> {
    let tmp = dir.join("state.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(state)?)?;
    std::fs::rename(&tmp, dir.join("state.json"))
}

/// Fork the holder, write its id maps, and wait until its network is set
/// up. Returns its pid, or why it could not be had.
fn start_holder(dir: &Path, mapping: &IdMapping) -> Result<Pid, String> {
    let (up_tx, mut up_rx) = channel::<Report<Failure>>().map_err(|e| format!("pipe: {e}"))?;
    let (mut down_tx, down_rx) = channel().map_err(|e| format!("pipe: {e}"))?;
    let keeper = nix::unistd::getpid();
    let users = dir.join("users");
    let holder = process::fork_child(|| {
        process::close_fds_except(&[2, up_tx.as_raw_fd(), down_rx.as_raw_fd()]);
        holder_main(up_tx, down_rx, keeper, &users)
    })
    .map_err(|e| format!("fork: {e}"))?;
    let granted = newuser::grant_maps(&mut up_rx, &mut down_tx, || mapping.apply(holder));
    let said = |m: Report<Failure>| match m {
        Report::Done => Ok(()),
        Report::Failed(f) => Err(f.to_string()),
        m => Err(format!("expected done, got {m:?}")),
    };
    let outcome = match granted {
        Ok(()) | Err(GrantError::Tell(_)) => up_rx.recv().map_err(|e| e.to_string()).and_then(said),
        Err(GrantError::Request(e)) => Err(e.to_string()),
        Err(GrantError::Instead(m)) => said(m),
        Err(GrantError::Write(e)) => Err(e.to_string()),
    };
    match outcome {
        Ok(()) => Ok(holder),
        Err(why) => {
            end_holder(holder);
            Err(format!("setting up its namespaces: {why}"))
        }
    }
}

/// The holder: its own user and network namespace, the bridge and the NAT
/// rule in it; then it only exists (the namespaces live as long as it or a
/// container in them). Orphaned by a keeper that died, it ends once no
/// container uses it.
fn holder_main(
    mut up: Sender<Report<Failure>>,
    mut down: Receiver<MapsWritten>,
    keeper: Pid,
    users: &Path,
) -> i32 {
    if let Err(e) = nix::sched::unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET) {
        up.tell(Report::Failed(Failure::unshare(e, FAILED)));
        return FAILED;
    }
    if newuser::await_maps(&mut up, &mut down).is_err() {
        return FAILED;
    }
    if let Err(why) = set_up_network() {
        up.tell(Report::Failed(Failure::new(Step::Network, why, FAILED)));
        return FAILED;
    }
    up.tell(Report::Done);
    drop((up, down));
    loop {
        std::thread::sleep(ORPHAN_TICK);
        if nix::unistd::getppid() == keeper {
            continue;
        }
        let free = File::options()
            .read(true)
            .write(true)
            .open(users)
            .map(|f| fs::flock_description(&f, FileLock::ExclusiveNow).is_ok())
            .unwrap_or(true);
        if free {
            return 0;
        }
    }
}

/// In the holder's fresh network namespace: loopback, the bridge with the
/// gateway's address, forwarding, and masquerading of the subnet's traffic
/// out of whatever interface the helper makes.
fn set_up_network() -> Result<(), String> {
    net::loopback_up().map_err(|e| format!("loopback: {e}"))?;
    let mut route = netlink::Route::open().map_err(|e| format!("netlink: {e}"))?;
    let bridge = route
        .add_bridge(BRIDGE)
        .map_err(|e| format!("creating bridge {BRIDGE}: {e}"))?;
    route
        .set_mtu(bridge, MTU)
        .and_then(|()| route.add_address_v4(bridge, GATEWAY, PREFIX))
        .and_then(|()| route.set_up(bridge))
        .map_err(|e| format!("configuring bridge {BRIDGE}: {e}"))?;
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
        .map_err(|e| format!("enabling forwarding: {e}"))?;
    masquerade()
}

/// nft's rule set: the subnet's traffic leaving it takes the outbound
/// interface's address.
fn ruleset() -> String {
    format!(
        "table ip burrow {{\n  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    ip saddr {SUBNET}/{PREFIX} ip daddr != {SUBNET}/{PREFIX} masquerade\n  }}\n}}\n"
    )
}

/// Load [`ruleset`] with nft(8), else the same rule with iptables(8),
/// found in `PATH` or the sbin directories (an ordinary user's `PATH` on
/// Debian has none of them).
fn masquerade() -> Result<(), String> {
    let mut path = std::env::var_os("PATH").unwrap_or_default();
    path.push(":/usr/sbin:/sbin");
    let subnet = format!("{SUBNET}/{PREFIX}");
    let (program, args, input) = if let Some(nft) = fs::executable_in(&path, "nft") {
        (nft, vec!["-f".to_string(), "-".to_string()], ruleset())
    } else if let Some(iptables) = fs::executable_in(&path, "iptables") {
        let args = [
            "-t",
            "nat",
            "-A",
            "POSTROUTING",
            "-s",
            &subnet,
            "!",
            "-d",
            &subnet,
            "-j",
            "MASQUERADE",
        ];
        (iptables, args.map(String::from).to_vec(), String::new())
    } else {
        return Err("neither nft (package nftables) nor iptables is installed; one is needed for the shared network".into());
    };
    let mut child = std::process::Command::new(&program)
        .args(&args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", program.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{}: {e}", program.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            program.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
