//! `burrow network create|ls|inspect|rm|prune|connect|disconnect`: user
//! networks, with
//! Docker's output shapes, and the hidden `burrow __switch NAME` that runs
//! a network's switch.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::format::Format;
use super::{table, Ctx, Exit, Missing};
use crate::engine::filters::Filters;
use crate::engine::networks::{self, NetworkRequest};
use crate::engine::Error;
use crate::exit;
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
    /// Put a container on a network (before it starts)
    Connect(ConnectArgs),
    /// Take a container off a network (before it starts)
    Disconnect(DisconnectArgs),
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  burrow network connect backnet app\n  burrow network connect --alias api backnet app"
)]
pub struct ConnectArgs {
    /// Another name the container answers to on this network
    #[arg(long = "alias", value_name = "NAME")]
    pub alias: Vec<String>,
    pub network: String,
    pub container: String,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  burrow network disconnect backnet app")]
pub struct DisconnectArgs {
    /// Accepted for Docker habits
    #[arg(short, long)]
    pub force: bool,
    pub network: String,
    pub container: String,
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

#[derive(Debug, Args)]
pub struct KeeperArgs {
    /// The outbound helper (pasta or slirp4netns)
    #[arg(long)]
    pub helper: PathBuf,
    /// Seconds without a container before it exits
    #[arg(long, default_value_t = crate::network::keeper::IDLE.as_secs())]
    pub idle: u64,
    /// Take over the holder PID:START whose keeper died
    #[arg(long, value_parser = adopt_arg)]
    pub adopt: Option<crate::network::keeper::Proc>,
    /// Its directory (state, locks, leases, logs)
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct LeaseArgs {
    /// The container's PID 1 as PID:START: the lease (descriptor 3) is
    /// held until it ends
    #[arg(value_parser = adopt_arg)]
    pub pid1: crate::network::keeper::Proc,
    /// The lease file, named so that a disconnect can find its holder
    pub lease: PathBuf,
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
        NetworkCommand::Connect(a) => {
            let ctx = Ctx::open(root)?;
            said(networks::connect(&ctx, &a.network, &a.container, &a.alias))
        }
        NetworkCommand::Disconnect(a) => {
            let ctx = Ctx::open(root)?;
            said(networks::disconnect(&ctx, &a.network, &a.container))
        }
    }
}

/// Docker's CLI ends a failed connect or disconnect with its error and
/// exit 1.
fn said(r: Result<(), Error>) -> anyhow::Result<i32> {
    match r {
        Ok(()) => Ok(0),
        Err(e) => {
            eprintln!("Error: {e}");
            Ok(super::MISSING)
        }
    }
}

/// A store error as the switch reports it: a missing network is exit 1.
fn cli_error(e: UserNetworkError) -> anyhow::Error {
    match e {
        UserNetworkError::NoSuch(_) => Missing(e.to_string()).into(),
        e => Exit::new(exit::BURROW, e.to_string()).into(),
    }
}

fn create(root: Option<PathBuf>, a: CreateArgs) -> anyhow::Result<i32> {
    let req = NetworkRequest {
        name: a.name,
        labels: super::run::collect_labels(&a.label, &[])?,
        subnet: a.subnet,
        driver: Some(a.driver),
        ..Default::default()
    };
    let ctx = Ctx::open(root)?;
    let net = networks::create(&ctx, &req)?;
    println!("{}", net.id);
    Ok(0)
}

fn ls(root: Option<PathBuf>, a: LsArgs) -> anyhow::Result<i32> {
    let format = Format::parse(&a.format, &["table"])?;
    let ctx = Ctx::open(root)?;
    let nets = networks::list(&ctx, &Filters::new())?;
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

fn inspect(root: Option<PathBuf>, a: InspectArgs) -> anyhow::Result<i32> {
    super::inspect_each(root, &a.names, a.format.as_deref(), networks::inspect)
}

fn rm(root: Option<PathBuf>, a: RmArgs) -> anyhow::Result<i32> {
    let ctx = Ctx::open(root)?;
    // Docker's CLI ends every failed network removal with exit 1.
    let mut failed = false;
    for name in &a.names {
        let removed = networks::find(&ctx, name).and_then(|n| {
            networks::remove(&ctx, &n.name)?;
            Ok(n.name)
        });
        match removed {
            Ok(n) => println!("{n}"),
            Err(Error::NotFound(_)) if a.force => {}
            Err(e) => {
                failed = true;
                eprintln!("Error: {e}");
            }
        }
    }
    Ok(if failed { super::MISSING } else { 0 })
}

fn prune(root: Option<PathBuf>, _a: PruneArgs) -> anyhow::Result<i32> {
    let ctx = Ctx::open(root)?;
    let deleted = networks::prune(&ctx, &Filters::new())?;
    if !deleted.is_empty() {
        println!("Deleted Networks:");
        deleted.iter().for_each(|n| println!("{n}"));
    }
    Ok(0)
}

/// An `--adopt` or `__lease` argument that is not `PID:START`.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not PID:START")]
struct NotProc(String);

fn adopt_arg(s: &str) -> Result<crate::network::keeper::Proc, NotProc> {
    crate::network::keeper::Proc::parse(s).ok_or_else(|| NotProc(s.to_string()))
}

/// `burrow __keeper DIR`: the user's shared user and network namespace,
/// until no container has used it for its idle period.
pub fn run_keeper(a: KeeperArgs) -> anyhow::Result<i32> {
    use crate::network::helper::{Helper, Kind};
    let kind = if a.helper.file_name().is_some_and(|n| n == "slirp4netns") {
        Kind::Slirp4netns
    } else {
        Kind::Pasta
    };
    let helper = Helper {
        kind,
        path: a.helper,
    };
    let mapping = crate::sandbox::user::container_mapping(crate::linux::userns::IdMapping::detect(
        std::path::Path::new("/etc"),
    ));
    Ok(crate::network::keeper::serve(
        &a.dir,
        &helper,
        &mapping,
        std::time::Duration::from_secs(a.idle),
        a.adopt,
    ))
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
