//! `push`: the blobs and manifest an image was stored with, sent to a
//! registry. Blobs the registry already has are skipped, blobs it has in
//! another repository are mounted from there, the rest are uploaded from the
//! store. A layer kept as a plain tar (an import or a load of one) goes up
//! gzip-compressed, as Docker and podman push it, with the manifest's
//! descriptor changed to match; every other manifest goes up byte for byte,
//! so pushing a pulled image gives the same manifest digest back.
//!
//! Progress goes to the caller as `PushEvent`s.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use super::add::{self, BlobRef, ImageMeta};
use super::blob::HashWriter;
use super::manifest::{self, Descriptor, Document};
use super::progress::PushEvent;
use super::reference::Reference;
use super::registry::credentials::{self, AuthFiles};
use super::registry::{Client, ClientOptions, RegistryError};
use crate::store::{self, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Manifest(#[from] manifest::ManifestError),
    #[error(transparent)]
    Credentials(#[from] credentials::CredentialError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("image {0} has no stored manifest (it was made by an older burrow): import or pull it again")]
    NoManifest(String),
    #[error("layer {digest} of image {image} is not in the store (it was made by an older burrow): import or pull it again")]
    MissingBlob { image: String, digest: String },
    #[error("a reference to push needs a tag, not only a digest: {0}")]
    NoTag(String),
    #[error("compressing layer {digest} for the registry: {source}")]
    Compress {
        digest: String,
        #[source]
        source: io::Error,
    },
}

#[derive(Debug, Clone)]
pub struct PushOptions {
    pub client: ClientOptions,
    pub auth_files: AuthFiles,
}

#[derive(Debug, Clone)]
pub struct Pushed {
    pub digest: String,
    pub size: u64,
}

/// How a blob got to the registry, as Docker's push says it per layer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Placed {
    Exists,
    Mounted(String),
    Pushed,
}

impl Placed {
    fn event(self, id: String) -> PushEvent {
        match self {
            Placed::Exists => PushEvent::LayerAlreadyExists { id },
            Placed::Mounted(repository) => PushEvent::MountedFrom { id, repository },
            Placed::Pushed => PushEvent::Pushed { id },
        }
    }
}

/// A blob on its way up, counted for `Pushing` events.
struct Uploading<'a, R> {
    inner: R,
    id: &'a str,
    current: u64,
    reported: u64,
    total: u64,
    report: &'a mut dyn FnMut(PushEvent),
}

impl<R: Read> Read for Uploading<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.current += n as u64;
        let step = (self.total / 100).clamp(32 * 1024, 512 * 1024);
        if self.current - self.reported >= step || (n > 0 && self.current == self.total) {
            self.reported = self.current;
            (self.report)(PushEvent::Pushing {
                id: self.id.to_string(),
                current: self.current,
                total: self.total,
            });
        }
        Ok(n)
    }
}

/// Upload `body` as `digest`, reporting the bytes as layer `id`'s.
fn upload(
    client: &mut Client,
    repo: &str,
    digest: &str,
    size: u64,
    body: impl Read,
    id: &str,
    report: &mut dyn FnMut(PushEvent),
) -> Result<(), PushError> {
    let mut counted = Uploading {
        inner: body,
        id,
        current: 0,
        reported: 0,
        total: size,
        report,
    };
    client.upload_blob(repo, digest, size, &mut counted)?;
    Ok(())
}

/// Is `digest` in `repo` already, or can it be mounted there from one of
/// `sources` (repositories of the same registry that hold the image)?
fn place(
    client: &mut Client,
    repo: &str,
    sources: &[String],
    digest: &str,
) -> Result<Option<Placed>, PushError> {
    if client.blob_exists(repo, digest)? {
        return Ok(Some(Placed::Exists));
    }
    for from in sources {
        if client.mount_blob(repo, from, digest)? {
            return Ok(Some(Placed::Mounted(from.clone())));
        }
    }
    Ok(None)
}

/// A gzip copy of a stored blob in the store's tmp/, removed when dropped
/// (or, if burrow is killed, by the next command's staging sweep).
struct GzipFile {
    path: PathBuf,
    blob: BlobRef,
}

