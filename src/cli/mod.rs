//! The command line: clap definitions, the shared context, and dispatch to
//! one thin file per verb.

mod build;
mod bundle;
mod commit;
mod completion;
mod cp;
mod create;
mod events;
mod exec;
mod export;
mod format;
mod healthcheck;
mod history;
mod images;
mod import;
mod info;
mod inspect;
mod limits;
mod load;
mod login;
mod logs;
mod network;
mod pause;
mod port;
mod prune;
mod ps;
mod pull;
mod push;
mod rename;
mod rm;
mod run;
mod save;
mod service;
mod start;
mod stats;
mod stop;
mod system;
mod table;
mod tag;
mod template;
mod top;
mod version;
mod volume;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::container::cgroup::SystemdScopes;
use crate::engine::{Engine, Settings};
use crate::linux::userns::IdMapping;
use crate::store::{paths::PathEnv, Store, StorePaths};

/// An error that carries the exit code burrow should end with.
#[derive(Debug, thiserror::Error)]
#[error("{msg}")]
pub struct Exit {
    pub code: i32,
    pub msg: String,
}

impl Exit {
    pub fn new(code: i32, msg: impl Into<String>) -> Self {
        Exit {
            code,
            msg: msg.into(),
        }
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "burrow",
    version,
    about = "A rootless container runtime: import images and run them as an ordinary user",
    after_help = "Examples:\n  burrow run hello-world\n  burrow import busybox.tar busybox --change 'CMD [\"sh\"]'\n  burrow run --rm -e GREETING=hi busybox sh -c 'echo $GREETING'\n  burrow info"
)]
pub struct Cli {
    /// Store directory [default: $XDG_DATA_HOME/burrow or ~/.local/share/burrow]
    #[arg(long, global = true, env = "BURROW_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Log level: error, warn, info, debug, trace
    #[arg(long, global = true, default_value = "warn", value_name = "LEVEL")]
    pub log_level: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and run a container
    Run(run::RunArgs),
    /// Create a container without starting it
    Create(run::RunArgs),
    /// Start one or more stopped containers
    Start(start::StartArgs),
    /// Stop containers: the stop signal, then SIGKILL after a timeout
    Stop(stop::StopArgs),
    /// Restart containers
    Restart(stop::StopArgs),
    /// Send a signal to containers
    Kill(stop::KillArgs),
    /// Pause all processes in containers
    Pause(pause::PauseArgs),
    /// Unpause containers
    Unpause(pause::PauseArgs),
    /// Show a container's output
    Logs(logs::LogsArgs),
    /// Show what happens to containers, images, networks and volumes
    Events(events::EventsArgs),
    /// Show containers' resource usage (CPU, memory, pids, block IO)
    Stats(stats::StatsArgs),
    /// Attach to a running container's input and output
    Attach(start::AttachArgs),
    /// Copy files between the host and a container
    Cp(cp::CpArgs),
    /// List a container's published ports
    Port(port::PortArgs),
    /// Create a new image from a container's changes
    Commit(commit::CommitArgs),
    /// Build an image from a Dockerfile
    Build(build::BuildArgs),
    /// Export a container's filesystem as a tar archive
    Export(export::ExportArgs),
    /// Write an image as an OCI runtime bundle (rootfs and config.json)
    Bundle(bundle::BundleArgs),
    /// Wait for containers to end and print their exit codes
    Wait(stop::WaitArgs),
    /// List containers
    Ps(ps::PsArgs),
    /// Remove one or more containers
    Rm(rm::RmArgs),
    /// Rename a container
    Rename(rename::RenameArgs),
    /// Show the files a container added, changed or deleted
    Diff(rename::DiffArgs),
    /// Download an image from a registry
    Pull(pull::PullArgs),
    /// Upload an image to a registry
    Push(push::PushArgs),
    /// Log in to a registry (credentials go where Docker and podman keep them)
    Login(login::LoginArgs),
    /// Log out from a registry
    Logout(login::LogoutArgs),
    /// Import a rootfs tarball (plain, gzip or zstd) as an image
    Import(import::ImportArgs),
    /// Load images from a docker-archive, OCI archive or OCI layout directory
    Load(load::LoadArgs),
    /// Save images to a docker-archive or OCI archive
    Save(save::SaveArgs),
    /// List images
    Images(images::ImagesArgs),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Run a command in a running container
    Exec(exec::ExecArgs),
    /// Show low-level information on containers or images
    Inspect(inspect::InspectArgs),
    /// Give an image another name
    Tag(tag::TagArgs),
    /// Show the history of an image
    History(history::HistoryArgs),
    /// Remove one or more images
    Rmi(tag::RmiArgs),
    /// Show what burrow can do on this host
    Info(info::InfoArgs),
    /// Disk usage and cleanup of the whole store
    #[command(subcommand)]
    System(SystemCommand),
    /// Print a shell completion script
    Completion(completion::CompletionArgs),
    /// Show burrow's version, commit and platform
    Version(version::VersionArgs),
    /// Show a container's processes (ps options: -ef by default)
    Top(top::TopArgs),
    /// Manage volumes
    #[command(subcommand)]
    Volume(volume::VolumeCommand),
    /// Run a container's health check now
    #[command(subcommand)]
    Healthcheck(healthcheck::HealthcheckCommand),
    /// Manage user networks (containers on one reach each other by name)
    #[command(subcommand)]
    Network(network::NetworkCommand),
    /// (internal) a container's monitor
    #[command(name = "__monitor", hide = true)]
    Monitor(create::MonitorArgs),
    /// (internal) a user network's switch
    #[command(name = "__switch", hide = true)]
    Switch(network::SwitchArgs),
    /// (internal) the user's shared user and network namespace
    #[command(name = "__keeper", hide = true)]
    Keeper(network::KeeperArgs),
    /// (internal) an address a running container was given, held
    #[command(name = "__lease", hide = true)]
    Lease(network::LeaseArgs),
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images
    #[command(alias = "list")]
    Ls(images::ImagesArgs),
    /// Show images' metadata as JSON
    Inspect(inspect::InspectArgs),
    /// Remove one or more images
    Rm(tag::RmiArgs),
    /// Give an image another name
    Tag(tag::TagArgs),
    /// Import a rootfs tarball as an image
    Import(import::ImportArgs),
    /// Load images from a docker-archive, OCI archive or OCI layout directory
    Load(load::LoadArgs),
    /// Save images to a docker-archive or OCI archive
    Save(save::SaveArgs),
    /// Download an image from a registry
    Pull(pull::PullArgs),
    /// Upload an image to a registry
    Push(push::PushArgs),
    /// Show the history of an image
    History(history::HistoryArgs),
    /// Remove unused images, then layers and blobs nothing needs
    Prune(prune::ImagePruneArgs),
    /// Build an image from a Dockerfile
    Build(build::BuildArgs),
}

