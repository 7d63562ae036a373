//! What a container operation can fail with, and Docker's exit code for it.

use std::path::PathBuf;

use super::{record, volumes};
use crate::exit;
use crate::sandbox::StartError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("No such container: {0}")]
    NoSuch(String),
    #[error("container id prefix {0:?} is ambiguous")]
    Ambiguous(String),
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameInUse { name: String, id: String },
    #[error("invalid container name {0:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    BadName(String),
    #[error("No command specified")]
    NoCommand,
    #[error("You cannot remove a running container {0}. Stop the container before attempting removal or force remove")]
    Running(String),
    #[error("You cannot remove a restarting container {0}. Stop the container before attempting removal or force remove")]
    Restarting(String),
    #[error("container {0} is already running")]
    AlreadyRunning(String),
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("removing {path:?}: {source}")]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("removing {path:?}: {source}")]
    RemoveTree {
        path: PathBuf,
        #[source]
        source: Box<StoreError>,
    },
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Volume(#[from] volumes::VolumeError),
    #[error(
        "container {0} has no filesystem of its own yet (it never started): nothing to commit"
    )]
    NeverStarted(String),
    #[error("container {0} has an image without layers: nothing to mount for export")]
    NoLayers(String),
    /// What the export's child said.
    #[error("exporting: {0}")]
    Exporting(String),
    #[error(transparent)]
    Userns(#[from] crate::linux::userns::UsernsError),
    #[error("{}: not a file name", .0.display())]
    NotAFileName(PathBuf),
    #[error("{step} {}: {source}", .path.display())]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("creating {path:?}: {source}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("signalling {name}: {source}")]
    Signal {
        name: String,
        #[source]
        source: nix::Error,
    },
    #[error("container {0} is already paused")]
    AlreadyPaused(String),
    #[error("container {0} is not paused")]
    NotPaused(String),
    #[error("pausing {name}: {source}")]
    Pause {
        name: String,
        #[source]
        source: crate::linux::cgroup::CgroupError,
    },
    #[error("pausing {0}: the cgroup did not report frozen within 10s")]
    NotFrozen(String),
    #[error("Renaming a container with the same name as its current name")]
    SameName,
    #[error("reserving name {name:?}: {source}")]
    Reserve {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("recording the exit in {file}: {0}", file = record::EXIT_FILE)]
    RecordExit(#[source] std::io::Error),
    #[error("reading the image's /etc/passwd and /etc/group: {0}")]
    ImageUsers(super::keep_id::ImageFilesError),
    #[error("a pipe for the step's output: {0}")]
    OutputPipe(#[source] nix::Error),
    #[error("a pipe for the step's output: {0}")]
    OutputPipeCopy(#[source] std::io::Error),
    #[error(transparent)]
    Copy(#[from] super::copy::CopyError),
    /// A foreground run's log (its file, or the pipes that feed it).
    #[error("the container's log: {source}")]
    Log {
        what: &'static str,
        path: Option<PathBuf>,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    LogConfig(#[from] LogError),
}

/// A logging flag Docker would refuse, in Docker's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    #[error("logger: no log driver named '{0}' is registered")]
    NoDriver(String),
    #[error("invalid logging opts for driver {0}")]
    OptsForNone(String),
    #[error("invalid log opt {0:?}: KEY=VALUE")]
    NotKeyValue(String),
    #[error("unknown log opt '{0}' for {1} log driver")]
    UnknownOpt(String, String),
    #[error("log opt '{0}' is not supported by burrow (max-size and max-file are)")]
    Unsupported(String),
    #[error("invalid max-size {0:?}: a size like 10m")]
    BadSize(String),
    #[error("max-file cannot be less than 1")]
    BadFileCount,
    #[error("invalid max-file {0:?}: a number")]
    BadFileNumber(String),
}

impl ContainerError {
    /// The exit code Docker uses for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            ContainerError::Start(e) => e.code(),
            _ => exit::BURROW,
        }
    }
}
