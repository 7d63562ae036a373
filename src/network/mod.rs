//! Container networking without root: the network modes (`--network`), the
//! published ports (`-p`, `-P`), the container's `/etc/hosts` and
//! `/etc/resolv.conf`, the user-mode helper that gives a private namespace
//! outbound access (`helper`), the built-in port forwarder (`forward`), and
//! user networks containers share (`user`: definitions; `switch`: the
//! userspace Ethernet switch per network; `member`: a container joining).
//!
//! ```text
//! host                          container's network namespace
//!  monitor ── listens on host ports ──► dialer (setns user+net, connect
//!     │                                  127.0.0.1:PORT, fd back by SCM_RIGHTS)
//!     └─ pasta | slirp4netns ─ tap ───► eth0/tap0 (outbound, DNS forwarder)
//! ```

pub mod dns;
pub mod forward;
pub mod helper;
pub mod keeper;
pub mod member;
pub mod switch;
pub mod user;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use helper::Helper;

/// What a container's start may use for its network, from the front end's
/// settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    /// The `PATH` network helpers (pasta, slirp4netns) and `--init`'s
    /// program are looked up in: the caller's.
    pub helper_path: String,
    /// The default network through the user's keeper, which exits after
    /// this long without a container (`BURROW_KEEPER_IDLE`); None: a helper
    /// per container (`BURROW_KEEPER=off`, and builds).
    pub keeper: Option<std::time::Duration>,
}

/// `--network`: which network namespace the container gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Its own namespace, loopback up, outbound through whichever helper is
    /// installed (pasta, else slirp4netns, else none).
    Private,
    /// Its own namespace via this helper only.
    Via(helper::Kind),
    /// Its own namespace with loopback only.
    None,
    /// The host's namespace.
    Host,
    /// Its own namespace, outbound as `Private`, plus a port on a user
    /// network's switch (the record's `NetworkMode` names the network).
    User,
}

impl Mode {
    /// `--network` as given; empty (a record from before networking) is
    /// `host`, what those containers had; any other valid network name is a
    /// user network (whether it exists is checked against the store).
    pub fn parse(s: &str) -> Result<Mode, NetworkError> {
        Ok(match s {
            "private" | "bridge" | "default" => Mode::Private,
            "pasta" => Mode::Via(helper::Kind::Pasta),
            "slirp4netns" => Mode::Via(helper::Kind::Slirp4netns),
            "none" => Mode::None,
            "host" | "" => Mode::Host,
            other if user::validate_name(other).is_ok() => Mode::User,
            other => return Err(NetworkError::BadMode(other.to_string())),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Private => "private",
            Mode::Via(k) => k.name(),
            Mode::None => "none",
            Mode::Host => "host",
            Mode::User => "user",
        }
    }

    /// A network namespace of its own.
    pub fn private_namespace(self) -> bool {
        self != Mode::Host
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One `-p` mapping after ranges are expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    /// Empty: every address (0.0.0.0).
    pub host_ip: String,
    /// None: a free port the kernel picks.
    pub host_port: Option<u16>,
    pub container_port: u16,
    pub proto: Proto,
}

impl PortSpec {
    /// Docker's key: `3000/tcp`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.container_port, self.proto.name())
    }
}

/// Docker's `{"HostIp": "", "HostPort": "8080"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortBinding {
    pub host_ip: String,
    pub host_port: String,
}

