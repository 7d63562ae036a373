//! Image archives, as `docker save`, `podman save` and `skopeo copy` write
//! them: `load` (docker-archive, OCI archive, OCI layout directory; plain,
//! gzip or zstd) and `save` (docker-archive or OCI archive). The outer tar is
//! untrusted: `unpack` lays it out in staging without following anything it
//! says, `load` verifies every digest before the store changes, and `save`
//! writes through a temp file so a failed save leaves no half archive.

pub(in crate::image) mod docker;
mod load;
mod save;
mod unpack;

use std::path::PathBuf;

pub use load::{load, LoadReport, LoadSource, Loaded};
pub use save::{save, SaveFormat, SaveTarget};

use super::compress::CompressError;
use super::manifest::ManifestError;
use super::reference::ReferenceError;
use crate::linux::userns::UsernsError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("opening {path:?}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("unpacking the archive: {0}")]
    Compress(#[source] CompressError),
    #[error("unpacking the archive: {0}")]
    Read(#[source] std::io::Error),
    #[error("unpacking the archive: writing {path:?}: {source}")]
    Unpack {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("unsafe archive entry {name:?}: {reason}")]
    UnsafeEntry { name: String, reason: String },
    #[error("archive entry {name:?} is larger than the {limit} bytes allowed for it")]
    TooBig { name: String, limit: u64 },
    #[error("unpacking the archive: {what}")]
    Limit { what: String },
    #[error("not an image archive: no manifest.json (docker-archive) and no oci-layout with index.json (OCI)")]
    NotAnArchive,
    #[error("archive has no {name:?}: {detail}")]
    Missing { name: String, detail: String },
    #[error("archive has no {name:?}: {source}")]
    Unreadable {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("malformed {name:?} in the archive: {detail}")]
    Malformed { name: String, detail: String },
    #[error("malformed {name:?} in the archive: {source}")]
    Invalid {
        name: String,
        #[source]
        source: docker::Invalid,
    },
    #[error("malformed {name:?} in the archive: {source}")]
    Compression {
        name: String,
        #[source]
        source: CompressError,
    },
    #[error("malformed {name:?} in the archive: {source}")]
    Json {
        name: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{name:?} in the archive: {source}")]
    Manifest {
        name: String,
        #[source]
        source: ManifestError,
    },
    #[error(
        "{name:?} in the archive does not match its digest: expected {expected}, got {actual}"
    )]
    Digest {
        name: String,
        expected: String,
        actual: String,
    },
    #[error("image tag {tag:?} in the archive: {source}")]
    BadTag {
        tag: String,
        #[source]
        source: ReferenceError,
    },
    #[error("the archive holds no image for platform {0}")]
    NoImages(String),
    #[error("ingesting layers: {0}")]
    Layer(String),
    #[error("ingesting layers: {0}")]
    Userns(#[source] UsernsError),
    #[error("image {0} has no stored manifest (it was made by an older burrow): import or pull it again")]
    NoManifest(String),
    #[error("layer {digest} of image {image} is not in the store: import or pull the image again")]
    MissingBlob { image: String, digest: String },
    #[error("layer {diff_id} of image {image}: {detail}")]
    StoredLayer {
        image: String,
        diff_id: String,
        detail: String,
    },
    #[error("layer {diff_id} of image {image}: {source}")]
    StoredLayerCompress {
        image: String,
        diff_id: String,
        #[source]
        source: CompressError,
    },
    #[error("layer {diff_id} of image {image}: {source}")]
    StoredLayerRead {
        image: String,
        diff_id: String,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupt store file {path:?}: {source}")]
    StoredConfig {
        path: PathBuf,
        #[source]
        source: docker::Invalid,
    },
    #[error("writing {path:?}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("refusing to write an archive to a terminal: use -o FILE or redirect the output")]
    Terminal,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Short image id for messages.
fn short_id(id: &str) -> &str {
    let h = crate::store::hex_of(id);
    &h[..h.len().min(12)]
}