impl Drop for GzipFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Compress the stored plain blob `digest` with gzip. The default level
/// (6, gzip(1)'s own) and an empty header (no name, mtime 0) make the same
/// bytes from the same tar every time, so a registry that got this layer
/// from an earlier push recognises it by digest.
fn gzip_blob(store: &Store, digest: &str) -> Result<GzipFile, PushError> {
    let err = |source| PushError::Compress {
        digest: digest.to_string(),
        source,
    };
    let mut src = store.open_blob(digest)?;
    let path = store.staging_path("push", &store::random_hex(6));
    let mut out = GzipFile {
        path,
        blob: BlobRef::default(),
    };
    let file = File::create(&out.path).map_err(err)?;
    let hashing = HashWriter::new(io::BufWriter::with_capacity(256 * 1024, file));
    let mut gz = flate2::write::GzEncoder::new(hashing, flate2::Compression::default());
    io::copy(&mut src, &mut gz).map_err(err)?;
    let (mut file, digest, size) = gz.finish().map_err(err)?.finish();
    file.flush().map_err(err)?;
    out.blob = BlobRef { digest, size };
    Ok(out)
}

/// Push a layer the store keeps as a plain tar, as gzip: the gzip blob an
/// earlier push made of it (`known`) is looked for and mounted first, so a
/// registry that has it costs no compression.
#[allow(clippy::too_many_arguments)]
fn push_gzipped(
    store: &Store,
    client: &mut Client,
    repo: &str,
    sources: &[String],
    plain: &str,
    known: Option<&BlobRef>,
    id: &str,
    report: &mut dyn FnMut(PushEvent),
) -> Result<(BlobRef, Placed), PushError> {
    if let Some(k) = known {
        if let Some(p) = place(client, repo, sources, &k.digest)? {
            return Ok((k.clone(), p));
        }
    }
    let gz = gzip_blob(store, plain)?;
    if known != Some(&gz.blob) {
        if let Some(p) = place(client, repo, sources, &gz.blob.digest)? {
            return Ok((gz.blob.clone(), p));
        }
    }
    let file = File::open(&gz.path).map_err(store::io("opening", &gz.path))?;
    upload(
        client,
        repo,
        &gz.blob.digest,
        gz.blob.size,
        file,
        id,
        report,
    )?;
    Ok((gz.blob.clone(), Placed::Pushed))
}

/// Push the image `id` to `dest`, reporting each step.
pub fn push(
    store: &Store,
    id: &str,
    dest: &Reference,
    opts: &PushOptions,
    report: &mut dyn FnMut(PushEvent),
) -> Result<Pushed, PushError> {
    let tag = dest
        .tag
        .clone()
        .ok_or_else(|| PushError::NoTag(dest.to_string()))?;
    let meta: ImageMeta = add::read_meta(store, id)?
        .ok_or_else(|| PushError::NoManifest(store::short_hex(id).into()))?;
    let manifest_bytes = store.read_blob(&meta.manifest)?;
    let Document::Image(m) = manifest::parse(&manifest_bytes, None)? else {
        return Err(PushError::NoManifest(store::short_hex(id).into()));
    };
    let mut client =
        Client::connect_as_configured::<PushError>(&dest.registry, &opts.client, &opts.auth_files)?;
    let repo = dest.repository.as_str();
    report(PushEvent::Repository(dest.full_repository()));
    let sources = mount_sources(&meta, dest);
    let gzip_type = if m.media_type.as_deref() == Some(manifest::DOCKER_MANIFEST) {
        manifest::DOCKER_LAYER_GZIP
    } else {
        manifest::OCI_LAYER_GZIP
    };
    let mut to = Upstream {
        client: &mut client,
        repo,
        sources: &sources,
    };
    let Gzipped {
        by_layer: sent,
        by_digest: gzipped,
    } = push_layers(store, id, &meta, &m.layers, &mut to, report)?;
    // The config, which Docker does not list among the layers.
    let open_config = || {
        // It lives with the images, not among the blobs.
        let p = store.image_config_path(id);
        File::open(&p).map_err(|e| store::io("opening image config", &p)(e).into())
    };
    let config_id = store::short_hex(&m.config.digest).to_string();
    push_blob(
        &mut client,
        repo,
        &sources,
        &m.config,
        open_config,
        &config_id,
        &mut |_| {},
    )?;
    let manifest_bytes = if sent.iter().any(Option::is_some) {
        with_layers(&manifest_bytes, &sent, gzip_type)?
    } else {
        manifest_bytes
    };
    let media_type = m
        .media_type
        .clone()
        .unwrap_or_else(|| manifest::OCI_MANIFEST.to_string());
    let digest = client.put_manifest(repo, &tag, &media_type, &manifest_bytes)?;
    report(PushEvent::Digest {
        tag: tag.clone(),
        digest: digest.clone(),
        size: manifest_bytes.len() as u64,
    });
    add::record_push(
        store,
        id,
        &format!("{}@{digest}", dest.full_repository()),
        &gzipped,
    )?;
    Ok(Pushed {
        digest,
        size: manifest_bytes.len() as u64,
    })
}

