//! User networks: listing (with Docker's filters), inspecting with their
//! running members, creating, removing the ones no container names, and
//! pruning.

use std::collections::BTreeMap;

use super::filters::Filters;
use super::{Engine, Error, Result};
use crate::container::{self, keeper, ContainerRecord};
use crate::network::switch;
use crate::network::user::{self, Network, UserNetworkError};
use crate::network::Mode;

impl From<UserNetworkError> for Error {
    fn from(e: UserNetworkError) -> Self {
        match e {
            UserNetworkError::NoSuch(_) => Error::not_found(e),
            UserNetworkError::Exists(_) => Error::conflict(e),
            UserNetworkError::BadName(_)
            | UserNetworkError::Reserved(_)
            | UserNetworkError::BadSubnet(_)
            | UserNetworkError::Overlap { .. }
            | UserNetworkError::NoSubnet => Error::invalid(e),
            UserNetworkError::Store(s) => s.into(),
            e @ (UserNetworkError::Io { .. } | UserNetworkError::Json { .. }) => Error::Network(e),
        }
    }
}

/// The containers that name `net` (any state): they keep it from removal.
fn users<'a>(containers: &'a [ContainerRecord], net: &Network) -> Vec<&'a ContainerRecord> {
    containers
        .iter()
        .filter(|c| c.user_network() == Some(net.name.as_str()))
        .collect()
}

/// The filters `list` knows.
const LIST_FILTERS: &[&str] = &[
    "name", "id", "label", "label!", "driver", "scope", "type", "dangling",
];

/// The networks the filters select, by name.
pub fn list(engine: &Engine, filters: &Filters) -> Result<Vec<Network>> {
    filters.check(LIST_FILTERS)?;
    let dangling = filters.boolean("dangling")?;
    for t in filters.values("type") {
        if t != "custom" && t != "builtin" {
            return Err(Error::invalid(format!("invalid filter: 'type'='{t}'")));
        }
    }
    let containers = if dangling.is_some() {
        container::list(&engine.store)?
    } else {
        Vec::new()
    };
    Ok(user::list(&engine.store)?
        .into_iter()
        .filter(|n| {
            filters.matches("name", |v| n.name.contains(v))
                && filters.matches("id", |v| n.id.starts_with(v))
                && filters.matches("driver", |v| v == n.driver)
                && filters.matches("scope", |v| v == n.scope)
                // Every network here is one a user made.
                && filters.matches("type", |v| v == "custom")
                && filters.labels_match(&n.labels)
                && dangling.is_none_or(|d| d == users(&containers, n).is_empty())
        })
        .collect())
}

/// Docker's `network inspect` object: the stored network plus its running
/// containers (`Containers`: id → name, MAC, IPv4Address as ADDR/PREFIX).
pub fn inspect(engine: &Engine, name: &str) -> Result<serde_json::Value> {
    let net = user::get(&engine.store, name)?;
    let containers = container::list(&engine.store)?;
    let mut v = serde_json::to_value(&net)?;
    let mut members = serde_json::Map::new();
    for c in users(&containers, &net) {
        if !c.is_up(&engine.store) {
            continue;
        }
        let Some(e) = c.network_settings.networks.get(&net.name) else {
            continue;
        };
        if e.ip_address.is_empty() {
            continue;
        }
        members.insert(
            c.id.clone(),
            serde_json::json!({
                "Name": c.name,
                "MacAddress": e.mac_address,
                "IPv4Address": format!("{}/{}", e.ip_address, e.ip_prefix_len),
                "IPv6Address": "",
                "Aliases": e.aliases,
            }),
        );
    }
    v["Containers"] = serde_json::Value::Object(members);
    v["Options"] = serde_json::json!({});
    Ok(v)
}

/// A network as a front end asks for it.
#[derive(Debug, Clone, Default)]
pub struct NetworkRequest {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// IPv4 CIDR; the first free 10.89.N.0/24 when not given.
    pub subnet: Option<String>,
    /// Must be the subnet's first address when given.
    pub gateway: Option<String>,
    /// Docker's internal network (no outside access): its members reach
    /// out through the container's own helper here, so it is refused.
    pub internal: bool,
    /// Only `bridge` (the default when not given).
    pub driver: Option<String>,
    /// Driver options: none are known.
    pub options: BTreeMap<String, String>,
    /// Docker's `CheckDuplicate`: names are unique here whatever it says.
    pub check_duplicate: bool,
    /// Networks here are IPv4 only: refused.
    pub enable_ipv6: bool,
}

