//! `burrow run`: create a container from an image and run it in the foreground.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use super::pull::{PullPolicy, RegistryArgs};
use super::{Ctx, Exit};
use crate::container::ContainerRecord;
use crate::engine::{self, create::ContainerRequest, run::Way};
use crate::exit;
use crate::image::pull::PullOptions;

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  burrow run hello-world\n  burrow run --rm busybox echo hello\n  burrow run --rm -e COLOR=blue busybox sh -c 'echo $COLOR'\n  burrow run -it --rm busybox sh\n  burrow run -d --name ticker busybox sh -c 'while sleep 1; do date; done'\n  burrow run --rm --pull=always -q alpine cat /etc/alpine-release"
)]
pub struct RunArgs {
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    #[command(flatten)]
    pub env: EnvArgs,
    /// Override the image's ENTRYPOINT ("" clears it)
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// User inside the container: name|uid[:group|gid]
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Container hostname [default: the short container id]
    #[arg(long)]
    pub hostname: Option<String>,
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Run in the background and print the container id
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Bind a host path or a volume: HOST:CTR[:ro], NAME:CTR[:ro], or CTR (an anonymous volume)
    #[arg(short = 'v', long = "volume", value_name = "HOST|NAME:CTR[:ro]")]
    pub volumes: Vec<String>,
    /// Add a mount: type=bind,source=HOST,target=CTR[,readonly], type=volume,source=NAME,target=CTR[,readonly] or type=tmpfs,target=CTR[,tmpfs-size=64m]
    #[arg(long = "mount", value_name = "SPEC")]
    pub mounts: Vec<String>,
    /// Mount a tmpfs: CONTAINER[:size=64m,mode=1777]
    #[arg(long = "tmpfs", value_name = "CTR[:OPTS]")]
    pub tmpfs: Vec<String>,
    /// Mount the container's root filesystem read-only
    #[arg(long)]
    pub read_only: bool,
    /// Add a capability to Docker's default set (or ALL)
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop a capability from the default set (or ALL)
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Security options: seccomp=unconfined|PROFILE.json, no-new-privileges,
    /// mask=PATH[:PATH...], unmask=ALL|PATH[:PATH...], fake-ids=on|off
    /// (chown and setuid succeed without effect; on without a subuid range)
    #[arg(long = "security-opt", value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// Every capability of the container's user namespace, no seccomp
    /// filter, no masked or read-only paths (never more than you have)
    #[arg(long)]
    pub privileged: bool,
    /// Run an init as PID 1 that forwards signals and reaps zombies
    #[arg(long)]
    pub init: bool,
    /// User namespace mode: keep-id runs as your own uid/gid inside, so files
    /// written to bind mounts belong to you on the host; private gives the
    /// container a user namespace of its own instead of the one your
    /// containers on the default network share
    #[arg(long, value_name = "MODE")]
    pub userns: Option<String>,
    /// Kill the container after this many seconds
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Keep STDIN open
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Network: private (own namespace, outbound through pasta or
    /// slirp4netns), none (loopback only), host, pasta, slirp4netns, or a
    /// network made by `burrow network create`
    #[arg(
        long = "network",
        alias = "net",
        value_name = "MODE",
        default_value = "private"
    )]
    pub network: String,
    /// An extra name the container has on its user network (repeatable)
    #[arg(long = "network-alias", value_name = "ALIAS")]
    pub network_alias: Vec<String>,
    /// Publish a container port: [IP:][HOST:]CONTAINER[/tcp|/udp], ranges as 8080-8081:3000-3001
    #[arg(short = 'p', long = "publish", value_name = "SPEC")]
    pub publish: Vec<String>,
    /// Publish every port the image exposes on a free host port
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// DNS server for the container's /etc/resolv.conf
    #[arg(long = "dns", value_name = "IP")]
    pub dns: Vec<String>,
    /// Add a line to the container's /etc/hosts: HOST:IP
    #[arg(long = "add-host", value_name = "HOST:IP")]
    pub add_host: Vec<String>,
    /// Resource limits (cli/limits.rs)
    #[command(flatten)]
    pub limits: super::limits::LimitArgs,
    /// Pull the image: missing (when not in the store), always, never
    #[arg(long, value_name = "POLICY", default_value = "missing")]
    pub pull: PullPolicy,
    /// Platform to pull for a multi-platform image: os/arch[/variant]
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
    /// Say nothing while pulling the image
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Set a label on the container: KEY=VALUE (or KEY for an empty value)
    #[arg(short = 'l', long = "label", value_name = "KEY[=VALUE]")]
    pub label: Vec<String>,
    /// Read labels from a file (KEY=VALUE lines, # comments)
    #[arg(long = "label-file", value_name = "FILE")]
    pub label_file: Vec<PathBuf>,
    /// Logging driver: json-file (the default), k8s-file (podman's format) or none
    #[arg(long = "log-driver", value_name = "DRIVER")]
    pub log_driver: Option<String>,
    /// Logging options: max-size=10m (rotate at this size), max-file=3 (files kept)
    #[arg(long = "log-opt", value_name = "KEY=VALUE")]
    pub log_opt: Vec<String>,
    /// Restart policy, carried out while burrow's monitor for the container
    /// runs (never after a reboot): no, on-failure[:N], always, unless-stopped
    #[arg(long, value_name = "POLICY", default_value = "no")]
    pub restart: String,
    #[command(flatten)]
    pub health: HealthArgs,
    /// Image to run
    pub image: String,
    /// Command and arguments (replace the image's Cmd)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub cmd: Vec<String>,
}

