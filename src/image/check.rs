//! `system check` for images: every tag points at a stored image, every
//! image's config is intact (its content hashes to its id) and all of its
//! layers are complete, its metadata and manifest are readable; metadata
//! Layers, blobs and metadata files no image needs (what an interrupted
//! pull, import or rmi leaves) are not problems: nothing lists them, `image
//! prune` reclaims them, and the check only counts them.

use std::collections::BTreeSet;

use super::add::read_meta;
use super::reference::Reference;
use crate::store::check::{Finding, Fix};
use crate::store::{self, Store, StoreError};

/// What the image side of the store looks like.
#[derive(Debug, Default)]
pub struct ImageCheck {
    pub findings: Vec<Finding>,
    /// Every layer some image needs (the container check adds its own).
    pub needed_layers: BTreeSet<String>,
}

pub fn check(store: &Store) -> Result<ImageCheck, StoreError> {
    let mut out = ImageCheck::default();
    let ids: BTreeSet<String> = store.image_ids()?.into_iter().collect();
    match store.repositories() {
        Ok(repos) => {
            for (tag, id) in repos {
                if Reference::parse(&tag).is_err() {
                    out.findings.push(Finding {
                        problem: format!("tag {tag:?} is not a valid reference"),
                        fix: Some(Fix::Untag(tag)),
                    });
                } else if !ids.contains(&id) {
                    out.findings.push(Finding {
                        problem: format!("tag {tag} points at image {id}, which is not stored"),
                        fix: Some(Fix::Untag(tag)),
                    });
                }
            }
        }
        Err(e) => out.findings.push(Finding::unfixable(e.to_string())),
    }
    for id in &ids {
        check_image(store, id, &mut out);
    }
    Ok(out)
}

fn check_image(store: &Store, id: &str, out: &mut ImageCheck) {
    let short = store::short_hex(id);
    let path = store.image_config_path(id);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => {
            out.findings
                .push(Finding::unfixable(format!("image {short}: config: {e}")));
            return;
        }
    };
    if !store::valid_digest(id) || store::sha256_hex(&bytes) != store::hex_of(id) {
        out.findings.push(Finding::unfixable(format!(
            "image {short}: its config does not hash to its id"
        )));
    }
    match store.image_config(id) {
        Ok(cfg) => {
            for l in cfg.rootfs().diff_ids() {
                out.needed_layers.insert(l.clone());
                if !store::valid_digest(l) || !store.has_layer(l) {
                    out.findings.push(Finding::unfixable(format!(
                        "image {short}: layer {l} is missing"
                    )));
                }
            }
        }
        Err(e) => out
            .findings
            .push(Finding::unfixable(format!("image {short}: {e}"))),
    }
    match read_meta(store, id) {
        Ok(Some(meta)) => {
            if !store.has_blob(&meta.manifest) {
                out.findings.push(Finding::unfixable(format!(
                    "image {short}: its manifest {} is missing",
                    meta.manifest
                )));
            }
        }
        Ok(None) => {}
        Err(e) => out
            .findings
            .push(Finding::unfixable(format!("image {short}: {e}"))),
    }
}

/// Layers, blobs and metadata files nothing needs (what `image prune`
/// would reclaim).
pub fn unreferenced(
    store: &Store,
    needed_layers: &BTreeSet<String>,
) -> Result<(usize, usize, usize), StoreError> {
    let layers = store
        .layer_ids()?
        .into_iter()
        .filter(|l| !needed_layers.contains(l))
        .count();
    let blobs = match super::gc::needed_blobs(store)? {
        Some(needed) => store
            .blob_digests()?
            .into_iter()
            .filter(|b| !needed.contains(b))
            .count(),
        None => 0,
    };
    Ok((layers, blobs, super::gc::orphan_metadata(store)?.len()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn finds_dangling_tags_and_missing_layers_and_counts_orphan_metadata() {
        let (_d, s) = store::temp_store();
        let layer = format!("sha256:{}", "b".repeat(64));
        let cfg = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{layer}"]}}}}"#
        );
        let id = s.put_image_config(cfg.as_bytes()).unwrap();
        let mut repos = BTreeMap::new();
        repos.insert("docker.io/library/a:latest".to_string(), id.clone());
        repos.insert(
            "docker.io/library/gone:latest".to_string(),
            format!("sha256:{}", "c".repeat(64)),
        );
        s.save_repositories(&repos).unwrap();
        std::fs::write(
            s.root().join(format!("images/{}.meta", "d".repeat(64))),
            b"{}",
        )
        .unwrap();
        let c = check(&s).unwrap();
        let problems: Vec<&str> = c.findings.iter().map(|f| f.problem.as_str()).collect();
        assert_eq!(c.findings.len(), 2, "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("gone:latest")));
        assert!(problems.iter().any(|p| p.contains("is missing")));
        assert!(c.needed_layers.contains(&layer));
        assert_eq!(super::super::gc::orphan_metadata(&s).unwrap().len(), 1);
        // The layer appears: only the dangling tag remains, and it is
        // repairable.
        let stage = s.staging_dir("layer").unwrap();
        std::fs::create_dir(stage.join("fs")).unwrap();
        s.commit_layer(&stage, &layer, 0).unwrap();
        let c = check(&s).unwrap();
        assert_eq!(c.findings.len(), 1);
        assert!(c.findings.iter().all(|f| f.fix.is_some()));
    }
}
