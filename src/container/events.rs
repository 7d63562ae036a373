//! A container's events as journal entries: its name, the image as the
//! user named it and every label as attributes, as Docker's events carry
//! them (Compose finds its containers' events by label).

use super::ContainerRecord;
use crate::store::events::{append, Entry};
use crate::store::Store;

/// The entry for `action` on `rec`, with `extra` attributes (`exitCode`,
/// `signal`, `oldName`).
pub fn entry(rec: &ContainerRecord, action: &str, extra: &[(&str, String)]) -> Entry {
    let mut e = Entry::now("container", action, &rec.id);
    for (k, v) in &rec.config.labels {
        e.attributes.insert(k.clone(), v.clone());
    }
    e.attributes.insert("name".into(), rec.name.clone());
    e.attributes
        .insert("image".into(), rec.config.image.clone());
    for (k, v) in extra {
        e.attributes.insert((*k).to_string(), v.clone());
    }
    e
}

/// Journal `action` on `rec` (never fails).
pub fn record(store: &Store, rec: &ContainerRecord, action: &str, extra: &[(&str, String)]) {
    append(store, &entry(rec, action, extra));
}
