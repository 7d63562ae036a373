//! Creating a container: every rule of `create` and `run` (names, env,
//! mounts, capabilities, seccomp, network, logging, restart policy, limits,
//! the pull policy), checked before anything is made.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::images::{self, PullPolicy, PullRequest};
use super::{Engine, Error, Event, Result, Sink};
use crate::container::health::OnFailure;
use crate::container::{self, cgroup::Resources, ContainerRecord, CreateOptions};
use crate::image::config::Healthcheck;
use crate::image::pull::Progress;
use crate::image::reference::Reference;
use crate::image::registry::ClientOptions;

/// A container as a front end asks for it, in Docker's own terms (the
/// strings of `-v`, `--mount`, `-p`, `--restart` and the rest); `create`
/// checks every field.
#[derive(Debug, Clone)]
pub struct ContainerRequest {
    pub name: Option<String>,
    /// The image as the user wrote it.
    pub image: String,
    pub pull: PullPolicy,
    pub platform: Option<String>,
    pub registry: ClientOptions,
    /// How a pull inside this create reports itself.
    pub pull_progress: Progress,
    /// Replaces the image's Cmd when not empty.
    pub cmd: Vec<String>,
    /// `KEY=VALUE`, in order (later wins).
    pub env: Vec<String>,
    /// Replaces the image's Entrypoint (an empty list clears it).
    pub entrypoint: Option<Vec<String>>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub auto_remove: bool,
    pub interactive: bool,
    pub tty: bool,
    /// Kill the container after this many seconds.
    pub timeout: Option<u64>,
    /// `-v` strings: `HOST:CTR[:ro]`, `NAME:CTR[:ro]` or `CTR`.
    pub volumes: Vec<String>,
    /// `--mount` strings.
    pub mounts: Vec<String>,
    /// `--tmpfs` strings: `CTR[:OPTS]`.
    pub tmpfs: Vec<String>,
    /// What relative bind sources (`./x`) are relative to; `None` refuses
    /// them (an API request has no working directory).
    pub cwd: Option<PathBuf>,
    pub read_only: bool,
    /// `--userns`: keep-id, host or none.
    pub userns: Option<String>,
    pub init: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub security_opt: Vec<String>,
    pub privileged: bool,
    pub resources: Resources,
    pub labels: BTreeMap<String, String>,
    /// `--network`: private, none, host, pasta, slirp4netns or a user
    /// network's name.
    pub network: String,
    pub network_aliases: Vec<String>,
    /// `-p` strings.
    pub publish: Vec<String>,
    pub publish_all: bool,
    pub dns: Vec<String>,
    /// `--add-host` strings, `HOST:IP`.
    pub add_host: Vec<String>,
    pub log_driver: Option<String>,
    pub log_opt: Vec<String>,
    /// `--restart`.
    pub restart: String,
    /// Docker's `Healthcheck` as the client sent it (see [`health_flags`]
    /// for the CLI's): merged over the image's field by field.
    pub healthcheck: Option<Healthcheck>,
    /// `--health-on-failure`: none, kill, restart or stop.
    pub health_on_failure: Option<String>,
}

impl ContainerRequest {
    /// A request for `image` with Docker's defaults for everything else.
    pub fn new(image: impl Into<String>) -> Self {
        ContainerRequest {
            name: None,
            image: image.into(),
            pull: PullPolicy::Missing,
            platform: None,
            registry: ClientOptions::default(),
            pull_progress: Progress::Quiet,
            cmd: Vec::new(),
            env: Vec::new(),
            entrypoint: None,
            workdir: None,
            user: None,
            hostname: None,
            auto_remove: false,
            interactive: false,
            tty: false,
            timeout: None,
            volumes: Vec::new(),
            mounts: Vec::new(),
            tmpfs: Vec::new(),
            cwd: None,
            read_only: false,
            userns: None,
            init: false,
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            security_opt: Vec::new(),
            privileged: false,
            resources: Resources::default(),
            labels: BTreeMap::new(),
            network: "private".into(),
            network_aliases: Vec::new(),
            publish: Vec::new(),
            publish_all: false,
            dns: Vec::new(),
            add_host: Vec::new(),
            log_driver: None,
            log_opt: Vec::new(),
            restart: "no".into(),
            healthcheck: None,
            health_on_failure: None,
        }
    }
}

