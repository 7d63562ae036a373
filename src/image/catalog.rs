//! The images in a store as users see them: listing with tags and sizes,
//! Docker-shaped `inspect` JSON, tagging and removal (with the layers and
//! blobs no other image needs).

use std::collections::BTreeSet;

use serde_json::json;

use super::config::ImageRuntimeConfig;
use super::reference::Reference;
use crate::linux::userns::IdMapping;
use crate::store::{self, Store, StoreError};

/// One image with everything `images` and `inspect` show.
#[derive(Debug, Clone)]
pub struct ImageSummary {
    pub id: String,
    /// Fully qualified references pointing at this image.
    pub tags: Vec<Reference>,
    pub created: String,
    pub size: u64,
    pub layers: Vec<String>,
    pub config: oci_spec::image::ImageConfiguration,
    /// Its `config` section, with the Docker-only fields.
    pub runtime: ImageRuntimeConfig,
    /// Where the image was pulled from or pushed to, by digest.
    pub repo_digests: Vec<String>,
    /// Made by a build step (see `ImageMeta::build_cache`).
    pub build_cache: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("conflict: unable to remove repository reference {reference:?} (must force) - container {container} is using its referenced image {image}")]
    InUse {
        reference: String,
        container: String,
        image: String,
    },
    #[error("conflict: unable to delete {0} (must be forced) - image is referenced in multiple repositories")]
    MultipleTags(String),
    #[error("{0}")]
    BadReference(#[from] super::reference::ReferenceError),
}

/// The id of the image `name` names: a tag (parsed with Docker's defaults,
/// so `busybox` finds `docker.io/library/busybox:latest`), a full id, or a
/// unique id prefix. Lives here rather than in the store because reading a
/// reference is image knowledge; the store only lists what it holds.
pub fn resolve(store: &Store, name: &str) -> Result<String, StoreError> {
    if let Ok(r) = Reference::parse(name) {
        if let Some(id) = store.repositories()?.get(&r.to_string()) {
            return Ok(id.clone());
        }
    }
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    if !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        let matches: Vec<String> = store
            .image_ids()?
            .into_iter()
            .filter(|id| store::hex_of(id).starts_with(hex))
            .collect();
        match matches.len() {
            1 => return Ok(matches.into_iter().next().expect("one match")),
            0 => {}
            _ => return Err(StoreError::Ambiguous(name.to_string())),
        }
    }
    Err(StoreError::NoSuchImage(name.to_string()))
}

pub fn summary(store: &Store, id: &str) -> Result<ImageSummary, CatalogError> {
    let (config, runtime) = super::config::load(store, id)?;
    let layers = config.rootfs().diff_ids().clone();
    let size = layers.iter().map(|l| store.layer_size(l)).sum();
    let tags = store
        .repositories()?
        .into_iter()
        .filter(|(_, v)| v == id)
        .filter_map(|(k, _)| Reference::parse(&k).ok())
        .collect();
    let meta = super::add::read_meta(store, id)?.unwrap_or_default();
    Ok(ImageSummary {
        id: id.to_string(),
        tags,
        created: config.created().clone().unwrap_or_default(),
        size,
        layers,
        config,
        runtime,
        repo_digests: meta.repo_digests,
        build_cache: meta.build_cache,
    })
}

/// Every image, newest first.
pub fn list(store: &Store) -> Result<Vec<ImageSummary>, CatalogError> {
    let mut out = Vec::new();
    for id in store.image_ids()? {
        out.push(summary(store, &id)?);
    }
    out.sort_by(|a, b| b.created.cmp(&a.created));
    Ok(out)
}

/// Docker's `image inspect` object.
pub fn inspect_json(s: &ImageSummary) -> serde_json::Value {
    let rc = &s.runtime;
    json!({
        "Id": s.id,
        "RepoTags": s.tags.iter().map(|t| t.short()).collect::<Vec<_>>(),
        "RepoDigests": s.repo_digests.iter().map(|d| short_digest_ref(d)).collect::<Vec<_>>(),
        "Created": s.created,
        "Size": s.size,
        "Architecture": s.config.architecture().to_string(),
        "Os": s.config.os().to_string(),
        "Config": rc,
        "RootFS": { "Type": "layers", "Layers": s.layers },
    })
}

/// `docker.io/library/alpine@sha256:…` as Docker shows it: `alpine@sha256:…`.
fn short_digest_ref(d: &str) -> String {
    match d.split_once('@') {
        Some((repo, digest)) => match Reference::parse(repo) {
            Ok(r) => format!("{}@{digest}", r.short_repository()),
            Err(_) => d.to_string(),
        },
        None => d.to_string(),
    }
}

/// Point `target` at the image `source` names.
pub fn tag(store: &Store, source: &str, target: &str) -> Result<(), CatalogError> {
    let target = Reference::parse(target)?;
    let _lock = store.lock_exclusive()?;
    let id = resolve(store, source)?;
    let mut repos = store.repositories()?;
    repos.insert(target.to_string(), id);
    store.save_repositories(&repos)?;
    Ok(())
}

