//! A container on the default network through the user's keeper: the
//! keeper found or started, an address leased, and what the sandbox needs
//! to join it; and why not, kept for the front end's one notice, when the
//! container falls back to a network helper of its own.

use std::sync::Arc;

use crate::linux::userns::IdMapping;
use crate::network::keeper::{self, BRIDGE, GATEWAY, MTU, PREFIX};
use crate::network::{helper, member::Endpoint, Helper};
use crate::sandbox::link::{Join, Link};
use crate::store::Store;

/// The name of the default network's entry in a record's networks.
pub const NETWORK: &str = "bridge";

/// The file that says why the keeper could not be used, last time.
const UNUSABLE: &str = "keeper-unusable";

/// Join the keeper for container `id`, starting it if need be; None (the
/// reason kept for [`unusable`]) when it cannot work here.
pub fn join(
    store: &Store,
    mapping: &IdMapping,
    helper: &Helper,
    id: &str,
    idle: std::time::Duration,
) -> Option<(Join, helper::Kind)> {
    let base = store.paths.runtime_base();
    match keeper::ensure(base, mapping, helper, id, idle) {
        Ok(j) => {
            let _ = std::fs::remove_file(base.join(UNUSABLE));
            let link = Link {
                address: j.address,
                prefix: PREFIX,
                gateway: GATEWAY,
                bridge: BRIDGE.into(),
                mtu: MTU,
            };
            let joined = Join {
                namespaces: Arc::new(j.namespaces),
                held: vec![Arc::new(j.users), Arc::new(j.lease)],
                link,
            };
            Some((joined, j.helper))
        }
        Err(e) => {
            tracing::warn!("the shared network is unavailable: {e}");
            let _ = std::fs::write(base.join(UNUSABLE), e.to_string());
            None
        }
    }
}

/// Why the last start could not use the keeper, if it could not.
pub fn unusable(runtime_base: &std::path::Path) -> Option<String> {
    std::fs::read_to_string(runtime_base.join(UNUSABLE)).ok()
}

/// The record's entry for the default network while the container runs.
pub fn endpoint(link: &Link) -> Endpoint {
    Endpoint {
        network_id: NETWORK.into(),
        aliases: Vec::new(),
        gateway: link.gateway.to_string(),
        ip_address: link.address.to_string(),
        ip_prefix_len: link.prefix,
        mac_address: String::new(),
    }
}