/// `HostConfig.PortBindings` or `NetworkSettings.Ports`: `3000/tcp` → bindings.
pub type PortMap = BTreeMap<String, Vec<PortBinding>>;

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error(
        "invalid --network {0:?}: use private, none, host, pasta, slirp4netns or a network's name"
    )]
    BadMode(String),
    #[error("invalid port specification {spec:?}: {why}")]
    BadPort { spec: String, why: PortProblem },
    #[error("cannot publish port {port}: ports below {start} need privileges (net.ipv4.ip_unprivileged_port_start = {start}; lower it with sysctl, or publish a higher host port)")]
    Privileged { port: u16, start: u16 },
    #[error("invalid --add-host {0:?}: use HOST:IP")]
    BadHost(String),
    #[error("invalid --dns {0:?}: not an IP address")]
    BadDns(String),
    #[error("publishing {addr}/{proto}: {source}")]
    Bind {
        addr: String,
        proto: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{kind} is not installed: apt-get install {package}")]
    HelperMissing {
        kind: &'static str,
        package: &'static str,
    },
    #[error("{user} cannot be set up: {problem}; fix: {fix}, or --network none")]
    TunUnusable {
        user: String,
        problem: String,
        fix: String,
    },
    #[error("starting {kind}: {detail}")]
    Helper {
        kind: &'static str,
        #[source]
        detail: helper::HelperFailure,
    },
    #[error("joining network {network}: {detail}")]
    Join {
        network: String,
        #[source]
        detail: member::JoinFailure,
    },
    #[error("opening the container's network namespace for its published ports: {0}")]
    Attach(#[source] crate::linux::ns::NsError),
    #[error("connecting to port {port}/{proto} in the container: {source}")]
    Dial {
        port: u16,
        proto: &'static str,
        #[source]
        source: Box<DialError>,
    },
}

/// Why the child that connects inside the container's namespaces gave no
/// socket back.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("pipe: {0}")]
    Pipe(#[source] std::io::Error),
    #[error("fork: {0}")]
    Fork(#[source] crate::linux::process::ForkError),
    #[error("no socket came back")]
    NoSocket,
    /// The child's report, or how its channel ended.
    #[error(transparent)]
    Worker(#[from] crate::linux::worker::WorkerError<crate::sandbox::Failure>),
}

/// What is wrong with a `-p` specification.
#[derive(Debug, thiserror::Error)]
pub enum PortProblem {
    #[error("unknown protocol {0:?} (tcp or udp)")]
    Protocol(String),
    #[error("unclosed '['")]
    Bracket,
    #[error("too many ':'")]
    Colons,
    #[error("{0:?} is not an IP address")]
    Ip(String),
    #[error("{0:?} is not a port (1-65535)")]
    Port(String),
    #[error("range {0:?} ends before it starts")]
    Range(String),
    #[error("host and container port ranges differ in length")]
    Lengths,
}

/// Parse one `-p [IP:][HOST:]CONTAINER[/tcp|/udp]` (ranges `A-B` on either
/// side, of equal length when both are given).
pub fn parse_publish(spec: &str) -> Result<Vec<PortSpec>, NetworkError> {
    let bad = |why: PortProblem| NetworkError::BadPort {
        spec: spec.to_string(),
        why,
    };
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, "tcp")) => (r, Proto::Tcp),
        Some((r, "udp")) => (r, Proto::Udp),
        Some((_, p)) => return Err(bad(PortProblem::Protocol(p.to_string()))),
        None => (spec, Proto::Tcp),
    };
    // An IPv6 address is written in brackets: [::1]:8080:80.
    let (ip, rest) = if let Some(r) = rest.strip_prefix('[') {
        let (ip, r) = r
            .split_once("]:")
            .ok_or_else(|| bad(PortProblem::Bracket))?;
        (ip.to_string(), r)
    } else {
        let parts: Vec<&str> = rest.split(':').collect();
        match parts.len() {
            1 | 2 => (String::new(), rest),
            3 => (parts[0].to_string(), &rest[parts[0].len() + 1..]),
            _ => return Err(bad(PortProblem::Colons)),
        }
    };
    if !ip.is_empty() && ip.parse::<IpAddr>().is_err() {
        return Err(bad(PortProblem::Ip(ip)));
    }
    let (host, container) = match rest.split_once(':') {
        Some((h, c)) => (h, c),
        None => ("", rest),
    };
    let cports = parse_range(container).map_err(bad)?;
    let hports: Vec<Option<u16>> = if host.is_empty() {
        vec![None; cports.len()]
    } else {
        let h = parse_range(host).map_err(bad)?;
        if h.len() != cports.len() {
            return Err(bad(PortProblem::Lengths));
        }
        h.into_iter().map(Some).collect()
    };
    Ok(cports
        .into_iter()
        .zip(hports)
        .map(|(c, h)| PortSpec {
            host_ip: ip.clone(),
            host_port: h,
            container_port: c,
            proto,
        })
        .collect())
}

