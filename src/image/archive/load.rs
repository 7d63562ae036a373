//! `load`: every image in a docker-archive, an OCI archive or an OCI layout
//! directory, for the host platform, into the store. Everything is read and
//! verified before the store changes: manifests and configs against their
//! digests in this process, layers in one child that is root of the user
//! namespace owning the extracted files (digest, size and diff id checked by
//! `blob::ingest`). Only then is each image added, so a bad archive leaves
//! nothing behind but a staging directory that is removed.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use super::docker;
use super::unpack::Tree;
use super::ArchiveError;
use crate::image::add::{self, NewImage, StagedLayer};
use crate::image::blob::{self, Expected, Ingested};
use crate::image::compress::{self, Compression};
use crate::image::import::id_policy;
use crate::image::manifest::{
    self, Descriptor, Document, Index, LayerKind, Manifest, Platform, MAX_CONFIG, MAX_MANIFEST,
};
use crate::image::reference::Reference;
use crate::linux::userns::{self, IdMapping, UsernsError};
use crate::store::{self, Store};

/// OCI's tag annotation, as skopeo and podman write it.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's (and so Docker's) full image name annotation.
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";
/// Marks an index entry that is not an image (build attestations).
const REFERENCE_TYPE: &str = "vnd.docker.reference.type";

/// Where the archive comes from.
#[derive(Debug, Clone)]
pub enum LoadSource {
    /// An archive file, or an OCI layout directory.
    Path(PathBuf),
    Stdin,
}

/// One image that was loaded.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub id: String,
    pub tags: Vec<Reference>,
}

#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub images: Vec<Loaded>,
    /// One-line notes from extraction (skipped device nodes and the like).
    pub notes: Vec<String>,
}

/// One image as the archive describes it.
#[derive(Debug)]
struct Source {
    /// Identity inside this load, to merge entries naming the same image.
    key: String,
    config: Vec<u8>,
    /// OCI: the manifest, verbatim. Docker: none (one is written).
    manifest: Option<Vec<u8>>,
    layers: Vec<LayerSource>,
    tags: Vec<Reference>,
}

#[derive(Debug)]
struct LayerSource {
    /// The layer's name in the archive.
    name: String,
    diff_id: String,
    /// OCI: the manifest's descriptor.
    desc: Option<Descriptor>,
}

/// One layer file to read in the child.
struct Work {
    name: String,
    source: PathBuf,
    expected: Expected,
    dir: PathBuf,
    extract: bool,
    /// Where the child copies the blob; None when the source file itself is
    /// the blob (our staging copy) or the store has it.
    blob_out: Option<PathBuf>,
    keep_blob: bool,
    compression: Compression,
}

/// What one image layer needs at commit time.
struct LayerPlan {
    diff_id: String,
    work: Option<usize>,
    /// This image commits the work's outputs (the first image using them).
    owns: bool,
    /// A foreign layer the store lacks: an empty staged layer.
    empty: Option<PathBuf>,
}

/// Load the archive at `source` into the store.
pub fn load(
    store: &Store,
    mapping: &IdMapping,
    source: &LoadSource,
) -> Result<LoadReport, ArchiveError> {
    store.remove_abandoned_staging(mapping);
    let staging = store.staging("load", mapping)?;
    load_in(store, mapping, source, &staging)
}

