//! `build`: a Dockerfile executed step by step on top of the container and
//! image layers. A stage is an image id plus the config changes made since
//! it was committed; RUN runs a container of the stage and commits its
//! upper dir, COPY/ADD/WORKDIR change the stage's filesystem in a user
//! namespace (`stage.rs`) and commit that, and the other instructions only
//! change the config, written with the next layer or at the stage's end.
//! Every step that makes an image first looks for it in the cache.
//!
//! What the build says goes to its caller's `Host` as `BuildEvent`s.

pub mod cache;
pub mod context;
mod copy;
pub mod dockerfile;
mod error;
mod execute;
pub mod output;
mod plan;
pub mod stage;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use self::error::{BuildError, StepError};

use self::cache::Cache;
use self::context::{Ignore, Source};
use self::dockerfile::Dockerfile;
use self::execute::Builder;
use self::plan::Args;
use crate::container::cgroup::SystemdScopes;
use crate::image::reference::Reference;
use crate::linux::userns::IdMapping;
use crate::sandbox::RootfsChoice;
use crate::store::Store;

/// How RUN steps run their containers (the settings `run` reads).
#[derive(Debug, Clone)]
pub struct RunEnv {
    pub rootfs: RootfsChoice,
    pub scopes: SystemdScopes,
    pub helper_path: String,
    /// The network mode of RUN containers (`--network`).
    pub network: String,
}

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub context: PathBuf,
    pub tags: Vec<Reference>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub labels: Vec<(String, String)>,
    pub quiet: bool,
    /// RUN steps' output goes to the host as `BuildEvent::Output`, not to
    /// this process's stdout and stderr.
    pub forward_output: bool,
    pub run: RunEnv,
}

/// What a build says on its way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// A line of the build's account (`STEP 1/3: FROM x`, `--> 0123456789ab`,
    /// `COMMIT app`, `Successfully tagged app:latest`); none with `quiet`.
    Step(String),
    /// A warning or note on the side (`[Warning] ...`, `note: ...`).
    Note(String),
    /// What a RUN step wrote (stdout and stderr), whole lines with their
    /// newlines (with `forward_output`); none with `quiet`.
    Output(String),
    /// The build is done: the image id.
    Built(String),
}

/// Why the caller could not give an image: its own error, whose message
/// says every cause (the caller sits above the build and has its own types).
pub type HostError = Box<dyn std::error::Error + Send + Sync>;

/// What a build needs from its caller: the images FROM and `COPY --from`
/// name (pulled when the caller's policy says so), and somewhere to say
/// how it goes.
pub trait Host {
    fn image(&mut self, name: &str) -> Result<String, HostError>;
    fn event(&mut self, event: BuildEvent);
}

/// The image id of the build.
pub fn build<'a>(
    store: &'a Store,
    mapping: &'a IdMapping,
    opts: &'a BuildOptions,
    dockerfile: &Dockerfile,
    host: &'a mut dyn Host,
) -> Result<String, BuildError> {
    let ignore = Ignore::read(&opts.context).map_err(|source| StepError::Ignore {
        dir: opts.context.clone(),
        source,
    })?;
    let mut b = Builder {
        store,
        mapping,
        opts,
        cache: Cache::open(store, !opts.no_cache),
        host,
        source: Source {
            root: opts.context.clone(),
            ignore,
            what: "build context".into(),
        },
        escape: dockerfile.escape,
        done: Vec::new(),
        args: Args::new(&opts.build_args),
        shown: None,
    };
    let id = b.run(dockerfile)?;
    b.host.event(BuildEvent::Built(id.clone()));
    Ok(id)
}