/// Create a network after checking every field.
pub fn create(engine: &Engine, req: &NetworkRequest) -> Result<Network> {
    let driver = req.driver.as_deref().unwrap_or("bridge");
    if driver != "bridge" {
        return Err(Error::invalid(format!(
            "network driver {driver:?} is not supported (bridge)"
        )));
    }
    user::validate_name(&req.name)?;
    if req.internal {
        return Err(Error::invalid(
            "internal networks are not supported: containers on a network reach out through their own helper",
        ));
    }
    if req.enable_ipv6 {
        return Err(Error::invalid(
            "IPv6 is not supported: networks here are IPv4 only",
        ));
    }
    if let Some(k) = req.labels.keys().find(|k| k.is_empty()) {
        return Err(Error::invalid(format!("invalid label {k:?}: no key")));
    }
    if let Some(k) = req.options.keys().next() {
        return Err(Error::invalid(format!(
            "network option {k:?} is not supported"
        )));
    }
    if req.gateway.is_some() && req.subnet.is_none() {
        return Err(Error::invalid("a gateway needs a subnet"));
    }
    let host_routes: Vec<user::Subnet> =
        crate::linux::net::ipv4_routes(std::path::Path::new("/proc"))
            .into_iter()
            .map(|(base, prefix)| user::Subnet { base, prefix })
            .collect();
    if let (Some(gw), Some(s)) = (&req.gateway, &req.subnet) {
        let subnet =
            user::Subnet::parse(s).ok_or_else(|| UserNetworkError::BadSubnet(s.clone()))?;
        if *gw != subnet.gateway().to_string() {
            return Err(Error::invalid(format!(
                "gateway {gw} is not supported: a network's gateway is its subnet's first address, {}",
                subnet.gateway()
            )));
        }
    }
    let net = user::create(
        &engine.store,
        &req.name,
        req.subnet.as_deref(),
        &req.labels,
        &host_routes,
    )?;
    super::events::network(engine, "create", &net.id, &net.name);
    Ok(net)
}

/// The network `name` names (a name, a full id or a unique id prefix).
pub fn find(engine: &Engine, name: &str) -> Result<Network> {
    Ok(user::get(&engine.store, name)?)
}

/// Remove a network unless a container names it (a conflict, which names
/// them).
pub fn remove(engine: &Engine, name: &str) -> Result<()> {
    let containers = container::list(&engine.store)?;
    let net = user::get(&engine.store, name)?;
    let using = users(&containers, &net);
    if !using.is_empty() {
        let names: Vec<&str> = using.iter().map(|c| c.name.as_str()).collect();
        return Err(Error::conflict(format!(
            "network {} is in use by container {} (remove it first)",
            net.name,
            names.join(", ")
        )));
    }
    user::remove(&engine.store, &net.name)?;
    forget_network(engine, &net);
    super::events::network(engine, "destroy", &net.id, &net.name);
    Ok(())
}

/// What a removed network leaves at run time: its switch's files, and its
/// bridge in the user's keeper. The network is gone from the store
/// already, so a bridge that cannot be taken down only waits for the
/// keeper's end.
fn forget_network(engine: &Engine, net: &Network) {
    switch::remove_leftovers(&engine.store.paths.runtime, net);
    if let Err(e) = keeper::remove_bridge(&engine.store, &engine.mapping, net) {
        tracing::warn!(
            "network {}: its bridge stays until the keeper ends: {e}",
            net.name
        );
    }
}

/// Remove every network no container names (of those `label`, `label!`
/// and `until` select); returns their names.
pub fn prune(engine: &Engine, filters: &Filters) -> Result<Vec<String>> {
    filters.check(&["label", "label!", "until"])?;
    let until: Vec<std::time::SystemTime> = filters
        .values("until")
        .map(super::containers::until_time)
        .collect::<Result<_>>()?;
    let containers = container::list(&engine.store)?;
    let mut deleted = Vec::new();
    for n in user::list(&engine.store)? {
        let created = humantime::parse_rfc3339_weak(&n.created).ok();
        let old_enough = until.iter().all(|u| created.is_some_and(|c| c < *u));
        if users(&containers, &n).is_empty() && filters.labels_match(&n.labels) && old_enough {
            user::remove(&engine.store, &n.name)?;
            forget_network(engine, &n);
            super::events::network(engine, "destroy", &n.id, &n.name);
            deleted.push(n.name);
        }
    }
    Ok(deleted)
}