fn load_in(
    store: &Store,
    mapping: &IdMapping,
    source: &LoadSource,
    staging: &Path,
) -> Result<LoadReport, ArchiveError> {
    let unpacked = staging.join("archive");
    let tree = match source {
        LoadSource::Path(p) if p.is_dir() => Tree::in_place(p),
        LoadSource::Path(p) => {
            let f = File::open(p).map_err(|source| ArchiveError::Open {
                path: p.clone(),
                source,
            })?;
            fs::create_dir(&unpacked).map_err(store::io("creating", &unpacked))?;
            Tree::unpack(f, &unpacked)?
        }
        LoadSource::Stdin => {
            fs::create_dir(&unpacked).map_err(store::io("creating", &unpacked))?;
            Tree::unpack(std::io::stdin().lock(), &unpacked)?
        }
    };
    let sources = if tree.exists("oci-layout") && tree.exists("index.json") {
        oci_sources(&tree, &Platform::host())?
    } else if tree.exists("manifest.json") {
        docker_sources(&tree)?
    } else {
        return Err(ArchiveError::NotAnArchive);
    };
    let sources = merge(sources);
    if sources.is_empty() {
        return Err(ArchiveError::NoImages(Platform::host().to_string()));
    }

    let work_root = staging.join("work");
    fs::create_dir(&work_root).map_err(store::io("creating", &work_root))?;
    let mut planner = Planner {
        store,
        tree: &tree,
        work_root: &work_root,
        work: Vec::new(),
        by_digest: BTreeMap::new(),
        by_diff: BTreeMap::new(),
        by_source: BTreeMap::new(),
    };
    let mut plans = Vec::new();
    for s in &sources {
        let mut layers = Vec::new();
        for l in &s.layers {
            layers.push(planner.plan(l)?);
        }
        plans.push(layers);
    }
    let work = planner.work;
    let got = ingest_all(mapping, &work)?;

    // Build every manifest before the first image is added: nothing below
    // can fail on the archive's account.
    let mut ready = Vec::new();
    for (s, plan) in sources.iter().zip(&plans) {
        let manifest = match &s.manifest {
            Some(m) => m.clone(),
            None => docker_manifest(store, s, plan, &work, &got)?,
        };
        ready.push(manifest);
    }
    let mut report = LoadReport::default();
    for g in &got {
        for n in &g.notes {
            if !report.notes.contains(n) {
                report.notes.push(n.clone());
            }
        }
    }
    for ((s, plan), manifest) in sources.iter().zip(&plans).zip(&ready) {
        let layers = plan
            .iter()
            .filter_map(|p| staged(p, &work, &got, tree.owned()))
            .collect();
        let id = add::add_image(
            store,
            NewImage {
                config: &s.config,
                manifest,
                layers,
                tags: s.tags.clone(),
                repo_digest: None,
            },
        )?;
        report.images.push(Loaded {
            id,
            tags: s.tags.clone(),
        });
    }
    Ok(report)
}

/// Entries naming the same image become one, with every tag.
fn merge(sources: Vec<Source>) -> Vec<Source> {
    let mut out: Vec<Source> = Vec::new();
    for s in sources {
        match out.iter_mut().find(|o| o.key == s.key) {
            Some(o) => {
                for t in s.tags {
                    if !o.tags.contains(&t) {
                        o.tags.push(t);
                    }
                }
            }
            None => out.push(s),
        }
    }
    out
}

fn parse_tag(tag: &str) -> Result<Reference, ArchiveError> {
    Reference::parse(tag).map_err(|source| ArchiveError::BadTag {
        tag: tag.to_string(),
        source,
    })
}

fn sha256_of(bytes: &[u8]) -> String {
    format!("sha256:{}", store::sha256_hex(bytes))
}

/// A config the store can list: valid JSON of the OCI image config shape.
fn check_config(name: &str, config: &[u8], layers: usize) -> Result<Vec<String>, ArchiveError> {
    serde_json::from_slice::<oci_spec::image::ImageConfiguration>(config).map_err(|source| {
        ArchiveError::Json {
            name: name.to_string(),
            source,
        }
    })?;
    docker::diff_ids(config, layers).map_err(|source| ArchiveError::Invalid {
        name: name.to_string(),
        source,
    })
}

// ---- docker-archive ----

