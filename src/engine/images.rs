//! Getting images: the pull policy of `create`/`run`, and `pull` itself.

use super::{Engine, Error, Event, Result, Sink};
use crate::image::catalog;
use crate::image::import::import_builtin_hello;
use crate::image::manifest::Platform;
use crate::image::pull::{self, Progress, PullOptions, Pulled};
use crate::image::reference::Reference;
use crate::image::registry::ClientOptions;
use crate::store::StoreError;

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
    pub progress: Progress,
}

/// `os/arch[/variant]`, or the host's.
pub fn platform(flag: Option<&str>) -> Result<Platform> {
    match flag {
        None => Ok(Platform::host()),
        Some(p) => Platform::parse(p).map_err(|e| Error::invalid(e.to_string())),
    }
}

/// Pull an image into the store.
pub fn pull(engine: &Engine, req: &PullRequest, sink: &mut dyn Sink) -> Result<Pulled> {
    let opts = PullOptions {
        platform: platform(req.platform.as_deref())?,
        client: req.registry.clone(),
        auth_files: engine.settings.auth_files.clone(),
        progress: req.progress,
        to_stderr: true,
    };
    let pulled = pull::pull(&engine.store, &engine.mapping, &req.reference, &opts)
        .map_err(|e| pull_error(&req.reference, e))?;
    super::no_range_notice(engine, sink);
    Ok(pulled)
}

/// A failed pull keeps its causes, and whether the registry said the image
/// does not exist (clients pull only on "No such image").
fn pull_error(reference: &Reference, e: pull::PullError) -> Error {
    Error::Pull {
        not_found: e.is_not_found(),
        source: anyhow::Error::new(e).context(format!("pulling {}", reference.short())),
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
                source: anyhow::anyhow!(
                    "{}: image not known, and --pull=never forbids pulling it",
                    reference.short()
                ),
            })
        }
        (PullPolicy::Missing, None) => {
            sink.event(Event::Progress(format!(
                "Unable to find image '{}' locally",
                reference.short()
            )));
        }
        (PullPolicy::Always, _) => {}
    }
    if reference.to_string() == "docker.io/library/hello-world:latest" {
        sink.event(Event::Progress(
            "Using the hello-world image built into burrow".into(),
        ));
        let imported = import_builtin_hello(&engine.store, &engine.mapping)
            .map_err(|e| Error::Other(e.into()))?;
        return Ok(imported.id);
    }
    Ok(pull(engine, req, sink)?.id)
}
