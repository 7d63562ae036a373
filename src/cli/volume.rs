//! `burrow volume create|ls|inspect|rm|prune`: named and anonymous volumes,
//! with Docker's output shapes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::format::Format;
use super::{table, Ctx, Exit, Missing};
use crate::container::{self, volumes};
use crate::exit;
use crate::util::human;

#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume (a random name when none is given)
    Create(CreateArgs),
    /// List volumes
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Show volumes' metadata as JSON
    Inspect(InspectArgs),
    /// Remove volumes no container uses
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove unused anonymous volumes (with -a, every unused volume)
    Prune(PruneArgs),
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  burrow volume create data\n  burrow volume create --label team=web cache"
)]
pub struct CreateArgs {
    /// Set a label: KEY=VALUE
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// The volume's driver (only local)
    #[arg(short, long, default_value = "local")]
    pub driver: String,
    /// Name: [a-zA-Z0-9][a-zA-Z0-9_.-]+
    pub name: Option<String>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  burrow volume ls\n  burrow volume ls -q\n  burrow volume ls -f dangling=true\n  burrow volume ls --format '{{.Name}} {{.Mountpoint}}'"
)]
pub struct LsArgs {
    /// Only display volume names
    #[arg(short, long)]
    pub quiet: bool,
    /// table, json (one object per line), a Go template ('{{.Name}}'), or 'table TEMPLATE'
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Filter: dangling=true|false, name=SUBSTRING, label=KEY[=VALUE], driver=local
    #[arg(short, long = "filter", value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  burrow volume inspect data\n  burrow volume inspect -f '{{.Mountpoint}}' data"
)]
pub struct InspectArgs {
    /// A Go template applied to each volume ('{{.Mountpoint}}'), or json
    #[arg(short, long)]
    pub format: Option<String>,
    /// Volume names
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  burrow volume rm data\n  burrow volume rm -f data cache")]
pub struct RmArgs {
    /// Say nothing about volumes that do not exist
    #[arg(short, long)]
    pub force: bool,
    /// Volume names
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  burrow volume prune -f\n  burrow volume prune -a -f")]
pub struct PruneArgs {
    /// Remove every unused volume, named ones too
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask for confirmation (burrow never asks; accepted for Docker habits)
    #[arg(short, long)]
    pub force: bool,
}

/// Column titles of `--format 'table ...'`, Docker's.
const HEADERS: &[(&str, &str)] = &[
    ("Driver", "DRIVER"),
    ("Name", "VOLUME NAME"),
    ("Mountpoint", "MOUNTPOINT"),
    ("Labels", "LABELS"),
    ("Scope", "SCOPE"),
    ("Size", "SIZE"),
    ("Links", "LINKS"),
    ("CreatedAt", "CREATED AT"),
];

pub fn run(root: Option<PathBuf>, c: VolumeCommand) -> anyhow::Result<i32> {
    match c {
        VolumeCommand::Create(a) => create(root, a),
        VolumeCommand::Ls(a) => ls(root, a),
        VolumeCommand::Inspect(a) => inspect(root, a),
        VolumeCommand::Rm(a) => rm(root, a),
        VolumeCommand::Prune(a) => prune(root, a),
    }
}

fn bad(msg: impl Into<String>) -> anyhow::Error {
    Exit::new(exit::BURROW, msg).into()
}

fn create(root: Option<PathBuf>, a: CreateArgs) -> anyhow::Result<i32> {
    if a.driver != "local" {
        return Err(bad(format!(
            "volume driver {:?} is not supported (local)",
            a.driver
        )));
    }
    if let Some(n) = &a.name {
        volumes::validate_name(n).map_err(|e| bad(e.to_string()))?;
    }
    let mut labels = BTreeMap::new();
    for l in &a.label {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        if k.is_empty() {
            return Err(bad(format!("invalid label {l:?}: no key")));
        }
        labels.insert(k.to_string(), v.to_string());
    }
    let ctx = Ctx::open(root)?;
    let name = volumes::create(&ctx.store, a.name.as_deref(), &labels)?;
    println!("{name}");
    Ok(0)
}

/// One `-f` filter of `volume ls`.
fn parse_filters(fs: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    fs.iter()
        .map(|f| match f.split_once('=') {
            Some(("dangling", v @ ("true" | "false" | "1" | "0"))) => {
                Ok(("dangling".into(), matches!(v, "true" | "1").to_string()))
            }
            Some((k @ ("name" | "label" | "driver"), v)) => Ok((k.to_string(), v.to_string())),
            _ => Err(bad(format!(
                "invalid filter {f:?}: use dangling=true|false, name=, label= or driver="
            ))),
        })
        .collect()
}

fn ls(root: Option<PathBuf>, a: LsArgs) -> anyhow::Result<i32> {
    let format = Format::parse(&a.format, &["table"])?;
    let filters = parse_filters(&a.filter)?;
    let ctx = Ctx::open(root)?;
    let containers = container::list(&ctx.store)?;
    let keep = |v: &volumes::Volume| {
        // Same key: any may match; different keys: all must (Docker's rule).
        let ok = |key: &str, f: &dyn Fn(&str) -> bool| {
            let mine: Vec<&String> = filters
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v)
                .collect();
            mine.is_empty() || mine.iter().any(|x| f(x))
        };
        let labels = v.labels.clone().unwrap_or_default();
        ok("dangling", &|x| {
            (x == "true") == volumes::users(&containers, &v.name).is_empty()
        }) && ok("name", &|x| v.name.contains(x))
            && ok("driver", &|x| x == v.driver)
            && ok("label", &|x| match x.split_once('=') {
                Some((k, val)) => labels.get(k).is_some_and(|l| l == val),
                None => labels.contains_key(x),
            })
    };
    let vols: Vec<volumes::Volume> = volumes::list(&ctx.store)?
        .into_iter()
        .filter(keep)
        .collect();
    if a.quiet {
        vols.iter().for_each(|v| println!("{}", v.name));
        return Ok(0);
    }
    if !format.is_default() {
        let items: Vec<serde_json::Value> = vols
            .iter()
            .map(|v| {
                let labels: Vec<String> = v
                    .labels
                    .iter()
                    .flatten()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                serde_json::json!({
                    "Availability": "N/A",
                    "CreatedAt": human::created_at(&v.created_at),
                    "Driver": v.driver,
                    "Group": "N/A",
                    "Labels": labels.join(","),
                    "Links": volumes::users(&containers, &v.name).len().to_string(),
                    "Mountpoint": v.mountpoint,
                    "Name": v.name,
                    "Scope": v.scope,
                    "Size": human::size(volumes::size(&ctx.store, &ctx.mapping, &v.name)),
                    "Status": "N/A",
                })
            })
            .collect();
        format.print(&items, HEADERS)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = vols
        .iter()
        .map(|v| vec![v.driver.to_string(), v.name.clone()])
        .collect();
    table::print(&["DRIVER", "VOLUME NAME"], &rows);
    Ok(0)
}

fn inspect(root: Option<PathBuf>, a: InspectArgs) -> anyhow::Result<i32> {
    let format = a
        .format
        .as_deref()
        .map(|f| Format::parse(f, &[]))
        .transpose()?;
    let ctx = Ctx::open(root)?;
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for name in &a.names {
        match volumes::get(&ctx.store, name) {
            Ok(v) => out.push(serde_json::to_value(v)?),
            Err(volumes::VolumeError::NoSuch(n)) => missing.push(format!("No such volume: {n}")),
            Err(e) => return Err(e.into()),
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

fn rm(root: Option<PathBuf>, a: RmArgs) -> anyhow::Result<i32> {
    let ctx = Ctx::open(root)?;
    let containers = container::list(&ctx.store)?;
    super::each(&a.names, "removals", |name| {
        match volumes::remove(&ctx.store, &ctx.mapping, &containers, name) {
            Ok(()) => Ok(vec![name.to_string()]),
            // -f: a volume that is not there is already removed.
            Err(volumes::VolumeError::NoSuch(_)) if a.force => Ok(Vec::new()),
            Err(volumes::VolumeError::NoSuch(n)) => {
                Err(Missing(format!("No such volume: {n}")).into())
            }
            Err(e) => Err(e.into()),
        }
    })
}

fn prune(root: Option<PathBuf>, a: PruneArgs) -> anyhow::Result<i32> {
    let ctx = Ctx::open(root)?;
    let (names, freed) = prune_volumes(&ctx, a.all)?;
    if !names.is_empty() {
        println!("Deleted Volumes:");
        names.iter().for_each(|n| println!("{n}"));
        println!();
    }
    println!("Total reclaimed space: {}", human::size(freed));
    Ok(0)
}

/// Remove the volumes no container uses: anonymous ones, or with `all`
/// named ones too (Docker's `volume prune` since API 1.42); returns their
/// names and the bytes they took.
pub fn prune_volumes(ctx: &Ctx, all: bool) -> anyhow::Result<(Vec<String>, u64)> {
    let containers = container::list(&ctx.store)?;
    let (mut names, mut freed) = (Vec::new(), 0);
    for v in volumes::list(&ctx.store)? {
        if !(all || v.is_anonymous()) || !volumes::users(&containers, &v.name).is_empty() {
            continue;
        }
        let size = volumes::size(&ctx.store, &ctx.mapping, &v.name);
        volumes::remove(&ctx.store, &ctx.mapping, &containers, &v.name)
            .with_context(|| format!("removing volume {}", v.name))?;
        names.push(v.name);
        freed += size;
    }
    Ok((names, freed))
}