/// What `rmi` did, line by line, as Docker prints it.
#[derive(Debug, Default)]
pub struct Removed {
    pub lines: Vec<String>,
}

/// `rmi`: untag a reference; delete the image when no tag is left (or when
/// named by id). `in_use` lists (container id, image id, layers) of the
/// existing containers; it is called with the store locked, so no
/// container can be created on the image while it is removed. Layers still
/// used by another image or container stay.
pub fn remove<E: From<CatalogError>>(
    store: &Store,
    mapping: &IdMapping,
    name: &str,
    force: bool,
    in_use: impl FnOnce() -> Result<Vec<(String, String, Vec<String>)>, E>,
) -> Result<Removed, E> {
    let _lock = store.lock_exclusive().map_err(CatalogError::from)?;
    let in_use = in_use()?;
    Ok(remove_locked(store, mapping, name, force, &in_use)?)
}

fn remove_locked(
    store: &Store,
    mapping: &IdMapping,
    name: &str,
    force: bool,
    in_use: &[(String, String, Vec<String>)],
) -> Result<Removed, CatalogError> {
    let id = resolve(store, name)?;
    let mut repos = store.repositories()?;
    let mut out = Removed::default();
    let by_ref = Reference::parse(name)
        .ok()
        .filter(|r| repos.get(&r.to_string()) == Some(&id));
    let tags: Vec<String> = repos
        .iter()
        .filter(|(_, v)| **v == id)
        .map(|(k, _)| k.clone())
        .collect();
    // Named by tag and other tags remain: only untag.
    if let Some(r) = &by_ref {
        if tags.len() > 1 {
            repos.remove(&r.to_string());
            store.save_repositories(&repos)?;
            out.lines.push(format!("Untagged: {}", r.short()));
            return Ok(out);
        }
    } else if tags.len() > 1 && !force {
        return Err(CatalogError::MultipleTags(
            store::short_hex(&id).to_string(),
        ));
    }
    // Only what would delete the image is refused for a container's sake
    // (untagging one of several tags is not), as in Docker.
    if let Some(user) = in_use.iter().find(|(_, img, _)| *img == id) {
        if !force {
            return Err(CatalogError::InUse {
                reference: name.to_string(),
                container: user.0[..12].to_string(),
                image: store::short_hex(&id).to_string(),
            });
        }
    }
    for t in &tags {
        repos.remove(t);
        if let Ok(r) = Reference::parse(t) {
            out.lines.push(format!("Untagged: {}", r.short()));
        }
    }
    store.save_repositories(&repos)?;
    let layers = store.image_config(&id)?.rootfs().diff_ids().clone();
    // Read before the metadata goes: which blobs this image named.
    let manifest = super::add::read_meta(store, &id)?.map(|m| m.manifest);
    let blobs = super::gc::image_blobs(store, &id).unwrap_or_default();
    store.remove_image_config(&id)?;
    out.lines.push(format!("Deleted: {id}"));
    // Layers no other image or container needs go too.
    let mut needed: BTreeSet<String> = BTreeSet::new();
    for other in store.image_ids()? {
        if let Ok(c) = store.image_config(&other) {
            needed.extend(c.rootfs().diff_ids().iter().cloned());
        }
    }
    for (_, _, ls) in in_use {
        needed.extend(ls.iter().cloned());
    }
    for l in layers {
        if !needed.contains(&l) {
            super::gc::remove_layer(store, mapping, &l)?;
            out.lines.push(format!("Deleted: {l}"));
        }
    }
    // Its manifest names its config, so no other image has it; its layer
    // blobs go when no remaining image's manifest names them.
    if let Some(m) = manifest.filter(|m| store::valid_digest(m)) {
        store.remove_blob(&m)?;
    }
    super::gc::remove_unneeded_blobs(store, blobs)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        store::temp_store()
    }

    #[test]
    fn image_ids_resolve_by_prefix_and_tag() {
        let (_d, s) = store();
        let id = s.put_image_config(br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#).unwrap();
        assert_eq!(resolve(&s, &store::hex_of(&id)[..12]).unwrap(), id);
        assert_eq!(resolve(&s, &id).unwrap(), id);
        assert!(matches!(
            resolve(&s, "busybox"),
            Err(StoreError::NoSuchImage(_))
        ));
        let mut repos = BTreeMap::new();
        repos.insert("docker.io/library/busybox:latest".to_string(), id.clone());
        s.save_repositories(&repos).unwrap();
        assert_eq!(resolve(&s, "busybox").unwrap(), id);
        assert_eq!(resolve(&s, "docker.io/library/busybox:latest").unwrap(), id);
        s.image_config(&id).unwrap();
    }
}
