//! The docker-archive format's own files: `manifest.json` (read and
//! written) and the legacy `repositories` map, and the config's diff ids
//! both formats are checked against.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::store;

/// What is wrong with a `manifest.json` or a config.
#[derive(Debug, thiserror::Error)]
pub enum Invalid {
    #[error("{0}")]
    Json(#[source] serde_json::Error),
    #[error("lists no images")]
    NoImages,
    #[error("lists {listed} layers where the manifest has {layers}")]
    Layers { listed: usize, layers: usize },
    #[error("unsupported diff id {0:?}")]
    DiffId(String),
}

/// One image in `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Entry {
    /// The config file's name in the archive.
    pub config: String,
    /// Docker writes `null` for an image saved by id.
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    /// Each layer's tar, in order, by name in the archive.
    pub layers: Vec<String>,
}

/// Parse `manifest.json`.
pub fn parse_manifest(bytes: &[u8]) -> Result<Vec<Entry>, Invalid> {
    let entries: Vec<Entry> = serde_json::from_slice(bytes).map_err(Invalid::Json)?;
    if entries.is_empty() {
        return Err(Invalid::NoImages);
    }
    Ok(entries)
}

/// The legacy `repositories` file: repository → tag → top layer's directory.
pub fn repositories(tags: &[(String, String, String)]) -> Vec<u8> {
    let mut map: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
    for (repo, tag, top) in tags {
        map.entry(repo).or_default().insert(tag, top);
    }
    serde_json::to_vec(&map).expect("map of strings serializes")
}

/// The diff ids an image config lists, each checked to be a digest the
/// store can name files after, and as many as the image has layers.
pub fn diff_ids(config: &[u8], layers: usize) -> Result<Vec<String>, Invalid> {
    #[derive(Deserialize)]
    struct RootFs {
        #[serde(default)]
        diff_ids: Vec<String>,
    }
    #[derive(Deserialize)]
    struct Cfg {
        rootfs: RootFs,
    }
    let c: Cfg = serde_json::from_slice(config).map_err(Invalid::Json)?;
    if c.rootfs.diff_ids.len() != layers {
        return Err(Invalid::Layers {
            listed: c.rootfs.diff_ids.len(),
            layers,
        });
    }
    if let Some(bad) = c.rootfs.diff_ids.iter().find(|d| !store::valid_digest(d)) {
        return Err(Invalid::DiffId(bad.clone()));
    }
    Ok(c.rootfs.diff_ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    #[test]
    fn manifest_json_as_docker_and_podman_write_it() {
        let podman =
            br#"[{"Config":"57fc.json","RepoTags":["localhost/bb:1"],"Layers":["52ff.tar"]}]"#;
        let e = parse_manifest(podman).unwrap();
        assert_eq!(e[0].config, "57fc.json");
        assert_eq!(
            e[0].repo_tags.as_deref(),
            Some(&["localhost/bb:1".to_string()][..])
        );
        assert_eq!(e[0].layers, ["52ff.tar"]);
        // Docker: saved by id, and extra fields of newer versions.
        let docker = br#"[{"Config":"blobs/sha256/aa","RepoTags":null,"Layers":["blobs/sha256/bb"],"LayerSources":{}}]"#;
        assert_eq!(parse_manifest(docker).unwrap()[0].repo_tags, None);
        assert!(parse_manifest(b"[]").is_err());
        assert!(parse_manifest(br#"{"Config":"x"}"#).is_err());
        assert!(parse_manifest(br#"[{"Config":"x"}]"#).is_err());
    }

    #[test]
    fn diff_ids_are_checked() {
        let cfg = format!(r#"{{"rootfs":{{"type":"layers","diff_ids":["{D}"]}}}}"#);
        assert_eq!(diff_ids(cfg.as_bytes(), 1).unwrap(), [D]);
        assert!(diff_ids(cfg.as_bytes(), 2).is_err());
        let bad = r#"{"rootfs":{"type":"layers","diff_ids":["sha256:../../x"]}}"#;
        assert!(diff_ids(bad.as_bytes(), 1).is_err());
        assert!(diff_ids(b"{}", 0).is_err());
    }

    #[test]
    fn repositories_map() {
        let r = repositories(&[
            ("busybox".into(), "latest".into(), "ab".into()),
            ("busybox".into(), "1".into(), "ab".into()),
        ]);
        assert_eq!(
            String::from_utf8(r).unwrap(),
            r#"{"busybox":{"1":"ab","latest":"ab"}}"#
        );
    }
}
