//! The images in the store: listing (with Docker's filters), inspecting,
//! their history, tagging, removing and pruning. Getting images (pull) is
//! `engine::images`.

use super::filters::{earlier, Filters};
use super::{Engine, Error, Result};
use crate::container;
use crate::image::catalog::{self, CatalogError, ImageSummary};
use crate::image::gc;
use crate::image::history::{self, HistoryRow};
use crate::image::reference::Reference;

impl From<CatalogError> for Error {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::Store(s) => s.into(),
            e @ (CatalogError::InUse { .. } | CatalogError::MultipleTags(_)) => Error::conflict(e),
            e @ CatalogError::BadReference(_) => Error::invalid(e),
        }
    }
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct ImageListRequest {
    /// The untagged images a build keeps as its cache too.
    pub all: bool,
    pub filters: Filters,
    /// Whether the caller shows digests (every entry carries them anyway).
    pub digests: bool,
    /// Only the tags of this repository (`busybox`), or this one tag
    /// (`busybox:1`): `images REPOSITORY`.
    pub repository: Option<String>,
}

/// The filters `list` knows.
const LIST_FILTERS: &[&str] = &[
    "dangling",
    "reference",
    "label",
    "label!",
    "before",
    "since",
];

/// One listed image, and the tags of it the request selects (none for a
/// dangling image).
#[derive(Debug, Clone)]
pub struct ImageEntry {
    pub summary: ImageSummary,
    pub tags: Vec<Reference>,
}

impl ImageEntry {
    pub fn dangling(&self) -> bool {
        self.summary.tags.is_empty()
    }
}