fn docker_sources(tree: &Tree) -> Result<Vec<Source>, ArchiveError> {
    let bytes = tree.read_small("manifest.json", MAX_MANIFEST)?;
    let entries = docker::parse_manifest(&bytes).map_err(|source| ArchiveError::Invalid {
        name: "manifest.json".into(),
        source,
    })?;
    let mut out = Vec::new();
    for e in entries {
        let config = tree.read_small(&e.config, MAX_CONFIG)?;
        let diff_ids = check_config(&e.config, &config, e.layers.len())?;
        let tags = e
            .repo_tags
            .unwrap_or_default()
            .iter()
            .map(|t| parse_tag(t))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(Source {
            key: sha256_of(&config),
            config,
            manifest: None,
            layers: e
                .layers
                .into_iter()
                .zip(diff_ids)
                .map(|(name, diff_id)| LayerSource {
                    name,
                    diff_id,
                    desc: None,
                })
                .collect(),
            tags,
        });
    }
    Ok(out)
}

/// The OCI manifest burrow keeps for a docker-archive image: its layers as
/// they came (plain tars, as Docker writes them).
fn docker_manifest(
    store: &Store,
    s: &Source,
    plan: &[LayerPlan],
    work: &[Work],
    got: &[Ingested],
) -> Result<Vec<u8>, ArchiveError> {
    let mut descs = Vec::new();
    for p in plan {
        let d = match p.work {
            Some(i) => manifest::layer_descriptor(&got[i].digest, got[i].size, work[i].compression),
            None => {
                // Planned without work only when the store has the plain blob.
                let path = store.blob_path(&p.diff_id);
                let size = fs::metadata(&path)
                    .map_err(store::io("reading blob", &path))?
                    .len();
                manifest::layer_descriptor(&p.diff_id, size, Compression::None)
            }
        };
        descs.push(d);
    }
    Ok(manifest::oci_manifest(&s.config, &descs))
}

// ---- OCI ----

fn blob_name(digest: &str) -> String {
    format!("blobs/sha256/{}", store::hex_of(digest))
}

/// A manifest, index or config blob, checked against its descriptor.
fn read_verified(tree: &Tree, d: &Descriptor, limit: u64) -> Result<Vec<u8>, ArchiveError> {
    let name = blob_name(&d.digest);
    let bytes = tree.read_small(&name, limit)?;
    let actual = sha256_of(&bytes);
    if actual != d.digest || bytes.len() as u64 != d.size {
        return Err(ArchiveError::Digest {
            name,
            expected: format!("{} ({} bytes)", d.digest, d.size),
            actual: format!("{actual} ({} bytes)", bytes.len()),
        });
    }
    Ok(bytes)
}

fn parse_doc(name: &str, bytes: &[u8]) -> Result<Document, ArchiveError> {
    manifest::parse(bytes, None).map_err(|source| ArchiveError::Manifest {
        name: name.to_string(),
        source,
    })
}

/// Does an index entry describe an image for `host`? Entries without a
/// platform do (an OCI archive of one image rarely says).
fn serves(d: &Descriptor, host: &Platform) -> bool {
    if d.annotations.contains_key(REFERENCE_TYPE) {
        return false;
    }
    d.platform.is_none()
        || manifest::select(
            &Index {
                schema_version: 2,
                media_type: None,
                manifests: vec![d.clone()],
                annotations: BTreeMap::new(),
            },
            host,
        )
        .is_ok()
}

/// The tag an index entry gives its image: containerd's full name when
/// present (Docker writes only the tag in the OCI annotation), else the
/// OCI ref name.
fn entry_tag(d: &Descriptor) -> Option<&str> {
    d.annotations
        .get(CONTAINERD_NAME)
        .or_else(|| d.annotations.get(REF_NAME))
        .map(String::as_str)
        .filter(|t| !t.is_empty())
}

