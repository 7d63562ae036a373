//! A build's errors: what failed in a step (`StepError`) and where in the
//! Dockerfile (`BuildError`).

use std::path::PathBuf;

use super::context::ContextError;
use super::dockerfile::ParseError;
use super::stage::StageError;
use crate::container::commit::CommitError as ContainerCommitError;
use crate::container::ContainerError;
use crate::image::change::{ChangeError, UnterminatedQuote};
use crate::image::commit::CommitError;
use crate::image::compress::CompressError;
use crate::store::StoreError;
use crate::util::human::DurationError;

/// A failed build: the step it failed at, when there is one.
#[derive(Debug, thiserror::Error)]
#[error("{}{source}", at.as_ref().map(|a| format!("building at {a}: ")).unwrap_or_default())]
pub struct BuildError {
    /// `STEP n (Dockerfile:LINE): INSTRUCTION`, or `Dockerfile:LINE`.
    pub at: Option<String>,
    pub source: Box<StepError>,
}

impl<E: Into<StepError>> From<E> for BuildError {
    fn from(e: E) -> Self {
        BuildError {
            at: None,
            source: Box::new(e.into()),
        }
    }
}

/// What went wrong in a step (or around the steps).
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Instruction(#[from] InstructionError),
    #[error(transparent)]
    Context(#[from] ContextError),
    #[error(transparent)]
    Stage(#[from] StageError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    ContainerCommit(#[from] ContainerCommitError),
    #[error(transparent)]
    Commit(#[from] CommitError),
    #[error(transparent)]
    Compress(#[from] CompressError),
    /// USER, EXPOSE, VOLUME or STOPSIGNAL, as `--change` reads them.
    #[error("{}", .0.reason)]
    Change(ChangeError),
    /// The caller could not give the image FROM or `COPY --from` names.
    #[error("{0}")]
    Host(super::HostError),
    #[error("reading {}/.dockerignore: {source}", .dir.display())]
    Ignore {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("target stage {0:?} could not be found")]
    NoTarget(String),
    #[error("no stage {0} before this one")]
    NoStage(usize),
    #[error("ONBUILD trigger {trigger:?}: {source}")]
    Trigger {
        trigger: String,
        source: Box<StepError>,
    },
    #[error("{0} is not supported")]
    Unsupported(String),
    #[error("SHELL requires the arguments to be in JSON form")]
    ShellForm,
    #[error("a heredoc needs the shell form")]
    HeredocExecForm,
    #[error("RUN needs a command")]
    NoCommand,
    #[error("there is nothing to run in a stage FROM scratch with no files")]
    NothingToRun,
    #[error("exit code {0}")]
    ExitCode(i32),
    #[error("{0} requires at least two arguments: SOURCE... DEST")]
    CopyArgs(String),
    #[error("--chmod={0}: expected an octal mode")]
    Chmod(String),
    #[error("ADD {0}: remote sources are not supported yet")]
    Remote(String),
    #[error("when using {0} with more than one source file, the destination must be a directory and end with a /")]
    ManySources(String),
}

/// What is wrong with an instruction's arguments, found when the build
/// reaches it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstructionError {
    #[error("missing '}}' in {0:?}")]
    MissingBrace(String),
    #[error("bad substitution: ${{{0}}}")]
    BadSubstitution(String),
    #[error(transparent)]
    Quote(#[from] UnterminatedQuote),
    #[error("missing arguments")]
    MissingArguments,
    #[error("needs KEY=VALUE or KEY VALUE")]
    NeedsKeyValue,
    #[error("expected KEY=VALUE, got {0:?}")]
    ExpectedKeyValue(String),
    #[error("ARG {0:?}: a name is needed")]
    ArgName(String),
    #[error("invalid stage name {0:?}")]
    StageName(String),
    #[error("FROM takes IMAGE [AS NAME]")]
    FromArgs,
    #[error("HEALTHCHECK NONE takes no arguments or flags")]
    HealthcheckNoneArgs,
    #[error("HEALTHCHECK CMD needs a command")]
    HealthcheckNoCommand,
    #[error("HEALTHCHECK needs CMD command or NONE")]
    HealthcheckKind,
    #[error("unknown type {0:?} in HEALTHCHECK (expected CMD or NONE)")]
    HealthcheckUnknown(String),
    #[error("--{flag}={value}: {source}")]
    Duration {
        flag: String,
        value: String,
        source: DurationError,
    },
    #[error("--{flag}={value}: cannot be less than 1ms")]
    DurationTooShort { flag: String, value: String },
    #[error("--retries={0}: cannot be negative")]
    NegativeRetries(String),
    #[error("--retries={0}: expected a whole number")]
    Retries(String),
    /// The trigger's own parse error, without the line (ONBUILD's is shown).
    #[error("{}", .0.msg)]
    Trigger(ParseError),
    #[error("chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")]
    OnbuildChain,
    #[error("{0} isn't allowed as an ONBUILD trigger")]
    OnbuildNotAllowed(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_as_docker_build_writes_them() {
        let e = BuildError {
            at: Some("STEP 2/2 (Dockerfile:2): RUN false".into()),
            source: Box::new(StepError::ExitCode(1)),
        };
        assert_eq!(
            e.to_string(),
            "building at STEP 2/2 (Dockerfile:2): RUN false: exit code 1"
        );
        let e = StepError::Trigger {
            trigger: "RUN x".into(),
            source: Box::new(InstructionError::OnbuildChain.into()),
        };
        assert_eq!(
            BuildError::from(e).to_string(),
            "ONBUILD trigger \"RUN x\": chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
        );
        let e = StepError::Io {
            path: "/ctx/a.tar".into(),
            source: std::io::Error::from_raw_os_error(2),
        };
        assert_eq!(
            e.to_string(),
            "/ctx/a.tar: No such file or directory (os error 2)"
        );
    }
}