fn parse_range(s: &str) -> Result<Vec<u16>, PortProblem> {
    let port = |p: &str| match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(PortProblem::Port(p.to_string())),
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (port(a)?, port(b)?);
            if a > b {
                return Err(PortProblem::Range(s.to_string()));
            }
            Ok((a..=b).collect())
        }
        None => Ok(vec![port(s)?]),
    }
}

/// Host ports that an unprivileged user may not bind here.
pub fn check_unprivileged(specs: &[PortSpec], proc_root: &Path) -> Result<(), NetworkError> {
    let start = crate::linux::net::unprivileged_port_start(proc_root);
    match specs
        .iter()
        .filter_map(|s| s.host_port)
        .find(|&p| p < start)
    {
        Some(port) => Err(NetworkError::Privileged { port, start }),
        None => Ok(()),
    }
}

/// `--add-host HOST:IP` (the IP may be IPv6, so split at the first ':').
pub fn check_add_host(s: &str) -> Result<(), NetworkError> {
    match s.split_once(':') {
        Some((h, ip)) if !h.is_empty() && ip.parse::<IpAddr>().is_ok() => Ok(()),
        _ => Err(NetworkError::BadHost(s.to_string())),
    }
}

pub fn check_dns(s: &str) -> Result<(), NetworkError> {
    s.parse::<IpAddr>()
        .map(|_| ())
        .map_err(|_| NetworkError::BadDns(s.to_string()))
}

/// `HostConfig.PortBindings` from `-p` specs.
pub fn bindings_of(specs: &[PortSpec]) -> PortMap {
    let mut m = PortMap::new();
    for s in specs {
        m.entry(s.key()).or_default().push(PortBinding {
            host_ip: s.host_ip.clone(),
            host_port: s.host_port.map(|p| p.to_string()).unwrap_or_default(),
        });
    }
    m
}

/// What to publish when the container starts: its port bindings, and with
/// `-P` every exposed port not already bound, on a free host port.
pub fn specs_to_publish(
    bindings: &PortMap,
    publish_all: bool,
    exposed: &[String],
) -> Vec<PortSpec> {
    let mut out = Vec::new();
    let mut keys: Vec<&String> = bindings.keys().collect();
    if publish_all {
        keys.extend(exposed.iter().filter(|k| !bindings.contains_key(*k)));
    }
    for key in keys {
        let (port, proto) = match key.split_once('/') {
            Some((p, "udp")) => (p, Proto::Udp),
            Some((p, _)) => (p, Proto::Tcp),
            None => (key.as_str(), Proto::Tcp),
        };
        let Ok(container_port) = port.parse() else {
            continue;
        };
        let bs = bindings
            .get(key)
            .cloned()
            .unwrap_or_else(|| vec![PortBinding::default()]);
        for b in bs {
            out.push(PortSpec {
                host_ip: b.host_ip,
                host_port: b.host_port.parse().ok(),
                container_port,
                proto,
            });
        }
    }
    out
}

/// Docker's PORTS column: `0.0.0.0:8080->3000/tcp, ...`.
pub fn ports_text(ports: &PortMap) -> String {
    let mut items = Vec::new();
    for (key, bs) in ports {
        for b in bs {
            let ip = if b.host_ip.is_empty() {
                "0.0.0.0"
            } else {
                &b.host_ip
            };
            items.push(format!("{ip}:{}->{key}", b.host_port));
        }
    }
    items.join(", ")
}