#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// List containers
    #[command(alias = "list")]
    Ls(ps::PsArgs),
    /// Show containers' metadata as JSON
    Inspect(inspect::InspectArgs),
    /// Remove one or more containers
    Rm(rm::RmArgs),
    /// Remove all stopped containers
    Prune(prune::PruneArgs),
    /// Create and run a container
    Run(run::RunArgs),
    /// Create a container without starting it
    Create(run::RunArgs),
    /// Start one or more stopped containers
    Start(start::StartArgs),
    /// Stop containers
    Stop(stop::StopArgs),
    /// Show a container's output
    Logs(logs::LogsArgs),
    /// Create a new image from a container's changes
    Commit(commit::CommitArgs),
    /// Export a container's filesystem as a tar archive
    Export(export::ExportArgs),
    /// Rename a container
    Rename(rename::RenameArgs),
    /// Show the files a container added, changed or deleted
    Diff(rename::DiffArgs),
    /// Restart containers
    Restart(stop::StopArgs),
    /// Send a signal to containers
    Kill(stop::KillArgs),
    /// Pause all processes in containers
    Pause(pause::PauseArgs),
    /// Unpause containers
    Unpause(pause::PauseArgs),
    /// Wait for containers to end and print their exit codes
    Wait(stop::WaitArgs),
    /// Attach to a running container's input and output
    Attach(start::AttachArgs),
    /// Run a command in a running container
    Exec(exec::ExecArgs),
    /// Copy files between the host and a container
    Cp(cp::CpArgs),
    /// Show containers' resource usage
    Stats(stats::StatsArgs),
    /// Show a container's processes
    Top(top::TopArgs),
}

