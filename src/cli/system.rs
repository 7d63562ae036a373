//! `burrow system df` (what the store's images, containers and volumes
//! take, and what pruning would give back) and `burrow system prune`
//! (container prune, volume prune with `--volumes`, then image prune, with
//! their code) and `burrow system check [--repair]` (the image, container
//! and store checks in turn, and the removal of the debris they find).

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::format::Format;
use super::{prune, table, Ctx};
use crate::container::{self, volumes};
use crate::image::check as image_check;
use crate::image::usage::{self, Piece};
use crate::image::{catalog, changes};
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
    let images = catalog::list(&ctx.store)?;
    let containers = container::list(&ctx.store)?;
    // Everything the store keeps for images counts: the extracted layers,
    // the blobs kept beside them (layer archives for push and save, and
    // manifests) and the configs, each piece once however many images share
    // it. Untagged images made by build steps are the Build Cache row (as
    // Docker's builder cache is), the rest the Images row, which also holds
    // what no image names any more (layers kept for containers whose image
    // is gone, debris of interrupted pulls), since `image prune` is what
    // reclaims that. Reclaimable is what `image prune -a` would remove:
    // the pieces of images no container uses, minus the layers a container
    // still runs on.
    let usage = usage::usage(&ctx.store)?;
    let is_cache = |i: &catalog::ImageSummary| i.build_cache && i.tags.is_empty();
    let (cache_images, images): (Vec<_>, Vec<_>) = images.into_iter().partition(is_cache);
    let active_images: BTreeSet<&str> = containers.iter().map(|c| c.image.as_str()).collect();
    let pieces_of = |imgs: &[catalog::ImageSummary]| -> BTreeSet<Piece> {
        imgs.iter()
            .filter_map(|i| usage.images.get(&i.id))
            .flatten()
            .cloned()
            .collect()
    };
    let mut pinned: BTreeSet<Piece> = containers
        .iter()
        .flat_map(|c| c.layers.iter().map(|l| Piece::Layer(l.clone())))
        .collect();
    for id in &active_images {
        pinned.extend(usage.images.get(*id).into_iter().flatten().cloned());
    }
    let mut image_pieces = pieces_of(&images);
    image_pieces.extend(usage.unowned.iter().cloned());
    let cache_pieces: BTreeSet<Piece> = pieces_of(&cache_images)
        .difference(&image_pieces)
        .cloned()
        .collect();
    let sum = |set: &BTreeSet<Piece>, reclaimable: bool| -> u64 {
        set.iter()
            .filter(|p| !reclaimable || !pinned.contains(*p))
            .map(|p| usage.size(p))
            .sum()
    };
    let images_size = sum(&image_pieces, false);
    let images_reclaimable = sum(&image_pieces, true);
    let cache_size = sum(&cache_pieces, false);
    let cache_reclaimable = sum(&cache_pieces, true);
    let active_in = |imgs: &[catalog::ImageSummary]| {
        imgs.iter()
            .filter(|i| active_images.contains(i.id.as_str()))
            .count()
    };
    // Each image's own size (-v): its pieces, of which those another image
    // holds too are shared.
    let image_sizes = |img: &catalog::ImageSummary| -> (u64, u64) {
        let mine = usage.images.get(&img.id).cloned().unwrap_or_default();
        let total = mine.iter().map(|p| usage.size(p)).sum();
        let shared = mine
            .iter()
            .filter(|p| usage.owners(p) > 1)
            .map(|p| usage.size(p))
            .sum();
        (total, shared)
    };
    let upper = |c: &container::ContainerRecord| {
        changes::size_as(&ctx.store.container_dir(&c.id).join("upper"), &ctx.mapping)
    };
    let sizes: Vec<u64> = containers.iter().map(upper).collect();
    let running: Vec<bool> = containers.iter().map(|c| c.is_up(&ctx.store)).collect();
    let containers_size: u64 = sizes.iter().sum();
    let containers_reclaimable: u64 = sizes
        .iter()
        .zip(&running)
        .filter(|(_, up)| !**up)
        .map(|(s, _)| s)
        .sum();
    // Volumes any container (running or not) mounts are active, as in Docker.
    let vols = volumes::list(&ctx.store)?;
    let vol_sizes: Vec<u64> = vols
        .iter()
        .map(|v| volumes::size(&ctx.store, &ctx.mapping, &v.name))
        .collect();
    let vol_links: Vec<usize> = vols
        .iter()
        .map(|v| volumes::users(&containers, &v.name).len())
        .collect();
    let vols_size: u64 = vol_sizes.iter().sum();
    let vols_reclaimable: u64 = vol_sizes
        .iter()
        .zip(&vol_links)
        .filter(|(_, l)| **l == 0)
        .map(|(s, _)| s)
        .sum();
    let items = vec![
        json!({"Type": "Images", "TotalCount": images.len().to_string(),
            "Active": active_in(&images).to_string(), "Size": human::size(images_size),
            "Reclaimable": share(images_reclaimable, images_size)}),
        json!({"Type": "Containers", "TotalCount": containers.len().to_string(),
            "Active": running.iter().filter(|r| **r).count().to_string(),
            "Size": human::size(containers_size),
            "Reclaimable": share(containers_reclaimable, containers_size)}),
        json!({"Type": "Local Volumes", "TotalCount": vols.len().to_string(),
            "Active": vol_links.iter().filter(|l| **l > 0).count().to_string(),
            "Size": human::size(vols_size),
            "Reclaimable": share(vols_reclaimable, vols_size)}),
        json!({"Type": "Build Cache", "TotalCount": cache_images.len().to_string(),
            "Active": active_in(&cache_images).to_string(),
            "Size": human::size(cache_size),
            "Reclaimable": share(cache_reclaimable, cache_size)}),
    ];
    if !format.is_default() {
        format.print(&items, HEADERS)?;
        return Ok(0);
    }
    if !a.verbose {
        let rows: Vec<Vec<String>> = items
            .iter()
            .map(|v| {
                HEADERS
                    .iter()
                    .map(|(k, _)| v[k].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .collect();
        let headers: Vec<&str> = HEADERS.iter().map(|(_, h)| *h).collect();
        table::print(&headers, &rows);
        return Ok(0);
    }
    println!("Images space usage:\n");
    let mut rows = Vec::new();
    for img in &images {
        let (total, shared) = image_sizes(img);
        let users = containers.iter().filter(|c| c.image == img.id).count();
        let names: Vec<(String, String)> = if img.tags.is_empty() {
            vec![("<none>".into(), "<none>".into())]
        } else {
            img.tags
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
                short_hex(&img.id).to_string(),
                human::ago(&img.created),
                human::size(total),
                human::size(shared),
                human::size(total - shared),
                users.to_string(),
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
    println!("\nContainers space usage:\n");
    let rows: Vec<Vec<String>> = containers
        .iter()
        .zip(&sizes)
        .map(|(c, size)| {
            vec![
                c.id[..12].to_string(),
                c.config.image.clone(),
                format!("\"{}\"", c.config.argv().join(" ")),
                volumes::names_of(c).count().to_string(),
                human::size(*size),
                human::ago(&c.created),
                c.status_text(&ctx.store),
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
    println!("\nLocal Volumes space usage:\n");
    let rows: Vec<Vec<String>> = vols
        .iter()
        .zip(vol_links.iter().zip(&vol_sizes))
        .map(|(v, (l, s))| vec![v.name.clone(), l.to_string(), human::size(*s)])
        .collect();
    table::print(&["VOLUME NAME", "LINKS", "SIZE"], &rows);
    let unowned: u64 = usage.unowned.iter().map(|p| usage.size(p)).sum();
    if unowned > 0 {
        println!(
            "\nLayers and blobs no image names: {} (burrow image prune removes those no container needs)",
            human::size(unowned)
        );
    }
    println!("\nBuild cache usage: {}", human::size(cache_size));
    if !cache_images.is_empty() {
        println!();
        let rows: Vec<Vec<String>> = cache_images
            .iter()
            .map(|img| {
                let (total, shared) = image_sizes(img);
                vec![
                    short_hex(&img.id).to_string(),
                    human::size(total),
                    human::ago(&img.created),
                    human::size(shared),
                ]
            })
            .collect();
        table::print(&["CACHE ID", "SIZE", "CREATED", "SHARED SIZE"], &rows);
    }
    Ok(0)
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
