//! The engine: one function per operation for every front end (the CLI, the
//! API service), each validating its own typed request and reporting
//! progress and notices to a `Sink` instead of a terminal.
//!
//! It sits above `container/`, `image/`, `network/`, `build/` and
//! `monitor/`, and below `cli/` and `api/`: a front end parses its input into
//! a request, calls the engine, and renders what comes back, so two front
//! ends cannot make different containers from the same request.

pub mod archives;
pub mod attach;
pub mod build;
pub mod bundle;
pub mod catalog;
pub mod changes;
pub mod containers;
pub mod copy;
pub mod create;
pub mod events;
pub mod filters;
pub mod images;
pub mod logs;
pub mod networks;
pub mod run;
mod stats;
pub mod system;
pub mod volumes;

use std::path::PathBuf;

use crate::container::{cgroup::SystemdScopes, ContainerError};
use crate::image::registry::credentials::AuthFiles;
use crate::linux::userns::IdMapping;
use crate::sandbox::RootfsChoice;
use crate::store::{Store, StoreError};

/// The settings a front end read from its environment, passed down once.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `BURROW_ROOTFS`.
    pub rootfs: RootfsChoice,
    /// Whether burrow may ask the user's systemd for a scope.
    pub systemd: SystemdScopes,
    /// The `PATH` network helpers (pasta, slirp4netns) are looked up in.
    pub helper_path: String,
    /// The keeper's idle period (`BURROW_KEEPER_IDLE`), None when the
    /// default network is not to go through a keeper (`BURROW_KEEPER=off`).
    pub keeper: Option<std::time::Duration>,
    /// Where registry credentials are read.
    pub auth_files: AuthFiles,
}

impl Settings {
    /// What a container's start may use for its network.
    pub fn network_access(&self) -> crate::network::Access {
        crate::network::Access {
            helper_path: self.helper_path.clone(),
            keeper: self.keeper,
        }
    }
}

/// An open store and the caller's id mapping, with the front end's settings.
pub struct Engine {
    pub store: Store,
    pub mapping: IdMapping,
    pub settings: Settings,
}

