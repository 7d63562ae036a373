//! Reclaiming space: which blobs and layers the stored images and the
//! containers still need, removing the rest, and `image prune`. An image
//! needs the layers its config lists and the blobs its stored manifest
//! names (the manifest itself, its config and its layer blobs); a container
//! needs the layers it was created on.

use std::collections::BTreeSet;

use super::add::read_meta;
use super::manifest::{self, Document};
use super::reference::Reference;
use crate::linux::userns::IdMapping;
use crate::store::{self, Store, StoreError};

/// The blobs image `id` needs, or None when that cannot be known (no
/// stored manifest, or one that cannot be read): then nothing may be
/// swept on the strength of it.
pub fn image_blobs(store: &Store, id: &str) -> Option<BTreeSet<String>> {
    let meta = read_meta(store, id).ok()??;
    let bytes = store.read_blob(&meta.manifest).ok()?;
    let Ok(Document::Image(m)) = manifest::parse(&bytes, None) else {
        return None;
    };
    let mut out: BTreeSet<String> = m.layers.into_iter().map(|d| d.digest).collect();
    out.insert(m.config.digest);
    out.insert(meta.manifest);
    Some(out)
}

/// Every blob the stored images need; None when some image's needs are
/// unknown.
pub fn needed_blobs(store: &Store) -> Result<Option<BTreeSet<String>>, StoreError> {
    let mut out = BTreeSet::new();
    for id in store.image_ids()? {
        match image_blobs(store, &id) {
            Some(b) => out.extend(b),
            None => return Ok(None),
        }
    }
    Ok(Some(out))
}

/// Every layer the stored images and `container_layers` need.
pub fn needed_layers(
    store: &Store,
    container_layers: &[String],
) -> Result<BTreeSet<String>, StoreError> {
    let mut out: BTreeSet<String> = container_layers.iter().cloned().collect();
    for id in store.image_ids()? {
        if let Ok(c) = store.image_config(&id) {
            out.extend(c.rootfs().diff_ids().iter().cloned());
        }
    }
    Ok(out)
}

/// Delete one extracted layer. It is moved out of `layers/` first (one
/// rename), so an interrupted delete never leaves a half layer that looks
/// complete. Hold the exclusive lock.
pub fn remove_layer(store: &Store, mapping: &IdMapping, diff_id: &str) -> Result<(), StoreError> {
    let trash = store.root().join("tmp").join(format!(
        "rmlayer-{}-{}",
        std::process::id(),
        store::random_hex(6)
    ));
    std::fs::rename(store.layer_dir(diff_id), &trash)
        .map_err(store::io("moving layer aside", &trash))?;
    store::remove_tree(&trash, mapping)
}

/// Remove `candidates` that no stored image needs; returns the bytes freed.
/// Hold the exclusive lock, and call after the images are gone.
pub fn remove_unneeded_blobs(
    store: &Store,
    candidates: impl IntoIterator<Item = String>,
) -> Result<u64, StoreError> {
    let Some(needed) = needed_blobs(store)? else {
        tracing::debug!("an image's blobs are unknown: keeping every blob");
        return Ok(0);
    };
    let mut freed = 0;
    for b in candidates {
        if !needed.contains(&b) && store.has_blob(&b) {
            freed += std::fs::metadata(store.blob_path(&b)).map_or(0, |m| m.len());
            store.remove_blob(&b)?;
        }
    }
    Ok(freed)
}

/// Who uses an image: the image id and the layers of one container.
#[derive(Debug, Clone)]
pub struct ImageUser {
    pub image: String,
    pub layers: Vec<String>,
}

/// What `image prune` did, as Docker prints it.
#[derive(Debug, Default)]
pub struct Pruned {
    /// `untagged: ...` and `deleted: sha256:...` lines.
    pub lines: Vec<String>,
    pub reclaimed: u64,
}

/// `image prune`: remove untagged images (with `all`, every image) that no
/// container uses, then every layer and blob nothing needs any more (also
/// those left by interrupted imports and pulls). `users` lists the
/// containers; it is called with the store locked, so no container can be
/// created on an image while it is being removed.
pub fn prune<E: From<StoreError>>(
    store: &Store,
    mapping: &IdMapping,
    all: bool,
    users: impl FnOnce() -> Result<Vec<ImageUser>, E>,
) -> Result<Pruned, E> {
    store.remove_abandoned_staging(mapping);
    let _lock = store.lock_exclusive()?;
    let users = users()?;
    let used: BTreeSet<&str> = users.iter().map(|u| u.image.as_str()).collect();
    let mut repos = store.repositories()?;
    let mut out = Pruned::default();
    let mut untagged_any = false;
    let mut ids = store.image_ids()?;
    ids.sort();
    for id in ids {
        let tags: Vec<String> = repos
            .iter()
            .filter(|(_, v)| **v == id)
            .map(|(k, _)| k.clone())
            .collect();
        if used.contains(id.as_str()) || !(all || tags.is_empty()) {
            continue;
        }
        for t in tags {
            repos.remove(&t);
            untagged_any = true;
            let shown = Reference::parse(&t).map_or(t, |r| r.short());
            out.lines.push(format!("untagged: {shown}"));
        }
        if let Ok(c) = std::fs::metadata(store.image_config_path(&id)) {
            out.reclaimed += c.len();
        }
        store.remove_image_config(&id)?;
        out.lines.push(format!("deleted: {id}"));
    }
    if untagged_any {
        store.save_repositories(&repos)?;
    }
    let container_layers: Vec<String> = users.into_iter().flat_map(|u| u.layers).collect();
    let needed = needed_layers(store, &container_layers)?;
    for l in store.layer_ids()? {
        if !needed.contains(&l) {
            let size = store.layer_size(&l);
            remove_layer(store, mapping, &l)?;
            out.reclaimed += size;
            out.lines.push(format!("deleted: {l}"));
        }
    }
    out.reclaimed += remove_unneeded_blobs(store, store.blob_digests()?)?;
    // Metadata an interrupted add or rmi left without its image.
    for p in orphan_metadata(store)? {
        let _ = std::fs::remove_file(p);
    }
    Ok(out)
}

/// Metadata files whose image config is gone: an interrupted add (the
/// metadata is written first) or rmi (the config is removed first).
pub fn orphan_metadata(store: &Store) -> Result<Vec<std::path::PathBuf>, StoreError> {
    let ids: BTreeSet<String> = store.image_ids()?.into_iter().collect();
    let mut out = Vec::new();
    for e in crate::store::check::read_dir(&store.root().join("images"))? {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(hex) = name.strip_suffix(".meta") {
            if !ids.contains(&format!("sha256:{hex}")) {
                out.push(e.path());
            }
        }
    }
    Ok(out)
}
