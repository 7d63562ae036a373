//! `commit`: a directory of changes in the overlay upper format becomes a new
//! top layer over an existing image. The directory is archived (tar, then
//! gzip, both streams hashed on the way to the blob file) as root of a user
//! namespace with the owner's mapping, then the blob is extracted with
//! `blob::ingest` exactly as a pulled layer would be, so the stored layer is
//! what the blob says. The new config is the base image's with the layer,
//! `--change`s and a history entry added; the manifest lists the base
//! image's layer blobs and the new one.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use oci_spec::image::{Config, History, ImageConfiguration};

use super::add::{self, NewImage};
use super::blob::{self, Expected, HashWriter, Ingested};
use super::change::{apply_change, ChangeError};
use super::compress::Compression;
use super::config::{self as image_config, new_image_config, DockerOnly, ImageRuntimeConfig};
use super::import::id_policy;
use super::layer_tar::{self, TreeKind};
use super::manifest::{self, Descriptor, Document};
use super::reference::Reference;
use crate::linux::userns::{self, IdMapping, UsernsError};
use crate::store::{self, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error(transparent)]
    Change(#[from] ChangeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("image {image} cannot be built on: {detail}")]
    Base { image: String, detail: String },
    #[error("image {image} cannot be built on: {source}")]
    BaseManifest {
        image: String,
        #[source]
        source: manifest::ManifestError,
    },
    #[error("{0}")]
    Config(#[source] serde_json::Error),
    #[error("{0}")]
    Layer(String),
    #[error(transparent)]
    Userns(UsernsError),
}

/// How to describe the new image.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// Dockerfile instructions applied to the base image's config.
    pub changes: Vec<String>,
    /// `-m`: the history entry's comment.
    pub comment: String,
    /// `-a`: the image's and the history entry's author.
    pub author: String,
    /// What made the changes (shown as CREATED BY in `image history`).
    pub created_by: String,
    pub reference: Option<Reference>,
    /// Paths (relative to the changes dir) the runtime creates as mount
    /// points; left out when they are empty placeholders.
    pub mount_points: Vec<PathBuf>,
    /// A whole runtime config to write instead of the base image's (a
    /// build's stage config); `changes` then apply on top of it.
    pub runtime: Option<ImageRuntimeConfig>,
    /// History entries for config-only steps, written before the new one
    /// (a build's ENV, CMD, ... since its last layer).
    pub history_before: Vec<History>,
}

#[derive(Debug, Clone)]
pub struct Committed {
    pub id: String,
    pub notes: Vec<String>,
}

/// What the archiving child reports.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Packed {
    digest: String,
    size: u64,
    diff_id: String,
    notes: Vec<String>,
}

/// Where a container's changes are read from.
#[derive(Debug, Clone)]
pub enum ChangesFrom {
    /// An overlay upper dir: it holds exactly the changes.
    Upper(PathBuf),
    /// A fuse-overlayfs upper dir (its own whiteout and opaque marks).
    FuseUpper(PathBuf),
    /// A full copy of the image (the rootfs copy fallback), compared with
    /// the image's layers (top-most first) to find the changes.
    Copy {
        rootfs: PathBuf,
        lowers: Vec<PathBuf>,
    },
}

/// Build a new image: `base`'s layers plus the changes in `upper` (an
/// overlay upper dir or a copied rootfs). `source_mapping` is the mapping
/// under which `upper`'s owners read as intended (the container's);
/// `mapping` is the store's.
pub fn commit_changes(
    store: &Store,
    mapping: &IdMapping,
    source_mapping: &IdMapping,
    base: &str,
    upper: &ChangesFrom,
    opts: &CommitOptions,
) -> Result<Committed, CommitError> {
    commit_changes_on(store, mapping, source_mapping, Some(base), upper, opts)
}

/// The base image's config and layer descriptors, or an empty image's for
/// `None` (a build's `FROM scratch`), with the new runtime config set, and
/// the Docker-only fields the new config blob carries.
fn start_from(
    store: &Store,
    base: Option<&str>,
    opts: &CommitOptions,
) -> Result<(ImageConfiguration, Vec<Descriptor>, DockerOnly), CommitError> {
    let (mut cfg, base_runtime, layers) = match base {
        Some(base) => {
            let (cfg, rc) = image_config::load(store, base)?;
            let layers = base_descriptors(store, base, cfg.rootfs().diff_ids().len())?;
            (cfg, rc, layers)
        }
        None => {
            let created = crate::util::human::now_rfc3339();
            let mut cfg =
                new_image_config(&ImageRuntimeConfig::default(), Vec::new(), &created, "");
            cfg.set_history(None);
            (cfg, ImageRuntimeConfig::default(), Vec::new())
        }
    };
    let mut runtime = opts.runtime.clone().unwrap_or(base_runtime);
    for c in &opts.changes {
        apply_change(&mut runtime, c)?;
    }
    if opts.runtime.is_some() || !opts.changes.is_empty() {
        let mut c = cfg.config().clone().unwrap_or_default();
        set_runtime(&mut c, &runtime);
        if opts.runtime.is_some() {
            c.set_volumes(runtime.to_oci().volumes().clone());
        }
        cfg.set_config(Some(c));
    }
    Ok((cfg, layers, runtime.docker))
}

