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

/// Join the keeper for container `id`, on the default network or on the
/// user networks `user` (the first one's gateway its default route),
/// starting it if need be; None (the reason kept for [`unusable`]) when it
/// cannot work here.
pub fn join(
    store: &Store,
    mapping: &IdMapping,
    helper: &Helper,
    id: &str,
    user: &[OnNetwork<'_>],
    idle: std::time::Duration,
) -> Option<(Join, helper::Kind)> {
    let base = store.paths.runtime_base();
    let failed_lately = std::fs::metadata(unusable_file(base))
        .and_then(|m| m.modified())
        .is_ok_and(|t| t.elapsed().is_ok_and(|e| e < RETRY_AFTER));
    if failed_lately {
        return None;
    }
    let segments: Vec<(Segment, &[String])> = if user.is_empty() {
        vec![(Segment::default_network(), &[][..])]
    } else {
        user.iter()
            .map(|u| {
                let subnet = u.network.subnet();
                let gateway = u.network.gateway().parse().unwrap_or(subnet.gateway());
                (Segment::user(subnet.base, subnet.prefix, gateway), u.names)
            })
            .collect()
    };
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
                    make_bridge: !user.is_empty(),
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
            Some((joined, j.helper))
        }
        Err(e) => {
            tracing::warn!("the shared network is unavailable: {e}");
            let _ = std::fs::write(unusable_file(base), e.to_string());
            None
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
