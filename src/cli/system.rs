//! `burrow system df` (what the store's images, containers and volumes
//! take, and what pruning would give back) and `burrow system prune`
//! (container prune, volume prune with `--volumes`, then image prune, with
//! their code) and `burrow system check [--repair]` (the image, container
//! and store checks in turn, and the removal of the debris they find).

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::format::Format;
use super::{prune, table, Ctx};
use crate::container::{self, volumes};
use crate::engine::system::{self, Totals};
use crate::image::check as image_check;
use crate::store::check::{self as store_check, Finding};
use crate::store::short_hex;
use crate::util::human;

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  burrow system df\n  burrow system df -v\n  burrow system df --format '{{.Type}}: {{.Reclaimable}}'"
)]
pub struct DfArgs {
    /// Show each image and container
    #[arg(short, long)]
    pub verbose: bool,
    /// table, json (one object per line), a Go template ('{{.Type}} {{.Size}}'), or 'table TEMPLATE'
    #[arg(long, default_value = "table")]
    pub format: String,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Removes stopped containers, then with --volumes the volumes no container uses (anonymous ones; with -a, named ones too), then dangling images (with -a, every image no container uses), then the layers and blobs nothing needs.\n\nExamples:\n  burrow system prune\n  burrow system prune -a -f\n  burrow system prune --volumes -f"
)]
pub struct SystemPruneArgs {
    /// Remove every image no container uses, not only dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask for confirmation (burrow never asks; accepted for Docker habits)
    #[arg(short, long)]
    pub force: bool,
    /// Also remove volumes no container uses (anonymous ones; with -a, all)
    #[arg(long)]
    pub volumes: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Checks that every tag points at an image whose config and layers are complete, that every container's record, name and layers are there, that no half-made layer, container directory, name link, pid file or staging debris is left, and that no other user can enter the store or runtime directory. Exits 1 when it finds a problem.\n\nExamples:\n  burrow system check\n  burrow system check --repair"
)]
pub struct CheckArgs {
    /// Remove the debris found (staging, half-made layers and containers, dangling names and tags) and make an open store or runtime directory 0700
    #[arg(long)]
    pub repair: bool,
}

/// Column titles of `--format 'table ...'`, Docker's.
const HEADERS: &[(&str, &str)] = &[
    ("Type", "TYPE"),
    ("TotalCount", "TOTAL"),
    ("Active", "ACTIVE"),
    ("Size", "SIZE"),
    ("Reclaimable", "RECLAIMABLE"),
];

/// "1.2MB (40%)", as Docker shows what could be reclaimed.
fn share(part: u64, whole: u64) -> String {
    if whole == 0 {
        return human::size(part);
    }
    format!("{} ({}%)", human::size(part), part * 100 / whole)
}

pub fn run_df(root: Option<PathBuf>, a: DfArgs) -> anyhow::Result<i32> {
    let format = Format::parse(&a.format, &["table"])?;
    let ctx = Ctx::open(root)?;
    let df = system::df(&ctx)?;
    let row = |kind: &str, t: &Totals| {
        json!({"Type": kind, "TotalCount": t.count.to_string(),
            "Active": t.active.to_string(), "Size": human::size(t.size),
            "Reclaimable": share(t.reclaimable, t.size)})
    };
    let items = vec![
        row("Images", &df.images_total),
        row("Containers", &df.containers_total),
        row("Local Volumes", &df.volumes_total),
        row("Build Cache", &df.build_cache_total),
    ];
    if !format.is_default() {
        format.print(&items, HEADERS)?;
        return Ok(0);
    }
    if !a.verbose {
        let keys: Vec<&str> = HEADERS.iter().map(|(k, _)| *k).collect();
        let headers: Vec<&str> = HEADERS.iter().map(|(_, h)| *h).collect();
        table::print_fields(&headers, &keys, &items);
        return Ok(0);
    }
    print_df_images(&df);
    print_df_containers(&df);
    print_df_volumes_and_cache(&df);
    Ok(0)
}

/// `df -v`'s table of images: a row per tag.
fn print_df_images(df: &system::Df) {
    println!("Images space usage:\n");
    let mut rows = Vec::new();
    for img in &df.images {
        let s = &img.summary;
        let names: Vec<(String, String)> = if s.tags.is_empty() {
            vec![("<none>".into(), "<none>".into())]
        } else {
            s.tags
                .iter()
                .map(|t| {
                    (
                        t.short_repository(),
                        t.tag.clone().unwrap_or_else(|| "<none>".into()),
                    )
                })
                .collect()
        };
        for (repo, tag) in names {
            rows.push(vec![
                repo,
                tag,
                short_hex(&s.id).to_string(),
                human::ago(&s.created),
                human::size(img.size),
                human::size(img.shared),
                human::size(img.size - img.shared),
                img.containers.to_string(),
            ]);
        }
    }
    table::print(
        &[
            "REPOSITORY",
            "TAG",
            "IMAGE ID",
            "CREATED",
            "SIZE",
            "SHARED SIZE",
            "UNIQUE SIZE",
            "CONTAINERS",
        ],
        &rows,
    );
}