fn config_bytes(cfg: &ImageConfiguration, docker: &DockerOnly) -> Result<Vec<u8>, CommitError> {
    image_config::to_bytes(cfg, docker).map_err(CommitError::Config)
}

/// A new image that is `base` (or an empty one) with only its config and
/// history changed: `opts.runtime` and `opts.changes` applied, the entries
/// of `opts.history_before` appended. Returns the new image's id.
pub fn commit_config(
    store: &Store,
    base: Option<&str>,
    opts: &CommitOptions,
) -> Result<String, CommitError> {
    let (mut cfg, layers, docker) = start_from(store, base, opts)?;
    let mut history = cfg.history().clone().unwrap_or_default();
    history.extend(opts.history_before.iter().cloned());
    let created = history
        .last()
        .and_then(|h| h.created().clone())
        .unwrap_or_else(crate::util::human::now_rfc3339);
    cfg.set_history(Some(history));
    cfg.set_created(Some(created));
    let config = config_bytes(&cfg, &docker)?;
    let manifest = manifest::oci_manifest(&config, &layers);
    Ok(add::add_image(
        store,
        NewImage {
            config: &config,
            manifest: &manifest,
            layers: Vec::new(),
            tags: opts.reference.iter().cloned().collect(),
            repo_digest: None,
        },
    )?)
}

/// [`commit_changes`] on `base`, or on nothing for `None` (the first layer
/// of a `FROM scratch` build).
pub fn commit_changes_on(
    store: &Store,
    mapping: &IdMapping,
    source_mapping: &IdMapping,
    base: Option<&str>,
    upper: &ChangesFrom,
    opts: &CommitOptions,
) -> Result<Committed, CommitError> {
    // Everything that can be refused is checked before archiving.
    let (mut cfg, base_layers, docker) = start_from(store, base, opts)?;
    store.remove_abandoned_staging(mapping);

    let staging = store.staging("commit", mapping)?;
    let result = (|| {
        let fs_dir = staging.join("fs");
        std::fs::create_dir(&fs_dir).map_err(store::io("creating", &fs_dir))?;
        let blob_path = staging.join("blob");
        let packed = pack(source_mapping, upper, &opts.mount_points, &blob_path)?;
        let got = extract(mapping, &blob_path, &fs_dir, &packed)?;

        let mut diff_ids = cfg.rootfs().diff_ids().clone();
        diff_ids.push(packed.diff_id.clone());
        let mut rootfs = cfg.rootfs().clone();
        rootfs.set_diff_ids(diff_ids);
        cfg.set_rootfs(rootfs);
        let created = crate::util::human::now_rfc3339();
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let mut h = History::default();
        h.set_created(Some(created.clone()));
        h.set_created_by(non_empty(&opts.created_by));
        h.set_comment(non_empty(&opts.comment));
        h.set_author(non_empty(&opts.author));
        let mut history = cfg.history().clone().unwrap_or_default();
        history.extend(opts.history_before.iter().cloned());
        history.push(h);
        cfg.set_history(Some(history));
        cfg.set_created(Some(created));
        if !opts.author.is_empty() {
            cfg.set_author(Some(opts.author.clone()));
        }
        let config = config_bytes(&cfg, &docker)?;
        let mut layers = base_layers;
        layers.push(manifest::layer_descriptor(
            &packed.digest,
            packed.size,
            Compression::Gzip,
        ));
        let manifest = manifest::oci_manifest(&config, &layers);
        let id = add::add_image(
            store,
            NewImage::with_staged_layer(
                &config,
                &manifest,
                &staging,
                packed.diff_id.clone(),
                got.tar_bytes,
                packed.digest.clone(),
                opts.reference.as_ref(),
            ),
        )?;
        let mut notes = packed.notes;
        notes.extend(got.notes);
        Ok(Committed { id, notes })
    })();
    result
}