/// Read the flags (env and label files, the working directory for relative
/// paths) into the engine's request, and create the container: what
/// `create` does and `run` starts with. The engine checks every field.
pub fn create_container(
    root: Option<PathBuf>,
    a: RunArgs,
) -> anyhow::Result<(Ctx, ContainerRecord)> {
    let req = request(a)?;
    let ctx = Ctx::open(root)?;
    let rec = engine::create::create(&ctx, &req, &mut ctx.stderr())?;
    Ok((ctx, rec))
}

/// The flags as the engine's request.
fn request(a: RunArgs) -> anyhow::Result<ContainerRequest> {
    let quiet = a.quiet;
    Ok(ContainerRequest {
        name: a.name,
        pull: a.pull.into(),
        platform: a.platform,
        registry: a.registry.client(),
        pull_progress: PullOptions::progress_for(quiet, true),
        cmd: a.cmd,
        env: a.env.collect()?,
        // `--entrypoint ""` clears the image's.
        entrypoint: a
            .entrypoint
            .map(|e| if e.is_empty() { Vec::new() } else { vec![e] }),
        workdir: a.workdir,
        user: a.user,
        hostname: a.hostname,
        auto_remove: a.rm,
        interactive: a.interactive,
        tty: a.tty,
        timeout: a.timeout,
        volumes: a.volumes,
        mounts: a.mounts,
        tmpfs: a.tmpfs,
        cwd: Some(std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"))),
        read_only: a.read_only,
        userns: a.userns,
        init: a.init,
        cap_add: a.cap_add,
        cap_drop: a.cap_drop,
        security_opt: a.security_opt,
        privileged: a.privileged,
        resources: a.limits.values()?,
        labels: collect_labels(&a.label, &a.label_file)?,
        network: a.network,
        network_aliases: a.network_alias,
        publish: a.publish,
        publish_all: a.publish_all,
        dns: a.dns,
        add_host: a.add_host,
        log_driver: a.log_driver,
        log_opt: a.log_opt,
        restart: a.restart,
        healthcheck: engine::create::health_flags(&a.health.flags())?,
        health_on_failure: a.health.health_on_failure,
        image: a.image,
    })
}

/// The health check flags of `run` and `create` (Docker's, and podman's
/// `--health-on-failure`).
#[derive(Debug, Clone, Args)]
pub struct HealthArgs {
    /// Command to run to check health (run by /bin/sh -c, or the image's SHELL)
    #[arg(long = "health-cmd", value_name = "CMD")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h) [default: 30s]
    #[arg(long = "health-interval", value_name = "DURATION")]
    pub health_interval: Option<String>,
    /// Consecutive failures needed to report unhealthy [default: 3]
    #[arg(
        long = "health-retries",
        value_name = "N",
        allow_negative_numbers = true
    )]
    pub health_retries: Option<i64>,
    /// Start period for the container to initialize before failures count (ms|s|m|h) [default: 0s]
    #[arg(long = "health-start-period", value_name = "DURATION")]
    pub health_start_period: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h) [default: 5s]
    #[arg(long = "health-start-interval", value_name = "DURATION")]
    pub health_start_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h) [default: 30s]
    #[arg(long = "health-timeout", value_name = "DURATION")]
    pub health_timeout: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// What to do when the container becomes unhealthy: none, kill, restart or stop
    #[arg(long = "health-on-failure", value_name = "ACTION")]
    pub health_on_failure: Option<String>,
}

