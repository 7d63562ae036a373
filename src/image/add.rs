//! Adding a finished image to the store, the one way every producer (import,
//! pull, load, commit) ends: staged layers and blobs renamed into place, the
//! config, the manifest and the image's metadata written, then the tags,
//! all under the exclusive lock. Until the tags are written nothing lists
//! the image, so an interrupted add leaves only unreferenced files, which
//! `image prune` reclaims.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::reference::Reference;
use crate::store::{Store, StoreError};

/// A layer ready to be stored.
#[derive(Debug, Clone)]
pub struct StagedLayer {
    pub diff_id: String,
    pub tar_bytes: u64,
    /// A staging directory holding `fs/`, or None when the store has it.
    pub dir: Option<PathBuf>,
    /// A verified blob file and its digest, or None when the store has it
    /// (or the layer is foreign and has none).
    pub blob: Option<(PathBuf, String)>,
}

/// What the image layer keeps beside an image's config.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImageMeta {
    /// Digest of the manifest blob that describes the stored layers.
    pub manifest: String,
    /// `registry/repo@sha256:...` for each place it was pulled from or
    /// pushed to (Docker's RepoDigests).
    #[serde(default)]
    pub repo_digests: Vec<String>,
    /// Made by a build step: an untagged one is a cache entry, which
    /// `images` lists only with `-a`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub build_cache: bool,
    /// The gzip blob `push` made of each layer kept as a plain tar, by the
    /// plain blob's digest: a later push asks the registry for it (or
    /// mounts it) without compressing the layer again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub gzipped: BTreeMap<String, BlobRef>,
}

/// A blob by digest and size.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct BlobRef {
    pub digest: String,
    pub size: u64,
}

pub fn read_meta(store: &Store, id: &str) -> Result<Option<ImageMeta>, StoreError> {
    match store.image_meta(id)? {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|source| StoreError::BadMeta {
                path: store.root().join("images").join(id),
                source,
            }),
    }
}

pub fn write_meta(store: &Store, id: &str, meta: &ImageMeta) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(meta).expect("metadata serializes");
    store.put_image_meta(id, &bytes)
}

/// Remember that `id` is also at `repo_digest`, and the gzip blobs made
/// of its plain layers (after a push).
pub fn record_push(
    store: &Store,
    id: &str,
    repo_digest: &str,
    gzipped: &BTreeMap<String, BlobRef>,
) -> Result<(), StoreError> {
    let _lock = store.lock_exclusive()?;
    let mut meta = read_meta(store, id)?.unwrap_or_default();
    let before = meta.clone();
    if !meta.repo_digests.iter().any(|d| d == repo_digest) {
        meta.repo_digests.push(repo_digest.to_string());
    }
    meta.gzipped
        .extend(gzipped.iter().map(|(k, v)| (k.clone(), v.clone())));
    if meta != before {
        write_meta(store, id, &meta)?;
    }
    Ok(())
}

/// Mark `id` as made by a build step.
pub fn mark_build_cache(store: &Store, id: &str) -> Result<(), StoreError> {
    let _lock = store.lock_exclusive()?;
    let mut meta = read_meta(store, id)?.unwrap_or_default();
    if !meta.build_cache {
        meta.build_cache = true;
        write_meta(store, id, &meta)?;
    }
    Ok(())
}

/// A new image for the store.
#[derive(Debug)]
pub struct NewImage<'a> {
    pub config: &'a [u8],
    pub manifest: &'a [u8],
    pub layers: Vec<StagedLayer>,
    pub tags: Vec<Reference>,
    pub repo_digest: Option<String>,
}

impl<'a> NewImage<'a> {
    /// An image whose one new layer is staged whole in `staging` (extracted
    /// in `fs/`, its blob kept as `blob`), as an import or a commit makes
    /// it; tagged with `reference` when there is one.
    pub fn with_staged_layer(
        config: &'a [u8],
        manifest: &'a [u8],
        staging: &Path,
        diff_id: String,
        tar_bytes: u64,
        digest: String,
        reference: Option<&Reference>,
    ) -> Self {
        NewImage {
            config,
            manifest,
            layers: vec![StagedLayer {
                diff_id,
                tar_bytes,
                dir: Some(staging.to_path_buf()),
                blob: Some((staging.join("blob"), digest)),
            }],
            tags: reference.into_iter().cloned().collect(),
            repo_digest: None,
        }
    }
}

/// Store the image; returns its id (the config's digest).
pub fn add_image(store: &Store, img: NewImage<'_>) -> Result<String, StoreError> {
    let _lock = store.lock_exclusive()?;
    // Blobs first: a staged blob may sit inside its layer's staging dir.
    for l in &img.layers {
        if let Some((file, digest)) = &l.blob {
            store.commit_blob(file, digest)?;
        }
    }
    for l in &img.layers {
        if let Some(dir) = &l.dir {
            store.commit_layer(dir, &l.diff_id, l.tar_bytes)?;
        }
    }
    // The layers' files were written without fsync: one syncfs makes them
    // durable before anything names them.
    crate::store::sync_filesystem(store);
    let manifest = store.put_blob(img.manifest)?;
    // The metadata before the config: an image is listed once its config
    // exists, and then everything it needs is already there.
    let id = format!("sha256:{}", crate::store::sha256_hex(img.config));
    let mut meta = read_meta(store, &id)?.unwrap_or_default();
    meta.manifest = manifest;
    if let Some(d) = img.repo_digest {
        if !meta.repo_digests.contains(&d) {
            meta.repo_digests.push(d);
        }
    }
    write_meta(store, &id, &meta)?;
    store.put_image_config(img.config)?;
    if !img.tags.is_empty() {
        let mut repos = store.repositories()?;
        for t in &img.tags {
            repos.insert(t.to_string(), id.clone());
        }
        store.save_repositories(&repos)?;
    }
    Ok(id)
}