/// Check every field of `req`, find (or pull, as its policy says) the
/// image, and create the container record; nothing runs yet.
pub fn create(
    engine: &Engine,
    req: &ContainerRequest,
    sink: &mut dyn Sink,
) -> Result<ContainerRecord> {
    let opts = options(engine, req, sink)?;
    let rec = {
        let _lock = engine.store.lock_shared()?;
        container::create(&engine.store, &engine.mapping, &opts)?
    };
    super::events::container(engine, &rec, "create", &[]);
    // Said once the container exists: a refused create (a name in use)
    // is one line, whatever this host lacks.
    helper_notice(engine, &opts.network.mode, sink);
    super::no_range_notice(engine, sink);
    Ok(rec)
}

/// Every flag checked, then the image found: the container's options.
fn options(engine: &Engine, req: &ContainerRequest, sink: &mut dyn Sink) -> Result<CreateOptions> {
    for e in &req.env {
        check_env(e)?;
    }
    if let Some(k) = req.labels.keys().find(|k| k.is_empty()) {
        return Err(Error::invalid(format!("invalid label {k:?}: no key")));
    }
    check_workdir(req.workdir.as_deref())?;
    if let Some(n) = &req.name {
        container::validate_name(n)?;
    }
    if req.timeout == Some(0) {
        return Err(Error::invalid("--timeout must be at least 1 second"));
    }
    let restart_policy = restart_policy(&req.restart).map_err(Error::invalid)?;
    if req.auto_remove && !restart_policy.is_none() {
        return Err(Error::invalid("Conflicting options: --restart and --rm"));
    }
    let log_config = crate::monitor::log::config(req.log_driver.as_deref(), &req.log_opt)
        .map_err(Error::invalid)?;
    crate::sandbox::caps::resolve(&req.cap_add, &req.cap_drop).map_err(Error::invalid)?;
    let cwd = req.cwd.clone();
    let security_opt =
        container::security::normalize(&req.security_opt, cwd.as_deref().unwrap_or("/".as_ref()))
            .map_err(Error::invalid)?;
    check_seccomp(&security_opt, &req.cap_add, &req.cap_drop)?;
    let mounts = mounts(req)?;
    let (keep_id, private_userns) = match req.userns.as_deref() {
        None | Some("") | Some("host") => (false, false),
        Some("keep-id") => (true, false),
        Some("private") => (false, true),
        Some(other) => {
            return Err(Error::invalid(format!(
                "--userns={other} is not supported (keep-id, private or host)"
            )))
        }
    };
    // keep-id runs as the caller's own ids unless -u says otherwise.
    let user = match (&req.user, keep_id) {
        (None, true) => Some(format!(
            "{}:{}",
            nix::unistd::Uid::current(),
            nix::unistd::Gid::current()
        )),
        _ => req.user.clone(),
    };
    // Limits: values first, then whether this host can enforce them.
    container::cgroup::check(&req.resources, engine.settings.systemd).map_err(Error::invalid)?;
    let network = network_options(req, sink)?;
    let reference = Reference::parse(&req.image).map_err(Error::invalid)?;
    if crate::network::Mode::parse(&network.mode).ok() == Some(crate::network::Mode::User) {
        crate::network::user::get(&engine.store, &network.mode).map_err(Error::invalid)?;
    }
    let pull = PullRequest {
        reference: reference.clone(),
        platform: req.platform.clone(),
        registry: req.registry.clone(),
        progress: req.pull_progress,
    };
    check_healthcheck(req.healthcheck.as_ref())?;
    let on_failure = req.health_on_failure.as_deref().unwrap_or("none");
    OnFailure::parse(on_failure).map_err(Error::invalid)?;
    let image_id = images::find_or_pull(engine, &req.image, req.pull, &pull, sink)?;
    Ok(CreateOptions {
        name: req.name.clone(),
        image: req.image.clone(),
        image_id,
        cmd: req.cmd.clone(),
        env: req.env.clone(),
        entrypoint: req.entrypoint.clone(),
        workdir: req.workdir.clone(),
        user,
        hostname: req.hostname.clone(),
        auto_remove: req.auto_remove,
        interactive: req.interactive,
        tty: req.tty,
        timeout: req.timeout,
        mounts,
        readonly_rootfs: req.read_only,
        keep_id,
        private_userns,
        init: req.init,
        cap_add: req.cap_add.clone(),
        cap_drop: req.cap_drop.clone(),
        security_opt,
        privileged: req.privileged,
        resources: req.resources.clone(),
        labels: req.labels.clone(),
        network,
        log_config,
        restart_policy,
        healthcheck: req.healthcheck.clone(),
        health_on_failure: match on_failure {
            "none" => String::new(),
            a => a.to_string(),
        },
    })
}