/// A named container, image or object that does not exist. Scripts test
/// for it by its exit code, so it ends burrow as Docker's CLI ends: 1, with
/// `Error: No such container: X` (no daemon, so no "Error response from
/// daemon").
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Missing(pub String);

/// The exit code of a missing object, as Docker's CLI has it.
pub const MISSING: i32 = crate::exit::MISSING;

/// `Some(message)` when `e` says a named object does not exist.
pub fn missing(e: &anyhow::Error) -> Option<String> {
    use crate::container::ContainerError;
    use crate::image::catalog::CatalogError;
    use crate::store::StoreError;
    e.chain().find_map(|c| {
        if let Some(m) = c.downcast_ref::<Missing>() {
            return Some(m.0.clone());
        }
        match c.downcast_ref::<crate::engine::Error>() {
            Some(e @ crate::engine::Error::NotFound(_)) => return Some(e.to_string()),
            Some(crate::engine::Error::Container(e @ ContainerError::NoSuch(_))) => {
                return Some(e.to_string())
            }
            Some(_) => return None,
            None => {}
        }
        match c.downcast_ref::<ContainerError>() {
            Some(e @ ContainerError::NoSuch(_)) => return Some(e.to_string()),
            Some(_) => return None,
            None => {}
        }
        let store =
            c.downcast_ref::<StoreError>()
                .or_else(|| match c.downcast_ref::<CatalogError>() {
                    Some(CatalogError::Store(s)) => Some(s),
                    _ => None,
                });
        match store {
            Some(e @ StoreError::NoSuchImage(_)) => Some(e.to_string()),
            _ => None,
        }
    })
}

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show how much space images and containers take
    Df(system::DfArgs),
    /// Remove stopped containers, unused images, layers and blobs
    Prune(system::SystemPruneArgs),
    /// Show what burrow can do on this host
    Info(info::InfoArgs),
    /// Verify the store (tags, images, layers, containers, names, staging)
    Check(system::CheckArgs),
    /// Serve the Docker Engine API on a socket (for docker, Compose, docker-py, Testcontainers)
    Service(service::ServiceArgs),
    /// Show what happens to containers, images, networks and volumes
    Events(events::EventsArgs),
}

/// Docker's multi-name verbs (rm, stop, pause, rmi, ...): apply `f` to each
/// name and print the lines it returns, report each failure on its own line,
/// and fail at the end if any failed, so one bad name does not stop the rest.
/// When every failure was a name that does not exist, the end is Docker's
/// (exit 1, `Error: No such ...` lines only); otherwise burrow's (125).
pub fn each<F>(keys: &[String], what: &str, mut f: F) -> anyhow::Result<i32>
where
    F: FnMut(&str) -> anyhow::Result<Vec<String>>,
{
    let (mut failed, mut absent) = (0, 0);
    for key in keys {
        match f(key) {
            Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
            Err(e) => {
                failed += 1;
                match missing(&e) {
                    Some(m) => {
                        absent += 1;
                        eprintln!("Error: {m}");
                    }
                    None => eprintln!("burrow: {e}"),
                }
            }
        }
    }
    if failed > 0 && failed == absent {
        return Ok(MISSING);
    }
    if failed > 0 {
        return Err(Exit::new(
            crate::exit::BURROW,
            format!("{failed} of {} {what} failed", keys.len()),
        )
        .into());
    }
    Ok(0)
}

