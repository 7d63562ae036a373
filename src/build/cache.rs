//! The build cache: what a step produced, found again by a key over
//! everything the step depends on (the image it starts from, the stage's
//! config so far, the instruction after substitution, the build args in
//! scope, the content of the files it copies). An entry is a file named by
//! the key holding the image id; the images themselves are ordinary
//! untagged images, so `image prune` and `system prune` remove them, and an
//! entry whose image is gone is a miss (and is removed when looked up).

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::store::{self, Store};

/// What a cached step produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached {
    /// A new image.
    Image(String),
    /// Nothing changed on disk (a WORKDIR that already existed).
    Unchanged,
}

pub struct Cache {
    dir: PathBuf,
    enabled: bool,
}

/// The key over `parts`, each length-prefixed so no two lists collide.
pub fn key(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    store::hex(&h.finalize())
}

impl Cache {
    /// The cache of `store`; `enabled: false` (`--no-cache`) finds nothing
    /// but still records, so the next build can use what this one made.
    pub fn open(store: &Store, enabled: bool) -> Self {
        Cache {
            dir: store.root().join("build-cache"),
            enabled,
        }
    }

    pub fn get(&self, store: &Store, key: &str) -> Option<Cached> {
        if !self.enabled {
            return None;
        }
        let path = self.dir.join(key);
        let text = std::fs::read_to_string(&path).ok()?;
        match text.trim() {
            "-" => Some(Cached::Unchanged),
            id if store::valid_digest(id) && store.image_config_path(id).is_file() => {
                Some(Cached::Image(id.to_string()))
            }
            _ => {
                // Its image was pruned: the entry goes too.
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Record `what` under `key`; a failure only costs a later rebuild.
    pub fn put(&self, key: &str, what: &Cached) {
        let text = match what {
            Cached::Image(id) => id.as_str(),
            Cached::Unchanged => "-",
        };
        let write = std::fs::create_dir_all(&self.dir)
            .map_err(store::io("creating", &self.dir))
            .and_then(|()| store::write_atomic(&self.dir.join(key), text.as_bytes(), false));
        if let Err(e) = write {
            tracing::warn!("recording a build cache entry: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_separate_parts() {
        assert_ne!(key(&["ab", "c"]), key(&["a", "bc"]));
        assert_eq!(key(&["a", "b"]), key(&["a", "b"]));
    }

    #[test]
    fn entries_of_missing_images_are_misses() {
        let (_d, store) = store::temp_store();
        let c = Cache::open(&store, true);
        c.put("k1", &Cached::Unchanged);
        assert_eq!(c.get(&store, "k1"), Some(Cached::Unchanged));
        c.put("k2", &Cached::Image(format!("sha256:{}", "0".repeat(64))));
        assert_eq!(c.get(&store, "k2"), None);
        assert!(!store.root().join("build-cache/k2").exists());
        assert_eq!(Cache::open(&store, false).get(&store, "k1"), None);
    }
}
