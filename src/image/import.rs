//! `import`: a rootfs tarball (plain, gzip or zstd) becomes a one-layer image.
//! Extraction runs as root of a user namespace so file owners survive; the
//! layer is staged under tmp/ and renamed into place only when complete.

use std::io::{IsTerminal, Read};
use std::path::Path;

use super::add::{self, NewImage};
use super::blob::{self, Ingested};
use super::change::{apply_change, ChangeError};
use super::compress::{CompressError, Compression};
use super::config::{new_image_config, ImageRuntimeConfig};
use super::layer::IdPolicy;
use super::manifest;
use super::reference::Reference;
use crate::linux::userns::{self, IdMapping, UsernsError};
use crate::store::{self, Store, StoreError};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Change(#[from] ChangeError),
    #[error(transparent)]
    Compress(#[from] CompressError),
    #[error("{0}")]
    Layer(String),
    #[error("{0}")]
    Config(#[source] serde_json::Error),
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
    store.remove_abandoned_staging(mapping);

    let staging = store.staging("import", mapping)?;
    extract(mapping, reader, opts, &staging)
        .and_then(|r| commit(store, &staging, &runtime, r, opts))
}

fn extract<R: Read>(
    mapping: &IdMapping,
    reader: R,
    opts: &ImportOptions,
    staging: &Path,
) -> Result<Ingested, ImportError> {
    let fs_dir = staging.join("fs");
    std::fs::create_dir(&fs_dir).map_err(store::io("creating", &fs_dir))?;
    let ids = id_policy(mapping);
    let bar = progress_bar(opts.total_bytes);
    let blob_path = staging.join("blob");
    // The child reads the archive itself: the file offset is shared, and a
    // pipe (stdin) is inherited. The archive is kept as it came, as the
    // image's layer blob, so `save` and `push` send exactly these bytes.
    let outcome = userns::run_in_userns_with(mapping, move || {
        let res = blob::ingest(
            reader,
            Some(&blob_path),
            Some(&fs_dir),
            ids,
            &blob::Expected::default(),
            &|n| bar.inc(n),
        )?;
        bar.finish_and_clear();
        Ok::<_, blob::BlobError>(res)
    });
    match outcome {
        Ok(r) => Ok(r),
        Err(UsernsError::Child(msg)) => Err(ImportError::Layer(msg)),
        Err(e) => Err(ImportError::Userns(e)),
    }
}

/// How owners in a layer are applied for this caller.
pub fn id_policy(mapping: &IdMapping) -> IdPolicy {
    if mapping.is_range() {
        let (u, g) = mapping.max_ids();
        IdPolicy::Keep {
            max_uid: u,
            max_gid: g,
        }
    } else {
        IdPolicy::Collapse
    }
}

fn commit(
    store: &Store,
    staging: &Path,
    runtime: &ImageRuntimeConfig,
    r: Ingested,
    opts: &ImportOptions,
) -> Result<Imported, ImportError> {
    let created = opts
        .created
        .clone()
        .unwrap_or_else(crate::util::human::now_rfc3339);
    let diff_id = r.diff_id.clone().expect("import extracts the layer");
    let cfg = new_image_config(runtime, vec![diff_id.clone()], &created, &opts.comment);
    let config = serde_json::to_vec(&cfg).map_err(ImportError::Config)?;
    let compression = r.compression.map_or(Compression::None, Into::into);
    let manifest = manifest::oci_manifest(
        &config,
        &[manifest::layer_descriptor(&r.digest, r.size, compression)],
    );
    let id = add::add_image(
        store,
        NewImage::with_staged_layer(
            &config,
            &manifest,
            staging,
            diff_id,
            r.tar_bytes,
            r.digest.clone(),
            opts.reference.as_ref(),
        ),
    )?;
    Ok(Imported { id, notes: r.notes })
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
