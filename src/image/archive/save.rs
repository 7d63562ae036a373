//! `save`: images from the store as a docker-archive (Docker's default:
//! `manifest.json`, configs, uncompressed `<diff id>/layer.tar`, the legacy
//! `repositories`) or an OCI archive (`oci-layout`, `index.json`, the stored
//! blobs verbatim). Tar headers are deterministic (mtime 0, root owner), and
//! a file destination is written through a temp file and renamed, so a
//! failed save never leaves a half archive under the requested name.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::load::{CONTAINERD_NAME, REF_NAME};
use super::{docker, short_id, ArchiveError};
use crate::image::add;
use crate::image::compress;
use crate::image::manifest::{self, Descriptor, Document, LayerKind, Manifest};
use crate::image::reference::Reference;
use crate::store::{self, Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveFormat {
    DockerArchive,
    OciArchive,
}

#[derive(Debug, Clone)]
pub enum SaveTarget {
    File(PathBuf),
    Stdout,
}

/// One image to write, with the tags it is saved under.
struct Image {
    id: String,
    config: Vec<u8>,
    manifest_bytes: Vec<u8>,
    manifest: Manifest,
    diff_ids: Vec<String>,
    tags: Vec<Reference>,
}

/// Save the images `names` (references or ids) to `target`.
pub fn save(
    store: &Store,
    names: &[String],
    format: SaveFormat,
    target: &SaveTarget,
) -> Result<(), ArchiveError> {
    if matches!(target, SaveTarget::Stdout) && io::stdout().is_terminal() {
        return Err(ArchiveError::Terminal);
    }
    // Shared: an `rmi` waits until every blob has been read.
    let _lock = store.lock_shared()?;
    let images = collect(store, names)?;
    match target {
        SaveTarget::Stdout => {
            let out = BufWriter::with_capacity(256 * 1024, io::stdout().lock());
            let path = PathBuf::from("-");
            let out = write_archive(store, &images, format, out, &path)?;
            finish(out, &path)?
                .flush()
                .map_err(|source| ArchiveError::Write { path, source })
        }
        SaveTarget::File(dest) => save_to_file(store, &images, format, dest),
    }
}

fn save_to_file(
    store: &Store,
    images: &[Image],
    format: SaveFormat,
    dest: &Path,
) -> Result<(), ArchiveError> {
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let file_name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "archive".into());
    let tmp = dir.join(format!(
        ".{file_name}.tmp-{}-{}",
        std::process::id(),
        store::random_hex(4)
    ));
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ArchiveError::Write { path, source }
    };
    let f = File::options()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(write_err(&tmp))?;
    let result = write_archive(
        store,
        images,
        format,
        BufWriter::with_capacity(256 * 1024, f),
        &tmp,
    )
    .and_then(|w| {
        let f = finish(w, &tmp)?;
        f.sync_all().map_err(write_err(&tmp))?;
        fs::rename(&tmp, dest).map_err(write_err(dest))
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn finish<W: Write>(w: BufWriter<W>, path: &Path) -> Result<W, ArchiveError> {
    w.into_inner().map_err(|e| ArchiveError::Write {
        path: path.to_path_buf(),
        source: e.into_error(),
    })
}

/// Resolve names to images; a name that is a tag of the image is saved as
/// that tag, an id saves the image untagged (as Docker does).
fn collect(store: &Store, names: &[String]) -> Result<Vec<Image>, ArchiveError> {
    let repos = store.repositories()?;
    let mut out: Vec<Image> = Vec::new();
    for name in names {
        let id = crate::image::catalog::resolve(store, name)?;
        let tag = Reference::parse(name)
            .ok()
            .filter(|r| repos.get(&r.to_string()) == Some(&id));
        if let Some(img) = out.iter_mut().find(|i| i.id == id) {
            if let Some(t) = tag {
                if !img.tags.contains(&t) {
                    img.tags.push(t);
                }
            }
            continue;
        }
        let config_path = store.image_config_path(&id);
        let config =
            fs::read(&config_path).map_err(store::io("reading image config", &config_path))?;
        let meta = add::read_meta(store, &id)?
            .ok_or_else(|| ArchiveError::NoManifest(short_id(&id).into()))?;
        let manifest_bytes = store.read_blob(&meta.manifest)?;
        let manifest = match manifest::parse(&manifest_bytes, None) {
            Ok(Document::Image(m)) => m,
            _ => return Err(ArchiveError::NoManifest(short_id(&id).into())),
        };
        let diff_ids = docker::diff_ids(&config, manifest.layers.len()).map_err(|source| {
            ArchiveError::StoredConfig {
                path: config_path.clone(),
                source,
            }
        })?;
        out.push(Image {
            id,
            config,
            manifest_bytes,
            manifest,
            diff_ids,
            tags: tag.into_iter().collect(),
        });
    }
    Ok(out)
}

/// Deterministic headers: what matters is the content, not when or by whom.
fn header(kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

struct Writer<'a, W: Write> {
    tar: tar::Builder<W>,
    path: &'a Path,
}

impl<W: Write> Writer<'_, W> {
    fn err(&self) -> impl FnOnce(io::Error) -> ArchiveError {
        let path = self.path.to_path_buf();
        move |source| ArchiveError::Write { path, source }
    }

    fn dir(&mut self, name: &str) -> Result<(), ArchiveError> {
        let mut h = header(tar::EntryType::Directory, 0);
        let e = self.err();
        self.tar.append_data(&mut h, name, io::empty()).map_err(e)
    }

    fn bytes(&mut self, name: &str, data: &[u8]) -> Result<(), ArchiveError> {
        let mut h = header(tar::EntryType::Regular, data.len() as u64);
        let e = self.err();
        self.tar.append_data(&mut h, name, data).map_err(e)
    }

    /// `size` bytes from `r`; returns how many `r` gave (the tar crate pads
    /// short data, so the caller checks).
    fn stream<R: Read>(&mut self, name: &str, size: u64, r: R) -> Result<u64, ArchiveError> {
        let mut counted = Counted {
            inner: r.take(size),
            bytes: 0,
            hasher: Sha256::new(),
        };
        let mut h = header(tar::EntryType::Regular, size);
        let e = self.err();
        self.tar
            .append_data(&mut h, name, &mut counted)
            .map_err(e)?;
        Ok(counted.bytes)
    }
}

/// Counts and hashes what passes through.
struct Counted<R> {
    inner: R,
    bytes: u64,
    hasher: Sha256,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

fn write_archive<W: Write>(
    store: &Store,
    images: &[Image],
    format: SaveFormat,
    out: W,
    path: &Path,
) -> Result<W, ArchiveError> {
    let mut w = Writer {
        tar: tar::Builder::new(out),
        path,
    };
    match format {
        SaveFormat::DockerArchive => write_docker(store, images, &mut w)?,
        SaveFormat::OciArchive => write_oci(store, images, &mut w)?,
    }
    let e = w.err();
    w.tar.into_inner().map_err(e)
}

fn is_foreign(d: &Descriptor) -> bool {
    manifest::layer_kind(&d.media_type).ok() == Some(LayerKind::Foreign)
}

fn open_layer(store: &Store, img: &Image, d: &Descriptor) -> Result<File, ArchiveError> {
    if is_foreign(d) {
        return Err(ArchiveError::MissingBlob {
            image: short_id(&img.id).into(),
            digest: d.digest.clone(),
        });
    }
    store.open_blob(&d.digest).map_err(|e| match e {
        StoreError::NoSuchBlob(_) => ArchiveError::MissingBlob {
            image: short_id(&img.id).into(),
            digest: d.digest.clone(),
        },
        other => other.into(),
    })
}

fn write_docker<W: Write>(
    store: &Store,
    images: &[Image],
    w: &mut Writer<'_, W>,
) -> Result<(), ArchiveError> {
    let mut written = BTreeSet::new();
    let mut entries = Vec::new();
    let mut repositories = Vec::new();
    for img in images {
        let mut layers = Vec::new();
        for (d, diff_id) in img.manifest.layers.iter().zip(&img.diff_ids) {
            let hex = store::hex_of(diff_id).to_string();
            let name = format!("{hex}/layer.tar");
            if written.insert(hex.clone()) {
                write_plain_layer(store, img, d, diff_id, &hex, w)?;
            }
            layers.push(name);
        }
        let config_name = format!("{}.json", store::hex_of(&img.id));
        if written.insert(config_name.clone()) {
            w.bytes(&config_name, &img.config)?;
        }
        if let Some(top) = img.diff_ids.last() {
            for t in &img.tags {
                repositories.push((
                    t.short_repository(),
                    t.tag.clone().unwrap_or_else(|| "latest".into()),
                    store::hex_of(top).to_string(),
                ));
            }
        }
        entries.push(docker::Entry {
            config: config_name,
            repo_tags: (!img.tags.is_empty())
                .then(|| img.tags.iter().map(Reference::short).collect()),
            layers,
        });
    }
    let manifest = serde_json::to_vec(&entries).expect("manifest.json serializes");
    w.bytes("manifest.json", &manifest)?;
    if !repositories.is_empty() {
        w.bytes("repositories", &docker::repositories(&repositories))?;
    }
    Ok(())
}

/// One layer as Docker wants it: an uncompressed tar, its digest its diff id.
fn write_plain_layer<W: Write>(
    store: &Store,
    img: &Image,
    d: &Descriptor,
    diff_id: &str,
    hex: &str,
    w: &mut Writer<'_, W>,
) -> Result<(), ArchiveError> {
    let bad = |detail: String| ArchiveError::StoredLayer {
        image: short_id(&img.id).into(),
        diff_id: diff_id.to_string(),
        detail,
    };
    let file = open_layer(store, img, d)?;
    let (kind, decoded) =
        compress::decoder(file).map_err(|source| ArchiveError::StoredLayerCompress {
            image: short_id(&img.id).into(),
            diff_id: diff_id.to_string(),
            source,
        })?;
    // The header needs the size first: a plain blob's is its own, a
    // compressed one's was counted when the layer was extracted.
    let size = match kind {
        compress::Compression::None => d.size,
        _ => store.layer_size(diff_id),
    };
    w.dir(&format!("{hex}/"))?;
    let name = format!("{hex}/layer.tar");
    let mut counted = Counted {
        inner: decoded,
        bytes: 0,
        hasher: Sha256::new(),
    };
    let got = w.stream(&name, size, &mut counted)?;
    // Anything past `size` would mean the stored size is wrong.
    let extra = io::copy(&mut counted, &mut io::sink()).map_err(|source| {
        ArchiveError::StoredLayerRead {
            image: short_id(&img.id).into(),
            diff_id: diff_id.to_string(),
            source,
        }
    })?;
    let actual = format!("sha256:{}", store::hex(&counted.hasher.finalize()));
    if got != size || extra != 0 || actual != diff_id {
        return Err(bad(format!(
            "the stored blob decompresses to {} bytes with digest {actual}, expected {size} bytes",
            got + extra
        )));
    }
    Ok(())
}

fn write_oci<W: Write>(
    store: &Store,
    images: &[Image],
    w: &mut Writer<'_, W>,
) -> Result<(), ArchiveError> {
    w.bytes("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    w.dir("blobs/")?;
    w.dir("blobs/sha256/")?;
    let mut written = BTreeSet::new();
    let mut index = Vec::new();
    for img in images {
        for d in &img.manifest.layers {
            if !written.insert(d.digest.clone()) {
                continue;
            }
            let file = open_layer(store, img, d)?;
            let name = format!("blobs/sha256/{}", store::hex_of(&d.digest));
            let got = w.stream(&name, d.size, file)?;
            if got != d.size {
                return Err(ArchiveError::StoredLayer {
                    image: short_id(&img.id).into(),
                    diff_id: d.digest.clone(),
                    detail: format!("the stored blob has {got} bytes, its descriptor {}", d.size),
                });
            }
        }
        for bytes in [&img.config, &img.manifest_bytes] {
            let digest = format!("sha256:{}", store::sha256_hex(bytes));
            if written.insert(digest.clone()) {
                w.bytes(&format!("blobs/sha256/{}", store::hex_of(&digest)), bytes)?;
            }
        }
        let entry = |tag: Option<&Reference>| {
            let mut annotations = BTreeMap::new();
            if let Some(t) = tag {
                annotations.insert(REF_NAME.to_string(), t.to_string());
                annotations.insert(CONTAINERD_NAME.to_string(), t.to_string());
            }
            Descriptor {
                media_type: img
                    .manifest
                    .media_type
                    .clone()
                    .unwrap_or_else(|| manifest::OCI_MANIFEST.to_string()),
                digest: format!("sha256:{}", store::sha256_hex(&img.manifest_bytes)),
                size: img.manifest_bytes.len() as u64,
                urls: Vec::new(),
                platform: None,
                annotations,
            }
        };
        if img.tags.is_empty() {
            index.push(entry(None));
        }
        for t in &img.tags {
            index.push(entry(Some(t)));
        }
    }
    let index = manifest::Index {
        schema_version: 2,
        media_type: Some(manifest::OCI_INDEX.to_string()),
        manifests: index,
        annotations: BTreeMap::new(),
    };
    let bytes = serde_json::to_vec(&index).expect("index serializes");
    w.bytes("index.json", &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_deterministic() {
        let h = header(tar::EntryType::Regular, 5);
        assert_eq!(h.mtime().unwrap(), 0);
        assert_eq!(h.uid().unwrap(), 0);
        assert_eq!(h.mode().unwrap(), 0o644);
        assert_eq!(header(tar::EntryType::Directory, 0).mode().unwrap(), 0o755);
    }
}