/// Put a container that has not started on network `network`, known there
/// by `aliases` besides its name: it joins when it starts. A container on
/// no user network takes it as its own (`--network`); one on a user
/// network already is on both (its own keeps the default route). A
/// container that runs cannot change networks here.
pub fn connect(engine: &Engine, network: &str, container: &str, aliases: &[String]) -> Result<()> {
    let net = user::get(&engine.store, network)?;
    if let Some(a) = aliases.iter().find(|a| !user::is_plain_name(a)) {
        return Err(Error::invalid(format!("invalid network alias {a:?}")));
    }
    let live = |rec: &mut ContainerRecord| -> Result<()> {
        if rec.network_settings.networks.contains_key(&net.name) {
            return Err(Error::conflict(format!(
                "container {} is already on network {}",
                rec.name, net.name
            )));
        }
        let access = engine.settings.network_access();
        let aliases = kept_aliases(rec, aliases);
        let ep =
            keeper::connect_running(&engine.store, &engine.mapping, &access, rec, &net, &aliases)
                .map_err(live_error)?;
        rec.network_settings.networks.insert(net.name.clone(), ep);
        Ok(())
    };
    change_network(engine, container, live, |rec| {
        if rec.network_mode() == Mode::Host {
            return Err(Error::invalid(format!(
                "container {} shares the host's network: it cannot be connected to a network",
                rec.name
            )));
        }
        let endpoint = crate::network::member::Endpoint {
            network_id: net.id.clone(),
            aliases: kept_aliases(rec, aliases),
            ..Default::default()
        };
        if rec.user_network().is_none() {
            rec.host_config.network_mode = net.name.clone();
            rec.network_settings.networks.clear();
        }
        rec.network_settings
            .networks
            .insert(net.name.clone(), endpoint);
        Ok(())
    })
}

/// Take a container that has not started off network `network`. Off its
/// own network, the next one it is on becomes its own; off its last, it
/// starts with loopback only (Docker's container on no network), unless
/// connected again.
pub fn disconnect(engine: &Engine, network: &str, container: &str) -> Result<()> {
    let net = user::get(&engine.store, network)?;
    let live = |rec: &mut ContainerRecord| -> Result<()> {
        let not_on = || {
            Error::conflict(format!(
                "container {} is not connected to network {}",
                rec.name, net.name
            ))
        };
        let address = rec
            .network_settings
            .networks
            .get(&net.name)
            .ok_or_else(not_on)?
            .ip_address
            .parse()
            .map_err(|_| not_on())?;
        keeper::disconnect_running(&engine.store, &engine.mapping, rec, &net, address)
            .map_err(live_error)?;
        rec.network_settings.networks.remove(&net.name);
        if rec.host_config.network_mode == net.name {
            // Its next start goes on with the networks it is still on.
            rec.host_config.network_mode = match rec.network_settings.networks.keys().next() {
                Some(next) => next.clone(),
                None => Mode::None.name().to_string(),
            };
        }
        Ok(())
    };
    change_network(engine, container, live, |rec| {
        if rec.user_network().is_none() || rec.network_settings.networks.remove(&net.name).is_none()
        {
            return Err(Error::conflict(format!(
                "container {} is not connected to network {}",
                rec.name, net.name
            )));
        }
        if rec.host_config.network_mode == net.name {
            rec.host_config.network_mode = match rec.network_settings.networks.keys().next() {
                Some(next) => next.clone(),
                None => Mode::None.name().to_string(),
            };
        }
        Ok(())
    })
}

/// The aliases to keep: each once, and not the short id (a container is
/// known by it on every network already; Compose passes it as an alias).
fn kept_aliases(rec: &ContainerRecord, aliases: &[String]) -> Vec<String> {
    let short = &rec.id[..12.min(rec.id.len())];
    let mut kept: Vec<String> = Vec::new();
    for a in aliases {
        if !kept.contains(a) && a != short {
            kept.push(a.clone());
        }
    }
    kept
}

/// A running container's network change that failed, as the engine says
/// it: one that cannot change here is a conflict (the front end's 409).
fn live_error(e: keeper::LiveNetworkError) -> Error {
    use keeper::LiveNetworkError as L;
    match e {
        L::NotShared(_) | L::NotRunning(_) => Error::conflict(e),
        e => Error::LiveNetwork(e),
    }
}