/// The images `req` asks for, newest first.
pub fn list(engine: &Engine, req: &ImageListRequest) -> Result<Vec<ImageEntry>> {
    let f = &req.filters;
    f.check(LIST_FILTERS)?;
    let dangling_only = f.boolean("dangling")?;
    let repository = req
        .repository
        .as_deref()
        .map(Reference::parse)
        .transpose()
        .map_err(Error::invalid)?;
    // `images busybox` matches every tag; `images busybox:1` only that tag.
    let tag_given = req
        .repository
        .as_deref()
        .is_some_and(|r| r.rsplit_once(':').is_some_and(|(_, t)| !t.contains('/')));
    let created_of = |name: &str| -> Result<String> {
        let id = catalog::resolve(&engine.store, name)?;
        Ok(catalog::summary(&engine.store, &id)?.created)
    };
    let before: Vec<String> = f.values("before").map(created_of).collect::<Result<_>>()?;
    let since: Vec<String> = f.values("since").map(created_of).collect::<Result<_>>()?;
    let patterns: Vec<&str> = f.values("reference").collect();
    let mut out = Vec::new();
    for img in catalog::list(&engine.store)? {
        let dangling = img.tags.is_empty();
        if dangling && img.build_cache && !req.all {
            continue;
        }
        if dangling_only.is_some_and(|d| d != dangling) || !f.labels_match(&img.runtime.labels) {
            continue;
        }
        if !before.iter().all(|t| earlier(&img.created, t))
            || !since.iter().all(|t| earlier(t, &img.created))
        {
            continue;
        }
        if dangling {
            if repository.is_none() && patterns.is_empty() {
                out.push(ImageEntry {
                    summary: img,
                    tags: Vec::new(),
                });
            }
            continue;
        }
        let tags: Vec<Reference> = img
            .tags
            .iter()
            .filter(|t| match &repository {
                None => true,
                Some(r) => {
                    r.full_repository() == t.full_repository() && (!tag_given || r.tag == t.tag)
                }
            })
            .filter(|t| {
                patterns.is_empty()
                    || patterns
                        .iter()
                        .any(|p| glob(p, &t.short_repository()) || glob(p, &t.short()))
            })
            .cloned()
            .collect();
        if !tags.is_empty() {
            out.push(ImageEntry { summary: img, tags });
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

/// The image `key` names (a tag, a full id or a unique id prefix).
pub fn find(engine: &Engine, key: &str) -> Result<ImageSummary> {
    let id = catalog::resolve(&engine.store, key)?;
    Ok(catalog::summary(&engine.store, &id)?)
}

/// Docker's `image inspect` object.
pub fn inspect(engine: &Engine, key: &str) -> Result<serde_json::Value> {
    Ok(catalog::inspect_json(&find(engine, key)?))
}

/// The image's history, newest step first.
pub fn history(engine: &Engine, key: &str) -> Result<Vec<HistoryRow>> {
    Ok(history::history(&engine.store, key)?)
}

/// Point `target` at the image `source` names.
pub fn tag(engine: &Engine, source: &str, target: &str) -> Result<()> {
    catalog::tag(&engine.store, source, target)?;
    if let Ok(id) = catalog::resolve(&engine.store, target) {
        super::events::image(engine, "tag", &id, target);
    }
    Ok(())
}

/// One thing an image removal did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    /// A reference, short as Docker shows it (`busybox:latest`).
    Untagged(String),
    /// An image id or a layer's diff id.
    Deleted(String),
}

/// What the store's line says, typed.
fn removed(line: &str) -> Option<Removed> {
    let (word, what) = line.split_once(": ")?;
    match word.to_ascii_lowercase().as_str() {
        "untagged" => Some(Removed::Untagged(what.to_string())),
        "deleted" => Some(Removed::Deleted(what.to_string())),
        _ => None,
    }
}

/// `rmi`: untag the reference `key` names, and delete the image when no
/// tag is left (or when named by id); with `force`, even when containers
/// use it or other tags remain. `prune` is Docker's (delete untagged
/// parents): images here have no parent images, so there is none to keep.
pub fn remove(engine: &Engine, key: &str, force: bool, prune: bool) -> Result<Vec<Removed>> {
    let _ = prune;
    // Listed under the store lock: a container created meanwhile counts.
    let users = || -> Result<Vec<(String, String, Vec<String>)>> {
        Ok(container::list(&engine.store)?
            .into_iter()
            .map(|r| (r.id, r.image, r.layers))
            .collect())
    };
    let id = catalog::resolve(&engine.store, key).unwrap_or_default();
    let done = catalog::remove(&engine.store, &engine.mapping, key, force, users)?;
    let removed: Vec<Removed> = done.lines.iter().filter_map(|l| removed(l)).collect();
    for r in &removed {
        match r {
            Removed::Untagged(name) => super::events::image(engine, "untag", &id, name),
            Removed::Deleted(d) if *d == id => super::events::image(engine, "delete", &id, &id),
            Removed::Deleted(_) => {}
        }
    }
    Ok(removed)
}

/// What an image prune removed, and the bytes it gave back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImagesPruned {
    pub removed: Vec<Removed>,
    pub space: u64,
}

/// Remove the dangling images (with `all`, or the filter `dangling=false`,
/// every image no container uses), then the layers and blobs nothing needs.
pub fn prune(engine: &Engine, all: bool, filters: &Filters) -> Result<ImagesPruned> {
    filters.check(&["dangling"])?;
    let all = all || filters.boolean("dangling")? == Some(false);
    let pruned = gc::prune(&engine.store, &engine.mapping, all, || {
        Ok::<_, Error>(
            container::list(&engine.store)?
                .into_iter()
                .map(|r| gc::ImageUser {
                    image: r.image,
                    layers: r.layers,
                })
                .collect(),
        )
    })?;
    Ok(ImagesPruned {
        removed: pruned.lines.iter().filter_map(|l| removed(l)).collect(),
        space: pruned.reclaimed,
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
    fn removal_lines_typed() {
        assert_eq!(
            removed("Untagged: busybox:latest"),
            Some(Removed::Untagged("busybox:latest".into()))
        );
        assert_eq!(
            removed("deleted: sha256:ab"),
            Some(Removed::Deleted("sha256:ab".into()))
        );
        assert_eq!(removed("other"), None);
    }
}
