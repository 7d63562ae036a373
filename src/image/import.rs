//! `import`: a rootfs tarball (plain, gzip or zstd) becomes a one-layer image.
//! Extraction runs as root of a user namespace so file owners survive; the
//! layer is staged under tmp/ and renamed into place only when complete.

use std::io::{IsTerminal, Read};
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::change::{apply_change, ChangeError};
use super::compress::{self, CompressError};
use super::config::{new_image_config, ImageRuntimeConfig};
use super::layer::{self, ApplyOptions, IdPolicy};
use super::reference::Reference;
use crate::linux::userns::{self, IdMapping, UsernsError};
use crate::store::{self, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Change(#[from] ChangeError),
    #[error(transparent)]
    Compress(#[from] CompressError),
    #[error("{0}")]
    Layer(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Userns(UsernsError),
}

/// What to import and how to label it.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub changes: Vec<String>,
    pub reference: Option<Reference>,
    /// Shown in the image history ("imported from busybox.tar").
    pub comment: String,
    /// Fixed creation time (the built-in image, for a stable id); else now.
    pub created: Option<String>,
    /// Total input size for the progress bar, when known.
    pub total_bytes: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Imported {
    pub id: String,
    pub notes: Vec<String>,
}

/// Written by the extracting child into the staging dir for the parent.
#[derive(Serialize, Deserialize)]
struct ExtractResult {
    diff_id: String,
    tar_bytes: u64,
    notes: Vec<String>,
}

/// Counts and hashes what passes through: the layer's diff id is the sha256
/// of the uncompressed tar stream.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Advances a progress bar with the compressed bytes read.
struct Progress<R> {
    inner: R,
    bar: ProgressBar,
}

impl<R: Read> Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

fn progress_bar(total: Option<u64>) -> ProgressBar {
    // Quiet unless a person is watching, and only for archives worth watching.
    if !std::io::stderr().is_terminal() || total.is_some_and(|t| t < 8 << 20) {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(t) => ProgressBar::new(t),
        None => ProgressBar::new_spinner(),
    };
    bar.set_style(
        ProgressStyle::with_template(
            "importing {bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// Import one rootfs tarball from `reader` as a new image.
pub fn import_tar<R: Read>(
    store: &Store,
    mapping: &IdMapping,
    reader: R,
    opts: &ImportOptions,
) -> Result<Imported, ImportError> {
    // Every --change is checked before a byte is read.
    let mut runtime = ImageRuntimeConfig::default();
    for c in &opts.changes {
        apply_change(&mut runtime, c)?;
    }
    clean_abandoned(store, mapping);

    let staging = store.staging_dir("import")?;
    let result = extract(store, mapping, reader, opts, &staging)
        .and_then(|r| commit(store, &staging, &runtime, r, opts));
    if staging.exists() {
        let _ = store::remove_tree(&staging, mapping);
    }
    result
}

fn extract<R: Read>(
    _store: &Store,
    mapping: &IdMapping,
    reader: R,
    opts: &ImportOptions,
    staging: &Path,
) -> Result<ExtractResult, ImportError> {
    let fs_dir = staging.join("fs");
    std::fs::create_dir(&fs_dir).map_err(store::io("creating", &fs_dir))?;
    let ids = if mapping.is_range() {
        let (u, g) = mapping.max_ids();
        IdPolicy::Keep {
            max_uid: u,
            max_gid: g,
        }
    } else {
        IdPolicy::Collapse
    };
    let bar = progress_bar(opts.total_bytes);
    let result_path = staging.join("result.json");
    let rp = result_path.clone();
    let fs_dir2 = fs_dir.clone();
    // The child reads the archive itself: the file offset is shared, and a
    // pipe (stdin) is inherited.
    let outcome = userns::run_in_userns(mapping, move || {
        let source = Progress {
            inner: reader,
            bar: bar.clone(),
        };
        let (_kind, decoded) = compress::decoder(source).map_err(|e| e.to_string())?;
        let mut hashing = Hashing {
            inner: decoded,
            hasher: Sha256::new(),
            bytes: 0,
        };
        let report = layer::apply_layer(&mut hashing, &fs_dir2, &ApplyOptions { ids })
            .map_err(|e| e.to_string())?;
        bar.finish_and_clear();
        let res = ExtractResult {
            diff_id: format!("sha256:{}", store::hex(&hashing.hasher.finalize())),
            tar_bytes: hashing.bytes.max(report.tar_bytes),
            notes: report.notes,
        };
        std::fs::write(&rp, serde_json::to_vec(&res).map_err(|e| e.to_string())?)
            .map_err(|e| format!("writing {rp:?}: {e}"))
    });
    match outcome {
        Ok(()) => {}
        Err(UsernsError::Child(msg)) => return Err(ImportError::Layer(msg)),
        Err(e) => return Err(ImportError::Userns(e)),
    }
    let bytes = std::fs::read(&result_path).map_err(store::io("reading", &result_path))?;
    let _ = std::fs::remove_file(&result_path);
    serde_json::from_slice(&bytes).map_err(|e| {
        ImportError::Store(StoreError::Corrupt {
            path: result_path,
            detail: e.to_string(),
        })
    })
}

fn commit(
    store: &Store,
    staging: &Path,
    runtime: &ImageRuntimeConfig,
    r: ExtractResult,
    opts: &ImportOptions,
) -> Result<Imported, ImportError> {
    let created = opts
        .created
        .clone()
        .unwrap_or_else(crate::util::human::now_rfc3339);
    let cfg = new_image_config(runtime, vec![r.diff_id.clone()], &created, &opts.comment);
    let bytes = serde_json::to_vec(&cfg).map_err(|e| ImportError::Layer(e.to_string()))?;
    let _lock = store.lock_exclusive()?;
    store.commit_layer(staging, &r.diff_id, r.tar_bytes)?;
    let id = store.put_image_config(&bytes)?;
    if let Some(reference) = &opts.reference {
        let mut repos = store.repositories()?;
        repos.insert(reference.to_string(), id.clone());
        store.save_repositories(&repos)?;
    }
    Ok(Imported { id, notes: r.notes })
}

/// Remove staging dirs left by killed imports (owned by subordinate ids, so
/// through the user namespace when needed).
fn clean_abandoned(store: &Store, mapping: &IdMapping) {
    for d in store.abandoned_staging() {
        tracing::debug!("removing abandoned staging dir {d:?}");
        let _ = store::remove_tree(&d, mapping);
    }
}

/// The built-in hello-world image, imported on first use.
pub fn import_builtin_hello(store: &Store, mapping: &IdMapping) -> Result<Imported, ImportError> {
    let tar = super::hello::layer_tar();
    let opts = ImportOptions {
        changes: vec![r#"CMD ["/hello"]"#.into()],
        reference: Some(Reference::parse("hello-world:latest").expect("valid reference")),
        comment: "burrow built-in hello-world".into(),
        created: Some("2026-01-01T00:00:00Z".into()),
        total_bytes: Some(tar.len() as u64),
    };
    import_tar(store, mapping, &tar[..], &opts)
}
