//! What the stored images take on disk, piece by piece, for `system df`:
//! each image's extracted layers, the blobs kept beside them (its layer
//! archives as pulled, loaded or imported, which `push` and `save` send,
//! and its manifest), and its config and metadata files. A piece two images
//! share is one piece; pieces no image names (layers kept for containers
//! whose image is gone, or left by interrupted work) are listed apart.

use std::collections::{BTreeMap, BTreeSet};

use super::gc;
use crate::store::{Store, StoreError};

/// One thing the store keeps for images.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Piece {
    /// An extracted layer, by diff id.
    Layer(String),
    /// A blob (layer archive or manifest), by digest.
    Blob(String),
    /// An image's config and metadata files, by image id.
    Config(String),
}

#[derive(Debug, Default)]
pub struct Usage {
    /// What each piece takes, in bytes.
    pub sizes: BTreeMap<Piece, u64>,
    /// The pieces of each image, by id.
    pub images: BTreeMap<String, BTreeSet<Piece>>,
    /// Layers and blobs no image names.
    pub unowned: BTreeSet<Piece>,
}

impl Usage {
    pub fn size(&self, p: &Piece) -> u64 {
        self.sizes.get(p).copied().unwrap_or(0)
    }

    /// How many images hold `p`.
    pub fn owners(&self, p: &Piece) -> usize {
        self.images.values().filter(|s| s.contains(p)).count()
    }
}

/// The store's image pieces and their sizes. A layer counts at its tar
/// size (what `images` shows), a blob or config file at its length.
pub fn usage(store: &Store) -> Result<Usage, StoreError> {
    let mut u = Usage::default();
    let file_len = |p: std::path::PathBuf| std::fs::metadata(p).map_or(0, |m| m.len());
    for id in store.image_ids()? {
        let mut pieces = BTreeSet::new();
        if let Ok(c) = store.image_config(&id) {
            for l in c.rootfs().diff_ids() {
                pieces.insert(Piece::Layer(l.clone()));
            }
        }
        // The manifest names the config too, which lives under images/
        // and not among the blobs: only stored blobs are pieces.
        for b in gc::image_blobs(store, &id).unwrap_or_default() {
            if store.has_blob(&b) {
                pieces.insert(Piece::Blob(b));
            }
        }
        let config = file_len(store.image_config_path(&id)) + file_len(store.image_meta_path(&id));
        u.sizes.insert(Piece::Config(id.clone()), config);
        pieces.insert(Piece::Config(id.clone()));
        u.images.insert(id, pieces);
    }
    let owned: BTreeSet<Piece> = u.images.values().flatten().cloned().collect();
    for l in store.layer_ids()? {
        let size = store.layer_size(&l);
        let p = Piece::Layer(l);
        if !owned.contains(&p) {
            u.unowned.insert(p.clone());
        }
        u.sizes.insert(p, size);
    }
    for b in store.blob_digests()? {
        let size = file_len(store.blob_path(&b));
        let p = Piece::Blob(b);
        if !owned.contains(&p) {
            u.unowned.insert(p.clone());
        }
        u.sizes.insert(p, size);
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::add::{self, NewImage};
    use crate::image::manifest;

    #[test]
    fn kept_blobs_count_once_and_strays_apart() {
        let (_d, s) = crate::store::temp_store();
        let archive = vec![7u8; 3000];
        let digest = format!("sha256:{}", crate::store::sha256_hex(&archive));
        let staged = s.root().join("tmp").join("blob");
        std::fs::write(&staged, &archive).unwrap();
        let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:aa"]}}"#;
        let m = manifest::oci_manifest(
            config,
            &[manifest::layer_descriptor(
                &digest,
                3000,
                crate::image::compress::Compression::None,
            )],
        );
        let id = add::add_image(
            &s,
            NewImage {
                config,
                manifest: &m,
                layers: vec![add::StagedLayer {
                    diff_id: "sha256:aa".into(),
                    tar_bytes: 0,
                    dir: None,
                    blob: Some((staged, digest.clone())),
                }],
                tags: vec![],
                repo_digest: None,
            },
        )
        .unwrap();
        let stray = s.put_blob(b"nobody's").unwrap();
        let u = usage(&s).unwrap();
        let mine = &u.images[&id];
        assert!(mine.contains(&Piece::Blob(digest.clone())));
        assert_eq!(u.size(&Piece::Blob(digest)), 3000);
        assert!(u.size(&Piece::Config(id.clone())) > config.len() as u64);
        assert_eq!(
            u.unowned,
            BTreeSet::from([Piece::Blob(stray)]),
            "the manifest is the image's, the stray blob nobody's"
        );
    }
}