/// `inspect` of named objects: each one's JSON, as a JSON array or through
/// `--format` (checked before the store is opened); the names with nothing
/// there are said after the others, as Docker says them (exit 1).
pub fn inspect_each(
    root: Option<PathBuf>,
    names: &[String],
    format: Option<&str>,
    inspect: impl Fn(&Engine, &str) -> Result<serde_json::Value, crate::engine::Error>,
) -> anyhow::Result<i32> {
    let format = format.map(|f| format::Format::parse(f, &[])).transpose()?;
    let ctx = Ctx::open(root)?;
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for name in names {
        match inspect(&ctx, name) {
            Ok(v) => out.push(v),
            Err(e @ crate::engine::Error::NotFound(_)) => missing.push(e.to_string()),
            Err(e) => return Err(e.into()),
        }
    }
    match &format {
        Some(f) if !f.is_default() => f.print(&out, &[])?,
        _ => println!(
            "{}",
            crate::util::printable::json_text(&serde_json::to_string_pretty(&out)?)
        ),
    }
    if !missing.is_empty() {
        return Err(Missing(missing.join("\n")).into());
    }
    Ok(0)
}

/// An optional image name given on the command line, parsed (exit 125 when
/// it is not a valid reference).
pub fn optional_reference(
    name: Option<&str>,
) -> anyhow::Result<Option<crate::image::reference::Reference>> {
    name.map(crate::image::reference::Reference::parse)
        .transpose()
        .map_err(|e| Exit::new(crate::exit::BURROW, e.to_string()).into())
}

/// `--format` must be one of `allowed` (checked before anything else).
pub fn check_format(format: &str, allowed: &[&str]) -> anyhow::Result<()> {
    if allowed.contains(&format) {
        return Ok(());
    }
    Err(Exit::new(
        crate::exit::BURROW,
        format!("unknown --format {format:?}: use {}", allowed.join(" or ")),
    )
    .into())
}

/// What every command needs: the engine (the store, the caller's id
/// mapping and the settings read from the environment).
pub struct Ctx {
    pub engine: Engine,
}

impl std::ops::Deref for Ctx {
    type Target = Engine;
    fn deref(&self) -> &Engine {
        &self.engine
    }
}

impl Ctx {
    pub fn open(root: Option<PathBuf>) -> anyhow::Result<Self> {
        let ctx = Self::open_as_is(root)?;
        runtime_notice(&ctx.store);
        // A killed pull, import, create or rm left staging, a name link or
        // a pid file: the next command reclaims them, whatever it is.
        ctx.engine.reclaim();
        Ok(ctx)
    }

    /// The store as it is, without reclaiming anything (`system check`
    /// reports what it finds).
    pub fn open_as_is(root: Option<PathBuf>) -> anyhow::Result<Self> {
        let paths = StorePaths::resolve(&PathEnv::from_process(root))
            .map_err(|e| Exit::new(crate::exit::BURROW, e.to_string()))?;
        let store = Store::open(paths).context("opening the store")?;
        let mapping = detect_mapping()?;
        Ok(Ctx {
            engine: Engine::new(store, mapping, settings()?),
        })
    }
}

/// The engine's settings, from this process's environment.
pub fn settings() -> anyhow::Result<Settings> {
    Ok(Settings {
        rootfs: rootfs_choice().map_err(|e| Exit::new(crate::exit::BURROW, e.to_string()))?,
        systemd: systemd_scopes(),
        helper_path: helper_path(),
        keeper: keeper_setting(),
        auth_files: crate::image::registry::credentials::AuthFiles::from_process(),
    })
}

/// Where the engine's events go on a terminal: progress and warnings on
/// stderr, once-per-boot notices through `say_once`; pulls, pushes and
/// builds as `render` shows them.
pub struct Stderr<'a> {
    pub runtime: &'a std::path::Path,
    pub render: pull::Render,
}

impl crate::engine::Sink for Stderr<'_> {
    fn event(&mut self, event: crate::engine::Event) {
        use crate::engine::Event;
        match event {
            Event::Pull(_) | Event::Push(_) | Event::Build(_) => {
                self.render.event(&event);
            }
            Event::Progress(line) | Event::Note(line) => eprintln!("{line}"),
            Event::Warning(w) => eprintln!("WARNING: {w}"),
            Event::Notice { name, reason, line } => say_once(self.runtime, name, &reason, &line),
        }
    }
}

impl Ctx {
    /// A sink that says the engine's events on stderr.
    pub fn stderr(&self) -> Stderr<'_> {
        Stderr {
            runtime: &self.store.paths.runtime,
            render: pull::Render::new(pull::Out::Stderr),
        }
    }
}