/// What went wrong, by the kind a front end maps to its own answer: an exit
/// code for the CLI, an HTTP status for the API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request the engine refuses as given (CLI 125, HTTP 400): why,
    /// as the check that refused it says it (its own error type, or text).
    #[error("{0}")]
    Invalid(Box<dyn std::error::Error + Send + Sync>),
    /// A named object that does not exist (CLI 1, HTTP 404): the message
    /// is Docker's ("No such container: x"), from the lookup's own error
    /// when it has one, or text.
    #[error("{0}")]
    NotFound(Box<dyn std::error::Error + Send + Sync>),
    /// The request conflicts with the state of things (CLI 125, HTTP 409):
    /// the refusing check's own error, or text.
    #[error("{0}")]
    Conflict(Box<dyn std::error::Error + Send + Sync>),
    /// A pull that failed; `not_found` when the registry has no such
    /// image (HTTP 404; the CLI's 125, as Docker's `run` gives).
    /// Its message is every cause in turn, each once, after ": ".
    #[error("{}", causes(.cause))]
    Pull {
        not_found: bool,
        cause: images::PullFailure,
    },
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Store(StoreError),
    /// A build that failed (the CLI's 1, as `docker build`'s).
    #[error(transparent)]
    Build(#[from] build::Failed),
    /// A file operation that failed: what was done, to which path.
    #[error("{what} {}: {source}", .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file operation users see in the system's words alone (a scratch
    /// file of the engine's, a container's log): what was done and where
    /// are kept for a caller that wants them.
    #[error("{source}")]
    File {
        what: &'static str,
        path: Option<PathBuf>,
        #[source]
        source: std::io::Error,
    },
    /// The build's RUN steps could not get /dev/null as their stdin.
    #[error("redirecting stdin: {0}")]
    Stdin(#[source] nix::Error),
    /// A record that did not become JSON.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Changes(#[from] crate::image::changes::ChangesError),
    #[error(transparent)]
    Commit(#[from] crate::container::commit::CommitError),
    #[error(transparent)]
    Archive(#[from] crate::image::archive::ArchiveError),
    #[error(transparent)]
    Import(#[from] crate::image::import::ImportError),
    #[error("pushing {reference}")]
    Push {
        reference: String,
        #[source]
        source: crate::image::push::PushError,
    },
    #[error("removing volume {name}")]
    RemoveVolume {
        name: String,
        #[source]
        source: crate::container::volumes::VolumeError,
    },
    /// An `--rm` container's anonymous volumes that were not removed.
    #[error("removing the volumes of container {container}")]
    RemoveVolumes {
        container: String,
        #[source]
        source: ContainerError,
    },
    /// A bundle's root filesystem that was not copied from its image.
    #[error("copying the image into {}", .rootfs.display())]
    CopyImage {
        rootfs: PathBuf,
        #[source]
        source: crate::linux::userns::UsernsError,
    },
    /// A user network's files.
    #[error(transparent)]
    Network(crate::network::user::UserNetworkError),
    /// A running container's network change.
    #[error(transparent)]
    LiveNetwork(crate::container::keeper::LiveNetworkError),
    /// The attached client that started the container says why it did not
    /// start, in its words (it sends them over the rendezvous socket).
    #[error("{0}")]
    AttachedStart(String),
    #[error("the attached client went away while the container started")]
    AttachedGone,
    /// `top`'s run of `ps`.
    #[error(transparent)]
    Top(#[from] containers::TopError),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NoSuchImage(_) => Error::not_found(e),
            e => Error::Store(e),
        }
    }
}

/// `e` and each of its sources in turn, joined with ": ", each cause once
/// (a wrapper whose message ends with its source's says it already).
fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    crate::util::message::one_line_of(e)
}

/// A refused request's reason when a check's own error needs saying what
/// it was about ("invalid tag \"x\": ..."): kept whole, for a front end
/// that wants more than the message.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct Refused {
    pub what: String,
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// The kind of an error, for front ends to map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Invalid,
    NotFound,
    Conflict,
    /// The container could not run its program (Docker's 126/127).
    CannotRun(i32),
    Internal,
}

impl Error {
    pub fn invalid(why: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error::Invalid(why.into())
    }

    pub fn not_found(why: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error::NotFound(why.into())
    }

    pub fn conflict(why: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error::Conflict(why.into())
    }

    /// A refusal of `what`, for the reason `why` (its own error).
    pub fn refused(
        what: impl Into<String>,
        why: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Invalid(Box::new(Refused {
            what: what.into(),
            source: why.into(),
        }))
    }

    pub fn kind(&self) -> Kind {
        match self {
            Error::Invalid(_) => Kind::Invalid,
            Error::NotFound(_) => Kind::NotFound,
            Error::Conflict(_) => Kind::Conflict,
            Error::Pull {
                not_found: true, ..
            } => Kind::NotFound,
            Error::Pull { .. } => Kind::Internal,
            Error::Container(c) => container_kind(c),
            Error::Store(StoreError::NoSuchImage(_)) => Kind::NotFound,
            Error::Store(StoreError::Ambiguous(_)) => Kind::Invalid,
            Error::Store(_) => Kind::Internal,
            Error::Build(_)
            | Error::Io { .. }
            | Error::File { .. }
            | Error::Stdin(_)
            | Error::Json(_)
            | Error::Changes(_)
            | Error::Commit(_)
            | Error::Archive(_)
            | Error::Import(_)
            | Error::Push { .. }
            | Error::RemoveVolume { .. }
            | Error::RemoveVolumes { .. }
            | Error::CopyImage { .. }
            | Error::Network(_)
            | Error::LiveNetwork(_)
            | Error::AttachedStart(_)
            | Error::AttachedGone
            | Error::Top(_) => Kind::Internal,
        }
    }

    /// The exit code Docker's CLI gives this failure.
    /// Exit 1 is for a named object that does not exist (`rm x`); an
    /// image that cannot be had for a container is burrow's failure (125),
    /// as in Docker's `run`.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::NotFound(_) => crate::exit::MISSING,
            Error::Container(c) => c.exit_code(),
            _ => crate::exit::BURROW,
        }
    }
}

