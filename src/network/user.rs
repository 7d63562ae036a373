//! User networks as stored: `networks/NAME.json` under the store root, in
//! Docker's `network inspect` shape (Name, Id, Created, Driver, IPAM,
//! Labels), created and removed under the store's exclusive lock so names
//! and subnets stay unique. Addresses are leased by the network's switch
//! while containers run (`switch`), never stored here.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::store::{self, Store};

/// The names `--network` gives a meaning of its own; no user network may
/// take one.
pub const RESERVED: &[&str] = &[
    "private",
    "bridge",
    "default",
    "pasta",
    "slirp4netns",
    "none",
    "host",
];

#[derive(Debug, thiserror::Error)]
pub enum UserNetworkError {
    #[error("No such network: {0}")]
    NoSuch(String),
    #[error("network with name {0} already exists")]
    Exists(String),
    #[error("invalid network name {0:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    BadName(String),
    #[error("network name {0:?} is reserved for a built-in network mode")]
    Reserved(String),
    #[error("invalid subnet {0:?}: use an IPv4 CIDR such as 10.89.5.0/24 (prefix 8 to 29)")]
    BadSubnet(String),
    #[error("subnet {subnet} overlaps network {other}'s {theirs}")]
    Overlap {
        subnet: String,
        other: String,
        theirs: String,
    },
    #[error("no free subnet left in 10.89.0.0/16: give one with --subnet")]
    NoSubnet,
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("{path:?}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path:?}: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

type Result<T> = std::result::Result<T, UserNetworkError>;

/// Docker's `IPAM.Config[]` entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct IpamConfig {
    pub subnet: String,
    pub gateway: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ipam {
    pub driver: String,
    pub config: Vec<IpamConfig>,
}

/// A user network.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Network {
    pub name: String,
    pub id: String,
    pub created: String,
    pub scope: String,
    /// "bridge": an Ethernet switch between the containers (burrow's runs
    /// in user space, see `switch`).
    pub driver: String,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    #[serde(rename = "IPAM")]
    pub ipam: Ipam,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
}

/// An IPv4 subnet: its network address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub base: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn parse(s: &str) -> Option<Subnet> {
        let (a, p) = s.split_once('/')?;
        let addr: Ipv4Addr = a.parse().ok()?;
        let prefix: u8 = p.parse().ok()?;
        if !(8..=29).contains(&prefix) {
            return None;
        }
        let mask = u32::MAX << (32 - u32::from(prefix));
        Some(Subnet {
            base: Ipv4Addr::from(u32::from(addr) & mask),
            prefix,
        })
    }

    fn mask(self) -> u32 {
        u32::MAX << (32 - u32::from(self.prefix))
    }

    pub fn overlaps(self, other: Subnet) -> bool {
        let m = self.mask() & other.mask();
        u32::from(self.base) & m == u32::from(other.base) & m
    }

    /// The first address: the gateway Docker reserves, and burrow too.
    pub fn gateway(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) + 1)
    }

    /// The addresses containers may lease: after the gateway, before the
    /// broadcast address.
    pub fn hosts(self) -> impl Iterator<Item = Ipv4Addr> {
        let base = u32::from(self.base);
        let size = 1u32 << (32 - u32::from(self.prefix));
        (base + 2..base + size - 1).map(Ipv4Addr::from)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

impl Network {
    pub fn subnet(&self) -> Subnet {
        self.ipam
            .config
            .first()
            .and_then(|c| Subnet::parse(&c.subnet))
            .unwrap_or(Subnet {
                base: Ipv4Addr::new(10, 89, 0, 0),
                prefix: 24,
            })
    }

    pub fn gateway(&self) -> String {
        self.ipam
            .config
            .first()
            .map(|c| c.gateway.clone())
            .unwrap_or_default()
    }
}

/// A name made of `[a-zA-Z0-9][a-zA-Z0-9_.-]*` (at most 128 bytes): a
/// network's, or a container's alias on one.
pub fn is_plain_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && name.len() <= 128
}

pub fn validate_name(name: &str) -> Result<()> {
    if !is_plain_name(name) {
        return Err(UserNetworkError::BadName(name.to_string()));
    }
    if RESERVED.contains(&name) {
        return Err(UserNetworkError::Reserved(name.to_string()));
    }
    Ok(())
}

fn dir(store: &Store) -> PathBuf {
    store.root().join("networks")
}

fn file(store: &Store, name: &str) -> PathBuf {
    dir(store).join(format!("{name}.json"))
}