/// The `--health-*` flags of `run` and `create`, as typed.
#[derive(Debug, Clone, Default)]
pub struct HealthFlags {
    pub cmd: Option<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub start_period: Option<String>,
    pub start_interval: Option<String>,
    pub retries: Option<i64>,
    pub none: bool,
}

/// The flags as Docker's client makes them a `Healthcheck`: `--health-cmd`
/// is a `CMD-SHELL` test, `--no-healthcheck` is `["NONE"]` and conflicts
/// with the others, unset fields stay zero (the image's then apply).
pub fn health_flags(f: &HealthFlags) -> Result<Option<Healthcheck>> {
    let duration = |name: &str, v: &Option<String>| -> Result<i64> {
        let Some(v) = v else { return Ok(0) };
        let d = crate::util::human::go_duration(v).map_err(|e| {
            Error::refused(format!("invalid argument {v:?} for --health-{name}"), e)
        })?;
        if d < 0 {
            return Err(Error::invalid(format!(
                "--health-{name} cannot be negative"
            )));
        }
        Ok(d)
    };
    let h = Healthcheck {
        test: f
            .cmd
            .iter()
            .filter(|c| !c.is_empty())
            .map(|c| vec!["CMD-SHELL".to_string(), c.clone()])
            .next()
            .unwrap_or_default(),
        interval: duration("interval", &f.interval)?,
        timeout: duration("timeout", &f.timeout)?,
        start_period: duration("start-period", &f.start_period)?,
        start_interval: duration("start-interval", &f.start_interval)?,
        retries: match f.retries {
            Some(n) if n < 0 => return Err(Error::invalid("--health-retries cannot be negative")),
            n => n.unwrap_or(0),
        },
    };
    let any = h != Healthcheck::default();
    if f.none {
        if any {
            return Err(Error::invalid(
                "--no-healthcheck conflicts with --health-* options",
            ));
        }
        return Ok(Some(Healthcheck {
            test: vec!["NONE".into()],
            ..Default::default()
        }));
    }
    Ok(any.then_some(h))
}

/// Docker's checks of a `Healthcheck`: durations zero (the default) or at
/// least a millisecond, no negative retries, a test that is `NONE`, `CMD`
/// with a command or `CMD-SHELL` with one.
fn check_healthcheck(h: Option<&Healthcheck>) -> Result<()> {
    let Some(h) = h else { return Ok(()) };
    for (name, v) in [
        ("Interval", h.interval),
        ("Timeout", h.timeout),
        ("StartPeriod", h.start_period),
        ("StartInterval", h.start_interval),
    ] {
        if v != 0 && v < 1_000_000 {
            return Err(Error::invalid(format!(
                "{name} in Healthcheck cannot be less than 1ms"
            )));
        }
    }
    if h.retries < 0 {
        return Err(Error::invalid("Retries in Healthcheck cannot be negative"));
    }
    match h.test.first().map(String::as_str) {
        None => Ok(()),
        Some("NONE") if h.test.len() == 1 => Ok(()),
        Some("CMD" | "CMD-SHELL") if h.test.len() > 1 => Ok(()),
        Some(_) => Err(Error::invalid(format!(
            "invalid Healthcheck test {:?}: [\"NONE\"], [\"CMD\", command...] or [\"CMD-SHELL\", command]",
            h.test
        ))),
    }
}

/// `-v`, `--mount` and `--tmpfs`, in that order.
fn mounts(req: &ContainerRequest) -> Result<Vec<container::mounts::MountSpec>> {
    use container::mounts::{parse_mount, parse_tmpfs, parse_volume};
    let relative = |s: &str| {
        Error::invalid(format!(
            "invalid mount {s:?}: the host path must be absolute"
        ))
    };
    let mut out = Vec::new();
    for v in &req.volumes {
        let spec = match &req.cwd {
            Some(cwd) => parse_volume(v, cwd).map_err(Error::invalid)?,
            None if v.starts_with('.') => return Err(relative(v)),
            None => parse_volume(v, "/".as_ref()).map_err(Error::invalid)?,
        };
        out.push(spec);
    }
    for m in &req.mounts {
        let spec = match &req.cwd {
            Some(cwd) => parse_mount(m, cwd).map_err(Error::invalid)?,
            None => {
                let spec = parse_mount(m, "/".as_ref()).map_err(Error::invalid)?;
                if m.split(',').any(|kv| {
                    matches!(kv.split_once('='), Some(("source" | "src", v)) if v.starts_with('.'))
                }) {
                    return Err(relative(m));
                }
                spec
            }
        };
        out.push(spec);
    }
    for t in &req.tmpfs {
        out.push(parse_tmpfs(t).map_err(Error::invalid)?);
    }
    Ok(out)
}

