//! `burrow volume create|ls|inspect|rm|prune`: named and anonymous volumes,
//! with Docker's output shapes.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::format::Format;
use super::{table, Ctx};
use crate::engine::filters::Filters;
use crate::engine::volumes::{self, VolumeRequest};
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

fn create(root: Option<PathBuf>, a: CreateArgs) -> anyhow::Result<i32> {
    let req = VolumeRequest {
        name: a.name,
        labels: super::run::collect_labels(&a.label, &[])?,
        driver: Some(a.driver),
        ..Default::default()
    };
    let ctx = Ctx::open(root)?;
    println!("{}", volumes::create(&ctx, &req)?.name);
    Ok(0)
}

fn ls(root: Option<PathBuf>, a: LsArgs) -> anyhow::Result<i32> {
    let format = Format::parse(&a.format, &["table"])?;
    let filters = Filters::from_flags(&a.filter)?;
    let ctx = Ctx::open(root)?;
    let vols = volumes::list(&ctx, &filters)?;
    if a.quiet {
        vols.iter().for_each(|e| println!("{}", e.volume.name));
        return Ok(0);
    }
    if !format.is_default() {
        let items: Vec<serde_json::Value> = vols
            .iter()
            .map(|e| {
                let v = &e.volume;
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
                    "Links": e.users.len().to_string(),
                    "Mountpoint": v.mountpoint,
                    "Name": v.name,
                    "Scope": v.scope,
                    "Size": human::size(volumes::size(&ctx, &v.name)),
                    "Status": "N/A",
                })
            })
            .collect();
        format.print(&items, HEADERS)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = vols
        .iter()
        .map(|e| vec![e.volume.driver.to_string(), e.volume.name.clone()])
        .collect();
    table::print(&["DRIVER", "VOLUME NAME"], &rows);
    Ok(0)
}

fn inspect(root: Option<PathBuf>, a: InspectArgs) -> anyhow::Result<i32> {
    super::inspect_each(root, &a.names, a.format.as_deref(), volumes::inspect)
}

fn rm(root: Option<PathBuf>, a: RmArgs) -> anyhow::Result<i32> {
    let ctx = Ctx::open(root)?;
    super::each(&a.names, "removals", |name| {
        // -f: a volume that is not there is already removed.
        Ok(match volumes::remove(&ctx, name, a.force)? {
            true => vec![name.to_string()],
            false => Vec::new(),
        })
    })
}

fn prune(root: Option<PathBuf>, a: PruneArgs) -> anyhow::Result<i32> {
    let ctx = Ctx::open(root)?;
    let (names, freed) = volumes::prune(&ctx, a.all, &Filters::new())?;
    if !names.is_empty() {
        println!("Deleted Volumes:");
        names.iter().for_each(|n| println!("{n}"));
        println!();
    }
    println!("Total reclaimed space: {}", human::size(freed));
    Ok(0)
}
