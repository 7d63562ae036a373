//! Manifests and indexes, OCI and Docker schema 2: their media types, the
//! fields burrow reads, platform selection, and the manifest burrow writes
//! for images it makes itself. Manifest bytes are always kept verbatim (their
//! digest is their identity); these types are only a reading of them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::store;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const OCI_LAYER_NONDIST_TAR: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
pub const OCI_LAYER_NONDIST_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
pub const OCI_LAYER_NONDIST_ZSTD: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER_FOREIGN: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// What a registry is asked for: every manifest and index type burrow reads
/// (a registry answers MANIFEST_UNKNOWN for an index not listed here).
pub const ACCEPT: &[&str] = &[OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];

/// Largest manifest or index accepted (the distribution spec's 4 MiB).
pub const MAX_MANIFEST: u64 = 4 << 20;
/// Largest image config accepted.
pub const MAX_CONFIG: u64 = 8 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
    #[error("malformed {what}: {source}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("unsupported manifest type {0:?} (burrow reads OCI and Docker schema 2 manifests and indexes)")]
    Unsupported(String),
    #[error("no image for platform {wanted} (the index has {available})")]
    NoPlatform { wanted: String, available: String },
    #[error("unsupported digest {0:?} (burrow verifies sha256 digests)")]
    BadDigest(String),
    #[error("invalid --platform {0:?}: use os/arch[/variant], for example linux/amd64")]
    BadPlatform(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A manifest document: one image, or an index of them.
#[derive(Debug, Clone)]
pub enum Document {
    Image(Manifest),
    Index(Index),
}

/// Read manifest bytes, trusting the `mediaType` field over the transport's
/// Content-Type (some registries send `application/json`).
pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Document, ManifestError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        schema_version: Option<u32>,
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
        layers: Option<serde_json::Value>,
    }
    let bad = |what: &'static str, source| ManifestError::Json { what, source };
    let probe: Probe = serde_json::from_slice(bytes).map_err(|e| bad("manifest", e))?;
    let kind = probe
        .media_type
        .clone()
        .or_else(|| content_type.map(|c| c.split(';').next().unwrap_or("").trim().to_string()))
        .unwrap_or_default();
    if probe.schema_version == Some(1) {
        return Err(ManifestError::Unsupported(
            "application/vnd.docker.distribution.manifest.v1+json".into(),
        ));
    }
    let doc = match kind.as_str() {
        OCI_INDEX | DOCKER_LIST => {
            Document::Index(serde_json::from_slice(bytes).map_err(|e| bad("index", e))?)
        }
        OCI_MANIFEST | DOCKER_MANIFEST => {
            Document::Image(serde_json::from_slice(bytes).map_err(|e| bad("manifest", e))?)
        }
        // No type at all: an OCI document tells by its fields.
        _ if probe.manifests.is_some() => {
            Document::Index(serde_json::from_slice(bytes).map_err(|e| bad("index", e))?)
        }
        _ if probe.layers.is_some() => {
            Document::Image(serde_json::from_slice(bytes).map_err(|e| bad("manifest", e))?)
        }
        other => return Err(ManifestError::Unsupported(other.to_string())),
    };
    let check = |d: &Descriptor| {
        if store::valid_digest(&d.digest) {
            Ok(())
        } else {
            Err(ManifestError::BadDigest(d.digest.clone()))
        }
    };
    match &doc {
        Document::Image(m) => {
            check(&m.config)?;
            m.layers.iter().try_for_each(check)?;
        }
        Document::Index(i) => i.manifests.iter().try_for_each(check)?,
    }
    Ok(doc)
}

/// How a layer blob is stored, by its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    /// A tar (plain, gzip or zstd: the content says which).
    Tar,
    /// Foreign or non-distributable: not fetched, applied as empty.
    Foreign,
}

pub fn layer_kind(media_type: &str) -> Result<LayerKind, ManifestError> {
    match media_type {
        OCI_LAYER_TAR | OCI_LAYER_GZIP | OCI_LAYER_ZSTD | DOCKER_LAYER_GZIP => Ok(LayerKind::Tar),
        DOCKER_LAYER_FOREIGN
        | OCI_LAYER_NONDIST_TAR
        | OCI_LAYER_NONDIST_GZIP
        | OCI_LAYER_NONDIST_ZSTD => Ok(LayerKind::Foreign),
        // Docker's own uncompressed type, written by some tools.
        "application/vnd.docker.image.rootfs.diff.tar" => Ok(LayerKind::Tar),
        other => Err(ManifestError::Unsupported(other.to_string())),
    }
}

impl Platform {
    /// The platform this burrow runs on (`linux/amd64`, `linux/arm64/v8`...).
    pub fn host() -> Platform {
        let arch = super::config::host_arch().to_string();
        let variant = match arch.as_str() {
            "arm64" => Some("v8".to_string()),
            _ => None,
        };
        Platform {
            architecture: arch,
            os: "linux".into(),
            variant,
        }
    }