/// An environment entry: `KEY=VALUE` (or `KEY`), with a key that has no
/// whitespace.
pub fn check_env(item: &str) -> Result<()> {
    let key = item.split_once('=').map_or(item, |(k, _)| k);
    if key.is_empty() || key.contains(char::is_whitespace) {
        return Err(Error::invalid(format!(
            "invalid environment variable {item:?}"
        )));
    }
    Ok(())
}

/// A working directory must be absolute (Docker's rule), for `run`/`create`
/// and `exec`.
pub fn check_workdir(w: Option<&str>) -> Result<()> {
    match w {
        Some(w) if !w.starts_with('/') => Err(Error::invalid(format!(
            "the working directory {w:?} is invalid, it needs to be an absolute path"
        ))),
        _ => Ok(()),
    }
}

/// A `--restart` value Docker would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestartPolicyError {
    #[error("invalid restart policy format: no policy provided before colon")]
    NoName,
    #[error("invalid restart policy format: maximum retry count must be an integer")]
    Count,
    #[error("invalid restart policy: maximum retry count can only be used with 'on-failure'")]
    CountNotAllowed,
    #[error("invalid restart policy: maximum retry count cannot be negative")]
    NegativeCount,
    #[error("invalid restart policy '{0}'")]
    Unknown(String),
}

/// `--restart` as Docker parses it: `no`, `always`, `unless-stopped`,
/// `on-failure` or `on-failure:N` (at most N restarts).
pub fn restart_policy(
    s: &str,
) -> std::result::Result<container::RestartPolicy, RestartPolicyError> {
    let (name, count) = match s.split_once(':') {
        Some(("", _)) => return Err(RestartPolicyError::NoName),
        Some((name, n)) => {
            let n: i64 = n.parse().map_err(|_| RestartPolicyError::Count)?;
            (name, Some(n))
        }
        None => (s, None),
    };
    match (name, count) {
        ("" | "no" | "always" | "unless-stopped", None | Some(0)) => {}
        ("no" | "always" | "unless-stopped", Some(_)) => {
            return Err(RestartPolicyError::CountNotAllowed)
        }
        ("on-failure", Some(n)) if n < 0 => return Err(RestartPolicyError::NegativeCount),
        ("on-failure", _) => {}
        _ => return Err(RestartPolicyError::Unknown(name.to_string())),
    }
    Ok(container::RestartPolicy {
        name: if name.is_empty() { "no" } else { name }.to_string(),
        maximum_retry_count: count.unwrap_or(0).clamp(0, u32::MAX as i64) as u32,
    })
}

/// `--network`, `-p`, `-P`, `--dns`, `--add-host`, checked before anything
/// is created.
fn network_options(
    req: &ContainerRequest,
    sink: &mut dyn Sink,
) -> Result<container::NetworkOptions> {
    use crate::network;
    let mode = network::Mode::parse(&req.network).map_err(Error::invalid)?;
    let mut publish = Vec::new();
    for p in &req.publish {
        publish.extend(network::parse_publish(p).map_err(Error::invalid)?);
    }
    network::check_unprivileged(&publish, std::path::Path::new("/proc")).map_err(Error::invalid)?;
    for h in &req.add_host {
        network::check_add_host(h).map_err(Error::invalid)?;
    }
    for d in &req.dns {
        network::check_dns(d).map_err(Error::invalid)?;
    }
    let publish_all = req.publish_all && mode != network::Mode::Host;
    if mode == network::Mode::Host && (!publish.is_empty() || req.publish_all) {
        sink.event(Event::Warning(
            "Published ports are discarded when using host network mode".into(),
        ));
        publish.clear();
    }
    if !req.network_aliases.is_empty() && mode != network::Mode::User {
        return Err(Error::invalid(
            "--network-alias is only supported on networks made by `burrow network create`",
        ));
    }
    if let Some(alias) = req
        .network_aliases
        .iter()
        .find(|x| !network::user::is_plain_name(x))
    {
        return Err(Error::invalid(format!("invalid --network-alias {alias:?}")));
    }
    Ok(container::NetworkOptions {
        mode: match mode {
            network::Mode::User => req.network.clone(),
            m => m.name().to_string(),
        },
        aliases: req.network_aliases.clone(),
        publish,
        publish_all,
        dns: req.dns.clone(),
        extra_hosts: req.add_host.clone(),
    })
}