impl HealthArgs {
    fn flags(&self) -> engine::create::HealthFlags {
        engine::create::HealthFlags {
            cmd: self.health_cmd.clone(),
            interval: self.health_interval.clone(),
            timeout: self.health_timeout.clone(),
            start_period: self.health_start_period.clone(),
            start_interval: self.health_start_interval.clone(),
            retries: self.health_retries,
            none: self.no_healthcheck,
        }
    }
}

pub fn run(root: Option<PathBuf>, a: RunArgs) -> anyhow::Result<i32> {
    let detach = a.detach;
    let (ctx, mut rec) = create_container(root, a)?;
    let rootfs = engine::run::rootfs(&ctx, Some(&mut ctx.stderr()));
    if detach {
        // In the background under a monitor: print the id, like Docker.
        engine::attach::start(&ctx, &rec)?;
        println!("{}", rec.id);
        return Ok(0);
    }
    match engine::run::way(&rec) {
        // Attached to the monitor before it starts the container, so no
        // output is missed; the monitor removes a `--rm` container's
        // anonymous volumes.
        Way::Monitor => super::start::attach_new(&ctx, &rec),
        way => engine::run::here(&ctx, &mut rec, way, rootfs, &mut ctx.stderr())
            .with_context(|| format!("container {}", rec.name)),
    }
}

/// `-e` and `--env-file`, shared by `run`/`create` and `exec`.
#[derive(Debug, Clone, Args)]
pub struct EnvArgs {
    /// Set an environment variable (KEY=VALUE, or KEY to take the host's value)
    #[arg(short = 'e', long = "env", value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,
    /// Read environment variables from a file (KEY=VALUE lines, # comments)
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
}

impl EnvArgs {
    /// KEY=VALUE in order: env files, then -e.
    pub fn collect(&self) -> anyhow::Result<Vec<String>> {
        collect_env(&self.env, &self.env_file)
    }
}

pub fn collect_env(flags: &[String], files: &[PathBuf]) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for f in files {
        out.extend(read_kv_file(f, true)?);
    }
    for e in flags {
        push_env(&mut out, e).map_err(|m| Exit::new(exit::BURROW, m.to_string()))?;
    }
    Ok(out)
}

