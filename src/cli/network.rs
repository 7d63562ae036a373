//! `burrow network create|ls|inspect|rm|prune`: user networks, with
//! Docker's output shapes, and the hidden `burrow __switch NAME` that runs
//! a network's switch.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::format::Format;
use super::{table, Ctx, Exit, Missing};
use crate::container::{self, ContainerRecord};
use crate::exit;
use crate::network::switch;
use crate::network::user::{self, Network, UserNetworkError};
use crate::util::human;

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network containers can share (they reach each other by name)
    Create(CreateArgs),
    /// List networks
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Show networks' settings and containers as JSON
    Inspect(InspectArgs),
    /// Remove networks no container uses
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove every network no container uses
    Prune(PruneArgs),
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  burrow network create appnet\n  burrow network create --subnet 10.90.0.0/24 --label team=web webnet\n  burrow run -d --network appnet --name db busybox httpd -f\n  burrow run --rm --network appnet busybox wget -qO- http://db/"
)]
pub struct CreateArgs {
    /// The network's IPv4 subnet in CIDR form [default: the first free 10.89.N.0/24]
    #[arg(long, value_name = "CIDR")]
    pub subnet: Option<String>,
    /// Set a label: KEY=VALUE
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// The network's driver (only bridge)
    #[arg(short, long, default_value = "bridge")]
    pub driver: String,
    /// Name: [a-zA-Z0-9][a-zA-Z0-9_.-]*
    pub name: String,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  burrow network ls\n  burrow network ls -q\n  burrow network ls --format '{{.Name}} {{.Subnet}}'"
)]
pub struct LsArgs {
    /// Only display network ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Show full network ids
    #[arg(long)]
    pub no_trunc: bool,
    /// table, json (one object per line), a Go template ('{{.Name}}'), or 'table TEMPLATE'
    #[arg(long, default_value = "table")]
    pub format: String,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  burrow network inspect appnet\n  burrow network inspect -f '{{range .IPAM.Config}}{{.Subnet}}{{end}}' appnet"
)]
pub struct InspectArgs {
    /// A Go template applied to each network, or json
    #[arg(short, long)]
    pub format: Option<String>,
    /// Network names or ids
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  burrow network rm appnet\n  burrow network rm -f appnet webnet"
)]
pub struct RmArgs {
    /// Say nothing about networks that do not exist
    #[arg(short, long)]
    pub force: bool,
    /// Network names or ids
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  burrow network prune -f")]
pub struct PruneArgs {
    /// Do not ask for confirmation (burrow never asks; accepted for Docker habits)
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct SwitchArgs {
    pub name: String,
}

/// Column titles of `--format 'table ...'`, Docker's.
const HEADERS: &[(&str, &str)] = &[
    ("ID", "NETWORK ID"),
    ("Name", "NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("Subnet", "SUBNET"),
    ("Gateway", "GATEWAY"),
    ("IPv6", "IPV6"),
    ("Internal", "INTERNAL"),
    ("Labels", "LABELS"),
    ("CreatedAt", "CREATED AT"),
];

pub fn run(root: Option<PathBuf>, c: NetworkCommand) -> anyhow::Result<i32> {
    match c {
        NetworkCommand::Create(a) => create(root, a),
        NetworkCommand::Ls(a) => ls(root, a),
        NetworkCommand::Inspect(a) => inspect(root, a),
        NetworkCommand::Rm(a) => rm(root, a),
        NetworkCommand::Prune(a) => prune(root, a),
    }
}

fn bad(msg: impl Into<String>) -> anyhow::Error {
    Exit::new(exit::BURROW, msg).into()
}

/// A store error as the CLI reports it: a missing network is exit 1.
fn cli_error(e: UserNetworkError) -> anyhow::Error {
    match e {
        UserNetworkError::NoSuch(_) => Missing(e.to_string()).into(),
        e => bad(e.to_string()),
    }
}

fn create(root: Option<PathBuf>, a: CreateArgs) -> anyhow::Result<i32> {
    if a.driver != "bridge" {
        return Err(bad(format!(
            "network driver {:?} is not supported (bridge)",
            a.driver
        )));
    }
    user::validate_name(&a.name).map_err(cli_error)?;
    let mut labels = BTreeMap::new();
    for l in &a.label {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        if k.is_empty() {
            return Err(bad(format!("invalid label {l:?}: no key")));
        }
        labels.insert(k.to_string(), v.to_string());
    }
    let ctx = Ctx::open(root)?;
    let host_routes: Vec<user::Subnet> =
        crate::linux::net::ipv4_routes(std::path::Path::new("/proc"))
            .into_iter()
            .map(|(base, prefix)| user::Subnet { base, prefix })
            .collect();
    let net = user::create(
        &ctx.store,
        &a.name,
        a.subnet.as_deref(),
        &labels,
        &host_routes,
    )
    .map_err(cli_error)?;
    println!("{}", net.id);
    Ok(0)
}

/// The containers that name `net` (any state): they keep it from removal.
fn users<'a>(containers: &'a [ContainerRecord], net: &Network) -> Vec<&'a ContainerRecord> {
    containers
        .iter()
        .filter(|c| c.user_network() == Some(net.name.as_str()))
        .collect()
}

fn ls(root: Option<PathBuf>, a: LsArgs) -> anyhow::Result<i32> {
    let format = Format::parse(&a.format, &["table"])?;
    let ctx = Ctx::open(root)?;
    let nets = user::list(&ctx.store).map_err(cli_error)?;
    let id = |n: &Network| {
        if a.no_trunc {
            n.id.clone()
        } else {
            n.id[..12].to_string()
        }
    };
    if a.quiet {
        nets.iter().for_each(|n| println!("{}", id(n)));
        return Ok(0);
    }
    if !format.is_default() {
        let items: Vec<serde_json::Value> = nets
            .iter()
            .map(|n| {
                let labels: Vec<String> =
                    n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                serde_json::json!({
                    "ID": id(n),
                    "Name": n.name,
                    "Driver": n.driver,
                    "Scope": n.scope,
                    "Subnet": n.subnet().to_string(),
                    "Gateway": n.gateway(),
                    "IPv6": n.enable_ipv6.to_string(),
                    "Internal": n.internal.to_string(),
                    "Labels": labels.join(","),
                    "CreatedAt": human::created_at(&n.created),
                })
            })
            .collect();
        format.print(&items, HEADERS)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = nets
        .iter()
        .map(|n| vec![id(n), n.name.clone(), n.driver.clone(), n.scope.clone()])
        .collect();
    table::print(&["NETWORK ID", "NAME", "DRIVER", "SCOPE"], &rows);
    Ok(0)
}

/// Docker's `network inspect` object: the stored network plus its running
/// containers (`Containers`: id → name, MAC, IPv4Address as ADDR/PREFIX).
fn inspect_value(ctx: &Ctx, net: &Network, containers: &[ContainerRecord]) -> serde_json::Value {
    let mut v = serde_json::to_value(net).expect("network serializes");
    let mut members = serde_json::Map::new();
    for c in users(containers, net) {
        if !c.is_up(&ctx.store) {
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
    v
}

fn inspect(root: Option<PathBuf>, a: InspectArgs) -> anyhow::Result<i32> {
    let format = a
        .format
        .as_deref()
        .map(|f| Format::parse(f, &[]))
        .transpose()?;
    let ctx = Ctx::open(root)?;
    let containers = container::list(&ctx.store)?;
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for name in &a.names {
        match user::get(&ctx.store, name) {
            Ok(n) => out.push(inspect_value(&ctx, &n, &containers)),
            Err(e @ UserNetworkError::NoSuch(_)) => missing.push(e.to_string()),
            Err(e) => return Err(cli_error(e)),
        }
    }
    match &format {
        Some(f) if !f.is_default() => f.print(&out, &[])?,
        _ => println!(
            "{}",
            crate::util::printable::json_text(&serde_json::to_string_pretty(&out)?)
        ),
    }
    if !missing.is_empty() {
        return Err(Missing(missing.join("\n")).into());
    }
    Ok(0)
}

/// Remove one network unless a container names it.
fn remove_one(ctx: &Ctx, containers: &[ContainerRecord], name: &str) -> anyhow::Result<String> {
    let net = user::get(&ctx.store, name).map_err(cli_error)?;
    let using = users(containers, &net);
    if !using.is_empty() {
        let names: Vec<&str> = using.iter().map(|c| c.name.as_str()).collect();
        return Err(Exit::new(
            super::MISSING,
            format!(
                "network {} is in use by container {} (remove it first)",
                net.name,
                names.join(", ")
            ),
        )
        .into());
    }
    user::remove(&ctx.store, &net.name).map_err(cli_error)?;
    switch::remove_leftovers(&ctx.store.paths.runtime, &net);
    Ok(net.name)
}

fn rm(root: Option<PathBuf>, a: RmArgs) -> anyhow::Result<i32> {
    let ctx = Ctx::open(root)?;
    let containers = container::list(&ctx.store)?;
    // Docker's CLI ends every failed network removal with exit 1.
    let mut failed = false;
    for name in &a.names {
        match remove_one(&ctx, &containers, name) {
            Ok(n) => println!("{n}"),
            Err(e) if a.force && super::missing(&e).is_some() => {}
            Err(e) => {
                failed = true;
                eprintln!("Error: {}", super::missing(&e).unwrap_or(e.to_string()));
            }
        }
    }
    Ok(if failed { super::MISSING } else { 0 })
}

fn prune(root: Option<PathBuf>, _a: PruneArgs) -> anyhow::Result<i32> {
    let ctx = Ctx::open(root)?;
    let containers = container::list(&ctx.store)?;
    let mut deleted = Vec::new();
    for n in user::list(&ctx.store).map_err(cli_error)? {
        if users(&containers, &n).is_empty() {
            user::remove(&ctx.store, &n.name).map_err(cli_error)?;
            switch::remove_leftovers(&ctx.store.paths.runtime, &n);
            deleted.push(n.name);
        }
    }
    if !deleted.is_empty() {
        println!("Deleted Networks:");
        deleted.iter().for_each(|n| println!("{n}"));
    }
    Ok(0)
}

/// `burrow __switch NAME`: the network's switch, until its last member
/// leaves.
pub fn run_switch(root: Option<PathBuf>, a: SwitchArgs) -> anyhow::Result<i32> {
    use crate::store::{paths::PathEnv, Store, StorePaths};
    let paths = StorePaths::resolve(&PathEnv::from_process(root))
        .map_err(|e| Exit::new(exit::BURROW, e.to_string()))?;
    let store = Store::open(paths)?;
    let net = user::get(&store, &a.name).map_err(cli_error)?;
    Ok(crate::network::switch::serve(
        &store.paths.runtime,
        &store.containers_dir(),
        &net,
    ))
}
