//! `burrow images` / `burrow image ls`: REPOSITORY TAG IMAGE ID CREATED SIZE,
//! Docker's filters, and `--format`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;

use super::format::Format;
use super::{table, Ctx, Exit};
use crate::exit;
use crate::image::catalog::{self, ImageSummary};
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

/// `--filter`s: the same key given twice means either value (Docker's rule).
#[derive(Debug, Default)]
struct Filters {
    dangling: Option<bool>,
    reference: Vec<String>,
    label: Vec<(String, Option<String>)>,
}

fn parse_filters(fs: &[String]) -> Result<Filters, String> {
    let mut out = Filters::default();
    for f in fs {
        match f.split_once('=') {
            Some(("dangling", v)) => {
                out.dangling = Some(match v {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(format!("invalid filter {f:?}: dangling is true or false")),
                })
            }
            Some(("reference", v)) => out.reference.push(v.to_string()),
            Some(("label", v)) => out.label.push(match v.split_once('=') {
                Some((k, val)) => (k.to_string(), Some(val.to_string())),
                None => (v.to_string(), None),
            }),
            _ => {
                return Err(format!(
                    "invalid filter {f:?}: use dangling=, reference= or label="
                ))
            }
        }
    }
    Ok(out)
}

/// Go's `path.Match` for the patterns people use: `*` and `?` that do not
/// cross a `/`, everything else literal.
fn glob(pattern: &str, text: &str) -> bool {
    fn m(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len())
                .take_while(|&i| i == 0 || t[i - 1] != '/')
                .any(|i| m(rest, &t[i..])),
            Some(('?', rest)) => t.first().is_some_and(|c| *c != '/') && m(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && m(rest, &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    m(&p, &t)
}

fn labels_match(img: &ImageSummary, want: &[(String, Option<String>)]) -> bool {
    let labels: &BTreeMap<String, String> = &img.runtime.labels;
    want.iter().all(|(k, v)| match (labels.get(k), v) {
        (Some(_), None) => true,
        (Some(have), Some(v)) => have == v,
        (None, _) => false,
    })
}

pub fn run(root: Option<PathBuf>, a: ImagesArgs) -> anyhow::Result<i32> {
    let format = Format::parse(&a.format, &["table"])?;
    let filters = parse_filters(&a.filter).map_err(|e| Exit::new(exit::BURROW, e))?;
    let filter = super::optional_reference(a.repository.as_deref())?;
    // `images busybox` matches every tag; `images busybox:1` only that tag.
    let tag_given = a
        .repository
        .as_deref()
        .is_some_and(|r| r.rsplit_once(':').is_some_and(|(_, t)| !t.contains('/')));
    let ctx = Ctx::open(root)?;
    let mut items = Vec::new();
    let mut ids = Vec::new();
    for img in catalog::list(&ctx.store)? {
        let dangling = img.tags.is_empty();
        if dangling && img.build_cache && !a.all {
            continue;
        }
        if filters.dangling.is_some_and(|d| d != dangling) || !labels_match(&img, &filters.label) {
            continue;
        }
        if (filter.is_some() || !filters.reference.is_empty()) && dangling {
            continue;
        }
        let shown_id = if a.no_trunc {
            img.id.clone()
        } else {
            short_hex(&img.id).to_string()
        };
        let refs: Vec<Option<&Reference>> = if dangling {
            vec![None]
        } else {
            img.tags
                .iter()
                .filter(|t| match &filter {
                    None => true,
                    Some(f) => {
                        f.full_repository() == t.full_repository() && (!tag_given || f.tag == t.tag)
                    }
                })
                .filter(|t| {
                    filters.reference.is_empty()
                        || filters
                            .reference
                            .iter()
                            .any(|p| glob(p, &t.short_repository()) || glob(p, &t.short()))
                })
                .map(Some)
                .collect()
        };
        for t in refs {
            if !ids.contains(&shown_id) {
                ids.push(shown_id.clone());
            }
            items.push(item(&img, t, &shown_id));
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
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|v| {
            keys.iter()
                .map(|k| v[k].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .collect();
    table::print(&headers, &rows);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_patterns_like_path_match() {
        assert!(glob("bus*", "busybox"));
        assert!(glob("busybox:*", "busybox:latest"));
        assert!(!glob("*", "localhost:5000/tools/busybox"));
        assert!(glob("*/*/busybox", "localhost:5000/tools/busybox"));
        assert!(glob("b?sybox", "busybox"));
        assert!(!glob("busy", "busybox"));
    }

    #[test]
    fn filters_parse() {
        let f = parse_filters(&[
            "dangling=true".into(),
            "label=a".into(),
            "label=b=c".into(),
            "reference=x*".into(),
        ])
        .unwrap();
        assert_eq!(f.dangling, Some(true));
        assert_eq!(
            f.label,
            [
                ("a".to_string(), None),
                ("b".to_string(), Some("c".to_string()))
            ]
        );
        assert!(parse_filters(&["dangling=maybe".into()]).is_err());
        assert!(parse_filters(&["since=x".into()]).is_err());
    }
}