    /// `os/arch[/variant]`, as `--platform` takes it.
    pub fn parse(s: &str) -> Result<Platform, ManifestError> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] | [os, arch, _] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
                os: os.to_string(),
                architecture: normalize_arch(arch).to_string(),
                variant: parts.get(2).map(|v| v.to_string()),
            }),
            _ => Err(ManifestError::BadPlatform(s.to_string())),
        }
    }

    /// Does an index entry's platform serve `self`? A missing variant on
    /// either side matches (arm64 images rarely say v8).
    fn serves(&self, other: &Platform) -> bool {
        self.os == other.os
            && normalize_arch(&self.architecture) == normalize_arch(&other.architecture)
            && match (&self.variant, &other.variant) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

fn normalize_arch(a: &str) -> &str {
    match a {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        "i386" | "i686" => "386",
        other => other,
    }
}

/// The index entry for `wanted`; entries without a platform (attestations)
/// never match.
pub fn select<'a>(index: &'a Index, wanted: &Platform) -> Result<&'a Descriptor, ManifestError> {
    index
        .manifests
        .iter()
        .find(|d| d.platform.as_ref().is_some_and(|p| wanted.serves(p)))
        .ok_or_else(|| ManifestError::NoPlatform {
            wanted: wanted.to_string(),
            available: {
                let v: Vec<String> = index
                    .manifests
                    .iter()
                    .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
                    .collect();
                if v.is_empty() {
                    "no platforms".to_string()
                } else {
                    v.join(", ")
                }
            },
        })
}

/// The OCI manifest for an image burrow made (import, commit, load of a
/// docker archive): config and layers as stored.
pub fn oci_manifest(config: &[u8], layers: &[Descriptor]) -> Vec<u8> {
    let m = Manifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_string()),
        config: Descriptor {
            media_type: OCI_CONFIG.to_string(),
            digest: format!("sha256:{}", store::sha256_hex(config)),
            size: config.len() as u64,
            urls: Vec::new(),
            platform: None,
            annotations: BTreeMap::new(),
        },
        layers: layers.to_vec(),
        annotations: BTreeMap::new(),
    };
    serde_json::to_vec(&m).expect("manifest serializes")
}

/// A layer descriptor for a stored blob of the given compression.
pub fn layer_descriptor(
    digest: &str,
    size: u64,
    compression: super::compress::Compression,
) -> Descriptor {
    use super::compress::Compression;
    Descriptor {
        media_type: match compression {
            Compression::None => OCI_LAYER_TAR,
            Compression::Gzip => OCI_LAYER_GZIP,
            Compression::Zstd => OCI_LAYER_ZSTD,
        }
        .to_string(),
        digest: digest.to_string(),
        size,
        urls: Vec::new(),
        platform: None,
        annotations: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

    fn entry(arch: &str, variant: Option<&str>) -> serde_json::Value {
        let mut p = serde_json::json!({"os": "linux", "architecture": arch});
        if let Some(v) = variant {
            p["variant"] = v.into();
        }
        serde_json::json!({"mediaType": OCI_MANIFEST, "digest": D, "size": 1, "platform": p})
    }

    #[test]
    fn index_selects_the_platform_not_the_first_entry() {
        let idx = serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [
                entry("arm", Some("v7")),
                {"mediaType": OCI_MANIFEST, "digest": D, "size": 2, "annotations": {"vnd.docker.reference.type": "attestation-manifest"}},
                entry("amd64", None),
                entry("arm64", Some("v8")),
            ]
        });
        let Document::Index(i) = parse(idx.to_string().as_bytes(), None).unwrap() else {
            panic!("not an index")
        };
        let amd = Platform::parse("linux/amd64").unwrap();
        assert_eq!(
            select(&i, &amd)
                .unwrap()
                .platform
                .as_ref()
                .unwrap()
                .architecture,
            "amd64"
        );
        let arm64 = Platform::parse("linux/arm64").unwrap();
        assert_eq!(
            select(&i, &arm64)
                .unwrap()
                .platform
                .as_ref()
                .unwrap()
                .variant
                .as_deref(),
            Some("v8")
        );
        let err = select(&i, &Platform::parse("linux/s390x").unwrap()).unwrap_err();
        assert!(
            err.to_string().contains("linux/arm/v7, linux/amd64"),
            "{err}"
        );
        assert!(Platform::parse("amd64").is_err());
    }

    #[test]
    fn manifests_parse_by_media_type_or_shape() {
        let m = serde_json::json!({
            "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG, "digest": D, "size": 3},
            "layers": [{"mediaType": DOCKER_LAYER_GZIP, "digest": D, "size": 4}]
        });
        assert!(matches!(
            parse(m.to_string().as_bytes(), None),
            Ok(Document::Image(_))
        ));
        let mut untyped = m.clone();
        untyped.as_object_mut().unwrap().remove("mediaType");
        assert!(matches!(
            parse(untyped.to_string().as_bytes(), None),
            Ok(Document::Image(_))
        ));
        let mut bad = m.clone();
        bad["layers"][0]["digest"] = "sha256:../../etc".into();
        assert!(matches!(
            parse(bad.to_string().as_bytes(), None),
            Err(ManifestError::BadDigest(_))
        ));
        let v1 = br#"{"schemaVersion": 1, "name": "x", "fsLayers": []}"#;
        assert!(matches!(
            parse(v1, None),
            Err(ManifestError::Unsupported(_))
        ));
        assert!(parse(b"<html>", None).is_err());
    }

    #[test]
    fn layer_kinds() {
        assert_eq!(layer_kind(DOCKER_LAYER_GZIP).unwrap(), LayerKind::Tar);
        assert_eq!(layer_kind(OCI_LAYER_ZSTD).unwrap(), LayerKind::Tar);
        assert_eq!(
            layer_kind(DOCKER_LAYER_FOREIGN).unwrap(),
            LayerKind::Foreign
        );
        assert!(layer_kind("application/x-nonsense").is_err());
    }
}