/// Repositories of the same registry as `dest` this image is known to be
/// in: where its blobs may be mounted from.
fn mount_sources(meta: &ImageMeta, dest: &Reference) -> Vec<String> {
    let repo = dest.repository.as_str();
    meta.repo_digests
        .iter()
        .filter_map(|d| d.split_once('@').map(|(r, _)| r.to_string()))
        .filter_map(|r| {
            r.strip_prefix(&format!("{}/", dest.registry))
                .map(str::to_string)
        })
        .filter(|r| r != repo)
        .collect()
}

/// The repository blobs go to, through `client`, and the repositories of
/// the same registry they may be mounted from.
struct Upstream<'a> {
    client: &'a mut Client,
    repo: &'a str,
    sources: &'a [String],
}

/// What pushing the layers sent in another form than stored: for each
/// layer gzipped on the way, its gzipped blob (the manifest then names it
/// instead), and the gzipped blobs by their plain digest, for the image's
/// record.
struct Gzipped {
    by_layer: Vec<Option<BlobRef>>,
    by_digest: BTreeMap<String, BlobRef>,
}

/// Push the image's layers (each announced first, foreign ones skipped).
fn push_layers(
    store: &Store,
    id: &str,
    meta: &ImageMeta,
    layers: &[Descriptor],
    to: &mut Upstream<'_>,
    report: &mut dyn FnMut(PushEvent),
) -> Result<Gzipped, PushError> {
    // Layers are named by diff id, as Docker's push names them.
    let diff_ids = store
        .image_config(id)
        .map(|c| c.rootfs().diff_ids().clone())
        .unwrap_or_default();
    let short_of = |i: usize, d: &Descriptor| {
        store::short_hex(diff_ids.get(i).unwrap_or(&d.digest)).to_string()
    };
    let foreign = |d: &Descriptor| {
        manifest::layer_kind(&d.media_type).ok() == Some(manifest::LayerKind::Foreign)
    };
    let mut preparing = std::collections::BTreeSet::new();
    for (i, d) in layers.iter().enumerate() {
        let id = short_of(i, d);
        if !foreign(d) && preparing.insert(id.clone()) {
            report(PushEvent::Preparing { id });
        }
    }
    let mut sent: Vec<Option<BlobRef>> = vec![None; layers.len()];
    let mut gzipped = BTreeMap::new();
    for (i, d) in layers.iter().enumerate() {
        let short_d = short_of(i, d);
        if foreign(d) {
            report(PushEvent::SkippedForeign { id: short_d });
            continue;
        }
        let placed = if d.media_type == manifest::OCI_LAYER_TAR {
            let (blob, placed) = push_gzipped(
                store,
                to.client,
                to.repo,
                to.sources,
                &d.digest,
                meta.gzipped.get(&d.digest),
                &short_d,
                report,
            )
            .map_err(|e| missing_blob(e, id, &d.digest))?;
            gzipped.insert(d.digest.clone(), blob.clone());
            sent[i] = Some(blob);
            placed
        } else {
            let open = || {
                store
                    .open_blob(&d.digest)
                    .map_err(|e| missing_blob(e.into(), id, &d.digest))
            };
            push_blob(to.client, to.repo, to.sources, d, open, &short_d, report)?
        };
        report(placed.event(short_d));
    }
    Ok(Gzipped {
        by_layer: sent,
        by_digest: gzipped,
    })
}

