//! What `create` leaves under the runtime's `--root` for the other verbs:
//! `ROOT/ID/state.json` (init's pid and start time, the bundle, when), the
//! exec FIFO `ROOT/ID/exec.fifo` that holds init until `start`, and a
//! `paused` marker. The status is derived, never stored: init alive with
//! the FIFO still there is "created", without it "running" (or "paused"),
//! a dead or reused pid "stopped".

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::linux::process;

pub const FIFO: &str = "exec.fifo";
const STATE: &str = "state.json";
const PAUSED: &str = "paused";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The wording engines look for (podman: "does not exist").
    #[error("container \"{0}\" does not exist")]
    Missing(String),
    #[error("container with id \"{0}\" already exists")]
    Exists(String),
    #[error("invalid container ID {0:?}: invalid character (use letters, digits, '_', '-', '.', '+'; not starting with '.')")]
    BadId(String),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

type Result<T> = std::result::Result<T, StateError>;

/// The runtime's state directory: `--root`, else
/// `$XDG_RUNTIME_DIR/burrow-runc`, else `/tmp/burrow-runc-UID`.
pub fn default_root(xdg_runtime_dir: Option<&str>, uid: u32) -> PathBuf {
    match xdg_runtime_dir.filter(|d| !d.is_empty()) {
        Some(d) => Path::new(d).join("burrow-runc"),
        None => PathBuf::from(format!("/tmp/burrow-runc-{uid}")),
    }
}

/// A container as `create` recorded it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    pub id: String,
    pub pid: i32,
    /// Init's start time (clock ticks since boot): a reused pid is not it.
    pub start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339.
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// One container's directory under the root.
#[derive(Debug, Clone)]
pub struct Dir {
    pub id: String,
    pub path: PathBuf,
}

impl Dir {
    pub fn new(root: &Path, id: &str) -> Result<Dir> {
        let ok = !id.is_empty()
            && !id.starts_with('.')
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.+".contains(c));
        if !ok {
            return Err(StateError::BadId(id.to_string()));
        }
        Ok(Dir {
            id: id.to_string(),
            path: root.join(id),
        })
    }

    pub fn fifo(&self) -> PathBuf {
        self.path.join(FIFO)
    }

    /// Make the directory; an existing one is another container.
    pub fn make(&self) -> Result<()> {
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| StateError::Io {
                what: "creating",
                path: parent.to_path_buf(),
                source,
            })?;
        }
        match std::fs::create_dir(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(StateError::Exists(self.id.clone()))
            }
            Err(source) => Err(StateError::Io {
                what: "creating",
                path: self.path.clone(),
                source,
            }),
        }
    }

    pub fn save(&self, s: &Saved) -> Result<()> {
        let tmp = self.path.join(".state.json.tmp");
        let bytes = serde_json::to_vec(s).expect("state serializes");
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, self.path.join(STATE)))
            .map_err(|source| StateError::Io {
                what: "writing",
                path: self.path.join(STATE),
                source,
            })
    }

    /// The recorded container; a directory without a state file is one
    /// whose `create` has not finished (or failed): missing too.
    pub fn load(&self) -> Result<Saved> {
        let path = self.path.join(STATE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StateError::Missing(self.id.clone()))
            }
            Err(source) => {
                return Err(StateError::Io {
                    what: "reading",
                    path,
                    source,
                })
            }
        };
        serde_json::from_slice(&bytes).map_err(|e| StateError::Io {
            what: "parsing",
            path,
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })
    }

    pub fn status(&self, s: &Saved) -> Status {
        if !alive(s) {
            Status::Stopped
        } else if self.fifo().exists() {
            Status::Created
        } else if self.path.join(PAUSED).exists() {
            Status::Paused
        } else {
            Status::Running
        }
    }

    pub fn set_paused(&self, paused: bool) -> Result<()> {
        let p = self.path.join(PAUSED);
        let r = if paused {
            std::fs::write(&p, b"")
        } else {
            match std::fs::remove_file(&p) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                r => r,
            }
        };
        r.map_err(|source| StateError::Io {
            what: "writing",
            path: p,
            source,
        })
    }

    pub fn remove(&self) -> Result<()> {
        match std::fs::remove_dir_all(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StateError::Io {
                what: "removing",
                path: self.path.clone(),
                source: e,
            }),
            _ => Ok(()),
        }
    }
}

/// Whether the recorded init still runs (same pid, same start time, not a
/// zombie waiting for its reaper).
pub fn alive(s: &Saved) -> bool {
    if s.pid <= 0 || process::start_time(Path::new("/proc"), s.pid) != Some(s.start_time) {
        return false;
    }
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", s.pid)).unwrap_or_default();
    // Field 3, after the command name in parentheses.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z") | Some("X") | None)
}

/// Every container id under `root`.
pub fn list(root: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(root)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().join(STATE).exists())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// runc's `state` JSON: the OCI state (ociVersion, id, status, pid,
/// bundle, annotations) plus `rootfs`, `created` and `owner`.
pub fn state_json(s: &Saved, status: Status) -> serde_json::Value {
    serde_json::json!({
        "ociVersion": "1.0.2",
        "id": s.id,
        "pid": if status == Status::Stopped { 0 } else { s.pid },
        "status": status.as_str(),
        "bundle": s.bundle,
        "rootfs": s.rootfs,
        "created": s.created,
        "owner": s.owner,
        "annotations": s.annotations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_roots_and_status() {
        assert!(Dir::new(Path::new("/r"), "abc-1.2_x+y").is_ok());
        for bad in ["", ".", "..", "a/b", "a b"] {
            assert!(Dir::new(Path::new("/r"), bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            default_root(Some("/run/user/7"), 7),
            Path::new("/run/user/7/burrow-runc")
        );
        assert_eq!(default_root(None, 7), Path::new("/tmp/burrow-runc-7"));

        let tmp = std::env::temp_dir().join(format!("burrow-runc-state-{}", std::process::id()));
        let d = Dir::new(&tmp, "c1").unwrap();
        d.make().unwrap();
        assert!(matches!(d.make(), Err(StateError::Exists(_))));
        assert!(matches!(d.load(), Err(StateError::Missing(_))));
        let me = std::process::id() as i32;
        let s = Saved {
            id: "c1".into(),
            pid: me,
            start_time: process::start_time(Path::new("/proc"), me).unwrap(),
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: "2026-01-01T00:00:00Z".into(),
            owner: String::new(),
            annotations: BTreeMap::new(),
        };
        d.save(&s).unwrap();
        assert_eq!(list(&tmp), ["c1"]);
        assert_eq!(d.status(&d.load().unwrap()), Status::Running);
        std::fs::write(d.fifo(), b"").unwrap();
        assert_eq!(d.status(&s), Status::Created);
        let gone = Saved {
            start_time: s.start_time + 1,
            ..s.clone()
        };
        assert_eq!(d.status(&gone), Status::Stopped);
        let j = state_json(&gone, Status::Stopped);
        assert_eq!(j["pid"], 0);
        assert_eq!(j["status"], "stopped");
        d.remove().unwrap();
        assert!(matches!(
            Dir::new(&tmp, "c1").unwrap().load(),
            Err(StateError::Missing(_))
        ));
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
