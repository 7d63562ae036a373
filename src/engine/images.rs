//! Moving images: the pull policy of `create`/`run` and `build`, `pull`,
//! `push`, and their events as Docker's JSON progress messages.

use serde_json::{json, Value};

use super::{Engine, Error, Event, Result, Sink};
use crate::build::BuildEvent;
use crate::image::catalog;
use crate::image::import::import_builtin_hello;
use crate::image::manifest::Platform;
use crate::image::progress::{self, PullEvent, PushEvent};
use crate::image::pull::{self, Progress, PullOptions, Pulled};
use crate::image::push::{self, PushError, PushOptions, Pushed};
use crate::image::reference::Reference;
use crate::image::registry::ClientOptions;
use crate::store::{self, StoreError};

/// When `create` pulls its image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    /// When the image is not in the store.
    Missing,
    /// Every time.
    Always,
    /// Never: fail when the image is not in the store.
    Never,
}

impl std::str::FromStr for PullPolicy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "missing" => Ok(PullPolicy::Missing),
            "always" => Ok(PullPolicy::Always),
            "never" => Ok(PullPolicy::Never),
            _ => Err(Error::invalid(format!(
                "invalid pull policy {s:?}: missing, always or never"
            ))),
        }
    }
}

/// What to pull and how.
#[derive(Debug, Clone)]
pub struct PullRequest {
    pub reference: Reference,
    /// `os/arch[/variant]`; the host's when not given.
    pub platform: Option<String>,
    pub registry: ClientOptions,
    /// `Quiet` sends no `Event::Pull`.
    pub progress: Progress,
}

/// `os/arch[/variant]`, or the host's.
pub fn platform(flag: Option<&str>) -> Result<Platform> {
    match flag {
        None => Ok(Platform::host()),
        Some(p) => Platform::parse(p).map_err(Error::invalid),
    }
}

/// Pull an image into the store, each step an `Event::Pull`.
pub fn pull(engine: &Engine, req: &PullRequest, sink: &mut dyn Sink) -> Result<Pulled> {
    let opts = PullOptions {
        platform: platform(req.platform.as_deref())?,
        client: req.registry.clone(),
        auth_files: engine.settings.auth_files.clone(),
    };
    let quiet = req.progress == Progress::Quiet;
    let mut report = |e: PullEvent| {
        if !quiet {
            sink.event(Event::Pull(e));
        }
    };
    let pulled = pull::pull(
        &engine.store,
        &engine.mapping,
        &req.reference,
        &opts,
        &mut report,
    )
    .map_err(|e| pull_error(&req.reference, e))?;
    let name = req.reference.short();
    super::events::image(engine, "pull", &name, &name);
    super::no_range_notice(engine, sink);
    Ok(pulled)
}

/// Why an image was not pulled.
#[derive(Debug, thiserror::Error)]
pub enum PullFailure {
    #[error("pulling {reference}")]
    Pull {
        reference: String,
        #[source]
        source: pull::PullError,
    },
    /// The image is not in the store, and the policy says not to pull.
    #[error("{0}: image not known, and --pull=never forbids pulling it")]
    Never(String),
}

/// A failed pull keeps its causes, and whether the registry said the image
/// does not exist (clients pull only on "No such image").
fn pull_error(reference: &Reference, e: pull::PullError) -> Error {
    Error::Pull {
        not_found: e.is_not_found(),
        cause: PullFailure::Pull {
            reference: reference.short(),
            source: e,
        },
    }
}

/// The image's id, pulled first when `policy` says so (Docker's "Unable to
/// find image ... locally"). `hello-world` is built into burrow: it needs no
/// network, so the first command a new user types works anywhere.
pub fn find_or_pull(
    engine: &Engine,
    name: &str,
    policy: PullPolicy,
    req: &PullRequest,
    sink: &mut dyn Sink,
) -> Result<String> {
    obtain(engine, name, policy, req, sink, true)
}