/// The images `index.json` names for `host`.
fn oci_sources(tree: &Tree, host: &Platform) -> Result<Vec<Source>, ArchiveError> {
    let bytes = tree.read_small("index.json", MAX_MANIFEST)?;
    let Document::Index(index) = parse_doc("index.json", &bytes)? else {
        return Err(ArchiveError::Malformed {
            name: "index.json".into(),
            detail: "a manifest where an index belongs".into(),
        });
    };
    let mut out = Vec::new();
    for entry in index.manifests.iter().filter(|d| serves(d, host)) {
        let name = blob_name(&entry.digest);
        let top = read_verified(tree, entry, MAX_MANIFEST)?;
        let (manifest_bytes, m) = match parse_doc(&name, &top)? {
            Document::Image(m) => (top, m),
            Document::Index(inner) => {
                let d =
                    manifest::select(&inner, host).map_err(|source| ArchiveError::Manifest {
                        name: name.clone(),
                        source,
                    })?;
                let bytes = read_verified(tree, d, MAX_MANIFEST)?;
                match parse_doc(&blob_name(&d.digest), &bytes)? {
                    Document::Image(m) => (bytes, m),
                    Document::Index(_) => {
                        return Err(ArchiveError::Malformed {
                            name: blob_name(&d.digest),
                            detail: "an index entry points to another index".into(),
                        })
                    }
                }
            }
        };
        let tags = entry_tag(entry).map(parse_tag).transpose()?;
        out.push(oci_source(tree, manifest_bytes, m, tags)?);
    }
    Ok(out)
}

fn oci_source(
    tree: &Tree,
    manifest_bytes: Vec<u8>,
    m: Manifest,
    tag: Option<Reference>,
) -> Result<Source, ArchiveError> {
    let config = read_verified(tree, &m.config, MAX_CONFIG)?;
    let diff_ids = check_config(&blob_name(&m.config.digest), &config, m.layers.len())?;
    let mut layers = Vec::new();
    for (d, diff_id) in m.layers.iter().zip(diff_ids) {
        manifest::layer_kind(&d.media_type).map_err(|source| ArchiveError::Manifest {
            name: blob_name(&m.config.digest),
            source,
        })?;
        layers.push(LayerSource {
            name: blob_name(&d.digest),
            diff_id,
            desc: Some(d.clone()),
        });
    }
    Ok(Source {
        key: sha256_of(&manifest_bytes),
        config,
        manifest: Some(manifest_bytes),
        layers,
        tags: tag.into_iter().collect(),
    })
}

// ---- layers ----

struct Planner<'a> {
    store: &'a Store,
    tree: &'a Tree,
    work_root: &'a Path,
    work: Vec<Work>,
    /// Work that keeps (or verifies) a blob, by digest.
    by_digest: BTreeMap<String, usize>,
    /// Work that extracts a layer, by diff id.
    by_diff: BTreeMap<String, usize>,
    /// Docker layers by file: legacy archives link one tar from several names.
    by_source: BTreeMap<PathBuf, usize>,
}

