//! Building an image: the rules of `build` (tags, build args, labels, the
//! context, the Dockerfile, the network of RUN steps, the pull policy of
//! its base images), checked before anything runs; the build's lines go to
//! the sink as `Event::Build`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::images::{self, PullPolicy, PullRequest};
use super::{Engine, Error, Event, Result, Sink};
use crate::build::dockerfile::{self, Dockerfile};
use crate::build::{
    self as builder, BuildError, BuildEvent, BuildOptions, Host, HostError, RunEnv,
};
use crate::image::pull::Progress;
use crate::image::reference::Reference;
use crate::image::registry::ClientOptions;
use crate::sandbox::RootfsChoice;

/// Where the Dockerfile comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerfileSource {
    /// The context's Containerfile, else its Dockerfile.
    Default,
    /// A file (a relative path is the front end's: relative to the
    /// context for the API, to the working directory for the CLI).
    Path(PathBuf),
    /// Text the front end read itself (`-f -`), named `-` in messages.
    Text(String),
}

/// A build as a front end asks for it.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The directory COPY and ADD read from.
    pub context: PathBuf,
    pub dockerfile: DockerfileSource,
    /// Names for the image.
    pub tags: Vec<String>,
    /// `KEY=VALUE`.
    pub build_args: Vec<String>,
    /// `KEY=VALUE`.
    pub labels: Vec<String>,
    /// Build up to this stage.
    pub target: Option<String>,
    /// Pull the FROM images even when they are in the store.
    pub pull: bool,
    pub no_cache: bool,
    /// Only the image id: no step lines, no pull progress, no RUN output.
    pub quiet: bool,
    /// RUN steps' output as `Event::Build(BuildEvent::Output)`; else it
    /// goes to this process's stdout and stderr (the CLI's terminal).
    pub forward_output: bool,
    /// The network of RUN steps.
    pub network: String,
    pub registry: ClientOptions,
    /// How RUN containers get their root; the engine's setting when None.
    pub rootfs: Option<RootfsChoice>,
}

impl BuildRequest {
    /// A build of `context` with Docker's defaults for everything else.
    pub fn new(context: impl Into<PathBuf>) -> Self {
        BuildRequest {
            context: context.into(),
            dockerfile: DockerfileSource::Default,
            tags: Vec::new(),
            build_args: Vec::new(),
            labels: Vec::new(),
            target: None,
            pull: false,
            no_cache: false,
            quiet: false,
            forward_output: true,
            network: "private".into(),
            registry: ClientOptions::default(),
            rootfs: None,
        }
    }
}

/// A build that failed (the CLI's exit code 1, as `docker build`'s).
#[derive(Debug, thiserror::Error)]
pub enum Failed {
    /// Its Dockerfile (`-` when the front end read it) did not parse.
    #[error("{}: {source}", .file.display())]
    Parse {
        file: PathBuf,
        source: dockerfile::ParseError,
    },
    /// A step failed. Its message says the step and every cause already,
    /// so it is not repeated as a source.
    #[error("{0}")]
    Steps(BuildError),
}

/// A checked request, ready to run: made only by [`plan`].
#[derive(Debug, Clone)]
pub struct Plan {
    req: BuildRequest,
    tags: Vec<Reference>,
    build_args: BTreeMap<String, String>,
    labels: Vec<(String, String)>,
    dockerfile: Dockerfile,
    /// The network mode's own name.
    network: String,
}

/// Check a request without the store: every field, and the Dockerfile read
/// and parsed.
pub fn plan(req: &BuildRequest) -> Result<Plan> {
    let mut tags = Vec::new();
    for t in &req.tags {
        tags.push(
            Reference::parse(t).map_err(|e| Error::refused(format!("invalid tag {t:?}"), e))?,
        );
    }
    let mut build_args = BTreeMap::new();
    for kv in &req.build_args {
        match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                build_args.insert(k.to_string(), v.to_string());
            }
            _ => {
                return Err(Error::invalid(format!(
                    "--build-arg {kv:?}: expected KEY=VALUE"
                )))
            }
        }
    }
    let mut labels = Vec::new();
    for kv in &req.labels {
        match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => labels.push((k.to_string(), v.to_string())),
            _ => {
                return Err(Error::invalid(format!(
                    "--label {kv:?}: expected KEY=VALUE"
                )))
            }
        }
    }
    if !req.context.is_dir() {
        return Err(Error::invalid(format!(
            "the build context {} is not a directory",
            req.context.display()
        )));
    }
    let (file, text) = match &req.dockerfile {
        DockerfileSource::Text(text) => (PathBuf::from("-"), text.clone()),
        source => {
            let file = match source {
                DockerfileSource::Path(p) => p.clone(),
                _ => ["Containerfile", "Dockerfile"]
                    .iter()
                    .map(|n| req.context.join(n))
                    .find(|p| p.is_file())
                    .ok_or_else(|| {
                        Error::invalid(format!(
                            "no Containerfile or Dockerfile in {} (name one with -f)",
                            req.context.display()
                        ))
                    })?,
            };
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Error::refused(format!("reading {}", file.display()), e))?;
            (file, text)
        }
    };
    let dockerfile = dockerfile::parse(&text).map_err(|source| Failed::Parse { file, source })?;
    let network = crate::network::Mode::parse(&req.network)
        .map_err(Error::invalid)?
        .name()
        .to_string();
    Ok(Plan {
        req: req.clone(),
        tags,
        build_args,
        labels,
        dockerfile,
        network,
    })
}

