//! The event journal: what happened to containers, images, networks and
//! volumes, one JSON line each in `RUNTIME/events.jsonl`, appended by
//! whichever process did it (a command, the service, a container's
//! monitor) and read by `events`. There is no daemon to hold events in
//! memory, so the journal is the bus.
//!
//! A line is written with one `write` on an `O_APPEND` descriptor, so
//! concurrent writers never interleave inside a line. Writing never fails
//! the operation that made the event: errors are ignored. Past
//! `ROTATE_AT` bytes the file is renamed to `events.jsonl.1` (the older
//! one dropped); readers that follow notice the rename and go on in the
//! new file. The journal lives in the runtime directory: it starts empty
//! after a reboot, as Docker's in-memory events do after a restart.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::Store;

/// The journal's file in the runtime directory.
pub const FILE: &str = "events.jsonl";
/// The rotated journal: the events before the current file's.
pub const ROTATED: &str = "events.jsonl.1";
/// The size past which the journal is rotated.
pub const ROTATE_AT: u64 = 4 << 20;

/// One event, in neutral terms (the engine gives it Docker's shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// `container`, `image`, `network`, `volume`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `create`, `start`, `die`, `pull`, `tag`...
    pub action: String,
    /// The object's id (an image's reference for pull and tag events).
    pub id: String,
    /// What Docker calls the actor's attributes: name, image, labels,
    /// exit code.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    /// Nanoseconds since the epoch.
    pub time_nano: u64,
}

impl Entry {
    /// An event that happens now.
    pub fn now(kind: &str, action: &str, id: &str) -> Entry {
        Entry {
            kind: kind.into(),
            action: action.into(),
            id: id.into(),
            attributes: BTreeMap::new(),
            time_nano: now_nano(),
        }
    }

    /// With one more attribute.
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Entry {
        self.attributes.insert(key.into(), value.into());
        self
    }
}

/// Nanoseconds since the epoch.
pub fn now_nano() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl Store {
    /// The journal's path.
    pub fn events_file(&self) -> PathBuf {
        self.paths.runtime.join(FILE)
    }

    /// The rotated journal's path.
    pub fn events_rotated(&self) -> PathBuf {
        self.paths.runtime.join(ROTATED)
    }
}

/// Append `entry` to the journal. Never fails: an event that cannot be
/// written is lost, the operation goes on.
pub fn append(store: &Store, entry: &Entry) {
    let Ok(mut line) = serde_json::to_vec(entry) else {
        return;
    };
    line.push(b'\n');
    let path = store.events_file();
    let Ok(mut f) = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&path)
    else {
        return;
    };
    if f.write_all(&line).is_err() {
        return;
    }
    if f.metadata().is_ok_and(|m| m.len() > ROTATE_AT) {
        let _ = fs::rename(&path, store.events_rotated());
    }
}

/// The journal being read: from where it stood when opened (or from its
/// start, rotated file first), then whatever is appended, across
/// rotations.
pub struct Journal {
    path: PathBuf,
    file: Option<File>,
    /// Bytes of an unfinished last line.
    partial: Vec<u8>,
}

impl Journal {
    /// Open the journal. With `replay`, the events already in it are
    /// returned (oldest first); without, reading starts at its end.
    pub fn open(store: &Store, replay: bool) -> (Journal, Vec<Entry>) {
        let mut j = Journal {
            path: store.events_file(),
            file: None,
            partial: Vec::new(),
        };
        let mut out = Vec::new();
        if replay {
            if let Ok(mut f) = File::open(store.events_rotated()) {
                let mut bytes = Vec::new();
                let _ = f.read_to_end(&mut bytes);
                out.extend(parse_lines(&bytes));
            }
        }
        if let Ok(mut f) = File::open(&j.path) {
            if !replay {
                let _ = f.seek(SeekFrom::End(0));
            }
            j.file = Some(f);
        }
        out.extend(j.more());
        (j, out)
    }

    /// What was appended since the last call.
    pub fn more(&mut self) -> Vec<Entry> {
        let mut out = Vec::new();
        // At most two rounds: the rest of a rotated file, then its
        // successor.
        for _ in 0..2 {
            if self.file.is_none() {
                self.file = File::open(&self.path).ok();
            }
            let Some(f) = self.file.as_mut() else {
                break;
            };
            let mut bytes = std::mem::take(&mut self.partial);
            let _ = f.read_to_end(&mut bytes);
            let end = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            self.partial = bytes.split_off(end);
            out.extend(parse_lines(&bytes));
            let ours = f.metadata().map(|m| m.ino()).ok();
            let now = fs::metadata(&self.path).map(|m| m.ino()).ok();
            if ours == now {
                break;
            }
            // Rotated (or removed): go on in the new file from its start.
            self.file = None;
            self.partial.clear();
        }
        out
    }
}

fn parse_lines(bytes: &[u8]) -> Vec<Entry> {
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appended_lines_are_read_back_and_followed_across_rotation() {
        let (_dir, store) = crate::store::temp_store();
        let (mut j, first) = Journal::open(&store, true);
        assert!(first.is_empty());
        append(
            &store,
            &Entry::now("container", "create", "a").with("name", "x"),
        );
        let got = j.more();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].attributes["name"], "x");
        assert!(j.more().is_empty());

        // A reader opened now starts at the end, or replays.
        let (mut late, none) = Journal::open(&store, false);
        assert!(none.is_empty());
        let (_, all) = Journal::open(&store, true);
        assert_eq!(all.len(), 1);

        // A partial line waits for its end.
        let mut f = OpenOptions::new()
            .append(true)
            .open(store.events_file())
            .unwrap();
        f.write_all(br#"{"type":"image","action":"tag","id":"b","#)
            .unwrap();
        assert!(late.more().is_empty());
        f.write_all(b"\"time_nano\":1}\n").unwrap();
        assert_eq!(late.more()[0].id, "b");

        // Rotation: the rest of the old file, then the new one.
        append(&store, &Entry::now("image", "pull", "c"));
        fs::rename(store.events_file(), store.events_rotated()).unwrap();
        append(&store, &Entry::now("image", "pull", "d"));
        let ids: Vec<String> = late.more().into_iter().map(|e| e.id).collect();
        assert_eq!(ids, ["c", "d"]);
        let (_, all) = Journal::open(&store, true);
        assert_eq!(all.len(), 4);
    }
}
