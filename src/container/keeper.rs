//! A container on the default network or a user network through the
//! user's keeper: the keeper found or started, an address leased on the
//! network's bridge, and what the sandbox needs to join it; and why not,
//! kept for the front end's one notice, when the container falls back to
//! a network helper (and a user network's switch) of its own.

use std::sync::Arc;

use crate::linux::userns::IdMapping;
use crate::network::keeper::{self, Place, Segment, MTU};
use crate::network::user::Network;
use crate::network::{helper, member::Endpoint, switch, Helper};
use crate::sandbox::link::{Join, Link};
use crate::store::Store;

/// The name of the default network's entry in a record's networks.
pub const NETWORK: &str = "bridge";

/// The file that says why the keeper of the caller's mount namespace could
/// not be used, last time (beside the keeper's directory, which goes with
/// the keeper).
fn unusable_file(runtime_base: &std::path::Path) -> std::path::PathBuf {
    keeper::dir(runtime_base).with_extension("unusable")
}

/// How long after a keeper failed to start the next start goes without
/// trying again: a host that lacks what it needs would otherwise pay a
/// failed keeper on every container's start.
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(300);

/// A user network to join instead of the default one, with the names its
/// DNS answers for the container.
#[derive(Debug, Clone, Copy)]
pub struct OnNetwork<'a> {
    pub network: &'a Network,
    pub names: &'a [String],
}

/// The networks a container joins: the default one or not, and user
/// networks; the first of them its default route.
#[derive(Debug, Clone, Copy)]
pub struct Places<'a> {
    pub default: bool,
    pub user: &'a [OnNetwork<'a>],
}

/// A user network's place on the holder's bridges.
fn segment_of(network: &Network) -> Segment {
    let subnet = network.subnet();
    let gateway = network.gateway().parse().unwrap_or(subnet.gateway());
    Segment::user(subnet.base, subnet.prefix, gateway)
}

/// Join the keeper for container `id` on `places`, starting it if need
/// be; None (the reason kept for [`unusable`]) when it cannot work here.
/// A network with no free address is not the keeper's failure: the
/// container is refused (as Docker refuses it), and the keeper stays in use
/// for the others.
pub fn join(
    store: &Store,
    mapping: &IdMapping,
    helper: &Helper,
    id: &str,
    places: Places<'_>,
    idle: std::time::Duration,
) -> Result<Option<(Join, helper::Kind)>, keeper::KeeperError> {
    let base = store.paths.runtime_base();
    let failed_lately = std::fs::metadata(unusable_file(base))
        .and_then(|m| m.modified())
        .is_ok_and(|t| t.elapsed().is_ok_and(|e| e < RETRY_AFTER));
    if failed_lately {
        return Ok(None);
    }
    let default = places
        .default
        .then(|| (Segment::default_network(), &[][..]));
    let segments: Vec<(Segment, &[String])> = default
        .into_iter()
        .chain(places.user.iter().map(|u| (segment_of(u.network), u.names)))
        .collect();
    let places: Vec<Place> = segments
        .iter()
        .map(|(segment, names)| Place { segment, names })
        .collect();
    match keeper::ensure(base, mapping, helper, id, &places, idle) {
        Ok(j) => {
            let _ = std::fs::remove_file(unusable_file(base));
            let links = segments
                .iter()
                .zip(&j.leases)
                .map(|((segment, _), (_, address))| Link {
                    address: *address,
                    prefix: segment.prefix,
                    gateway: segment.gateway,
                    // The default network's bridge is the holder's; a user
                    // network's is made by whoever comes first.
                    make_bridge: segment.bridge != keeper::BRIDGE,
                    bridge: segment.bridge.clone(),
                    mtu: MTU,
                    mac: switch::mac_for(*address),
                })
                .collect();
            let mut held = vec![Arc::new(j.users)];
            held.extend(j.leases.into_iter().map(|(f, _)| Arc::new(f)));
            let joined = Join {
                namespaces: Arc::new(j.namespaces),
                held,
                links,
            };
            Ok(Some((joined, j.helper)))
        }
        Err(e @ keeper::KeeperError::NoAddress(_)) => Err(e),
        Err(e) => {
            tracing::warn!("the shared network is unavailable: {e}");
            let _ = std::fs::write(unusable_file(base), e.to_string());
            Ok(None)
        }
    }
}

