//! The store's content: layer directories, image configs and their
//! metadata, blobs by digest, and the tags (`repositories.json`).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use super::{hex_of, io, sha256_hex, sync_dir, valid_digest, Result, Store, StoreError};

impl Store {
    // ---- layers ----

    pub fn layer_dir(&self, diff_id: &str) -> PathBuf {
        self.paths.root.join("layers").join(hex_of(diff_id))
    }

    /// The directory overlayfs uses as a lower layer.
    pub fn layer_fs(&self, diff_id: &str) -> PathBuf {
        self.layer_dir(diff_id).join("fs")
    }

    pub fn has_layer(&self, diff_id: &str) -> bool {
        self.layer_dir(diff_id).join("size").is_file()
    }

    pub fn layer_size(&self, diff_id: &str) -> u64 {
        fs::read_to_string(self.layer_dir(diff_id).join("size"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Move a fully extracted staging dir (containing `fs/`) into place.
    /// Returns false if the layer already existed (the caller discards the
    /// staging copy). The `size` file is written last inside the staging dir,
    /// so a layer directory is complete whenever it exists.
    pub fn commit_layer(&self, staging: &Path, diff_id: &str, size: u64) -> Result<bool> {
        let size_path = staging.join("size");
        fs::write(&size_path, size.to_string()).map_err(io("writing", &size_path))?;
        let dest = self.layer_dir(diff_id);
        if self.has_layer(diff_id) {
            return Ok(false);
        }
        match fs::rename(staging, &dest) {
            Ok(()) => {
                sync_dir(&self.paths.root.join("layers"));
                Ok(true)
            }
            // Someone committed the same layer between our check and rename.
            Err(e) if dest.join("size").is_file() => {
                tracing::debug!("layer {diff_id} appeared concurrently: {e}");
                Ok(false)
            }
            Err(e) => Err(io("committing layer", &dest)(e)),
        }
    }

    // ---- image configs ----

    /// Store an image config blob; returns its id (`sha256:<hex>`).
    pub fn put_image_config(&self, bytes: &[u8]) -> Result<String> {
        let id = format!("sha256:{}", sha256_hex(bytes));
        let p = self.image_config_path(&id);
        if !p.exists() {
            self.replace(&p, bytes, true)?;
        }
        Ok(id)
    }

    pub fn image_config_path(&self, id: &str) -> PathBuf {
        self.paths
            .root
            .join("images")
            .join(format!("{}.json", hex_of(id)))
    }

    pub fn image_config(&self, id: &str) -> Result<oci_spec::image::ImageConfiguration> {
        let bytes = self.image_config_bytes(id)?;
        serde_json::from_slice(&bytes).map_err(|source| StoreError::BadJson {
            path: self.image_config_path(id),
            source,
        })
    }

    /// The config blob as stored (for the fields OCI's type drops).
    pub fn image_config_bytes(&self, id: &str) -> Result<Vec<u8>> {
        let p = self.image_config_path(id);
        fs::read(&p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                StoreError::NoSuchImage(id.to_string())
            } else {
                io("reading image config", &p)(e)
            }
        })
    }

    /// Ids of every stored image.
    pub fn image_ids(&self) -> Result<Vec<String>> {
        let d = self.paths.root.join("images");
        let mut out = Vec::new();
        for e in fs::read_dir(&d).map_err(io("listing", &d))? {
            let e = e.map_err(io("listing", &d))?;
            if let Some(hex) = e.file_name().to_string_lossy().strip_suffix(".json") {
                out.push(format!("sha256:{hex}"));
            }
        }
        Ok(out)
    }

    /// The config goes first: from then on nothing lists the image, and a
    /// metadata file left by an interrupted removal is unreferenced debris.
    pub fn remove_image_config(&self, id: &str) -> Result<()> {
        let p = self.image_config_path(id);
        fs::remove_file(&p).map_err(io("removing image config", &p))?;
        let meta = self.image_meta_path(id);
        if let Err(e) = fs::remove_file(&meta) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(io("removing image metadata", &meta)(e));
            }
        }
        Ok(())
    }

    pub fn image_meta_path(&self, id: &str) -> PathBuf {
        self.paths
            .root
            .join("images")
            .join(format!("{}.meta", hex_of(id)))
    }

    /// The bytes the image layer keeps beside an image's config, if any.
    pub fn image_meta(&self, id: &str) -> Result<Option<Vec<u8>>> {
        let p = self.image_meta_path(id);
        match fs::read(&p) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("reading image metadata", &p)(e)),
        }
    }

    pub fn put_image_meta(&self, id: &str, bytes: &[u8]) -> Result<()> {
        self.replace(&self.image_meta_path(id), bytes, true)
    }

    // ---- blobs ----

    /// Where the blob with `digest` (`sha256:<64 hex>`) lives. The digest
    /// must have been checked with [`valid_digest`]: it names a path.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        debug_assert!(valid_digest(digest), "unchecked digest {digest:?}");
        self.paths
            .root
            .join("blobs")
            .join("sha256")
            .join(hex_of(digest))
    }

    pub fn has_blob(&self, digest: &str) -> bool {
        valid_digest(digest) && self.blob_path(digest).is_file()
    }

    /// Move a finished, verified blob file into place (or drop it when the
    /// same blob is already there).
    pub fn commit_blob(&self, staged: &Path, digest: &str) -> Result<()> {
        if !valid_digest(digest) {
            return Err(StoreError::BadDigest {
                path: staged.to_path_buf(),
                digest: digest.to_string(),
            });
        }
        let dest = self.blob_path(digest);
        if dest.is_file() {
            let _ = fs::remove_file(staged);
            return Ok(());
        }
        fs::rename(staged, &dest).map_err(io("storing blob", &dest))?;
        sync_dir(&self.paths.root.join("blobs").join("sha256"));
        Ok(())
    }

    /// Store a small blob (a manifest) from memory; returns its digest.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<String> {
        let digest = format!("sha256:{}", sha256_hex(bytes));
        let p = self.blob_path(&digest);
        if !p.is_file() {
            self.replace(&p, bytes, true)?;
        }
        Ok(digest)
    }

    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
        self.on_blob(digest, "reading blob", |p| fs::read(p))
    }

    pub fn open_blob(&self, digest: &str) -> Result<File> {
        self.on_blob(digest, "opening blob", |p| File::open(p))
    }

    /// `f` on the blob's file; a digest that is not one, or a blob that is
    /// not there, is `NoSuchBlob`.
    fn on_blob<T>(
        &self,
        digest: &str,
        step: &'static str,
        f: impl FnOnce(&Path) -> std::io::Result<T>,
    ) -> Result<T> {
        if !valid_digest(digest) {
            return Err(StoreError::NoSuchBlob(digest.to_string()));
        }
        let p = self.blob_path(digest);
        f(&p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                StoreError::NoSuchBlob(digest.to_string())
            } else {
                io(step, &p)(e)
            }
        })
    }

    pub fn remove_blob(&self, digest: &str) -> Result<()> {
        if !valid_digest(digest) {
            return Ok(());
        }
        let p = self.blob_path(digest);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("removing blob", &p)(e)),
        }
    }

    /// Digests of every stored blob.
    pub fn blob_digests(&self) -> Result<Vec<String>> {
        let d = self.paths.root.join("blobs").join("sha256");
        let mut out = Vec::new();
        for e in fs::read_dir(&d).map_err(io("listing", &d))? {
            let e = e.map_err(io("listing", &d))?;
            let digest = format!("sha256:{}", e.file_name().to_string_lossy());
            if valid_digest(&digest) {
                out.push(digest);
            }
        }
        Ok(out)
    }

    /// Diff ids of every complete layer.
    pub fn layer_ids(&self) -> Result<Vec<String>> {
        let d = self.paths.root.join("layers");
        let mut out = Vec::new();
        for e in fs::read_dir(&d).map_err(io("listing", &d))? {
            let e = e.map_err(io("listing", &d))?;
            let id = format!("sha256:{}", e.file_name().to_string_lossy());
            if valid_digest(&id) && self.has_layer(&id) {
                out.push(id);
            }
        }
        Ok(out)
    }

    // ---- tags ----

    pub fn repositories(&self) -> Result<BTreeMap<String, String>> {
        let p = self.paths.root.join("repositories.json");
        match fs::read(&p) {
            Ok(b) => {
                serde_json::from_slice(&b).map_err(|source| StoreError::BadJson { path: p, source })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(io("reading", &p)(e)),
        }
    }

    /// Replace the tag index atomically. Hold the exclusive lock.
    pub fn save_repositories(&self, repos: &BTreeMap<String, String>) -> Result<()> {
        let p = self.paths.root.join("repositories.json");
        let bytes = serde_json::to_vec_pretty(repos).expect("map of strings serializes");
        self.replace(&p, &bytes, true)
    }
}