impl Planner<'_> {
    fn plan(&mut self, l: &LayerSource) -> Result<LayerPlan, ArchiveError> {
        let none = |diff_id: &str| LayerPlan {
            diff_id: diff_id.to_string(),
            work: None,
            owns: false,
            empty: None,
        };
        let shared = |diff_id: &str, i: usize| LayerPlan {
            work: Some(i),
            ..none(diff_id)
        };
        let diff = &l.diff_id;
        let (digest, size, compression) = match &l.desc {
            Some(d) => {
                if manifest::layer_kind(&d.media_type).ok() == Some(LayerKind::Foreign) {
                    return self.foreign(diff);
                }
                (Some(d.digest.clone()), Some(d.size), Compression::None)
            }
            None => {
                let source = self.tree.file(&l.name)?;
                if let Some(&i) = self.by_source.get(&source) {
                    return Ok(shared(diff, i));
                }
                let kind = peek_compression(&l.name, &source)?;
                // A plain tar's digest is its diff id.
                let digest = (kind == Compression::None).then(|| diff.clone());
                (digest, None, kind)
            }
        };
        let extract_done = self.store.has_layer(diff) || self.by_diff.contains_key(diff);
        let blob_done = digest
            .as_ref()
            .is_some_and(|d| self.store.has_blob(d) || self.by_digest.contains_key(d));
        if extract_done && blob_done {
            // Layer and blob are (or will be) there: share the work that
            // brings them in this load, if any, for the docker descriptor.
            let i = digest.as_ref().and_then(|d| self.by_digest.get(d).copied());
            return Ok(match i {
                Some(i) => shared(diff, i),
                None => none(diff),
            });
        }
        let i = self.work.len();
        let dir = self.work_root.join(i.to_string());
        fs::create_dir(&dir).map_err(store::io("creating", &dir))?;
        // A compressed docker layer's digest is known only once read, and
        // its diff id only once decompressed: always extract it.
        let extract = !extract_done || digest.is_none();
        if extract {
            let fs_dir = dir.join("fs");
            fs::create_dir(&fs_dir).map_err(store::io("creating", &fs_dir))?;
        }
        let keep_blob = !blob_done;
        let source = self.tree.file(&l.name)?;
        self.work.push(Work {
            name: l.name.clone(),
            blob_out: (keep_blob && !self.tree.owned()).then(|| dir.join("blob")),
            source: source.clone(),
            expected: Expected {
                digest: digest.clone(),
                size,
                diff_id: Some(diff.clone()),
            },
            dir,
            extract,
            keep_blob,
            compression,
        });
        if extract {
            self.by_diff.insert(diff.clone(), i);
        }
        if let Some(d) = digest {
            self.by_digest.insert(d, i);
        }
        if l.desc.is_none() {
            self.by_source.insert(source, i);
        }
        Ok(LayerPlan {
            diff_id: diff.clone(),
            work: Some(i),
            owns: true,
            empty: None,
        })
    }

    /// A foreign layer is applied as empty, as `pull` does.
    fn foreign(&mut self, diff: &str) -> Result<LayerPlan, ArchiveError> {
        let mut p = LayerPlan {
            diff_id: diff.to_string(),
            work: None,
            owns: false,
            empty: None,
        };
        if !self.store.has_layer(diff) && !self.by_diff.contains_key(diff) {
            let dir = self
                .work_root
                .join(format!("foreign-{}", store::hex_of(diff)));
            fs::create_dir_all(dir.join("fs")).map_err(store::io("creating", &dir))?;
            p.empty = Some(dir);
            p.owns = true;
            self.by_diff.insert(diff.to_string(), usize::MAX);
        }
        Ok(p)
    }
}

fn peek_compression(name: &str, path: &Path) -> Result<Compression, ArchiveError> {
    let open_err = |source| ArchiveError::Open {
        path: path.to_path_buf(),
        source,
    };
    let mut head = Vec::with_capacity(512);
    File::open(path)
        .map_err(open_err)?
        .take(512)
        .read_to_end(&mut head)
        .map_err(open_err)?;
    compress::detect(&head).map_err(|source| ArchiveError::Compression {
        name: name.to_string(),
        source,
    })
}

/// Why a layer file of the archive could not be read (in the child).
#[derive(Debug, thiserror::Error)]
enum IngestError {
    #[error("opening {name:?}: {source}")]
    Open {
        name: String,
        source: std::io::Error,
    },
    #[error("{name:?}: {source}")]
    Layer {
        name: String,
        source: blob::BlobError,
    },
}