/// [`find_or_pull`]; `announce` says "Unable to find image" before a pull
/// of a missing image (`build` pulls without it, as Docker's does).
pub(super) fn obtain(
    engine: &Engine,
    name: &str,
    policy: PullPolicy,
    req: &PullRequest,
    sink: &mut dyn Sink,
    announce: bool,
) -> Result<String> {
    let local = match catalog::resolve(&engine.store, name) {
        Ok(id) => Some(id),
        Err(StoreError::NoSuchImage(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let reference = &req.reference;
    match (policy, local) {
        (PullPolicy::Missing | PullPolicy::Never, Some(id)) => return Ok(id),
        (PullPolicy::Never, None) => {
            return Err(Error::Pull {
                not_found: true,
                cause: PullFailure::Never(reference.short()),
            })
        }
        (PullPolicy::Missing, None) if announce => {
            sink.event(Event::Progress(format!(
                "Unable to find image '{}' locally",
                reference.short()
            )));
        }
        (PullPolicy::Missing, None) | (PullPolicy::Always, _) => {}
    }
    if reference.to_string() == "docker.io/library/hello-world:latest" {
        sink.event(Event::Progress(
            "Using the hello-world image built into burrow".into(),
        ));
        let imported = import_builtin_hello(&engine.store, &engine.mapping)?;
        return Ok(imported.id);
    }
    Ok(pull(engine, req, sink)?.id)
}

/// What to push and where.
#[derive(Debug, Clone)]
pub struct PushRequest {
    /// The local image: a name or an id.
    pub image: String,
    /// Where it goes; it needs a tag.
    pub destination: Reference,
    pub registry: ClientOptions,
}

/// Push an image to a registry, each step an `Event::Push`.
pub fn push(engine: &Engine, req: &PushRequest, sink: &mut dyn Sink) -> Result<Pushed> {
    let dest = &req.destination;
    let id = catalog::resolve(&engine.store, &req.image)?;
    let opts = PushOptions {
        client: req.registry.clone(),
        auth_files: engine.settings.auth_files.clone(),
    };
    let mut report = |e: PushEvent| sink.event(Event::Push(e));
    push::push(&engine.store, &id, dest, &opts, &mut report).map_err(|e| match e {
        e @ PushError::NoTag(_) => Error::refused(format!("pushing {}", dest.short()), e),
        source => Error::Push {
            reference: dest.short(),
            source,
        },
    })
}

/// The name a new image is to get (a commit's, an import's), parsed; none
/// leaves it untagged.
pub fn new_name(name: Option<&str>) -> Result<Option<Reference>> {
    name.map(Reference::parse)
        .transpose()
        .map_err(Error::invalid)
}

/// What to import a root filesystem tarball as.
#[derive(Debug, Clone, Default)]
pub struct ImportRequest {
    /// Dockerfile instructions for the image's config (`-c`).
    pub changes: Vec<String>,
    /// The new image's name; none leaves it untagged.
    pub reference: Option<String>,
    /// The history entry's comment.
    pub comment: String,
    /// The input's size, when known (a progress bar on a terminal).
    pub total_bytes: Option<u64>,
}

/// A tarball of a root filesystem (plain or compressed) read from `input`
/// as a one-layer image.
pub fn import(
    engine: &Engine,
    input: impl std::io::Read,
    req: ImportRequest,
) -> Result<crate::image::import::Imported> {
    let reference = new_name(req.reference.as_deref())?;
    let opts = crate::image::import::ImportOptions {
        changes: req.changes,
        reference,
        comment: req.comment,
        total_bytes: req.total_bytes,
        ..Default::default()
    };
    Ok(crate::image::import::import_tar(
        &engine.store,
        &engine.mapping,
        input,
        &opts,
    )?)
}

/// An event as the JSON records Docker's API streams for it (`POST
/// /images/create`, `/images/{name}/push`, `/build`): none, one, or two
/// (a push's digest, a build's end).
pub fn json_messages(event: &Event) -> Vec<Value> {
    match event {
        Event::Notice { .. } | Event::Note(_) => Vec::new(),
        Event::Warning(w) => vec![json!({ "stream": format!("WARNING: {w}\n") })],
        Event::Progress(line) => vec![json!({ "status": line })],
        Event::Pull(e) => vec![pull_message(e)],
        Event::Push(e) => push_messages(e),
        Event::Build(BuildEvent::Step(line) | BuildEvent::Note(line)) => {
            vec![json!({ "stream": format!("{line}\n") })]
        }
        Event::Build(BuildEvent::Output(text)) => vec![json!({ "stream": text })],
        Event::Build(BuildEvent::Built(id)) => vec![
            json!({ "aux": { "ID": format!("sha256:{}", store::hex_of(id)) } }),
            json!({ "stream": format!("Successfully built {}\n", store::short_hex(id)) }),
        ],
    }
}

/// A failure in the middle of a stream, as Docker sends it.
pub fn json_error(message: &str) -> Value {
    json!({ "errorDetail": { "message": message }, "error": message })
}

/// A status record: with the layer's id and its progress when it has them.
fn status(text: String, id: Option<&str>, bytes: Option<(u64, u64)>) -> Value {
    let mut v = json!({ "status": text });
    if let Some(id) = id {
        v["id"] = id.into();
        v["progressDetail"] = json!({});
    }
    if let Some((current, total)) = bytes {
        v["progressDetail"] = json!({ "current": current, "total": total });
        v["progress"] = progress::progress_text(current, total).into();
    }
    v
}

fn pull_message(e: &PullEvent) -> Value {
    match e {
        // The tag stands where a layer's id would.
        PullEvent::Pulling { tag, .. } => json!({ "status": e.status(), "id": tag }),
        PullEvent::Downloading { current, total, .. } => {
            status(e.status(), e.id(), Some((*current, *total)))
        }
        _ => status(e.status(), e.id(), None),
    }
}

fn push_messages(e: &PushEvent) -> Vec<Value> {
    match e {
        PushEvent::Pushing { current, total, .. } => {
            vec![status(e.status(), e.id(), Some((*current, *total)))]
        }
        PushEvent::Digest { tag, digest, size } => vec![
            status(e.status(), None, None),
            json!({
                "progressDetail": {},
                "aux": { "Tag": tag, "Digest": digest, "Size": size },
            }),
        ],
        _ => vec![status(e.status(), e.id(), None)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAYER: &str = "0123456789ab";

    #[test]
    fn a_failed_pull_says_every_cause() {
        let reference = Reference::parse("alpine").unwrap();
        let e = pull_error(&reference, pull::PullError::Layers("gone".into()));
        assert_eq!(e.kind(), super::super::Kind::Internal);
        assert_eq!(
            e.to_string(),
            "pulling alpine:latest: fetching layers: gone"
        );
        let never = Error::Pull {
            not_found: true,
            cause: PullFailure::Never("alpine:latest".into()),
        };
        assert_eq!(
            never.to_string(),
            "alpine:latest: image not known, and --pull=never forbids pulling it"
        );
    }

    #[test]
    fn pull_records_are_dockers() {
        let pulling = Event::Pull(PullEvent::Pulling {
            tag: "latest".into(),
            repository: "library/alpine".into(),
        });
        assert_eq!(
            json_messages(&pulling),
            [json!({"status": "Pulling from library/alpine", "id": "latest"})]
        );
        let fs = Event::Pull(PullEvent::PullingFsLayer {
            id: LAYER.into(),
            size: 10,
        });
        assert_eq!(
            json_messages(&fs),
            [json!({"status": "Pulling fs layer", "progressDetail": {}, "id": LAYER})]
        );
        let down = Event::Pull(PullEvent::Downloading {
            id: LAYER.into(),
            current: 1_000_000,
            total: 2_000_000,
        });
        let v = &json_messages(&down)[0];
        assert_eq!(v["status"], "Downloading");
        assert_eq!(v["id"], LAYER);
        assert_eq!(
            v["progressDetail"],
            json!({"current": 1_000_000, "total": 2_000_000})
        );
        assert_eq!(
            v["progress"],
            format!("[{}>{}]      1MB/2MB", "=".repeat(25), " ".repeat(25))
        );
        let exists = Event::Pull(PullEvent::AlreadyExists { id: LAYER.into() });
        assert_eq!(json_messages(&exists)[0]["status"], "Already exists");
        let complete = Event::Pull(PullEvent::PullComplete { id: LAYER.into() });
        assert_eq!(
            json_messages(&complete),
            [json!({"status": "Pull complete", "progressDetail": {}, "id": LAYER})]
        );
        let digest = Event::Pull(PullEvent::Digest("sha256:abc".into()));
        assert_eq!(
            json_messages(&digest),
            [json!({"status": "Digest: sha256:abc"})]
        );
        let done = Event::Pull(PullEvent::Done {
            reference: "alpine:latest".into(),
            downloaded: true,
        });
        assert_eq!(
            json_messages(&done),
            [json!({"status": "Status: Downloaded newer image for alpine:latest"})]
        );
    }

    #[test]
    fn push_records_are_dockers() {
        let mounted = Event::Push(PushEvent::MountedFrom {
            id: LAYER.into(),
            repository: "library/busybox".into(),
        });
        assert_eq!(
            json_messages(&mounted),
            [json!({"status": "Mounted from library/busybox", "progressDetail": {}, "id": LAYER})]
        );
        let digest = Event::Push(PushEvent::Digest {
            tag: "1".into(),
            digest: "sha256:abc".into(),
            size: 527,
        });
        assert_eq!(
            json_messages(&digest),
            [
                json!({"status": "1: digest: sha256:abc size: 527"}),
                json!({"progressDetail": {}, "aux": {"Tag": "1", "Digest": "sha256:abc", "Size": 527}}),
            ]
        );
    }

    #[test]
    fn build_records_are_dockers() {
        let step = Event::Build(BuildEvent::Step("STEP 1/2: FROM busybox".into()));
        assert_eq!(
            json_messages(&step),
            [json!({"stream": "STEP 1/2: FROM busybox\n"})]
        );
        let hex = "ab".repeat(32);
        let built = Event::Build(BuildEvent::Built(format!("sha256:{hex}")));
        assert_eq!(
            json_messages(&built),
            [
                json!({"aux": {"ID": format!("sha256:{hex}")}}),
                json!({"stream": format!("Successfully built {}\n", &hex[..12])}),
            ]
        );
        assert_eq!(
            json_error("boom"),
            json!({"errorDetail": {"message": "boom"}, "error": "boom"})
        );
    }
}