/// Every user network, by name.
pub fn list(store: &Store) -> Result<Vec<Network>> {
    let d = dir(store);
    let entries = match std::fs::read_dir(&d) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(UserNetworkError::Io { path: d, source: e }),
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(n) = name.strip_suffix(".json") {
            if let Ok(net) = read(store, n) {
                out.push(net);
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn read(store: &Store, name: &str) -> Result<Network> {
    let p = file(store, name);
    let bytes = std::fs::read(&p).map_err(|_| UserNetworkError::NoSuch(name.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|source| UserNetworkError::Json { path: p, source })
}

/// A network by name, by full id or by a unique id prefix.
pub fn get(store: &Store, name_or_id: &str) -> Result<Network> {
    if validate_name(name_or_id).is_ok() {
        if let Ok(n) = read(store, name_or_id) {
            return Ok(n);
        }
    }
    let hex = name_or_id.chars().all(|c| c.is_ascii_hexdigit()) && !name_or_id.is_empty();
    if hex {
        let mut found: Vec<Network> = list(store)?
            .into_iter()
            .filter(|n| n.id.starts_with(name_or_id))
            .collect();
        if found.len() == 1 {
            return Ok(found.remove(0));
        }
    }
    Err(UserNetworkError::NoSuch(name_or_id.to_string()))
}

/// Create a network; without `subnet`, the first 10.89.N.0/24 that no
/// other network and none of `host_routes` (the host's own networks, which
/// pasta copies into containers) overlaps.
pub fn create(
    store: &Store,
    name: &str,
    subnet: Option<&str>,
    labels: &BTreeMap<String, String>,
    host_routes: &[Subnet],
) -> Result<Network> {
    validate_name(name)?;
    let wanted = match subnet {
        Some(s) => Some(Subnet::parse(s).ok_or_else(|| UserNetworkError::BadSubnet(s.into()))?),
        None => None,
    };
    let _lock = store.lock_exclusive()?;
    let existing = list(store)?;
    if existing.iter().any(|n| n.name == name) {
        return Err(UserNetworkError::Exists(name.to_string()));
    }
    let taken: Vec<(Subnet, &str)> = existing
        .iter()
        .map(|n| (n.subnet(), n.name.as_str()))
        .collect();
    let subnet = match wanted {
        Some(s) => {
            if let Some((t, other)) = taken.iter().find(|(t, _)| t.overlaps(s)) {
                return Err(UserNetworkError::Overlap {
                    subnet: s.to_string(),
                    other: other.to_string(),
                    theirs: t.to_string(),
                });
            }
            s
        }
        None => (0..=255u8)
            .map(|n| Subnet {
                base: Ipv4Addr::new(10, 89, n, 0),
                prefix: 24,
            })
            .find(|s| {
                !taken.iter().any(|(t, _)| t.overlaps(*s))
                    && !host_routes.iter().any(|r| r.overlaps(*s))
            })
            .ok_or(UserNetworkError::NoSubnet)?,
    };
    let net = Network {
        name: name.to_string(),
        id: store::random_hex(32),
        created: crate::util::human::now_rfc3339(),
        scope: "local".into(),
        driver: "bridge".into(),
        enable_ipv6: false,
        ipam: Ipam {
            driver: "default".into(),
            config: vec![IpamConfig {
                subnet: subnet.to_string(),
                gateway: subnet.gateway().to_string(),
            }],
        },
        internal: false,
        labels: labels.clone(),
    };
    let d = dir(store);
    std::fs::create_dir_all(&d).map_err(|source| UserNetworkError::Io {
        path: d.clone(),
        source,
    })?;
    let bytes = serde_json::to_vec_pretty(&net).expect("network serializes");
    store::write_atomic(&file(store, name), &bytes, false)?;
    Ok(net)
}

/// Remove a network's definition (the caller checked that no container
/// uses it).
pub fn remove(store: &Store, name: &str) -> Result<()> {
    let _lock = store.lock_exclusive()?;
    let p = file(store, name);
    match std::fs::remove_file(&p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(UserNetworkError::NoSuch(name.to_string()))
        }
        Err(source) => Err(UserNetworkError::Io { path: p, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_parse_overlap_and_lease_hosts() {
        let s = Subnet::parse("10.89.3.77/24").unwrap();
        assert_eq!(s.to_string(), "10.89.3.0/24");
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 89, 3, 1));
        let hosts: Vec<_> = s.hosts().collect();
        assert_eq!(hosts.len(), 253);
        assert_eq!(hosts[0], Ipv4Addr::new(10, 89, 3, 2));
        assert_eq!(hosts[252], Ipv4Addr::new(10, 89, 3, 254));
        assert!(s.overlaps(Subnet::parse("10.89.0.0/16").unwrap()));
        assert!(!s.overlaps(Subnet::parse("10.89.4.0/24").unwrap()));
        for bad in ["10.0.0.0", "10.0.0.0/33", "10.0.0.0/30", "x/24", "::1/64"] {
            assert!(Subnet::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn create_picks_free_subnets_and_refuses_duplicates() {
        let (_d, store) = store::temp_store();
        // Names that are not hex digits, so a lookup of a removed name can
        // never fall through to another network's id prefix.
        let none = BTreeMap::new();
        let a = create(&store, "front", None, &none, &[]).unwrap();
        assert_eq!(a.ipam.config[0].subnet, "10.89.0.0/24");
        assert_eq!(a.gateway(), "10.89.0.1");
        // The host's 10.89.1.0/24 is skipped.
        let host = [Subnet::parse("10.89.1.0/24").unwrap()];
        let b = create(&store, "back", None, &none, &host).unwrap();
        assert_eq!(b.ipam.config[0].subnet, "10.89.2.0/24");
        assert!(matches!(
            create(&store, "front", None, &none, &[]),
            Err(UserNetworkError::Exists(_))
        ));
        assert!(matches!(
            create(&store, "other", Some("10.89.2.128/25"), &none, &[]),
            Err(UserNetworkError::Overlap { .. })
        ));
        assert!(matches!(
            create(&store, "host", None, &none, &[]),
            Err(UserNetworkError::Reserved(_))
        ));
        assert!(matches!(
            create(&store, "-x", None, &none, &[]),
            Err(UserNetworkError::BadName(_))
        ));
        assert_eq!(get(&store, &a.id[..8]).unwrap().name, "front");
        assert_eq!(list(&store).unwrap().len(), 2);
        remove(&store, "front").unwrap();
        assert!(matches!(
            get(&store, "front"),
            Err(UserNetworkError::NoSuch(_))
        ));
        assert!(matches!(
            remove(&store, "front"),
            Err(UserNetworkError::NoSuch(_))
        ));
    }
}