fn container_kind(c: &ContainerError) -> Kind {
    match c {
        ContainerError::NoSuch(_) => Kind::NotFound,
        ContainerError::Store(StoreError::NoSuchImage(_)) => Kind::NotFound,
        ContainerError::Ambiguous(_) | ContainerError::BadName(_) | ContainerError::NoCommand => {
            Kind::Invalid
        }
        ContainerError::NameInUse { .. }
        | ContainerError::Running(_)
        | ContainerError::Restarting(_)
        | ContainerError::AlreadyRunning(_)
        | ContainerError::NotRunning(_) => Kind::Conflict,
        ContainerError::Start(e) if e.code() != crate::exit::BURROW => Kind::CannotRun(e.code()),
        _ => Kind::Internal,
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Something an operation has to say on its way: the CLI prints it, the
/// API streams or collects it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Said once per boot and `reason` (markers named `name` in the
    /// runtime directory); a front end with no terminal may keep it.
    Notice {
        name: &'static str,
        reason: String,
        line: String,
    },
    /// A warning about the request (Docker's `Warnings`).
    Warning(String),
    /// A line of progress (a pull: "Unable to find image ... locally").
    Progress(String),
    /// A line for the user as it is, not about the request: how the store
    /// gives containers their root filesystem, what went wrong after a
    /// container ended.
    Note(String),
    /// A step of a pull, in Docker's terms.
    Pull(crate::image::progress::PullEvent),
    /// A step of a push.
    Push(crate::image::progress::PushEvent),
    /// A line of a build, or its end.
    Build(crate::build::BuildEvent),
}

/// Where an operation's events go.
pub trait Sink {
    fn event(&mut self, event: Event);
}

/// A sink that keeps every event, for front ends that answer at the end.
#[derive(Debug, Default)]
pub struct Collect(pub Vec<Event>);

impl Sink for Collect {
    fn event(&mut self, event: Event) {
        self.0.push(event);
    }
}

/// Whether a notice `name` for `reason` is news this boot: the marker
/// `dir/NAME.KEY` (KEY from the boot id, /proc/sys/kernel/random/boot_id
/// in random(4), and the reason) is made with O_EXCL, so of front ends
/// racing only one says it. Runtime directories last a login session or a
/// boot, but a fallback in a `/tmp` on disk may outlive a reboot, and a new
/// reason is news.
pub fn first_time(dir: &std::path::Path, name: &str, reason: &str) -> bool {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let key = crate::store::sha256_hex(format!("{}\n{reason}", boot.trim()).as_bytes());
    let marker = dir.join(format!("{name}.{}", &key[..12]));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&marker)
        .is_ok()
}

/// Said once per boot by `pull`, `run`, `create` and `build` when the user
/// has no subordinate range: what that means for files, and that
/// containers fake changes of ids and owners (`--security-opt fake-ids`).
pub fn no_range_notice(engine: &Engine, sink: &mut dyn Sink) {
    if engine.mapping.is_range() {
        return;
    }
    sink.event(Event::Notice {
        name: "no-range-notice",
        reason: "single-id mapping".into(),
        line: format!(
            "note: {}; containers have one user, root (0), whose changes of ids and owners succeed without effect (--security-opt fake-ids=off turns that off)",
            crate::image::layer::no_range_note("images and containers")
        ),
    });
}

impl Engine {
    pub fn new(store: Store, mapping: IdMapping, settings: Settings) -> Self {
        Engine {
            store,
            mapping,
            settings,
        }
    }

    /// Reclaim what killed commands left (staging, name links, pid files)
    /// and close runtime directories an older burrow left open: every
    /// command does this first, whatever it is.
    pub fn reclaim(&self) {
        self.store.close_runtime_dirs();
        self.store.remove_abandoned_staging(&self.mapping);
        crate::container::check::reclaim(&self.store, &self.mapping);
    }
}