/// Say once per boot and reason that a private network will have loopback
/// only, why, and what fixes it.
pub fn helper_notice(engine: &Engine, mode: &str, sink: &mut dyn Sink) {
    use crate::network::helper::{self, Outbound};
    use crate::network::Mode;
    let user_network = match Mode::parse(mode) {
        Ok(Mode::Private) => false,
        Ok(Mode::User) => true,
        _ => return,
    };
    let why = match helper::outbound(&engine.settings.helper_path) {
        Outbound::LoopbackOnly(why) => why,
        Outbound::Helper(_) => {
            // The last start could not share the user's keeper: said once
            // per reason, since every start is slower for it.
            let base = engine.store.paths.runtime_base();
            if let (false, Some(why)) = (user_network, crate::container::keeper::unusable(base)) {
                sink.event(Event::Notice {
                    name: "keeper-notice",
                    reason: why.clone(),
                    line: format!("burrow: the shared network is unavailable ({why}): each container on the default network starts a network helper of its own, which is slower"),
                });
            }
            return;
        }
    };
    // A user network without the tun device fails with its own fix.
    if user_network && matches!(why, helper::Why::NoTun { .. }) {
        return;
    }
    let Some(line) = why.notice() else { return };
    sink.event(Event::Notice {
        name: "network-notice",
        reason: why.key().to_string(),
        line,
    });
}

/// The container's seccomp filter must build on this host (an
/// architecture burrow has no table for is refused here, before anything
/// forks, rather than run unfiltered).
fn check_seccomp(security_opt: &[String], add: &[String], drop: &[String]) -> Result<()> {
    let opts = container::security::parse(security_opt).map_err(Error::invalid)?;
    let profile = match opts.seccomp {
        container::security::SeccompChoice::Unconfined => return Ok(()),
        container::security::SeccompChoice::Default => crate::sandbox::seccomp_default::profile(),
        container::security::SeccompChoice::Profile(p) => *p,
    };
    let caps = crate::sandbox::caps::resolve(add, drop).map_err(Error::invalid)?;
    match crate::sandbox::seccomp::Seccomp::build(Some(&profile), caps) {
        crate::sandbox::seccomp::Seccomp::Unusable(e) => Err(Error::invalid(e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies_as_docker() {
        let p = restart_policy("on-failure:2").unwrap();
        assert_eq!((p.name.as_str(), p.maximum_retry_count), ("on-failure", 2));
        assert!(p.restarts_after(1, 1) && !p.restarts_after(1, 2) && !p.restarts_after(0, 0));
        assert!(restart_policy("always").unwrap().restarts_after(0, 100));
        assert!(restart_policy("no").unwrap().is_none());
        for bad in [
            "sometimes",
            ":3",
            "on-failure:x",
            "always:2",
            "on-failure:-1",
        ] {
            assert!(restart_policy(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn health_flags_as_docker_makes_them() {
        let f = HealthFlags {
            cmd: Some("test -f /ok".into()),
            interval: Some("1s".into()),
            retries: Some(2),
            ..Default::default()
        };
        let h = health_flags(&f).unwrap().unwrap();
        assert_eq!(h.test, ["CMD-SHELL", "test -f /ok"]);
        assert_eq!((h.interval, h.timeout, h.retries), (1_000_000_000, 0, 2));
        assert_eq!(health_flags(&HealthFlags::default()).unwrap(), None);
        let none = HealthFlags {
            none: true,
            ..Default::default()
        };
        assert_eq!(health_flags(&none).unwrap().unwrap().test, ["NONE"]);
        let both = HealthFlags {
            none: true,
            interval: Some("1s".into()),
            ..Default::default()
        };
        assert!(health_flags(&both).is_err());
        for bad in ["1", "-1s", "x"] {
            let f = HealthFlags {
                timeout: Some(bad.into()),
                ..Default::default()
            };
            assert!(health_flags(&f).is_err(), "{bad}");
        }
        let short = Healthcheck {
            test: vec!["CMD".into(), "true".into()],
            interval: 10,
            ..Default::default()
        };
        assert!(check_healthcheck(Some(&short)).is_err());
        let odd = Healthcheck {
            test: vec!["SHELL".into(), "true".into()],
            ..Default::default()
        };
        assert!(check_healthcheck(Some(&odd)).is_err());
    }

    #[test]
    fn environment_keys_must_be_plain() {
        assert!(check_env("A=b c").is_ok());
        assert!(check_env("A").is_ok());
        assert!(check_env("=x").is_err());
        assert!(check_env("A B=x").is_err());
    }

    #[test]
    fn working_directories_must_be_absolute() {
        assert!(check_workdir(Some("/srv")).is_ok());
        assert!(check_workdir(None).is_ok());
        assert!(matches!(check_workdir(Some("srv")), Err(Error::Invalid(_))));
    }
}