/// `burrow port`'s lines: `3000/tcp -> 0.0.0.0:8080`, or only the host
/// addresses of `only` (a `PORT/PROTO` key).
pub fn port_lines(ports: &PortMap, only: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    for (key, bs) in ports {
        match only {
            Some(k) if k != key => continue,
            Some(_) => out.extend(bs.iter().map(host_addr)),
            None => out.extend(bs.iter().map(|b| format!("{key} -> {}", host_addr(b)))),
        }
    }
    out
}

/// `0.0.0.0:8080`, or `[::]:8080` for IPv6 as `docker port` writes it.
fn host_addr(b: &PortBinding) -> String {
    if b.host_ip.contains(':') {
        format!("[{}]:{}", b.host_ip, b.host_port)
    } else {
        format!("{}:{}", b.host_ip, b.host_port)
    }
}

/// The address `host.containers.internal` names, when the helper gives the
/// host one: slirp4netns connects out from the host, so the host's own
/// address reaches it (podman's choice); pasta copies that address into
/// the container, where it names the container itself, so none.
pub fn host_address(helper: Option<&Helper>) -> Option<String> {
    match helper.map(|h| h.kind) {
        Some(helper::Kind::Slirp4netns) => {
            crate::linux::net::primary_ipv4(Path::new("/proc")).map(|a| a.to_string())
        }
        _ => None,
    }
}

/// What the container's `/etc/hosts` and `/etc/resolv.conf` say.
pub struct EtcFiles {
    pub hosts: String,
    pub resolv_conf: String,
}

