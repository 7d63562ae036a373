//! How a pull or a push goes, as typed events in the terms of Docker's
//! progress messages (`id` is a layer's first 12 hex characters): the
//! operation reports them, a front end prints or streams them.

use serde::{Deserialize, Serialize};

/// A step of a pull.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PullEvent {
    /// `TAG: Pulling from REPOSITORY`.
    Pulling {
        tag: String,
        repository: String,
    },
    /// A foreign layer (Windows base layers): nothing to fetch.
    SkippingForeign {
        id: String,
    },
    /// The layer is in the store already.
    AlreadyExists {
        id: String,
    },
    /// The layer is queued for fetching; `size` is its blob's.
    PullingFsLayer {
        id: String,
        size: u64,
    },
    /// Bytes of the layer fetched so far; it is extracted as it arrives.
    Downloading {
        id: String,
        current: u64,
        total: u64,
    },
    PullComplete {
        id: String,
    },
    /// The digest the reference resolved to.
    Digest(String),
    /// The image was new (`Downloaded newer image for REF`) or not.
    Done {
        reference: String,
        downloaded: bool,
    },
}

impl PullEvent {
    /// The layer an event is about.
    pub fn id(&self) -> Option<&str> {
        match self {
            PullEvent::SkippingForeign { id }
            | PullEvent::AlreadyExists { id }
            | PullEvent::PullingFsLayer { id, .. }
            | PullEvent::Downloading { id, .. }
            | PullEvent::PullComplete { id } => Some(id),
            _ => None,
        }
    }

    /// Docker's status text, without the id.
    pub fn status(&self) -> String {
        match self {
            PullEvent::Pulling { repository, .. } => format!("Pulling from {repository}"),
            PullEvent::SkippingForeign { .. } => "Skipping foreign layer".into(),
            PullEvent::AlreadyExists { .. } => "Already exists".into(),
            PullEvent::PullingFsLayer { .. } => "Pulling fs layer".into(),
            PullEvent::Downloading { .. } => "Downloading".into(),
            PullEvent::PullComplete { .. } => "Pull complete".into(),
            PullEvent::Digest(d) => format!("Digest: {d}"),
            PullEvent::Done {
                reference,
                downloaded: true,
            } => format!("Status: Downloaded newer image for {reference}"),
            PullEvent::Done { reference, .. } => {
                format!("Status: Image is up to date for {reference}")
            }
        }
    }

    /// The line Docker's CLI prints without a terminal; None for byte
    /// counts, which only move a bar.
    pub fn line(&self) -> Option<String> {
        match self {
            PullEvent::Downloading { .. } => None,
            PullEvent::Pulling { tag, .. } => Some(format!("{tag}: {}", self.status())),
            e => Some(match e.id() {
                Some(id) => format!("{id}: {}", e.status()),
                None => e.status(),
            }),
        }
    }
}

/// A step of a push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PushEvent {
    /// `The push refers to repository [REPOSITORY]`.
    Repository(String),
    /// The layer is about to be looked for on the registry.
    Preparing {
        id: String,
    },
    /// Bytes of the layer uploaded so far.
    Pushing {
        id: String,
        current: u64,
        total: u64,
    },
    Pushed {
        id: String,
    },
    LayerAlreadyExists {
        id: String,
    },
    /// The registry had the layer in another repository and linked it.
    MountedFrom {
        id: String,
        repository: String,
    },
    SkippedForeign {
        id: String,
    },
    /// The manifest went up: `TAG: digest: DIGEST size: SIZE`.
    Digest {
        tag: String,
        digest: String,
        size: u64,
    },
}

impl PushEvent {
    pub fn id(&self) -> Option<&str> {
        match self {
            PushEvent::Preparing { id }
            | PushEvent::Pushing { id, .. }
            | PushEvent::Pushed { id }
            | PushEvent::LayerAlreadyExists { id }
            | PushEvent::MountedFrom { id, .. }
            | PushEvent::SkippedForeign { id } => Some(id),
            _ => None,
        }
    }

    /// Docker's status text, without the id.
    pub fn status(&self) -> String {
        match self {
            PushEvent::Repository(r) => format!("The push refers to repository [{r}]"),
            PushEvent::Preparing { .. } => "Preparing".into(),
            PushEvent::Pushing { .. } => "Pushing".into(),
            PushEvent::Pushed { .. } => "Pushed".into(),
            PushEvent::LayerAlreadyExists { .. } => "Layer already exists".into(),
            PushEvent::MountedFrom { repository, .. } => format!("Mounted from {repository}"),
            PushEvent::SkippedForeign { .. } => "Skipped foreign layer".into(),
            PushEvent::Digest { tag, digest, size } => {
                format!("{tag}: digest: {digest} size: {size}")
            }
        }
    }

    /// The line burrow prints for it; None for what only a progress
    /// display shows (`Preparing`, byte counts).
    pub fn line(&self) -> Option<String> {
        match self {
            PushEvent::Preparing { .. } | PushEvent::Pushing { .. } => None,
            e => Some(match e.id() {
                Some(id) => format!("{id}: {}", e.status()),
                None => e.status(),
            }),
        }
    }
}

/// Docker's progress text for `current` of `total` bytes, as its
/// jsonmessage writes it with no terminal: a 50-column bar and the sizes.
pub fn progress_text(current: u64, total: u64) -> String {
    if total == 0 {
        return format!("{:>8}", human_size(current));
    }
    let done = ((current as f64 / total as f64 * 100.0) as usize / 2).min(50);
    let bar = format!("[{}>{}] ", "=".repeat(done), " ".repeat(50 - done));
    if current > total {
        return format!("{bar}{:>8}", human_size(current));
    }
    format!("{bar}{:>8}/{}", human_size(current), human_size(total))
}

/// A size as Go's `units.HumanSize`: powers of 1000, four significant
/// digits (`%.4g`), trailing zeros dropped.
pub fn human_size(bytes: u64) -> String {
    crate::util::human::size_in(bytes, 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_go_units_writes_them() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(3_375_000), "3.375MB");
        assert_eq!(human_size(1_234_567), "1.235MB");
        assert_eq!(human_size(2_000), "2kB");
        assert_eq!(human_size(45_100_000), "45.1MB");
    }

    #[test]
    fn progress_as_jsonmessage_writes_it() {
        assert_eq!(
            progress_text(3_375_000, 3_375_000),
            format!("[{}>]  3.375MB/3.375MB", "=".repeat(50))
        );
        assert_eq!(
            progress_text(0, 1000),
            format!("[>{}]       0B/1kB", " ".repeat(50))
        );
    }

    #[test]
    fn lines_as_docker_prints_them() {
        let id = "0123456789ab".to_string();
        let p = PullEvent::Pulling {
            tag: "latest".into(),
            repository: "library/alpine".into(),
        };
        assert_eq!(p.line().unwrap(), "latest: Pulling from library/alpine");
        assert_eq!(
            PullEvent::PullComplete { id: id.clone() }.line().unwrap(),
            "0123456789ab: Pull complete"
        );
        let done = PullEvent::Done {
            reference: "alpine:latest".into(),
            downloaded: false,
        };
        assert_eq!(
            done.line().unwrap(),
            "Status: Image is up to date for alpine:latest"
        );
        let m = PushEvent::MountedFrom {
            id,
            repository: "first/box".into(),
        };
        assert_eq!(m.line().unwrap(), "0123456789ab: Mounted from first/box");
        assert_eq!(
            PushEvent::Pushing {
                id: "x".into(),
                current: 1,
                total: 2
            }
            .line(),
            None
        );
    }
}