/// A blob stored as it goes up: skipped, mounted or uploaded from `open`.
fn push_blob(
    client: &mut Client,
    repo: &str,
    sources: &[String],
    d: &Descriptor,
    open: impl FnOnce() -> Result<File, PushError>,
    id: &str,
    report: &mut dyn FnMut(PushEvent),
) -> Result<Placed, PushError> {
    if let Some(p) = place(client, repo, sources, &d.digest)? {
        return Ok(p);
    }
    upload(client, repo, &d.digest, d.size, open()?, id, report)?;
    Ok(Placed::Pushed)
}

/// A missing blob, said as the image's.
fn missing_blob(e: PushError, id: &str, digest: &str) -> PushError {
    match e {
        PushError::Store(StoreError::NoSuchBlob(_)) => PushError::MissingBlob {
            image: store::short_hex(id).into(),
            digest: digest.to_string(),
        },
        other => other,
    }
}

/// The manifest with each layer in `sent` replaced by the gzip blob that
/// went up instead. Edited as JSON, so fields burrow does not model (a
/// layer's annotations, the manifest's subject) stay as they were.
fn with_layers(
    bytes: &[u8],
    sent: &[Option<BlobRef>],
    media_type: &str,
) -> Result<Vec<u8>, PushError> {
    const WHAT: &str = "stored manifest";
    let mut v: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|source| manifest::ManifestError::Json { what: WHAT, source })?;
    let layers = v
        .get_mut("layers")
        .and_then(|l| l.as_array_mut())
        .ok_or_else(|| manifest::ManifestError::Malformed {
            what: WHAT,
            detail: "no layers".into(),
        })?;
    for (l, b) in layers.iter_mut().zip(sent) {
        if let Some(b) = b {
            l["mediaType"] = media_type.into();
            l["digest"] = b.digest.clone().into();
            l["size"] = b.size.into();
        }
    }
    Ok(serde_json::to_vec(&v).expect("a JSON value serializes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_of_a_blob_is_stable_and_decompresses_to_it() {
        let (_d, s) = store::temp_store();
        let tar: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let digest = s.put_blob(&tar).unwrap();
        let a = gzip_blob(&s, &digest).unwrap();
        let b = gzip_blob(&s, &digest).unwrap();
        assert_eq!(a.blob, b.blob, "the same bytes every time");
        let gz = std::fs::read(&a.path).unwrap();
        assert_eq!(a.blob.size, gz.len() as u64);
        assert_eq!(a.blob.digest, format!("sha256:{}", store::sha256_hex(&gz)));
        let mut back = Vec::new();
        io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut back).unwrap();
        assert_eq!(back, tar);
        let path = a.path.clone();
        drop(a);
        assert!(!path.exists(), "the copy goes with its guard");
    }

    #[test]
    fn only_the_sent_layers_change_in_the_manifest() {
        let m = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:c","size":1},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:a","size":10,"annotations":{"k":"v"}},{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:b","size":5}]}"#;
        let sent = [
            Some(BlobRef {
                digest: "sha256:z".into(),
                size: 3,
            }),
            None,
        ];
        let out: serde_json::Value =
            serde_json::from_slice(&with_layers(m, &sent, manifest::OCI_LAYER_GZIP).unwrap())
                .unwrap();
        assert_eq!(out["layers"][0]["digest"], "sha256:z");
        assert_eq!(out["layers"][0]["size"], 3);
        assert_eq!(out["layers"][0]["mediaType"], manifest::OCI_LAYER_GZIP);
        assert_eq!(out["layers"][0]["annotations"]["k"], "v");
        assert_eq!(out["layers"][1]["digest"], "sha256:b");
        assert_eq!(out["config"]["digest"], "sha256:c");
    }
}