/// Change a container's networks under its lock: `running` when it is up
/// (the change is made to it live), `stored` when it is not; the record
/// saved either way.
fn change_network(
    engine: &Engine,
    container: &str,
    running: impl FnOnce(&mut ContainerRecord) -> Result<()>,
    stored: impl FnOnce(&mut ContainerRecord) -> Result<()>,
) -> Result<()> {
    let found = super::containers::find(engine, container)?;
    let store = &engine.store;
    let _lock = store.lock_container(&found.id)?;
    let mut rec = ContainerRecord::load(store, &found.id)?;
    if rec.is_restarting(store) {
        return Err(Error::conflict(format!(
            "container {} is restarting: wait until it runs or has stopped",
            rec.name
        )));
    }
    if rec.is_up(store) {
        running(&mut rec)?;
    } else {
        stored(&mut rec)?;
    }
    rec.save(store)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::containers::tests::{engine, stored};

    #[test]
    fn create_checks_and_remove_refuses_a_network_in_use() {
        let (_d, e) = engine();
        let req = |name: &str| NetworkRequest {
            name: name.into(),
            subnet: Some("10.99.0.0/24".into()),
            ..Default::default()
        };
        let bad_driver = NetworkRequest {
            driver: Some("overlay".into()),
            ..req("x")
        };
        assert!(matches!(create(&e, &bad_driver), Err(Error::Invalid(_))));
        assert!(matches!(create(&e, &req("host")), Err(Error::Invalid(_))));
        let wrong_gateway = NetworkRequest {
            gateway: Some("10.99.0.7".into()),
            ..req("x")
        };
        assert!(matches!(create(&e, &wrong_gateway), Err(Error::Invalid(_))));
        let net = create(&e, &req("appnet")).unwrap();
        assert!(matches!(
            create(&e, &req("appnet")),
            Err(Error::Conflict(_))
        ));
        let mut rec = stored(&e, "web", 1, Some(0), &[]);
        rec.host_config.network_mode = "appnet".into();
        rec.save(&e.store).unwrap();
        let dangling = Filters::from_flags(&["dangling=true".into()]).unwrap();
        assert!(list(&e, &dangling).unwrap().is_empty());
        match remove(&e, &net.id[..12]) {
            Err(Error::Conflict(m)) => assert_eq!(
                m.to_string(),
                "network appnet is in use by container web (remove it first)"
            ),
            other => panic!("{other:?}"),
        }
        assert!(prune(&e, &Filters::new()).unwrap().is_empty());
        assert!(matches!(remove(&e, "nonet"), Err(Error::NotFound(_))));
        assert_eq!(
            inspect(&e, "appnet").unwrap()["Containers"],
            serde_json::json!({})
        );
    }

    #[test]
    fn connect_and_disconnect_change_a_created_container() {
        let (_d, e) = engine();
        let net = NetworkRequest {
            name: "appnet".into(),
            subnet: Some("10.98.0.0/24".into()),
            ..Default::default()
        };
        create(&e, &net).unwrap();
        let mut rec = stored(&e, "web", 1, None, &[]);
        rec.host_config.network_mode = "private".into();
        rec.save(&e.store).unwrap();
        let short = rec.id[..12].to_string();
        connect(
            &e,
            "appnet",
            &rec.id,
            &["svc".into(), short.clone(), "svc".into()],
        )
        .unwrap();
        let got = super::super::containers::find(&e, &rec.id).unwrap();
        assert_eq!(got.host_config.network_mode, "appnet");
        assert_eq!(got.network_settings.networks["appnet"].aliases, ["svc"]);
        assert!(matches!(
            connect(&e, "nonet", &rec.id, &[]),
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            connect(&e, "appnet", &rec.id, &["a b".into()]),
            Err(Error::Invalid(_))
        ));
        // A second network: on both, its own unchanged.
        let back = NetworkRequest {
            name: "backnet".into(),
            subnet: Some("10.98.1.0/24".into()),
            ..Default::default()
        };
        create(&e, &back).unwrap();
        connect(&e, "backnet", &rec.id, &["b".into()]).unwrap();
        let got = super::super::containers::find(&e, &rec.id).unwrap();
        assert_eq!(got.host_config.network_mode, "appnet");
        assert_eq!(got.network_settings.networks["backnet"].aliases, ["b"]);
        assert_eq!(got.network_settings.networks.len(), 2);
        // Off its own: the other becomes its own; off the last: none.
        disconnect(&e, "appnet", &rec.id).unwrap();
        let got = super::super::containers::find(&e, &rec.id).unwrap();
        assert_eq!(got.host_config.network_mode, "backnet");
        assert_eq!(got.network_settings.networks.len(), 1);
        disconnect(&e, "backnet", &rec.id).unwrap();
        let got = super::super::containers::find(&e, &rec.id).unwrap();
        assert_eq!(got.host_config.network_mode, "none");
        assert!(got.network_settings.networks.is_empty());
        assert!(matches!(
            disconnect(&e, "appnet", &rec.id),
            Err(Error::Conflict(_))
        ));
    }
}