/// Read every layer file in one child that is root of the user namespace.
fn ingest_all(mapping: &IdMapping, work: &[Work]) -> Result<Vec<Ingested>, ArchiveError> {
    if work.is_empty() {
        return Ok(Vec::new());
    }
    let ids = id_policy(mapping);
    userns::run_in_userns_with(mapping, move || {
        let mut out = Vec::new();
        for w in work {
            let f = File::open(&w.source).map_err(|source| IngestError::Open {
                name: w.name.clone(),
                source,
            })?;
            let fs_dir = w.extract.then(|| w.dir.join("fs"));
            let got = blob::ingest(
                f,
                w.blob_out.as_deref(),
                fs_dir.as_deref(),
                ids,
                &w.expected,
                &|_| {},
            )
            .map_err(|source| IngestError::Layer {
                name: w.name.clone(),
                source,
            })?;
            out.push(got);
        }
        Ok::<_, IngestError>(out)
    })
    .map_err(|e| match e {
        UsernsError::Child(msg) => ArchiveError::Layer(msg),
        other => ArchiveError::Userns(other),
    })
}

/// The staged layer an image commits, when it is the first to use it.
fn staged(p: &LayerPlan, work: &[Work], got: &[Ingested], owned: bool) -> Option<StagedLayer> {
    if let Some(dir) = &p.empty {
        return Some(StagedLayer {
            diff_id: p.diff_id.clone(),
            tar_bytes: 0,
            dir: Some(dir.clone()),
            blob: None,
        });
    }
    let i = p.work.filter(|_| p.owns)?;
    let (w, g) = (&work[i], &got[i]);
    let blob = w.keep_blob.then(|| {
        let file = match &w.blob_out {
            Some(out) => out.clone(),
            // Our unpacked copy, verified: it becomes the store's blob.
            None if owned => w.source.clone(),
            None => unreachable!("a blob from a user's directory is always copied"),
        };
        (file, g.digest.clone())
    });
    Some(StagedLayer {
        diff_id: p.diff_id.clone(),
        tar_bytes: g.tar_bytes,
        dir: w.extract.then(|| w.dir.clone()),
        blob,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn desc(platform: Option<(&str, &str)>, annotations: &[(&str, &str)]) -> Descriptor {
        Descriptor {
            media_type: manifest::OCI_MANIFEST.into(),
            digest: D.into(),
            size: 1,
            urls: Vec::new(),
            platform: platform.map(|(os, arch)| Platform {
                os: os.into(),
                architecture: arch.into(),
                variant: None,
            }),
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn index_entries_for_the_host_only() {
        let amd64 = Platform::parse("linux/amd64").unwrap();
        assert!(serves(&desc(None, &[]), &amd64));
        assert!(serves(&desc(Some(("linux", "amd64")), &[]), &amd64));
        assert!(!serves(&desc(Some(("linux", "arm64")), &[]), &amd64));
        assert!(!serves(
            &desc(None, &[(REFERENCE_TYPE, "attestation-manifest")]),
            &amd64
        ));
    }

    #[test]
    fn tags_prefer_the_full_containerd_name() {
        let both = desc(
            None,
            &[
                (REF_NAME, "latest"),
                (CONTAINERD_NAME, "docker.io/library/busybox:latest"),
            ],
        );
        assert_eq!(entry_tag(&both), Some("docker.io/library/busybox:latest"));
        assert_eq!(
            entry_tag(&desc(None, &[(REF_NAME, "localhost/bb:1")])),
            Some("localhost/bb:1")
        );
        assert_eq!(entry_tag(&desc(None, &[])), None);
    }

    #[test]
    fn entries_of_one_image_merge_their_tags() {
        let s = |key: &str, tag: &str| Source {
            key: key.into(),
            config: Vec::new(),
            manifest: None,
            layers: Vec::new(),
            tags: vec![Reference::parse(tag).unwrap()],
        };
        let m = merge(vec![
            s("a", "x:1"),
            s("b", "y:1"),
            s("a", "x:2"),
            s("a", "x:1"),
        ]);
        assert_eq!(m.len(), 2);
        let tags: Vec<String> = m[0].tags.iter().map(|t| t.short()).collect();
        assert_eq!(tags, ["x:1", "x:2"]);
    }
}
