//! A container joining a user network, from its supervisor: connect to the
//! network's switch (starting it, detached, when none runs), lease an
//! address, create the TAP device in PID 1's network namespace from a child
//! that joined its user and network namespaces, hand the device to the
//! switch, and hold the connection while the container runs. Dropping the
//! [`Membership`] (or the supervisor dying) is the leave.

use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::switch::{self, Reply, Request};
use super::user::Network;
use super::NetworkError;
use crate::exit;
use crate::linux::channel::ChannelError;
use crate::linux::ns::{Namespaces, NsError};
use crate::linux::process::ForkError;
use crate::linux::worker::{self, SpawnError, WorkerError};
use crate::linux::{process, seqpacket, tap};
use crate::sandbox::{Failure, Step};

/// How long joining may wait for a switch to come up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Docker's `NetworkSettings.Networks.<name>` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Endpoint {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub gateway: String,
    #[serde(rename = "IPAddress", default)]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen", default)]
    pub ip_prefix_len: u8,
    #[serde(default)]
    pub mac_address: String,
}

impl Endpoint {
    /// The container no longer runs: its address and MAC are gone, its
    /// network and aliases stay (Docker keeps the entry of a stopped
    /// container the same way).
    pub fn clear_lease(&mut self) {
        self.ip_address.clear();
        self.ip_prefix_len = 0;
        self.mac_address.clear();
        self.gateway.clear();
    }
}

/// Who joins.
pub struct Joiner<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub aliases: &'a [String],
    /// The container's `/etc/hosts` on the host side (bind-mounted inside).
    pub hosts_file: PathBuf,
    /// PID 1, waiting at its gate.
    pub pid1: i32,
}

/// A container on a user network: the switch counts it as long as this
/// lives (or until [`Membership::leave`]).
#[derive(Debug)]
pub struct Membership {
    conn: OwnedFd,
    pub endpoint: Endpoint,
}