/// Why the last start could not use the keeper, if it could not.
pub fn unusable(runtime_base: &std::path::Path) -> Option<String> {
    std::fs::read_to_string(unusable_file(runtime_base)).ok()
}

/// The record's entry for the network while the container runs: the
/// default network's (`network_id` "bridge"), or a user network's.
pub fn endpoint(link: &Link, network_id: &str, aliases: &[String]) -> Endpoint {
    Endpoint {
        network_id: network_id.into(),
        aliases: aliases.to_vec(),
        gateway: link.gateway.to_string(),
        ip_address: link.address.to_string(),
        ip_prefix_len: link.prefix,
        mac_address: switch::mac_text(link.mac),
    }
}

/// Why a running container could not change networks.
#[derive(Debug, thiserror::Error)]
pub enum LiveNetworkError {
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("container {0} is not on the user's keeper (it has a user namespace of its own): connect it before it starts")]
    NotShared(String),
    #[error("no network helper (pasta or slirp4netns) is installed")]
    NoHelper,
    #[error("the user's keeper: {0}")]
    Keeper(#[from] keeper::KeeperError),
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("changing the container's interfaces: {0}")]
    Spawn(#[source] crate::linux::worker::SpawnError),
    #[error("changing the container's interfaces: {0}")]
    Worker(#[source] crate::linux::worker::WorkerError<crate::sandbox::Failure>),
}

/// PID 1 of a running `rec` by pid and start time, and its network
/// namespace, when it shares the holder's user namespace.
fn pid1_on_keeper(
    store: &Store,
    rec: &super::ContainerRecord,
    holder: keeper::Proc,
) -> Result<(keeper::Proc, std::fs::File), LiveNetworkError> {
    use std::os::unix::fs::MetadataExt;
    let pid = rec.state.pid;
    let start = rec
        .pid1_start(store)
        .filter(|_| pid > 0)
        .ok_or_else(|| LiveNetworkError::NotRunning(rec.name.clone()))?;
    let pid1 = keeper::Proc { pid, start };
    let user_ns = |pid: i32| std::fs::metadata(format!("/proc/{pid}/ns/user")).map(|m| m.ino());
    match (user_ns(pid), user_ns(holder.pid)) {
        (Ok(a), Ok(b)) if a == b => {}
        (Err(_), _) => return Err(LiveNetworkError::NotRunning(rec.name.clone())),
        _ => return Err(LiveNetworkError::NotShared(rec.name.clone())),
    }
    let net = std::fs::File::open(format!("/proc/{pid}/ns/net")).map_err(|source| {
        LiveNetworkError::Io {
            what: "the container's network namespace",
            source,
        }
    })?;
    // Opened, then checked: still the recorded PID 1.
    if !pid1.alive() {
        return Err(LiveNetworkError::NotRunning(rec.name.clone()));
    }
    Ok((pid1, net))
}

/// Run `job` in a worker that joined the holder's user and network
/// namespaces.
fn in_holder(
    holder: &crate::linux::ns::Namespaces,
    job: impl FnOnce() -> std::io::Result<()>,
) -> Result<(), LiveNetworkError> {
    use crate::sandbox::{Failure, Step};
    let worker =
        crate::linux::worker::spawn(|_| -> Result<Option<std::os::fd::OwnedFd>, Failure> {
            holder.join().map_err(|e| {
                Failure::new(Step::JoinNamespaces, e.to_string(), crate::exit::BURROW)
            })?;
            job().map_err(|e| Failure::io(Step::Network, &e, crate::exit::BURROW))?;
            Ok(None)
        })
        .map_err(LiveNetworkError::Spawn)?;
    let (word, _) = worker.wait();
    word.map(|_| ()).map_err(LiveNetworkError::Worker)
}

/// Put running container `rec` on user network `network` as well, known
/// there by its name and `aliases`: an address leased, an interface made
/// in its network namespace from the holder's, and the lease held for it
/// until PID 1 ends. Returns the record's entry for the network.
pub fn connect_running(
    store: &Store,
    mapping: &IdMapping,
    access: &crate::network::Access,
    rec: &super::ContainerRecord,
    network: &Network,
    aliases: &[String],
) -> Result<Endpoint, LiveNetworkError> {
    let helper = helper::find(crate::network::Mode::Private, &access.helper_path)
        .ok()
        .flatten()
        .ok_or(LiveNetworkError::NoHelper)?;
    let segment = segment_of(network);
    let names: Vec<String> = std::iter::once(rec.name.clone())
        .chain(aliases.iter().cloned())
        .collect();
    let place = Place {
        segment: &segment,
        names: &names,
    };
    let base = store.paths.runtime_base();
    let idle = access.keeper.unwrap_or(keeper::IDLE);
    let joined = keeper::ensure(base, mapping, &helper, &rec.id, &[place], idle)?;
    let (pid1, net) = pid1_on_keeper(store, rec, joined.holder)?;
    let (lease, address) = joined.leases.first().expect("one place, one lease");
    let link = Link {
        address: *address,
        prefix: segment.prefix,
        gateway: segment.gateway,
        make_bridge: true,
        bridge: segment.bridge.clone(),
        mtu: MTU,
        mac: switch::mac_for(*address),
    };
    in_holder(&joined.namespaces, || {
        let mut shared = crate::linux::netlink::Route::open()?;
        crate::sandbox::link::attach_running(&mut shared, &net, &link).map(|_| ())
    })?;
    keeper::hold_for(base, pid1, &segment, lease, *address)?;
    let on_user_network = rec
        .network_settings
        .networks
        .iter()
        .any(|(name, e)| name != NETWORK && !e.ip_address.is_empty());
    if !on_user_network && rec.host_config.dns.is_empty() {
        // Its resolver was the helper's: the network's responder answers
        // its names and forwards the rest there.
        name_resolver(
            &store.container_dir(&rec.id).join("resolv.conf"),
            link.gateway,
        )
        .map_err(|source| LiveNetworkError::Io {
            what: "the container's resolv.conf",
            source,
        })?;
    }
    Ok(endpoint(&link, &network.id, aliases))
}

/// Make the resolv.conf at `path` (bound into a running container, so
/// written in place) name `server` only, its search and options kept.
fn name_resolver(path: &std::path::Path, server: std::net::Ipv4Addr) -> std::io::Result<()> {
    use std::io::Write;
    let old = std::fs::read_to_string(path)?;
    let mut text = format!("nameserver {server}\n");
    for l in old
        .lines()
        .filter(|l| l.starts_with("search") || l.starts_with("options"))
    {
        text.push_str(l);
        text.push('\n');
    }
    let mut f = std::fs::File::options()
        .write(true)
        .truncate(true)
        .open(path)?;
    f.write_all(text.as_bytes())
}

/// Take running container `rec` off user network `network`, where it has
/// `address`: its interface removed, its names gone from the network's
/// DNS, its address given back once nothing holds it.
pub fn disconnect_running(
    store: &Store,
    mapping: &IdMapping,
    rec: &super::ContainerRecord,
    network: &Network,
    address: std::net::Ipv4Addr,
) -> Result<(), LiveNetworkError> {
    let base = store.paths.runtime_base();
    let (holder, namespaces) = keeper::holder(base, mapping)?;
    let (_, net) = pid1_on_keeper(store, rec, holder)?;
    in_holder(&namespaces, || {
        crate::sandbox::link::detach_running(&net, address)
    })?;
    keeper::release(base, &segment_of(network), address);
    Ok(())
}

/// A removed user network's bridge taken out of the running keeper, with
/// its leases, so that a network made again later starts clean. Nothing to
/// do when no keeper runs (its bridges went with the holder); a bridge a
/// container still holds an address on stays until the holder goes.
pub fn remove_bridge(
    store: &Store,
    mapping: &IdMapping,
    network: &Network,
) -> Result<(), LiveNetworkError> {
    let base = store.paths.runtime_base();
    let Ok((_, namespaces)) = keeper::holder(base, mapping) else {
        return Ok(());
    };
    let segment = segment_of(network);
    if !keeper::forget(base, &segment) {
        return Ok(());
    }
    in_holder(&namespaces, || {
        let mut shared = crate::linux::netlink::Route::open()?;
        match shared.link_index(&segment.bridge)? {
            Some(index) => shared.delete_link(index),
            None => Ok(()),
        }
    })
}