/// An `XDG_RUNTIME_DIR` that is set but unusable is said once per boot
/// and reason, not on every command (`ps` in a loop would repeat it):
/// runtime state lives until reboot, so that is how long the choice
/// holds; `info` says it every time.
fn runtime_notice(store: &Store) {
    use crate::store::paths::RuntimeFrom;
    if !matches!(store.paths.runtime_from, RuntimeFrom::Unusable { .. }) {
        return;
    }
    let Some(reason) = store.paths.runtime_from.reason() else {
        return;
    };
    let base = store.paths.runtime_base();
    say_once(
        base,
        "runtime-dir-notice",
        &reason,
        &format!(
            "burrow: {}: runtime state goes to {} instead",
            crate::util::printable::escape_controls(&reason),
            base.display()
        ),
    );
}

/// Say `line` on stderr unless it was said this boot for this `reason`
/// (see `engine::first_time`).
pub fn say_once(dir: &std::path::Path, name: &str, reason: &str, line: &str) {
    if crate::engine::first_time(dir, name, reason) {
        eprintln!("{line}");
    }
}

/// The caller's id mapping; `BURROW_USERNS=single` forces the single-id
/// mapping even when a subuid range exists (what a user without one gets).
pub fn detect_mapping() -> anyhow::Result<IdMapping> {
    let m = IdMapping::detect(std::path::Path::new("/etc"));
    let container = crate::sandbox::user::container_mapping;
    match std::env::var("BURROW_USERNS").as_deref() {
        Err(_) | Ok("") | Ok("auto") => Ok(container(m)),
        Ok("single") => Ok(container(m.single())),
        Ok(other) => Err(Exit::new(
            crate::exit::BURROW,
            format!("BURROW_USERNS={other:?} is not one of auto, single"),
        )
        .into()),
    }
}

/// `BURROW_ROOTFS`: overlay, copy, fuse-overlayfs, or auto (overlay when it
/// mounts).
pub fn rootfs_choice() -> Result<crate::sandbox::RootfsChoice, crate::sandbox::BadRootfsChoice> {
    crate::sandbox::RootfsChoice::from_setting(std::env::var("BURROW_ROOTFS").ok().as_deref())
}

/// Whether burrow may ask the user's systemd for a delegated scope:
/// `BURROW_SYSTEMD=0` says never.
pub fn systemd_scopes() -> SystemdScopes {
    SystemdScopes::from_setting(std::env::var_os("BURROW_SYSTEMD").as_deref())
}

/// Whether the default network goes through the user's keeper
/// (`BURROW_KEEPER=off` says not), and its idle period in seconds
/// (`BURROW_KEEPER_IDLE`, 60 unless a number says otherwise).
pub fn keeper_setting() -> Option<std::time::Duration> {
    if std::env::var_os("BURROW_KEEPER").is_some_and(|v| v == "off" || v == "0") {
        return None;
    }
    let secs = std::env::var("BURROW_KEEPER_IDLE")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(crate::network::keeper::IDLE.as_secs());
    Some(std::time::Duration::from_secs(secs))
}

/// The `PATH` a container's network helper (pasta, slirp4netns) is looked
/// up in: the caller's, handed to the supervisor.
pub fn helper_path() -> String {
    std::env::var("PATH").unwrap_or_default()
}

