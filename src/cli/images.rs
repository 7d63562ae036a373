//! `burrow images` / `burrow image ls`: REPOSITORY TAG IMAGE ID CREATED SIZE,
//! Docker's filters, and `--format`.

use std::path::PathBuf;

use clap::Args;

use super::format::Format;
use super::{table, Ctx};
use crate::engine::catalog::{self, ImageListRequest};
use crate::engine::filters::Filters;
use crate::image::catalog::ImageSummary;
use crate::image::reference::Reference;
use crate::store::short_hex;
use crate::util::human;

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  burrow images\n  burrow image ls busybox\n  burrow images -q\n  burrow images --filter dangling=true\n  burrow images --filter reference='bus*'\n  burrow images --format '{{.Repository}}:{{.Tag}} {{.Size}}'"
)]
pub struct ImagesArgs {
    /// Show all images, also the untagged ones a build keeps as its cache
    #[arg(short, long)]
    pub all: bool,
    /// Only show image ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Show full image ids
    #[arg(long)]
    pub no_trunc: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Filter: dangling=true|false, reference=PATTERN (* and ? wildcards), label=KEY or label=KEY=VALUE
    #[arg(short, long = "filter", value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// table, json (one object per line), a Go template ('{{.Repository}}'), or 'table TEMPLATE'
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Only images of this repository (e.g. busybox)
    pub repository: Option<String>,
}

/// Column titles of `--format 'table ...'`, Docker's.
const HEADERS: &[(&str, &str)] = &[
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("ID", "IMAGE ID"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("Digest", "DIGEST"),
    ("Containers", "CONTAINERS"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("VirtualSize", "VIRTUAL SIZE"),
];

pub fn run(root: Option<PathBuf>, a: ImagesArgs) -> anyhow::Result<i32> {
    let format = Format::parse(&a.format, &["table"])?;
    let filters = Filters::from_flags(&a.filter)?;
    let ctx = Ctx::open(root)?;
    let req = ImageListRequest {
        all: a.all,
        filters,
        digests: a.digests,
        repository: a.repository.clone(),
    };
    let mut items = Vec::new();
    let mut ids = Vec::new();
    for entry in catalog::list(&ctx, &req)? {
        let img = &entry.summary;
        let shown_id = if a.no_trunc {
            img.id.clone()
        } else {
            short_hex(&img.id).to_string()
        };
        let refs: Vec<Option<&Reference>> = if entry.dangling() {
            vec![None]
        } else {
            entry.tags.iter().map(Some).collect()
        };
        for t in refs {
            if !ids.contains(&shown_id) {
                ids.push(shown_id.clone());
            }
            items.push(item(img, t, &shown_id));
        }
    }
    if a.quiet {
        for id in ids {
            println!("{id}");
        }
        return Ok(0);
    }
    if !format.is_default() {
        format.print(&items, HEADERS)?;
        return Ok(0);
    }
    let keys: &[&str] = if a.digests {
        &["Repository", "Tag", "Digest", "ID", "CreatedSince", "Size"]
    } else {
        &["Repository", "Tag", "ID", "CreatedSince", "Size"]
    };
    let headers: Vec<&str> = keys
        .iter()
        .map(|k| HEADERS.iter().find(|(f, _)| f == k).map_or(*k, |(_, h)| *h))
        .collect();
    table::print_fields(&headers, keys, &items);
    Ok(0)
}

/// One row as Docker's `images --format` sees it (all strings).
fn item(img: &ImageSummary, tag: Option<&Reference>, shown_id: &str) -> serde_json::Value {
    let (repo, tag_name) = match tag {
        Some(t) => (
            t.short_repository(),
            t.tag.clone().unwrap_or_else(|| "<none>".into()),
        ),
        None => ("<none>".into(), "<none>".into()),
    };
    // The digest the image has in this repository's registry, if known.
    let digest = tag
        .and_then(|t| {
            img.repo_digests.iter().find_map(|d| {
                let (r, digest) = d.split_once('@')?;
                let same =
                    Reference::parse(r).is_ok_and(|r| r.full_repository() == t.full_repository());
                same.then(|| digest.to_string())
            })
        })
        .unwrap_or_else(|| "<none>".into());
    serde_json::json!({
        "Containers": "N/A",
        "CreatedAt": human::created_at(&img.created),
        "CreatedSince": human::ago(&img.created),
        "Digest": digest,
        "ID": shown_id,
        "Repository": repo,
        "SharedSize": "N/A",
        "Size": human::size(img.size),
        "Tag": tag_name,
        "UniqueSize": "N/A",
        "VirtualSize": human::size(img.size),
    })
}