impl Membership {
    /// Leave the network and wait (briefly) until the switch has taken the
    /// container's names out of the other members' `/etc/hosts`. Dropping
    /// a membership leaves too, without waiting.
    pub fn leave(self) {
        let bye = serde_json::to_vec(&Request::Leave).expect("request serializes");
        if seqpacket::send(self.conn.as_raw_fd(), &bye, None).is_err() {
            return;
        }
        // A switch that is gone or stuck must not hold the container's end
        // up for long.
        let mut fds = [nix::poll::PollFd::new(
            self.conn.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        if let Ok(1..) = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(LEAVE_TIMEOUT_MS)) {
            let _ = read_reply(&self.conn);
        }
    }
}

/// How long a leaving member waits for the switch's answer.
const LEAVE_TIMEOUT_MS: u16 = 2000;

/// Why a container could not join a network.
#[derive(Debug, thiserror::Error)]
pub enum JoinFailure {
    #[error("process {0} is gone")]
    Gone(i32),
    #[error(transparent)]
    Namespace(#[from] NsError),
    #[error("refused: {0}")]
    Refused(String),
    #[error("unexpected answer {0:?}")]
    Answer(Reply),
    #[error("the switch closed the connection")]
    Closed,
    #[error("{0}")]
    Socket(#[source] nix::Error),
    #[error("{0}")]
    Garbled(#[source] serde_json::Error),
    #[error("no switch answered ({why}; see {})", .log.display())]
    NoSwitch { why: Box<JoinFailure>, log: PathBuf },
    #[error("pipe: {0}")]
    Pipe(#[source] std::io::Error),
    #[error("fork: {0}")]
    Fork(#[source] ForkError),
    #[error(transparent)]
    Child(#[from] Failure),
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error("/proc/self/exe: {0}")]
    Exe(#[source] std::io::Error),
    #[error("switch log: {0}")]
    SwitchLog(#[source] std::io::Error),
    #[error("starting the switch: {0}")]
    Detach(#[source] process::DetachError),
}

fn fail(net: &Network, detail: JoinFailure) -> NetworkError {
    NetworkError::Join {
        network: net.name.clone(),
        detail,
    }
}

/// Join `net`. `runtime` is the store's runtime dir, `store_root` what the
/// switch is started with (`--root`).
pub fn join(
    runtime: &Path,
    store_root: &Path,
    net: &Network,
    who: &Joiner,
) -> Result<Membership, NetworkError> {
    let proc_root = Path::new("/proc");
    let start = process::start_time(proc_root, who.pid1)
        .ok_or_else(|| fail(net, JoinFailure::Gone(who.pid1)))?;
    let ns = Namespaces::open_net(proc_root, who.pid1, start).map_err(|e| fail(net, e.into()))?;
    let join = Request::Join {
        id: who.id.to_string(),
        name: who.name.to_string(),
        aliases: who.aliases.to_vec(),
        hosts_file: who.hosts_file.clone(),
    };
    let join = serde_json::to_vec(&join).expect("request serializes");
    // A switch that is exiting (its last member just left) closes our
    // connection unanswered: start a new one and ask again.
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    let mut spawned = false;
    let (conn, ip, prefix) = loop {
        let attempt = seqpacket::connect_to(&switch::socket_path(runtime, net))
            .and_then(|c| {
                seqpacket::send(c.as_raw_fd(), &join, None)?;
                Ok(c)
            })
            .map_err(JoinFailure::Socket)
            .and_then(|c| match read_reply(&c) {
                Ok(Reply::Lease { ip, prefix }) => Ok((c, ip, prefix)),
                Ok(Reply::Refused(why)) => Err(JoinFailure::Refused(why)),
                Ok(r) => Err(JoinFailure::Answer(r)),
                Err(e) => Err(e),
            });
        match attempt {
            Ok(got) => break got,
            Err(why @ JoinFailure::Refused(_)) => return Err(fail(net, why)),
            Err(why) => {
                if Instant::now() >= deadline {
                    let log = switch::log_path(runtime, net);
                    return Err(fail(
                        net,
                        JoinFailure::NoSwitch {
                            why: Box::new(why),
                            log,
                        },
                    ));
                }
                if !spawned {
                    spawn_switch(runtime, store_root, net).map_err(|e| fail(net, e))?;
                    spawned = true;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    };
    let mac = switch::mac_for(ip);
    make_tap(&ns, &conn, mac, ip, prefix).map_err(|f| fail(net, f))?;
    match read_reply(&conn) {
        Ok(Reply::Joined) => {}
        Ok(Reply::Refused(why)) => return Err(fail(net, JoinFailure::Refused(why))),
        Ok(r) => return Err(fail(net, JoinFailure::Answer(r))),
        Err(e) => return Err(fail(net, e)),
    }
    Ok(Membership {
        conn,
        endpoint: Endpoint {
            network_id: net.id.clone(),
            aliases: who.aliases.to_vec(),
            gateway: net.gateway(),
            ip_address: ip.to_string(),
            ip_prefix_len: prefix,
            mac_address: switch::mac_text(mac),
        },
    })
}

fn read_reply(conn: &OwnedFd) -> Result<Reply, JoinFailure> {
    let mut buf = vec![0u8; 4096];
    match seqpacket::recv(conn.as_raw_fd(), &mut buf) {
        Ok((0, _)) => Err(JoinFailure::Closed),
        Ok((n, _)) => serde_json::from_slice(&buf[..n]).map_err(JoinFailure::Garbled),
        Err(e) => Err(JoinFailure::Socket(e)),
    }
}

/// In a child that joins the container's user and network namespaces:
/// create the TAP device, configure it, and send it to the switch with
/// `Attach` over `conn`.
fn make_tap(
    ns: &Namespaces,
    conn: &OwnedFd,
    mac: [u8; 6],
    ip: Ipv4Addr,
    prefix: u8,
) -> Result<(), JoinFailure> {
    let attach = serde_json::to_vec(&Request::Attach).expect("request serializes");
    let w = worker::spawn(|_report| -> Result<Option<OwnedFd>, Failure> {
        ns.join()
            .map_err(|e| Failure::new(Step::JoinNamespaces, e.to_string(), exit::BURROW))?;
        let sys = |what: &str, e: nix::Error| {
            Failure::new(Step::Network, format!("{what}: {e}"), exit::BURROW)
        };
        let (dev, name) = tap::create("eth%d").map_err(|e| sys("creating a TAP device", e))?;
        tap::configure(&name, mac, ip, prefix, switch::MTU)
            .map_err(|e| sys(&format!("configuring {name}"), e))?;
        seqpacket::send(conn.as_raw_fd(), &attach, Some(dev.as_raw_fd()))
            .map_err(|e| sys("handing the device to the switch", e))?;
        Ok(None)
    })
    .map_err(|e| match e {
        SpawnError::Pipe(e) => JoinFailure::Pipe(e),
        SpawnError::Fork(e) => JoinFailure::Fork(e),
    })?;
    match w.wait().0 {
        Ok(_) => Ok(()),
        Err(WorkerError::Failed(f)) => Err(f.into()),
        Err(WorkerError::Channel(e)) => Err(e.into()),
    }
}

/// Start `burrow --root ROOT __switch NAME` detached: in a session of its
/// own, reparented away from the supervisor (a double fork), stdio on
/// /dev/null and no other descriptor of ours, so that it neither dies with
/// the container that started it nor holds a caller's pipe open.
fn spawn_switch(runtime: &Path, store_root: &Path, net: &Network) -> Result<(), JoinFailure> {
    let exe = std::fs::read_link("/proc/self/exe").map_err(JoinFailure::Exe)?;
    let log = std::fs::File::options()
        .create(true)
        .append(true)
        .open(switch::log_path(runtime, net))
        .map_err(JoinFailure::SwitchLog)?;
    let args = [
        "--root".as_ref(),
        store_root.as_os_str(),
        "__switch".as_ref(),
        net.name.as_ref(),
    ];
    process::spawn_detached(&exe, "burrow", &args, &log, None).map_err(JoinFailure::Detach)
}