/// Run the parsed command; returns the process exit code.
pub fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    let root = cli.root;
    match cli.command {
        Command::Completion(a) => completion::run(a),
        Command::Version(a) => version::run(a),
        Command::Info(a) | Command::System(SystemCommand::Info(a)) => info::run(root, a),
        Command::System(SystemCommand::Df(a)) => system::run_df(root, a),
        Command::System(SystemCommand::Prune(a)) => system::run_prune(root, a),
        Command::System(SystemCommand::Check(a)) => system::run_check(root, a),
        Command::System(SystemCommand::Service(a)) => service::run(root, a),
        Command::Run(a) | Command::Container(ContainerCommand::Run(a)) => run::run(root, a),
        Command::Create(a) | Command::Container(ContainerCommand::Create(a)) => {
            create::run_create(root, a)
        }
        Command::Start(a) | Command::Container(ContainerCommand::Start(a)) => {
            start::run_start(root, a)
        }
        Command::Stop(a) | Command::Container(ContainerCommand::Stop(a)) => stop::run_stop(root, a),
        Command::Restart(a) | Command::Container(ContainerCommand::Restart(a)) => {
            stop::run_restart(root, a)
        }
        Command::Kill(a) | Command::Container(ContainerCommand::Kill(a)) => stop::run_kill(root, a),
        Command::Wait(a) | Command::Container(ContainerCommand::Wait(a)) => stop::run_wait(root, a),
        Command::Pause(a) | Command::Container(ContainerCommand::Pause(a)) => {
            pause::run(root, a, true)
        }
        Command::Unpause(a) | Command::Container(ContainerCommand::Unpause(a)) => {
            pause::run(root, a, false)
        }
        Command::Logs(a) | Command::Container(ContainerCommand::Logs(a)) => logs::run(root, a),
        Command::Stats(a) | Command::Container(ContainerCommand::Stats(a)) => stats::run(root, a),
        Command::Attach(a) | Command::Container(ContainerCommand::Attach(a)) => {
            start::run_attach(root, a)
        }
        Command::Cp(a) | Command::Container(ContainerCommand::Cp(a)) => cp::run(root, a),
        Command::Port(a) => port::run(root, a),
        Command::Events(a) | Command::System(SystemCommand::Events(a)) => events::run(root, a),
        Command::Container(ContainerCommand::Prune(a)) => prune::run(root, a),
        Command::Monitor(a) => create::run_monitor(root, a),
        Command::Ps(a) | Command::Container(ContainerCommand::Ls(a)) => ps::run(root, a),
        Command::Rm(a) | Command::Container(ContainerCommand::Rm(a)) => rm::run(root, a),
        Command::Rename(a) | Command::Container(ContainerCommand::Rename(a)) => {
            rename::run_rename(root, a)
        }
        Command::Diff(a) | Command::Container(ContainerCommand::Diff(a)) => {
            rename::run_diff(root, a)
        }
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => import::run(root, a),
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => images::run(root, a),
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => load::run(root, a),
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => save::run(root, a),
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => pull::run(root, a),
        Command::Push(a) | Command::Image(ImageCommand::Push(a)) => push::run(root, a),
        Command::Login(a) => login::run_login(root, a),
        Command::Logout(a) => login::run_logout(root, a),
        Command::Exec(a) | Command::Container(ContainerCommand::Exec(a)) => exec::run(root, a),
        Command::Inspect(a) => inspect::run(root, a, inspect::Kind::Any),
        Command::Image(ImageCommand::Inspect(a)) => inspect::run(root, a, inspect::Kind::Image),
        Command::Container(ContainerCommand::Inspect(a)) => {
            inspect::run(root, a, inspect::Kind::Container)
        }
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => tag::run_tag(root, a),
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => tag::run_rmi(root, a),
        Command::Commit(a) | Command::Container(ContainerCommand::Commit(a)) => {
            commit::run(root, a)
        }
        Command::Export(a) | Command::Container(ContainerCommand::Export(a)) => {
            export::run(root, a)
        }
        Command::Bundle(a) => bundle::run(root, a),
        Command::History(a) | Command::Image(ImageCommand::History(a)) => history::run(root, a),
        Command::Build(a) | Command::Image(ImageCommand::Build(a)) => build::run(root, a),
        Command::Image(ImageCommand::Prune(a)) => prune::run_images(root, a),
        Command::Top(a) | Command::Container(ContainerCommand::Top(a)) => top::run(root, a),
        Command::Volume(c) => volume::run(root, c),
        Command::Healthcheck(c) => healthcheck::run(root, c),
        Command::Network(c) => network::run(root, c),
        Command::Switch(a) => network::run_switch(root, a),
        Command::Keeper(a) => network::run_keeper(a),
        Command::Lease(a) => Ok(crate::network::keeper::hold_lease(a.pid1)),
    }
}
