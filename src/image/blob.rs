//! One layer blob into staging as a single stream: the raw bytes are written
//! to the blob file and hashed (the descriptor's digest and size checked),
//! decompressed, hashed again for the diff id, and extracted. No second pass
//! over the data and no temporary copy. Runs as root of the user namespace
//! that owns the extracted files (the caller's job).

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::compress::{self, CompressError, Compression};
use super::layer::{self, ApplyOptions, IdPolicy, LayerError};
use crate::store;

/// What the descriptor (or config) promises about the blob.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    pub digest: Option<String>,
    pub size: Option<u64>,
    pub diff_id: Option<String>,
}

/// What came through.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Ingested {
    pub digest: String,
    pub size: u64,
    /// Set when the layer was extracted.
    pub diff_id: Option<String>,
    pub tar_bytes: u64,
    pub compression: Option<CompressionName>,
    pub notes: Vec<String>,
}

/// `Compression` as it travels in a result file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CompressionName {
    None,
    Gzip,
    Zstd,
}

impl From<Compression> for CompressionName {
    fn from(c: Compression) -> Self {
        match c {
            Compression::None => CompressionName::None,
            Compression::Gzip => CompressionName::Gzip,
            Compression::Zstd => CompressionName::Zstd,
        }
    }
}

impl From<CompressionName> for Compression {
    fn from(c: CompressionName) -> Self {
        match c {
            CompressionName::None => Compression::None,
            CompressionName::Gzip => Compression::Gzip,
            CompressionName::Zstd => Compression::Zstd,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("reading blob: {0}")]
    Read(#[source] io::Error),
    #[error("writing {path:?}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Compress(#[from] CompressError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error("blob {digest}: {detail}")]
    Size { digest: String, detail: String },
    #[error("blob digest mismatch: expected {expected}, got {actual}")]
    Digest { expected: String, actual: String },
    #[error("layer diff id mismatch: the config says {expected}, the blob holds {actual}")]
    DiffId { expected: String, actual: String },
}

/// Hashes, counts, reports and (optionally) keeps every raw byte read, and
/// refuses to read past the promised size.
struct Tee<'a, R> {
    inner: R,
    out: Option<(BufWriter<File>, &'a Path)>,
    hasher: Sha256,
    bytes: u64,
    limit: Option<u64>,
    progress: &'a dyn Fn(u64),
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        if let Some(limit) = self.limit {
            if self.bytes > limit {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("more than the {limit} bytes its descriptor gives"),
                ));
            }
        }
        self.hasher.update(&buf[..n]);
        if let Some((w, path)) = &mut self.out {
            w.write_all(&buf[..n]).map_err(|e| {
                crate::linux::fs::with_step(e, format_args!("writing {}", path.display()))
            })?;
        }
        (self.progress)(n as u64);
        Ok(n)
    }
}