impl Plan {
    /// The plan with RUN containers getting their root as `rootfs` (a
    /// front end that probed the store for it).
    pub fn with_rootfs(mut self, rootfs: RootfsChoice) -> Plan {
        self.req.rootfs = Some(rootfs);
        self
    }
}

/// Build the image a request describes; returns its id.
pub fn build(engine: &Engine, req: &BuildRequest, sink: &mut dyn Sink) -> Result<String> {
    run(engine, &plan(req)?, sink)
}

/// Run a checked build; returns the image id. Its lines, the pulls of its
/// base images and its end go to `sink`.
pub fn run(engine: &Engine, plan: &Plan, sink: &mut dyn Sink) -> Result<String> {
    let req = &plan.req;
    let opts = BuildOptions {
        context: req.context.clone(),
        tags: plan.tags.clone(),
        build_args: plan.build_args.clone(),
        target: req.target.clone(),
        no_cache: req.no_cache,
        labels: plan.labels.clone(),
        quiet: req.quiet,
        forward_output: req.forward_output,
        run: RunEnv {
            rootfs: req.rootfs.unwrap_or(engine.settings.rootfs),
            scopes: engine.settings.systemd,
            helper_path: engine.settings.helper_path.clone(),
            network: plan.network.clone(),
        },
    };
    // RUN steps that download need the outbound helper: say once when it
    // is missing, as `run` does.
    super::create::helper_notice(engine, &opts.run.network, sink);
    super::no_range_notice(engine, sink);
    // RUN steps read no input, as in `docker build`: their stdin is
    // /dev/null, not whatever this process was started with.
    let null = std::fs::File::open("/dev/null").map_err(|source| Error::Io {
        what: "opening",
        path: "/dev/null".into(),
        source,
    })?;
    crate::linux::process::dup_onto(std::os::fd::AsRawFd::as_raw_fd(&null), 0)
        .map_err(Error::Stdin)?;
    let mut host = BuildHost {
        engine,
        sink,
        policy: if req.pull {
            PullPolicy::Always
        } else {
            PullPolicy::Missing
        },
        registry: req.registry.clone(),
        progress: if req.quiet {
            Progress::Quiet
        } else {
            Progress::Lines
        },
    };
    let id = builder::build(
        &engine.store,
        &engine.mapping,
        &opts,
        &plan.dockerfile,
        &mut host,
    )
    .map_err(Failed::Steps)?;
    for t in &plan.tags {
        super::events::image(engine, "tag", &id, &t.short());
    }
    Ok(id)
}

/// The engine as a build's host: base images through the pull policy,
/// lines to the sink.
struct BuildHost<'a> {
    engine: &'a Engine,
    sink: &'a mut dyn Sink,
    policy: PullPolicy,
    registry: ClientOptions,
    progress: Progress,
}

impl Host for BuildHost<'_> {
    fn image(&mut self, name: &str) -> std::result::Result<String, HostError> {
        let req = PullRequest {
            reference: Reference::parse(name)?,
            platform: None,
            registry: self.registry.clone(),
            progress: self.progress,
        };
        Ok(images::obtain(
            self.engine,
            name,
            self.policy,
            &req,
            self.sink,
            false,
        )?)
    }

    fn event(&mut self, event: BuildEvent) {
        self.sink.event(Event::Build(event));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(e: Error) -> String {
        e.to_string()
    }

    #[test]
    fn plan_checks_every_field() {
        let dir = tempfile::tempdir().unwrap();
        let mut req = BuildRequest::new(dir.path());
        let missing = plan(&req).unwrap_err();
        assert!(matches!(missing, Error::Invalid(_)));
        assert!(message(missing).starts_with("no Containerfile or Dockerfile in"));

        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        let ok = plan(&req).unwrap();
        assert_eq!(ok.network, "private");

        req.tags = vec!["Bad:Tag:x".into()];
        assert!(message(plan(&req).unwrap_err()).starts_with("invalid tag \"Bad:Tag:x\""));
        req.tags = vec!["app:1".into()];
        req.build_args = vec!["=x".into()];
        assert_eq!(
            message(plan(&req).unwrap_err()),
            "--build-arg \"=x\": expected KEY=VALUE"
        );
        req.build_args = vec!["A=1=2".into()];
        assert_eq!(plan(&req).unwrap().build_args["A"], "1=2");
        req.labels = vec!["novalue".into()];
        assert!(matches!(plan(&req).unwrap_err(), Error::Invalid(_)));
        req.labels = Vec::new();
        req.network = "none".into();
        assert_eq!(plan(&req).unwrap().network, "none");
        req.context = dir.path().join("nothere");
        assert!(message(plan(&req).unwrap_err()).contains("is not a directory"));
    }

    #[test]
    fn a_dockerfile_that_does_not_parse_fails_the_build() {
        let dir = tempfile::tempdir().unwrap();
        let mut req = BuildRequest::new(dir.path());
        req.dockerfile = DockerfileSource::Text("NOPE\n".into());
        let Error::Build(e @ Failed::Parse { .. }) = plan(&req).unwrap_err() else {
            panic!("not a build failure");
        };
        assert!(e.to_string().starts_with("-: "), "{e}");
    }
}