/// `df -v`'s table of containers.
fn print_df_containers(df: &system::Df) {
    println!("\nContainers space usage:\n");
    let rows: Vec<Vec<String>> = df
        .containers
        .iter()
        .map(|dc| {
            let c = &dc.record;
            vec![
                c.id[..12].to_string(),
                c.config.image.clone(),
                format!("\"{}\"", c.config.argv().join(" ")),
                volumes::names_of(c).count().to_string(),
                human::size(dc.size),
                human::ago(&c.created),
                dc.status.clone(),
                c.name.clone(),
            ]
        })
        .collect();
    table::print(
        &[
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "LOCAL VOLUMES",
            "SIZE",
            "CREATED",
            "STATUS",
            "NAMES",
        ],
        &rows,
    );
}

/// `df -v`'s table of volumes, what no image names, and the build cache.
fn print_df_volumes_and_cache(df: &system::Df) {
    println!("\nLocal Volumes space usage:\n");
    let rows: Vec<Vec<String>> = df
        .volumes
        .iter()
        .map(|v| {
            vec![
                v.volume.name.clone(),
                v.links.to_string(),
                human::size(v.size),
            ]
        })
        .collect();
    table::print(&["VOLUME NAME", "LINKS", "SIZE"], &rows);
    if df.unowned > 0 {
        println!(
            "\nLayers and blobs no image names: {} (burrow image prune removes those no container needs)",
            human::size(df.unowned)
        );
    }
    println!(
        "\nBuild cache usage: {}",
        human::size(df.build_cache_total.size)
    );
    if !df.build_cache.is_empty() {
        println!();
        let rows: Vec<Vec<String>> = df
            .build_cache
            .iter()
            .map(|img| {
                vec![
                    short_hex(&img.summary.id).to_string(),
                    human::size(img.size),
                    human::ago(&img.summary.created),
                    human::size(img.shared),
                ]
            })
            .collect();
        table::print(&["CACHE ID", "SIZE", "CREATED", "SHARED SIZE"], &rows);
    }
}

pub fn run_prune(root: Option<PathBuf>, a: SystemPruneArgs) -> anyhow::Result<i32> {
    let ctx = Ctx::open(root)?;
    let crate::engine::containers::Pruned {
        deleted: ids,
        space: containers_freed,
    } = crate::engine::containers::prune(&ctx, &crate::engine::filters::Filters::new())?;
    if !ids.is_empty() {
        println!("Deleted Containers:");
        for id in &ids {
            println!("{id}");
        }
        println!();
    }
    let (vols, vols_freed) = if a.volumes {
        crate::engine::volumes::prune(&ctx, a.all, &crate::engine::filters::Filters::new())?
    } else {
        (Vec::new(), 0)
    };
    if !vols.is_empty() {
        println!("Deleted Volumes:");
        for v in &vols {
            println!("{v}");
        }
        println!();
    }
    let pruned =
        crate::engine::catalog::prune(&ctx, a.all, &crate::engine::filters::Filters::new())?;
    prune::print_images(&pruned);
    println!(
        "Total reclaimed space: {}",
        human::size(containers_freed + vols_freed + pruned.space)
    );
    Ok(0)
}

pub fn run_check(root: Option<PathBuf>, a: CheckArgs) -> anyhow::Result<i32> {
    // As it is: the reclaiming every other command does would hide what
    // a killed command left.
    let ctx = Ctx::open_as_is(root)?;
    let find = || -> anyhow::Result<(Vec<Finding>, (usize, usize, usize))> {
        let images = image_check::check(&ctx.store)?;
        let containers = container::check::check(&ctx.store)?;
        let mut findings = store_check::check(&ctx.store)?;
        findings.extend(images.findings);
        findings.extend(containers.findings);
        let mut needed = images.needed_layers;
        needed.extend(containers.needed_layers);
        let unused = image_check::unreferenced(&ctx.store, &needed)?;
        Ok((findings, unused))
    };
    let (findings, (layers, blobs, metas)) = if a.repair {
        let _lock = ctx.store.lock_exclusive()?;
        let (findings, _) = find()?;
        for line in store_check::repair(&ctx.store, &ctx.mapping, &findings)? {
            println!("{line}");
        }
        find()?
    } else {
        let _lock = ctx.store.lock_shared()?;
        find()?
    };
    // A stale keeper is replaced by the next start on its own; said so
    // that nobody goes looking for a reset.
    let keeper = crate::network::keeper::status(ctx.store.paths.runtime_base(), &ctx.mapping);
    if keeper == crate::network::keeper::Status::Stale {
        println!("note: {keeper}");
    }
    if layers + blobs + metas > 0 {
        println!(
            "note: {layers} layers, {blobs} blobs and {metas} image metadata files no image or container needs (burrow image prune reclaims them)"
        );
    }
    if findings.is_empty() {
        println!("store is consistent");
        return Ok(0);
    }
    for f in &findings {
        match &f.fix {
            Some(fix) => println!("{} (--repair {})", f.problem, fix.describe()),
            None => println!("{}", f.problem),
        }
    }
    eprintln!("{} problems found", findings.len());
    Ok(1)
}