/// Counts and hashes everything written through it: a blob as it is
/// written (commit's layer, push's gzip of a plain one).
pub(crate) struct HashWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W> HashWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// The inner writer, and the digest (`sha256:…`) and count of what
    /// went through.
    pub(crate) fn finish(self) -> (W, String, u64) {
        let digest = format!("sha256:{}", store::hex(&self.hasher.finalize()));
        (self.inner, digest, self.bytes)
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Decoded bytes go to the extracting thread in pieces this big, at most
/// this many at a time (a few MiB in flight).
const CHUNK: u64 = 256 * 1024;
const IN_FLIGHT: usize = 8;

/// The extracting thread's end of the hand-over: reads the pieces in order,
/// then EOF once the sending side is gone. Read pieces go back for reuse:
/// fresh buffers this big would be mapped and faulted in every time.
struct Pieces {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    back: std::sync::mpsc::SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    at: usize,
}

impl Read for Pieces {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.cur.len() {
            match self.rx.recv() {
                Ok(next) => {
                    let done = std::mem::replace(&mut self.cur, next);
                    self.at = 0;
                    let _ = self.back.try_send(done);
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.at);
        buf[..n].copy_from_slice(&self.cur[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Extract the decoded stream into `dir` on a second thread while this one
/// reads, decompresses and hashes it: creating files is system time, the
/// rest is user time, and side by side they overlap (as `tar -xz` overlaps
/// gzip and tar). Returns the diff id. Threads are fine here: every caller
/// runs in a child that is already root of its user namespace and never
/// forks a container.
fn extract_alongside(
    mut decoded: impl Read,
    dir: &Path,
    ids: IdPolicy,
) -> Result<(String, layer::ApplyReport), BlobError> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT);
    let (back, spare) = std::sync::mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT + 2);
    let pieces = Pieces {
        rx,
        back,
        cur: Vec::new(),
        at: 0,
    };
    std::thread::scope(|s| {
        let worker = s.spawn(move || layer::apply_layer(pieces, dir, &ApplyOptions { ids }));
        let mut hasher = Sha256::new();
        let fed = (|| -> io::Result<()> {
            loop {
                let mut piece = spare
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(CHUNK as usize));
                piece.clear();
                (&mut decoded).take(CHUNK).read_to_end(&mut piece)?;
                if piece.is_empty() {
                    return Ok(());
                }
                hasher.update(&piece);
                if tx.send(piece).is_err() {
                    // The extractor stopped early: its result says why.
                    return Ok(());
                }
            }
        })();
        drop(tx);
        let applied = worker.join().map_err(|_| {
            BlobError::Layer(LayerError::Read(io::Error::other(
                "the extracting thread panicked",
            )))
        })?;
        // A read or decompression error first: the extractor only saw the
        // stream end early.
        fed.map_err(LayerError::Read)?;
        let report = applied?;
        Ok((format!("sha256:{}", store::hex(&hasher.finalize())), report))
    })
}

/// Stream `reader` into `blob_out` (when given) and, when `fs_dir` is
/// given, extract it there. Every promise in `expected` is checked; on error
/// the outputs are partial and the caller discards them.
pub fn ingest<R: Read>(
    reader: R,
    blob_out: Option<&Path>,
    fs_dir: Option<&Path>,
    ids: IdPolicy,
    expected: &Expected,
    progress: &dyn Fn(u64),
) -> Result<Ingested, BlobError> {
    let out = match blob_out {
        Some(p) => Some((
            BufWriter::with_capacity(
                256 * 1024,
                File::create(p).map_err(|source| BlobError::Write {
                    path: p.to_path_buf(),
                    source,
                })?,
            ),
            p,
        )),
        None => None,
    };
    let mut tee = Tee {
        inner: reader,
        out,
        hasher: Sha256::new(),
        bytes: 0,
        limit: expected.size,
        progress,
    };
    let mut diff_id = None;
    let mut tar_bytes = 0;
    let mut compression = None;
    let mut notes = Vec::new();
    if let Some(dir) = fs_dir {
        let (kind, decoded) = compress::decoder(&mut tee)?;
        let (diff, report) = extract_alongside(decoded, dir, ids)?;
        diff_id = Some(diff);
        tar_bytes = report.tar_bytes;
        compression = Some(kind.into());
        notes = report.notes;
    }
    // Whatever the decoder did not need still belongs to the blob.
    io::copy(&mut tee, &mut io::sink()).map_err(BlobError::Read)?;
    let digest = format!("sha256:{}", store::hex(&tee.hasher.finalize_reset()));
    let size = tee.bytes;
    if let Some((mut w, p)) = tee.out.take() {
        w.flush().map_err(|source| BlobError::Write {
            path: p.to_path_buf(),
            source,
        })?;
    }
    if let Some(want) = expected.size {
        if size != want {
            return Err(BlobError::Size {
                digest,
                detail: format!("ended after {size} of the {want} bytes its descriptor gives"),
            });
        }
    }
    if let Some(want) = &expected.digest {
        if *want != digest {
            return Err(BlobError::Digest {
                expected: want.clone(),
                actual: digest,
            });
        }
    }
    if let (Some(want), Some(got)) = (&expected.diff_id, &diff_id) {
        if want != got {
            return Err(BlobError::DiffId {
                expected: want.clone(),
                actual: got.clone(),
            });
        }
    }
    Ok(Ingested {
        digest,
        size,
        diff_id,
        tar_bytes,
        compression,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_gz() -> (Vec<u8>, Vec<u8>) {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(5);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "etc/greeting", &b"hello"[..])
            .unwrap();
        let tar = b.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        (tar, gz.finish().unwrap())
    }

    #[test]
    fn one_stream_keeps_the_blob_and_checks_every_promise() {
        let (tar, gz) = tar_gz();
        let d = tempfile::tempdir().unwrap();
        let fs = d.path().join("fs");
        std::fs::create_dir(&fs).unwrap();
        let blob = d.path().join("blob");
        let digest = format!("sha256:{}", store::sha256_hex(&gz));
        let diff_id = format!("sha256:{}", store::sha256_hex(&tar));
        let seen = std::cell::Cell::new(0u64);
        let got = ingest(
            &gz[..],
            Some(&blob),
            Some(&fs),
            IdPolicy::Collapse,
            &Expected {
                digest: Some(digest.clone()),
                size: Some(gz.len() as u64),
                diff_id: Some(diff_id.clone()),
            },
            &|n| seen.set(seen.get() + n),
        )
        .unwrap();
        assert_eq!(got.digest, digest);
        assert_eq!(got.diff_id.as_deref(), Some(diff_id.as_str()));
        assert_eq!(got.compression, Some(CompressionName::Gzip));
        assert_eq!(std::fs::read(&blob).unwrap(), gz);
        assert_eq!(seen.get(), gz.len() as u64);
        assert_eq!(std::fs::read(fs.join("etc/greeting")).unwrap(), b"hello");

        // A promise the blob breaks is refused; each try extracts anew.
        let refused = |dir: &str, expected: Expected| {
            let p = d.path().join(dir);
            std::fs::create_dir(&p).unwrap();
            ingest(
                &gz[..],
                None,
                Some(&p),
                IdPolicy::Collapse,
                &expected,
                &|_| {},
            )
        };
        let wrong_digest = Expected {
            digest: Some(format!("sha256:{}", "0".repeat(64))),
            ..Default::default()
        };
        let e = refused("a", wrong_digest);
        assert!(matches!(e, Err(BlobError::Digest { .. })), "{e:?}");
        let short = Expected {
            size: Some(gz.len() as u64 + 10),
            ..Default::default()
        };
        let e = refused("b", short);
        assert!(matches!(e, Err(BlobError::Size { .. })), "{e:?}");
        let long = Expected {
            size: Some(gz.len() as u64 - 10),
            ..Default::default()
        };
        assert!(refused("c", long).is_err());
        let wrong_diff = Expected {
            diff_id: Some(digest.clone()),
            ..Default::default()
        };
        let e = refused("e", wrong_diff);
        assert!(matches!(e, Err(BlobError::DiffId { .. })), "{e:?}");
        // Blob only: nothing is extracted, the digest is still checked.
        let only = ingest(
            &gz[..],
            Some(&d.path().join("b2")),
            None,
            IdPolicy::Collapse,
            &Expected::default(),
            &|_| {},
        )
        .unwrap();
        assert_eq!(only.digest, digest);
        assert_eq!(only.diff_id, None);
    }
}