/// The container's `/etc/hosts` and `/etc/resolv.conf` for `mode` with
/// `resolver` (the DNS server its network gives: a helper's forwarder, a
/// user network's responder; none: the host's): the hostname,
/// `--add-host` entries, `host.containers.internal` where the helper gives
/// the host an address, and the resolver (or `--dns`, or the host's
/// resolvers when the host's network is shared).
pub fn etc_files(
    hostname: &str,
    mode: Mode,
    resolver: Option<&str>,
    host_addr: Option<&str>,
    dns: &[String],
    extra_hosts: &[String],
    host_resolv_conf: &str,
) -> EtcFiles {
    let mut hosts = format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
    );
    let host_addr = match mode {
        Mode::Host => Some("127.0.0.1"),
        _ => host_addr,
    };
    if let Some(a) = host_addr {
        hosts.push_str(&format!("{a}\thost.containers.internal\n"));
    }
    for e in extra_hosts {
        if let Some((h, ip)) = e.split_once(':') {
            hosts.push_str(&format!("{ip}\t{h}\n"));
        }
    }
    let keep_options = |text: &str| -> String {
        text.lines()
            .filter(|l| l.starts_with("search") || l.starts_with("options"))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    let resolv_conf = if !dns.is_empty() {
        let mut s: String = dns.iter().map(|d| format!("nameserver {d}\n")).collect();
        s.push_str(&keep_options(host_resolv_conf));
        s
    } else {
        match (mode, resolver) {
            (Mode::Host, _) | (_, None) => host_resolv_conf.to_string(),
            (_, Some(r)) => format!("nameserver {r}\n{}", keep_options(host_resolv_conf)),
        }
    };
    EtcFiles { hosts, resolv_conf }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(spec: &str) -> PortSpec {
        let mut v = parse_publish(spec).unwrap();
        assert_eq!(v.len(), 1);
        v.remove(0)
    }

    #[test]
    fn publish_specs_as_docker_reads_them() {
        let p = one("8080:3000");
        assert_eq!(
            (p.host_port, p.container_port, p.proto),
            (Some(8080), 3000, Proto::Tcp)
        );
        assert_eq!(p.host_ip, "");
        let p = one("3000");
        assert_eq!((p.host_port, p.container_port), (None, 3000));
        let p = one("127.0.0.1:8080:3000/udp");
        assert_eq!(
            (p.host_ip.as_str(), p.host_port, p.proto),
            ("127.0.0.1", Some(8080), Proto::Udp)
        );
        let p = one("127.0.0.1::3000");
        assert_eq!((p.host_ip.as_str(), p.host_port), ("127.0.0.1", None));
        let p = one("[::1]:8080:80");
        assert_eq!((p.host_ip.as_str(), p.host_port), ("::1", Some(8080)));
        let r = parse_publish("8080-8081:3000-3001").unwrap();
        assert_eq!(
            r.iter()
                .map(|p| (p.host_port, p.container_port))
                .collect::<Vec<_>>(),
            [(Some(8080), 3000), (Some(8081), 3001)]
        );
        assert_eq!(parse_publish("3000-3002").unwrap().len(), 3);
        for bad in [
            "8080-8082:3000-3001",
            "x:3000",
            "0",
            "70000",
            "80:80/sctp",
            "a:b:c:d",
            "1.2.3:80:80",
            "3001-3000",
        ] {
            assert!(parse_publish(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn privileged_ports_name_the_sysctl() {
        let d = tempfile::tempdir().unwrap();
        let e = check_unprivileged(&parse_publish("80:3000").unwrap(), d.path()).unwrap_err();
        assert!(
            e.to_string()
                .contains("net.ipv4.ip_unprivileged_port_start"),
            "{e}"
        );
        assert!(check_unprivileged(&parse_publish("8080:80").unwrap(), d.path()).is_ok());
        assert!(check_unprivileged(&parse_publish("80").unwrap(), d.path()).is_ok());
    }

    #[test]
    fn bindings_round_trip_and_publish_all_adds_exposed_ports() {
        let specs = parse_publish("8080:3000").unwrap();
        let b = bindings_of(&specs);
        assert_eq!(b["3000/tcp"][0].host_port, "8080");
        let all = specs_to_publish(&b, true, &["3000/tcp".into(), "53/udp".into()]);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0], specs[0]);
        assert_eq!(
            (all[1].container_port, all[1].proto, all[1].host_port),
            (53, Proto::Udp, None)
        );
        let mut shown = PortMap::new();
        shown.insert(
            "3000/tcp".into(),
            vec![PortBinding {
                host_ip: "0.0.0.0".into(),
                host_port: "8080".into(),
            }],
        );
        assert_eq!(ports_text(&shown), "0.0.0.0:8080->3000/tcp");
    }

    #[test]
    fn etc_files_follow_the_mode_and_the_flags() {
        let host = "nameserver 192.0.2.53\nsearch example.test\n";
        let f = etc_files(
            "h1",
            Mode::Private,
            Some(helper::Kind::Slirp4netns.dns_address()),
            Some("192.0.2.2"),
            &[],
            &["db:10.1.2.3".into()],
            host,
        );
        assert!(f.hosts.contains("127.0.1.1\th1\n"));
        assert!(f.hosts.contains("192.0.2.2\thost.containers.internal\n"));
        assert!(f.hosts.contains("10.1.2.3\tdb\n"));
        assert_eq!(f.resolv_conf, "nameserver 10.0.2.3\nsearch example.test\n");
        let f = etc_files("h1", Mode::Host, None, None, &["1.1.1.1".into()], &[], host);
        assert!(f.hosts.contains("127.0.0.1\thost.containers.internal\n"));
        assert_eq!(f.resolv_conf, "nameserver 1.1.1.1\nsearch example.test\n");
        let f = etc_files("h1", Mode::None, None, None, &[], &[], host);
        assert!(!f.hosts.contains("host.containers.internal"));
        assert!(check_add_host("db:::1").is_ok());
        assert!(check_add_host("db").is_err() && check_add_host("db:x").is_err());
        assert!(check_dns("10.0.0.1").is_ok() && check_dns("dns.example").is_err());
        assert!(Mode::parse("-bogus").is_err());
        assert_eq!(Mode::parse("appnet").unwrap(), Mode::User);
        assert_eq!(Mode::parse("").unwrap(), Mode::Host);
    }
}