/// The base image's layer descriptors, from its stored manifest.
fn base_descriptors(
    store: &Store,
    base: &str,
    diff_ids: usize,
) -> Result<Vec<Descriptor>, CommitError> {
    let bad = |detail: String| CommitError::Base {
        image: store::short_hex(base).to_string(),
        detail,
    };
    let meta = add::read_meta(store, base)?
        .filter(|m| !m.manifest.is_empty())
        .ok_or_else(|| bad("it has no manifest in the store (pull or import it again)".into()))?;
    let bytes = store.read_blob(&meta.manifest)?;
    let parsed = manifest::parse(&bytes, None).map_err(|source| CommitError::BaseManifest {
        image: store::short_hex(base).to_string(),
        source,
    })?;
    match parsed {
        Document::Image(m) if m.layers.len() == diff_ids => Ok(m.layers),
        Document::Image(m) => Err(bad(format!(
            "its manifest lists {} layers, its config {diff_ids}",
            m.layers.len()
        ))),
        Document::Index(_) => Err(bad("its stored manifest is an index".into())),
    }
}

/// The runtime fields `--change` may set, written over the base config so
/// fields `--change` does not touch (volumes) survive.
fn set_runtime(c: &mut Config, rc: &ImageRuntimeConfig) {
    let n = rc.to_oci();
    c.set_user(n.user().clone());
    c.set_exposed_ports(n.exposed_ports().clone());
    c.set_env(n.env().clone());
    c.set_cmd(n.cmd().clone());
    c.set_entrypoint(n.entrypoint().clone());
    c.set_working_dir(n.working_dir().clone());
    c.set_labels(n.labels().clone());
    c.set_stop_signal(n.stop_signal().clone());
}

/// Why the layer blob could not be written (in the packing child).
#[derive(Debug, thiserror::Error)]
enum Pack {
    #[error("{0}")]
    Changes(super::changes::ChangesError),
    #[error("{0}")]
    Tree(layer_tar::PackError),
    #[error("writing the layer blob: {0}")]
    Write(io::Error),
}

fn child_err(e: UsernsError) -> CommitError {
    match e {
        UsernsError::Child(msg) => CommitError::Layer(msg),
        e => CommitError::Userns(e),
    }
}

/// Archive `upper` into `blob_path` (tar → gzip), in a child that is root of
/// a user namespace with `mapping`, so every file is readable and its owner
/// reads as the container sees it.
fn pack(
    mapping: &IdMapping,
    upper: &ChangesFrom,
    mount_points: &[PathBuf],
    blob_path: &Path,
) -> Result<Packed, CommitError> {
    // Created here, so the blob belongs to the caller whatever the mapping.
    let file = File::create(blob_path).map_err(store::io("creating", blob_path))?;
    let upper = upper.clone();
    let mount_points = mount_points.to_vec();
    userns::run_in_userns_with(mapping, move || {
        let gz = GzEncoder::new(
            HashWriter::new(BufWriter::with_capacity(256 * 1024, file)),
            flate2::Compression::default(),
        );
        let (report, tar) = match &upper {
            ChangesFrom::Upper(dir) => layer_tar::write_tree_skipping(
                dir,
                TreeKind::OverlayUpper,
                &mount_points,
                HashWriter::new(gz),
            ),
            ChangesFrom::FuseUpper(dir) => layer_tar::write_tree_skipping(
                dir,
                TreeKind::FuseOverlayUpper,
                &mount_points,
                HashWriter::new(gz),
            ),
            ChangesFrom::Copy { rootfs, lowers } => {
                let changes = super::changes::copy_changes(rootfs, lowers, &mount_points)
                    .map_err(Pack::Changes)?;
                layer_tar::write_changes(rootfs, &changes, &mount_points, HashWriter::new(gz))
            }
        }
        .map_err(Pack::Tree)?;
        let (gz, diff_id, _) = tar.finish();
        let (mut out, digest, size) = gz.finish().map_err(Pack::Write)?.finish();
        out.flush().map_err(Pack::Write)?;
        Ok::<_, Pack>(Packed {
            digest,
            size,
            diff_id,
            notes: report.notes,
        })
    })
    .map_err(child_err)
}

/// Extract the blob into `fs_dir` as any pulled layer, checking that it is
/// the blob and the tar that were written.
fn extract(
    mapping: &IdMapping,
    blob_path: &Path,
    fs_dir: &Path,
    packed: &Packed,
) -> Result<Ingested, CommitError> {
    let file = File::open(blob_path).map_err(store::io("opening", blob_path))?;
    let expected = Expected {
        digest: Some(packed.digest.clone()),
        size: Some(packed.size),
        diff_id: Some(packed.diff_id.clone()),
    };
    let ids = id_policy(mapping);
    let fs_dir = fs_dir.to_path_buf();
    userns::run_in_userns_with(mapping, move || {
        blob::ingest(file, None, Some(&fs_dir), ids, &expected, &|_| {}).map_err(|e| e.to_string())
    })
    .map_err(child_err)
}