/// `--label-file`s then `--label`s (Docker's order: later wins); `KEY`
/// alone is a label with an empty value.
pub fn collect_labels(
    flags: &[String],
    files: &[PathBuf],
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let mut items = Vec::new();
    for f in files {
        items.extend(read_kv_file(f, false)?);
    }
    let mut out = std::collections::BTreeMap::new();
    for item in items.iter().chain(flags) {
        let (k, v) = item.split_once('=').unwrap_or((item, ""));
        if k.is_empty() {
            return Err(Exit::new(exit::BURROW, format!("invalid label {item:?}: no key")).into());
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// A file of `KEY=VALUE` lines read by Docker's rules (`--env-file`,
/// `--label-file`): a UTF-8 BOM and leading whitespace go, blank lines and
/// `#` comments are skipped, the value is taken literally (no quote
/// removal, trailing spaces kept), and a key with whitespace is an error
/// naming the file and line. `KEY` alone takes the host's value when
/// `lookup` (dropped if the host has none), else stays as it is.
fn read_kv_file(f: &Path, lookup: bool) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(f)
        .map_err(|e| Exit::new(exit::BURROW, format!("reading {}: {e}", f.display())))?;
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let raw = if n == 0 {
            raw.trim_start_matches('\u{feff}')
        } else {
            raw
        };
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = || format!("{}:{}", f.display(), n + 1);
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (line, None),
        };
        if key.is_empty() {
            return Err(Exit::new(
                exit::BURROW,
                format!("{}: no variable name on line {line:?}", at()),
            )
            .into());
        }
        if key.contains([' ', '\t']) {
            return Err(Exit::new(
                exit::BURROW,
                format!(
                    "{}: poorly formatted environment: variable {key:?} contains whitespaces",
                    at()
                ),
            )
            .into());
        }
        match value {
            Some(v) => out.push(format!("{key}={v}")),
            None if !lookup => out.push(key.to_string()),
            None => {
                if let Ok(v) = std::env::var(key) {
                    out.push(format!("{key}={v}"));
                }
            }
        }
    }
    Ok(out)
}

/// An `-e` item with no name, or a name with blanks.
#[derive(Debug, thiserror::Error)]
#[error("invalid environment variable {0:?}")]
struct BadEnv(String);

fn push_env(out: &mut Vec<String>, item: &str) -> Result<(), BadEnv> {
    let key = item.split_once('=').map_or(item, |(k, _)| k);
    if key.is_empty() || key.contains(char::is_whitespace) {
        return Err(BadEnv(item.to_string()));
    }
    if item.contains('=') {
        out.push(item.to_string());
    } else if let Ok(v) = std::env::var(key) {
        out.push(format!("{key}={v}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_then_flags() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("env");
        std::fs::write(&f, "# comment\nA=file\nB=file\n\n").unwrap();
        let env = collect_env(&["B=flag".into(), "C=x=y".into()], &[f]).unwrap();
        assert_eq!(env, ["A=file", "B=file", "B=flag", "C=x=y"]);
        assert!(collect_env(&["=x".into()], &[]).is_err());
        assert!(collect_env(&[], &[d.path().join("missing")]).is_err());
        assert!(collect_env(&["BURROW_SURELY_UNSET_VAR".into()], &[])
            .unwrap()
            .is_empty());
    }

    #[test]
    fn env_file_docker_rules() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("env");
        // Values are literal: quotes stay, trailing spaces stay; a BOM and
        // leading blanks go; PATH alone takes the host's value.
        std::fs::write(
            &f,
            "\u{feff}A=1\n  B=\"quoted\"\nC='single' \n\t# indented comment\nPATH\nBURROW_SURELY_UNSET_VAR\nD=\n",
        )
        .unwrap();
        let env = collect_env(&[], std::slice::from_ref(&f)).unwrap();
        let path = format!("PATH={}", std::env::var("PATH").unwrap());
        assert_eq!(
            env,
            ["A=1", "B=\"quoted\"", "C='single' ", path.as_str(), "D="]
        );
        std::fs::write(&f, "OK=1\nBAD KEY=2\n").unwrap();
        let e = collect_env(&[], std::slice::from_ref(&f))
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("{}:2", f.display())), "{e}");
        assert!(e.contains("contains whitespaces"), "{e}");
        std::fs::write(&f, "=x\n").unwrap();
        assert!(collect_env(&[], &[f]).is_err());
    }

    #[test]
    fn labels_from_files_then_flags() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("labels");
        std::fs::write(&f, "# team\nowner=ops\ntier=web\nflag\n").unwrap();
        let l = collect_labels(&["tier=db".into(), "x".into()], &[f]).unwrap();
        let got: Vec<(&str, &str)> = l.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            got,
            [("flag", ""), ("owner", "ops"), ("tier", "db"), ("x", "")]
        );
        assert!(collect_labels(&["=v".into()], &[]).is_err());
    }
}
