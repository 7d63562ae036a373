//! The keeper process (`burrow __keeper DIR`): it forks the holder of the
//! shared user and network namespaces, maps it, starts the outbound helper
//! for it, writes `state.json`, and then watches: a helper that died is
//! started again, a holder that died ends the keeper, and once no
//! container has held `users` for the idle period it takes both down.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::{Proc, State, BRIDGE, BRIDGE_GROUP, GATEWAY, MTU, PREFIX, TICK};
use crate::linux::channel::{channel, Receiver, Sender};
use crate::linux::fs::{self, FileLock};
use crate::linux::newuser::{self, GrantError, MapsWritten, Report};
use crate::linux::userns::IdMapping;
use crate::linux::{net, netlink, process};
use crate::network::dns;
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
        None => match start_holder(dir, mapping, helper) {
            Ok(h) => Holder::Child(h),
            Err(why) => {
                eprintln!("burrow keeper: {why}");
                say(&why.to_string());
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

/// Why the holder's network could not be set up, or its holder had.
#[derive(Debug, thiserror::Error)]
enum SetupError {
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("loopback: {0}")]
    Loopback(#[source] nix::Error),
    #[error("fork: {0}")]
    Fork(#[source] process::ForkError),
    #[error("neither nft (package nftables) nor iptables is installed; one is needed for the shared network")]
    NoFirewall,
    #[error("{}: {source}", program.display())]
    Program {
        program: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {stderr}", program.display())]
    Refused {
        program: std::path::PathBuf,
        stderr: String,
    },
    #[error("setting up its namespaces: {0}")]
    Holder(#[source] HolderError),
}

/// Why the holder did not report its namespaces ready.
#[derive(Debug, thiserror::Error)]
enum HolderError {
    /// The holder's own report of what failed.
    #[error("{0}")]
    Failed(#[source] Failure),
    /// A message out of turn, shown as it came.
    #[error("expected done, got {0}")]
    Unexpected(String),
    #[error("{0}")]
    Channel(#[source] crate::linux::channel::ChannelError),
    #[error("{0}")]
    Maps(#[source] crate::linux::userns::UsernsError),
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> SetupError {
    move |source| SetupError::Io { what, source }
}

/// Fork the holder, write its id maps, and wait until its network is set
/// up. Returns its pid, or why it could not be had. Its DNS responder
/// forwards to the resolver `helper` answers on.
fn start_holder(dir: &Path, mapping: &IdMapping, helper: &Helper) -> Result<Pid, SetupError> {
    let (up_tx, mut up_rx) = channel::<Report<Failure>>().map_err(io("pipe"))?;
    let (mut down_tx, down_rx) = channel().map_err(io("pipe"))?;
    let keeper = nix::unistd::getpid();
    let upstream: std::net::Ipv4Addr = helper
        .kind
        .dns_address()
        .parse()
        .expect("the helpers' resolver addresses are IPv4 literals");
    let holder = process::fork_child(|| {
        process::close_fds_except(&[2, up_tx.as_raw_fd(), down_rx.as_raw_fd()]);
        holder_main(up_tx, down_rx, keeper, dir, upstream)
    })
    .map_err(SetupError::Fork)?;
    let granted = newuser::grant_maps(&mut up_rx, &mut down_tx, || mapping.apply(holder));
    let said = |m: Report<Failure>| match m {
        Report::Done => Ok(()),
        Report::Failed(f) => Err(HolderError::Failed(f)),
        m => Err(HolderError::Unexpected(format!("{m:?}"))),
    };
    let outcome = match granted {
        Ok(()) | Err(GrantError::Tell(_)) => {
            up_rx.recv().map_err(HolderError::Channel).and_then(said)
        }
        Err(GrantError::Request(e)) => Err(HolderError::Channel(e)),
        Err(GrantError::Instead(m)) => said(m),
        Err(GrantError::Write(e)) => Err(HolderError::Maps(e)),
    };
    match outcome {
        Ok(()) => Ok(holder),
        Err(why) => {
            end_holder(holder);
            Err(SetupError::Holder(why))
        }
    }
}

/// The holder: its own user and network namespace, the bridge and the NAT
/// rule in it, and the user networks' DNS responder on port 53 of every
/// bridge's gateway. Orphaned by a keeper that died, it ends once no
/// container uses it.
fn holder_main(
    mut up: Sender<Report<Failure>>,
    mut down: Receiver<MapsWritten>,
    keeper: Pid,
    dir: &Path,
    upstream: std::net::Ipv4Addr,
) -> i32 {
    if let Err(e) = nix::sched::unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET) {
        up.tell(Report::Failed(Failure::unshare(e, FAILED)));
        return FAILED;
    }
    if newuser::await_maps(&mut up, &mut down).is_err() {
        return FAILED;
    }
    if let Err(why) = set_up_network() {
        up.tell(Report::Failed(Failure::new(
            Step::Network,
            why.to_string(),
            FAILED,
        )));
        return FAILED;
    }
    // Published ports keep their clients' addresses where this works;
    // elsewhere connections come from the bridge's address.
    match transparent() {
        Ok(()) => {
            let _ = std::fs::write(dir.join(super::TRANSPARENT), "");
        }
        Err(why) => eprintln!("burrow keeper: clients' addresses are not kept: {why}"),
    }
    // Without it, names on user networks are not answered (the containers'
    // /etc/hosts still name themselves); the network itself works.
    let mut responder = match Responder::open(dir, upstream) {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("burrow keeper: the DNS responder: {e}");
            None
        }
    };
    up.tell(Report::Done);
    drop((up, down));
    let users = dir.join("users");
    loop {
        let next_look = Instant::now() + ORPHAN_TICK;
        match &mut responder {
            Some(r) => r.serve_until(next_look),
            None => std::thread::sleep(ORPHAN_TICK),
        }
        if nix::unistd::getppid() == keeper {
            continue;
        }
        let free = File::options()
            .read(true)
            .write(true)
            .open(&users)
            .map(|f| fs::flock_description(&f, FileLock::ExclusiveNow).is_ok())
            .unwrap_or(true);
        if free {
            return 0;
        }
    }
}

/// The DNS responder of the user networks: one UDP socket on port 53 of
/// the holder's namespace (every bridge's gateway), answering an asker
/// with the names of the network it is on (from the keeper's lease
/// files), and forwarding every other name to the helper's resolver.
struct Responder<'a> {
    dir: &'a Path,
    sock: std::net::UdpSocket,
    /// The helper's resolver.
    upstream: std::net::Ipv4Addr,
    /// Made at the first name to forward: the helper that routes to the
    /// upstream starts after the holder.
    forwarder: Option<dns::Forwarder>,
    buf: Vec<u8>,
}

impl<'a> Responder<'a> {
    fn open(dir: &'a Path, upstream: std::net::Ipv4Addr) -> std::io::Result<Responder<'a>> {
        let sock = std::net::UdpSocket::bind((std::net::Ipv4Addr::UNSPECIFIED, 53))?;
        sock.set_nonblocking(true)?;
        Ok(Responder {
            dir,
            sock,
            upstream,
            forwarder: None,
            buf: vec![0; 4096],
        })
    }

    /// Relay `query` from `from` upstream; false when it cannot go.
    fn forward(&mut self, query: &[u8], from: std::net::SocketAddr) -> bool {
        if self.forwarder.is_none() {
            self.forwarder = dns::Forwarder::new((self.upstream, 53).into()).ok();
        }
        self.forwarder
            .as_mut()
            .is_some_and(|f| f.relay(query, from, Instant::now()).is_ok())
    }

    /// Answer what comes until `until`.
    fn serve_until(&mut self, until: Instant) {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        loop {
            let now = Instant::now();
            if now >= until {
                return;
            }
            let wake = self
                .forwarder
                .as_ref()
                .and_then(|f| f.next_deadline())
                .map_or(until, |d| d.min(until));
            let ms = wake.saturating_duration_since(now).as_millis();
            let timeout = PollTimeout::try_from(ms.min(60_000) as i32).unwrap_or(PollTimeout::MAX);
            let mut fds = vec![PollFd::new(self.sock.as_fd(), PollFlags::POLLIN)];
            if let Some(f) = &self.forwarder {
                fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
            }
            if poll(&mut fds, timeout).is_err() {
                continue;
            }
            let ready = process::ready(&fds);
            drop(fds);
            if ready[0] {
                self.queries();
            }
            let Some(f) = &mut self.forwarder else {
                continue;
            };
            if ready.get(1) == Some(&true) {
                while let Ok(Some((reply, to))) = f.receive() {
                    let _ = self.sock.send_to(&reply, to);
                }
            }
            for (reply, to) in f.expire(Instant::now()) {
                let _ = self.sock.send_to(&reply, to);
            }
        }
    }

    fn queries(&mut self) {
        while let Ok((n, from)) = self.sock.recv_from(&mut self.buf) {
            let std::net::SocketAddr::V4(client) = from else {
                continue;
            };
            // Only askers on one of the networks: anything else (nothing
            // else can reach this namespace) gets no answer.
            let Some(names) = super::names_seen_by(self.dir, *client.ip()) else {
                continue;
            };
            let mut table = dns::Table::new();
            for (name, addr) in &names {
                table.add(name, *addr);
            }
            let query = &self.buf[..n];
            match dns::answer(&table, query) {
                dns::Answer::Reply(reply) => {
                    let _ = self.sock.send_to(&reply, from);
                }
                dns::Answer::Forward => {
                    let query = query.to_vec();
                    if !self.forward(&query, from) {
                        if let Some(fail) = dns::error_reply(&query, dns::Rcode::ServFail) {
                            let _ = self.sock.send_to(&fail, from);
                        }
                    }
                }
                dns::Answer::Refuse => {}
            }
        }
    }
}

/// In the holder's fresh network namespace: loopback, the bridge with the
/// gateway's address, forwarding, and masquerading of the subnet's traffic
/// out of whatever interface the helper makes.
fn set_up_network() -> Result<(), SetupError> {
    net::loopback_up().map_err(SetupError::Loopback)?;
    let mut route = netlink::Route::open().map_err(io("netlink"))?;
    let bridge = route
        .add_bridge(BRIDGE)
        .map_err(io("creating bridge burrow0"))?;
    route
        .set_mtu(bridge, MTU)
        .and_then(|()| route.set_group(bridge, BRIDGE_GROUP))
        .and_then(|()| route.set_mac(bridge, crate::sandbox::link::gateway_mac(GATEWAY)))
        .and_then(|()| route.add_address_v4(bridge, GATEWAY, PREFIX))
        .and_then(|()| route.set_up(bridge))
        .map_err(io("configuring bridge burrow0"))?;
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").map_err(io("enabling forwarding"))?;
    // Where br_netfilter is loaded, frames bridged between two containers
    // of one network also pass the IP hooks, as from the bridge to itself,
    // and the rule that keeps networks apart would drop them: this
    // namespace's bridges need no IP filtering of bridged frames.
    let apart = match std::fs::write("/proc/sys/net/bridge/bridge-nf-call-iptables", "0") {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => {
            eprintln!(
                "burrow keeper: user networks are not kept apart: bridge-nf-call-iptables: {e}"
            );
            false
        }
    };
    masquerade(apart)
}

/// What lets the port forwarder connect to a container from its client's
/// address (a socket with IP_TRANSPARENT, bound to that address, in this
/// namespace): the container's replies, routed back here, are marked when
/// they belong to such a socket, and marked packets are delivered locally.
fn transparent() -> Result<(), SetupError> {
    use super::{TRANSPARENT_MARK, TRANSPARENT_TABLE};
    let mut route = netlink::Route::open().map_err(io("netlink"))?;
    route
        .add_fwmark_rule_v4(TRANSPARENT_MARK, TRANSPARENT_TABLE)
        .and_then(|()| route.add_local_default_route_v4(TRANSPARENT_TABLE, netlink::LOOPBACK))
        .map_err(io("policy routing"))?;
    let mark = TRANSPARENT_MARK.to_string();
    let iptables = match firewall()? {
        Firewall::Nft(nft) => {
            let rules = format!(
                "table ip burrow {{\n  chain prerouting {{\n    type filter hook prerouting priority mangle; policy accept;\n    socket transparent 1 meta mark set {mark}\n  }}\n}}\n"
            );
            return run_rules(&nft, &["-f", "-"], &rules);
        }
        Firewall::Iptables(iptables) => iptables,
    };
    let args = [
        "-t",
        "mangle",
        "-A",
        "PREROUTING",
        "-m",
        "socket",
        "--transparent",
        "-j",
        "MARK",
        "--set-mark",
        &mark,
    ];
    run_rules(&iptables, &args, "")
}

/// nft's rule set. Every bridge is in [`BRIDGE_GROUP`]: traffic from a
/// bridge out of the namespace takes the outbound interface's address;
/// traffic routed from one bridge to another (one network to another) is
/// dropped, as Docker keeps its networks apart. Traffic between two
/// containers of one network is bridged and never routed.
fn ruleset(apart: bool) -> String {
    let g = BRIDGE_GROUP;
    let drop = if apart {
        format!("\n    iifgroup {g} oifgroup {g} drop")
    } else {
        String::new()
    };
    format!(
        "table ip burrow {{\n  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    iifgroup {g} oifgroup != {g} masquerade\n  }}\n  chain forward {{\n    type filter hook forward priority filter; policy accept;{drop}\n  }}\n}}\n"
    )
}

/// The program rules are loaded with: nft(8), else iptables(8), found in
/// `PATH` or the sbin directories (an ordinary user's `PATH` on Debian has
/// none of them).
enum Firewall {
    Nft(PathBuf),
    Iptables(PathBuf),
}

fn firewall() -> Result<Firewall, SetupError> {
    let mut path = std::env::var_os("PATH").unwrap_or_default();
    path.push(":/usr/sbin:/sbin");
    if let Some(nft) = fs::executable_in(&path, "nft") {
        return Ok(Firewall::Nft(nft));
    }
    fs::executable_in(&path, "iptables")
        .map(Firewall::Iptables)
        .ok_or(SetupError::NoFirewall)
}

/// Load [`ruleset`] (networks kept `apart` or not), or the same rules in
/// iptables' words when there is no nft.
fn masquerade(apart: bool) -> Result<(), SetupError> {
    let g = BRIDGE_GROUP.to_string();
    let iptables = match firewall()? {
        Firewall::Nft(nft) => return run_rules(&nft, &["-f", "-"], &ruleset(apart)),
        Firewall::Iptables(iptables) => iptables,
    };
    // xt_devgroup takes no input group in POSTROUTING: there, what leaves
    // through neither a bridge nor loopback is masqueraded (the holder's
    // own traffic has that interface's address already).
    let nat = [
        "-t",
        "nat",
        "-A",
        "POSTROUTING",
        "!",
        "-o",
        "lo",
        "-m",
        "devgroup",
        "!",
        "--dst-group",
        &g,
        "-j",
        "MASQUERADE",
    ];
    let apart_rule = [
        "-A",
        "FORWARD",
        "-m",
        "devgroup",
        "--src-group",
        &g,
        "--dst-group",
        &g,
        "-j",
        "DROP",
    ];
    run_rules(&iptables, &nat, "")?;
    if apart {
        run_rules(&iptables, &apart_rule, "")?;
    }
    Ok(())
}

/// Run `program` with `args` and `input` on its stdin; its stderr is the
/// error.
fn run_rules(program: &Path, args: &[&str], input: &str) -> Result<(), SetupError> {
    let failed = |source| SetupError::Program {
        program: program.to_path_buf(),
        source,
    };
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(failed)?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    let out = child.wait_with_output().map_err(failed)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(SetupError::Refused {
            program: program.to_path_buf(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}
