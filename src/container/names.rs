//! Container names: validation, generation (adjective_noun, like Docker),
//! and reservation as symlinks in names/, which makes uniqueness atomic.

use std::io::ErrorKind;

use super::{ContainerError, Result};
use crate::store::Store;

const ADJECTIVES: [&str; 24] = [
    "agile", "bold", "brave", "calm", "clever", "cosy", "deep", "eager", "fond", "gentle", "happy",
    "keen", "kind", "lucid", "merry", "nimble", "quiet", "quick", "snug", "steady", "sturdy",
    "swift", "tidy", "wise",
];
const NOUNS: [&str; 24] = [
    "badger",
    "beaver",
    "bilby",
    "chipmunk",
    "dormouse",
    "ferret",
    "gopher",
    "hamster",
    "hedgehog",
    "jerboa",
    "marmot",
    "meerkat",
    "mole",
    "mouse",
    "otter",
    "pika",
    "prairiedog",
    "rabbit",
    "shrew",
    "squirrel",
    "vole",
    "wallaby",
    "wombat",
    "woodchuck",
];

/// Docker's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn validate(name: &str) -> Result<()> {
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && name.len() <= 128;
    if ok {
        Ok(())
    } else {
        Err(ContainerError::BadName(name.to_string()))
    }
}

/// Claim `name` for `id`. symlink(2) fails with EEXIST if the name is taken,
/// so of any number of concurrent claims exactly one wins.
pub fn reserve(store: &Store, name: &str, id: &str) -> Result<()> {
    let link = store.names_dir().join(name);
    match std::os::unix::fs::symlink(id, &link) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let holder = lookup(store, name).unwrap_or_default();
            // A name whose container never got a directory (a create killed
            // between reserving and mkdir) is free again, but only once it
            // is old: a fresh reservation's directory is about to appear.
            let stale = std::fs::symlink_metadata(&link)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > std::time::Duration::from_secs(60));
            if stale && !store.container_dir(&holder).exists() {
                let _ = std::fs::remove_file(&link);
                return reserve(store, name, id);
            }
            Err(ContainerError::NameInUse {
                name: name.to_string(),
                id: holder,
            })
        }
        Err(source) => Err(ContainerError::Reserve {
            name: name.to_string(),
            source,
        }),
    }
}

/// Pick and reserve a free generated name.
pub fn reserve_generated(store: &Store, id: &str) -> Result<String> {
    let seed = u64::from_str_radix(&id[..12], 16).unwrap_or(0);
    for attempt in 0..(ADJECTIVES.len() * NOUNS.len()) as u64 {
        let n = seed.wrapping_add(attempt * 7919);
        let name = format!(
            "{}_{}",
            ADJECTIVES[(n % ADJECTIVES.len() as u64) as usize],
            NOUNS[((n / ADJECTIVES.len() as u64) % NOUNS.len() as u64) as usize]
        );
        match reserve(store, &name, id) {
            Ok(()) => return Ok(name),
            Err(ContainerError::NameInUse { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    // Every pair is taken: fall back to a numbered name.
    let name = format!("burrow_{}", &id[..12]);
    reserve(store, &name, id)?;
    Ok(name)
}

/// Free `name` if it still names `id` (someone may have claimed it since a
/// dangling link was reclaimed).
pub fn release(store: &Store, name: &str, id: &str) {
    if lookup(store, name).as_deref() == Some(id) {
        let _ = std::fs::remove_file(store.names_dir().join(name));
    }
}

/// The id a name points to.
pub fn lookup(store: &Store, name: &str) -> Option<String> {
    if validate(name).is_err() {
        return None;
    }
    std::fs::read_link(store.names_dir().join(name))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StorePaths;

    #[test]
    fn names_are_unique_and_validated() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(StorePaths {
            root: d.path().join("r"),
            runtime: d.path().join("t"),
            runtime_from: Default::default(),
        })
        .unwrap();
        std::fs::create_dir(store.container_dir("aaa")).unwrap();
        reserve(&store, "web", "aaa").unwrap();
        assert!(matches!(
            reserve(&store, "web", "bbb"),
            Err(ContainerError::NameInUse { .. })
        ));
        assert_eq!(lookup(&store, "web").as_deref(), Some("aaa"));
        release(&store, "web", "aaa");
        reserve(&store, "web", "bbb").unwrap();
        assert!(validate("-bad").is_err());
        assert!(validate("a/b").is_err());
        assert!(validate("ok_name.1-2").is_ok());
        let g = reserve_generated(&store, "0123456789abcdef").unwrap();
        assert!(g.contains('_'));
    }
}
