//! `burrow images` / `burrow image ls`: REPOSITORY TAG IMAGE ID CREATED SIZE.

use std::path::PathBuf;

use clap::Args;

use super::{table, Ctx, Exit};
use crate::exit;
use crate::image::catalog;
use crate::image::reference::Reference;
use crate::store::hex_of;
use crate::util::human;

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  burrow images\n  burrow image ls busybox\n  burrow images -q\n  burrow images --format json"
)]
pub struct ImagesArgs {
    /// Only show image ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Show full image ids
    #[arg(long)]
    pub no_trunc: bool,
    /// Output format: table or json (one object per line)
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Only images of this repository (e.g. busybox)
    pub repository: Option<String>,
}

pub fn run(root: Option<PathBuf>, a: ImagesArgs) -> anyhow::Result<i32> {
    super::check_format(&a.format, &["table", "json"])?;
    let filter = a
        .repository
        .as_deref()
        .map(Reference::parse)
        .transpose()
        .map_err(|e| Exit::new(exit::BURROW, e.to_string()))?;
    // `images busybox` matches every tag; `images busybox:1` only that tag.
    let tag_given = a
        .repository
        .as_deref()
        .is_some_and(|r| r.rsplit_once(':').is_some_and(|(_, t)| !t.contains('/')));
    let ctx = Ctx::open(root)?;
    let mut rows = Vec::new();
    let mut ids = Vec::new();
    for img in catalog::list(&ctx.store)? {
        let shown_id = if a.no_trunc {
            img.id.clone()
        } else {
            hex_of(&img.id)[..12].to_string()
        };
        let entries: Vec<(String, String)> = if img.tags.is_empty() {
            vec![("<none>".into(), "<none>".into())]
        } else {
            img.tags
                .iter()
                .filter(|t| match &filter {
                    None => true,
                    Some(f) => {
                        f.full_repository() == t.full_repository() && (!tag_given || f.tag == t.tag)
                    }
                })
                .map(|t| {
                    (
                        t.short_repository(),
                        t.tag.clone().unwrap_or_else(|| "<none>".into()),
                    )
                })
                .collect()
        };
        if filter.is_some() && img.tags.is_empty() {
            continue;
        }
        for (repo, tag) in entries {
            if !ids.contains(&shown_id) {
                ids.push(shown_id.clone());
            }
            rows.push(vec![
                repo,
                tag,
                shown_id.clone(),
                human::ago(&img.created),
                human::size(img.size),
            ]);
        }
    }
    if a.quiet {
        for id in ids {
            println!("{id}");
        }
    } else if a.format == "json" {
        for r in rows {
            println!(
                "{}",
                serde_json::json!({"Repository": r[0], "Tag": r[1], "ID": r[2], "CreatedSince": r[3], "Size": r[4]})
            );
        }
    } else {
        table::print(&["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], &rows);
    }
    Ok(0)
}
