//! Containers once they exist: finding, listing (with Docker's filters),
//! inspecting, starting, stopping, killing, restarting, pausing, removing,
//! renaming, their processes (`top`), a reading of their counters
//! (`stats`), and pruning the stopped ones.

use std::time::{Duration, SystemTime};

use nix::sys::signal::Signal;

pub use super::stats::{net_dev, reading, stats, top, NetCounters, StatsReading, Top, TopError};

use super::filters::{earlier, Filters};
use super::{Engine, Error, Result};
use crate::container::{self, lifecycle, ContainerError, ContainerRecord, Status};
use crate::image::changes;
use crate::monitor;

/// The container `key` names (a name, a full id or a unique id prefix);
/// Docker's "No such container: key" when none does.
pub fn find(engine: &Engine, key: &str) -> Result<ContainerRecord> {
    container::find(&engine.store, key).map_err(not_found)
}

/// A container that does not exist is the engine's `NotFound`, with
/// Docker's words.
fn not_found(e: ContainerError) -> Error {
    match e {
        ContainerError::NoSuch(_) => Error::not_found(e),
        e => e.into(),
    }
}

/// Docker's name for a status, as `ps` and the API's `State` show it.
pub fn state_word(status: Status) -> &'static str {
    match status {
        Status::Created => "created",
        Status::Running => "running",
        Status::Paused => "paused",
        Status::Restarting => "restarting",
        Status::Exited => "exited",
    }
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct ListRequest {
    /// Stopped containers too (without it, only running, paused and
    /// restarting ones, unless a `status` filter asks for others).
    pub all: bool,
    pub filters: Filters,
    /// Only the last N created (of every state).
    pub last: Option<usize>,
    /// Measure each container's changes and image (walks every upper dir).
    pub size: bool,
}

/// The filters `list` knows.
const LIST_FILTERS: &[&str] = &[
    "id", "name", "label", "label!", "status", "ancestor", "exited", "before", "since", "volume",
    "network", "health",
];

/// What a container's changes take, and with its image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// Its writable layer (Docker's `SizeRw`).
    pub rw: u64,
    /// Its writable layer and its image (Docker's `SizeRootFs`).
    pub root_fs: u64,
}

/// One port of a listed container, as Docker's list has it: published
/// (with the host's address and port) or only exposed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub ip: Option<String>,
    pub private_port: u16,
    pub public_port: Option<u16>,
    /// tcp or udp.
    pub kind: String,
}

/// One listed container: the record as stored, and its live state.
#[derive(Debug, Clone)]
pub struct ContainerSummary {
    pub record: ContainerRecord,
    /// created, running, paused, restarting or exited.
    pub state: &'static str,
    /// Docker's status text: "Up 5 seconds", "Exited (0) 3 seconds ago".
    pub status: String,
    /// What it publishes now, then what it only exposes.
    pub ports: Vec<Port>,
    /// When asked for.
    pub size: Option<Size>,
}

/// The ports of `r`: each published binding, then each exposed port with
/// none.
fn ports(r: &ContainerRecord) -> Vec<Port> {
    let split = |key: &str| -> Option<(u16, String)> {
        let (port, kind) = key.split_once('/').unwrap_or((key, "tcp"));
        Some((port.parse().ok()?, kind.to_string()))
    };
    let mut out = Vec::new();
    for (key, bindings) in &r.network_settings.ports {
        let Some((private_port, kind)) = split(key) else {
            continue;
        };
        for b in bindings {
            out.push(Port {
                ip: Some(b.host_ip.clone()).filter(|ip| !ip.is_empty()),
                private_port,
                public_port: b.host_port.parse().ok(),
                kind: kind.clone(),
            });
        }
        if bindings.is_empty() {
            out.push(Port {
                ip: None,
                private_port,
                public_port: None,
                kind,
            });
        }
    }
    for key in &r.config.exposed_ports {
        if r.network_settings.ports.contains_key(key) {
            continue;
        }
        if let Some((private_port, kind)) = split(key) {
            out.push(Port {
                ip: None,
                private_port,
                public_port: None,
                kind,
            });
        }
    }
    out
}

/// The containers `req` asks for, newest first.
pub fn list(engine: &Engine, req: &ListRequest) -> Result<Vec<ContainerSummary>> {
    let f = &req.filters;
    f.check(LIST_FILTERS)?;
    let exited: Vec<i32> = f
        .values("exited")
        .map(|v| {
            v.parse()
                .map_err(|_| Error::invalid(format!("invalid filter 'exited={v}'")))
        })
        .collect::<Result<_>>()?;
    for v in f.values("status") {
        if !matches!(
            v,
            "created" | "running" | "paused" | "restarting" | "exited" | "removing" | "dead"
        ) {
            return Err(Error::invalid(format!(
                "invalid filter 'status={v}': created, restarting, running, removing, paused, exited or dead"
            )));
        }
    }
    for v in f.values("health") {
        if !matches!(v, "starting" | "healthy" | "unhealthy" | "none") {
            return Err(Error::invalid(format!(
                "invalid filter 'health={v}': starting, healthy, unhealthy or none"
            )));
        }
    }
    let store = &engine.store;
    let all = container::list(store)?;
    // `before` and `since` name containers; their creation times bound.
    let created_of = |key: &str| -> Result<String> { Ok(find(engine, key)?.created) };
    let before: Vec<String> = f.values("before").map(created_of).collect::<Result<_>>()?;
    let since: Vec<String> = f.values("since").map(created_of).collect::<Result<_>>()?;
    let ancestors: Vec<(&str, Option<String>)> = f
        .values("ancestor")
        .map(|v| (v, crate::image::catalog::resolve(store, v).ok()))
        .collect();
    // -n and -l pick among every container, as Docker's do.
    let every = req.all || req.last.is_some() || f.has("status") || f.has("exited");
    let mut out = Vec::new();
    for r in all {
        if out.len() >= req.last.unwrap_or(usize::MAX) {
            break;
        }
        let status = r.live_status(store);
        let state = state_word(status);
        if !every && !r.is_up(store) && !r.is_restarting(store) {
            continue;
        }
        let keep = f.matches("name", |v| r.name.contains(v.trim_start_matches('/')))
            && f.matches("status", |v| v == state)
            && f.matches("id", |v| r.id.starts_with(v))
            && (ancestors.is_empty()
                || ancestors
                    .iter()
                    .any(|(v, id)| ancestor(&r, v, id.as_deref())))
            && f.labels_match(&r.config.labels)
            && (exited.is_empty()
                || (status == Status::Exited && exited.contains(&r.state.exit_code)))
            && before.iter().all(|t| earlier(&r.created, t))
            && since.iter().all(|t| earlier(t, &r.created))
            && f.matches("volume", |v| {
                container::volumes::names_of(&r).any(|n| n == v)
                    || r.host_config
                        .mounts
                        .iter()
                        .any(|m| m.source == v || m.destination == v)
            })
            && f.matches("network", |v| {
                r.network_name() == v || r.network_settings.networks.contains_key(v)
            })
            && f.matches("health", |v| v == health_word(engine, &r));
        if !keep {
            continue;
        }
        let size = req.size.then(|| size_of(engine, &r));
        out.push(ContainerSummary {
            status: r.status_text(store),
            state,
            ports: ports(&r),
            size,
            record: r,
        });
    }
    Ok(out)
}

/// The container's health for the `health` filter: its status, or `none`
/// without a health check or before its first start.
fn health_word(engine: &Engine, r: &ContainerRecord) -> String {
    container::health::Schedule::of(r)
        .and_then(|_| container::health::load(&engine.store, &r.id))
        .map_or_else(|| "none".to_string(), |h| h.status)
}

/// Docker's `ancestor`: the image as the container was created from it
/// (its name as given, or the id of the image `value` names now).
fn ancestor(r: &ContainerRecord, value: &str, id: Option<&str>) -> bool {
    r.config.image == value || r.image.contains(value) || id == Some(r.image.as_str())
}

fn size_of(engine: &Engine, r: &ContainerRecord) -> Size {
    let upper = changes::size_as(
        &engine.store.container_dir(&r.id).join("upper"),
        &engine.mapping,
    );
    let image: u64 = r.layers.iter().map(|l| engine.store.layer_size(l)).sum();
    Size {
        rw: upper,
        root_fs: upper + image,
    }
}

/// Docker's `inspect` object of one container: the record with its live
/// state, and the paths Docker shows.
pub fn inspect(engine: &Engine, key: &str) -> Result<serde_json::Value> {
    inspect_record(engine, find(engine, key)?)
}

/// [`inspect`] of a record the caller already has.
pub fn inspect_record(engine: &Engine, r: ContainerRecord) -> Result<serde_json::Value> {
    let dir = engine.store.container_dir(&r.id);
    let mut v = serde_json::to_value(r.with_live_state(&engine.store))?;
    v["Driver"] = "overlay".into();
    v["ResolvConfPath"] = dir.join("resolv.conf").to_string_lossy().into();
    v["HostnamePath"] = dir.join("hostname").to_string_lossy().into();
    v["HostsPath"] = dir.join("hosts").to_string_lossy().into();
    v["LogPath"] = dir.join(container::LOG_FILE).to_string_lossy().into();
    // Docker lists the container's mounts at the top level too.
    v["Mounts"] = v["HostConfig"]["Mounts"].clone();
    if v["Mounts"].is_null() {
        v["Mounts"] = serde_json::json!([]);
    }
    Ok(v)
}

/// Start a container under its own monitor, without attaching. One that
/// is up, or between two runs of its restart policy, is left as it is.
pub fn start(engine: &Engine, key: &str) -> Result<()> {
    let rec = find(engine, key)?;
    // An API client may be waiting to attach to this start.
    super::attach::start(engine, &rec)
}

/// The container `key` names, if a process can be exec'd in it now: a
/// paused one would hold the new process stopped (Docker refuses too), a
/// stopped one has no namespaces to join.
pub fn exec_target(engine: &Engine, key: &str) -> Result<ContainerRecord> {
    let rec = find(engine, key)?;
    match rec.live_status(&engine.store) {
        Status::Running => Ok(rec),
        Status::Paused => Err(Error::conflict(format!(
            "container {} is paused, unpause the container before exec",
            rec.name
        ))),
        _ => Err(ContainerError::NotRunning(rec.name.clone()).into()),
    }
}

/// `healthcheck run`: probe the running container `key` now and record the
/// result as its monitor would. Returns whether the probe passed.
pub fn healthcheck_run(engine: &Engine, key: &str) -> Result<bool> {
    use container::health;
    let rec = find(engine, key)?;
    let Some(sched) = health::Schedule::of(&rec) else {
        return Err(Error::invalid(format!(
            "container {} has no defined healthcheck",
            rec.name
        )));
    };
    if rec.live_status(&engine.store) != Status::Running {
        return Err(Error::conflict(format!(
            "container {} is not running",
            rec.name
        )));
    }
    let single_id = !engine.mapping.is_range();
    let result = health::probe_now(&engine.store, &rec, &sched, single_id);
    let passed = result.exit_code == 0;
    let in_start = health::in_start_period(&sched, health::since_started(&rec));
    health::Recorder::new(&engine.store, &rec.id).record(
        &engine.store,
        &rec,
        result,
        in_start,
        sched.retries,
    );
    Ok(passed)
}

/// A signal by name (`TERM`, `SIGHUP`) or number.
pub fn signal(name: &str) -> Result<Signal> {
    crate::util::signal::parse_signal(name).map_err(Error::invalid)
}

/// How to stop a container.
#[derive(Debug, Clone, Default)]
pub struct StopRequest {
    /// Seconds before SIGKILL (Docker's default: 10).
    pub timeout: Option<u64>,
    /// The first signal; the image's StopSignal, else SIGTERM, when not
    /// given.
    pub signal: Option<String>,
}

/// Docker's default stop timeout.
const STOP_TIMEOUT: u64 = 10;

/// Docker's stop: the stop signal, then SIGKILL after `timeout` seconds.
pub fn stop(engine: &Engine, key: &str, timeout: Option<u64>) -> Result<()> {
    stop_with(
        engine,
        key,
        &StopRequest {
            timeout,
            signal: None,
        },
    )
}

pub fn stop_with(engine: &Engine, key: &str, req: &StopRequest) -> Result<()> {
    let sig = req.signal.as_deref().map(signal).transpose()?;
    let rec = find(engine, key)?;
    let timeout = Duration::from_secs(req.timeout.unwrap_or(STOP_TIMEOUT));
    lifecycle::stop(&engine.store, &rec, timeout, sig)?;
    super::events::container(engine, &rec, "stop", &[]);
    Ok(())
}

/// Send a signal (SIGKILL when not given) to a running container.
pub fn kill(engine: &Engine, key: &str, sig: Option<&str>) -> Result<()> {
    let sig = sig.map(signal).transpose()?.unwrap_or(Signal::SIGKILL);
    let rec = find(engine, key)?;
    lifecycle::signal(&engine.store, &rec, sig)?;
    let number = (sig as i32).to_string();
    super::events::container(engine, &rec, "kill", &[("signal", number)]);
    Ok(())
}

/// Stop, then start again under a new monitor.
pub fn restart(engine: &Engine, key: &str, timeout: Option<u64>) -> Result<()> {
    restart_with(
        engine,
        key,
        &StopRequest {
            timeout,
            signal: None,
        },
    )
}

pub fn restart_with(engine: &Engine, key: &str, req: &StopRequest) -> Result<()> {
    stop_with(engine, key, req)?;
    let rec = find(engine, key)?;
    monitor::launch(&engine.store, &rec, false).map_err(ContainerError::from)?;
    super::events::container(engine, &rec, "restart", &[]);
    Ok(())
}

pub fn pause(engine: &Engine, key: &str) -> Result<()> {
    let mut rec = find(engine, key)?;
    lifecycle::pause(&engine.store, &mut rec)?;
    super::events::container(engine, &rec, "pause", &[]);
    Ok(())
}

pub fn unpause(engine: &Engine, key: &str) -> Result<()> {
    let mut rec = find(engine, key)?;
    lifecycle::unpause(&engine.store, &mut rec)?;
    super::events::container(engine, &rec, "unpause", &[]);
    Ok(())
}

/// How to remove a container.
#[derive(Debug, Clone, Copy, Default)]
pub struct RemoveRequest {
    /// Kill a running container first.
    pub force: bool,
    /// Remove its anonymous volumes too.
    pub volumes: bool,
}

pub fn remove(engine: &Engine, key: &str, req: &RemoveRequest) -> Result<()> {
    let rec = find(engine, key)?;
    container::remove(&engine.store, &rec, &engine.mapping, req.force)?;
    if req.volumes {
        container::remove_anonymous_volumes(&engine.store, &engine.mapping, &rec)?;
    }
    super::events::container(engine, &rec, "destroy", &[]);
    Ok(())
}

/// Give a container a new name (checked first).
pub fn rename(engine: &Engine, key: &str, new: &str) -> Result<()> {
    container::validate_name(new)?;
    let mut rec = find(engine, key)?;
    lifecycle::rename(&engine.store, &rec, new)?;
    let old = std::mem::replace(&mut rec.name, new.to_string());
    super::events::container(engine, &rec, "rename", &[("oldName", old)]);
    Ok(())
}

/// What a prune removed: ids (or names) and the bytes they took.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    pub deleted: Vec<String>,
    pub space: u64,
}

/// Remove every stopped container the filters (`label`, `label!`, `until`)
/// select; directories an interrupted removal left go too.
pub fn prune(engine: &Engine, filters: &Filters) -> Result<Pruned> {
    filters.check(&["label", "label!", "until"])?;
    let until: Vec<SystemTime> = filters
        .values("until")
        .map(until_time)
        .collect::<Result<_>>()?;
    let store = &engine.store;
    let mut out = Pruned::default();
    for rec in container::list(store)? {
        if rec.is_up(store) || !filters.labels_match(&rec.config.labels) {
            continue;
        }
        let created = humantime::parse_rfc3339_weak(&rec.created).ok();
        if !until.iter().all(|u| created.is_some_and(|c| c < *u)) {
            continue;
        }
        let size = changes::size(&store.container_dir(&rec.id).join("upper"));
        if container::remove(store, &rec, &engine.mapping, false).is_ok() {
            super::events::container(engine, &rec, "destroy", &[]);
            out.deleted.push(rec.id);
            out.space += size;
        }
    }
    // Debris: directories whose record is gone (a --rm cleanup that was
    // killed half way). Not listed as containers; removed here.
    for dir in container::orphan_dirs(store)? {
        let _ = crate::store::remove_tree(&dir, &engine.mapping);
    }
    Ok(out)
}

/// Docker's `until`: a time (RFC 3339 or Unix seconds) or a duration
/// before now ("24h").
pub fn until_time(v: &str) -> Result<SystemTime> {
    if let Ok(secs) = v.parse::<u64>() {
        return Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
    }
    if let Ok(t) = humantime::parse_rfc3339_weak(v) {
        return Ok(t);
    }
    if let Ok(d) = humantime::parse_duration(v) {
        return Ok(SystemTime::now() - d);
    }
    Err(Error::invalid(format!("invalid filter 'until={v}'")))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::container::{ContainerConfig, HostConfig, NetworkSettings, State};
    use std::collections::BTreeMap;

    pub(in crate::engine) fn engine() -> (tempfile::TempDir, Engine) {
        let (d, store) = crate::store::temp_store();
        let settings = super::super::Settings {
            rootfs: crate::sandbox::RootfsChoice::Auto,
            systemd: crate::container::cgroup::SystemdScopes::Never,
            helper_path: String::new(),
            keeper: None,
            auth_files: crate::image::registry::credentials::AuthFiles::from_process(),
        };
        let mapping =
            crate::linux::userns::IdMapping::detect(std::path::Path::new("/etc")).single();
        (d, Engine::new(store, mapping, settings))
    }

    /// A stored container that never ran (`exit` None) or ran and ended.
    pub(in crate::engine) fn stored(
        engine: &Engine,
        name: &str,
        second: u32,
        exit: Option<i32>,
        labels: &[(&str, &str)],
    ) -> ContainerRecord {
        let mut state = State::default();
        if let Some(code) = exit {
            state.finish(code);
        }
        let rec = ContainerRecord {
            id: format!("{:02x}", second).repeat(32),
            name: name.into(),
            created: format!("2024-01-01T00:00:{second:02}Z"),
            image: "sha256:".to_string() + &"cd".repeat(32),
            path: "sh".into(),
            args: Vec::new(),
            config: ContainerConfig {
                image: "busybox".into(),
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
                ..Default::default()
            },
            host_config: HostConfig::default(),
            state,
            rootfs_mode: None,
            layers: Vec::new(),
            cgroup: None,
            network_settings: NetworkSettings::default(),
            restart_count: 0,
        };
        std::fs::create_dir_all(engine.store.container_dir(&rec.id)).unwrap();
        rec.save(&engine.store).unwrap();
        rec
    }

    fn names(engine: &Engine, all: bool, flags: &[&str]) -> Vec<String> {
        let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
        let req = ListRequest {
            all,
            filters: Filters::from_flags(&flags).unwrap(),
            ..Default::default()
        };
        list(engine, &req)
            .unwrap()
            .into_iter()
            .map(|s| s.record.name)
            .collect()
    }

    #[test]
    fn list_filters_as_docker_does() {
        let (_d, e) = engine();
        stored(&e, "web", 1, None, &[("tier", "front"), ("team", "a")]);
        stored(&e, "db", 2, Some(0), &[("tier", "back"), ("team", "a")]);
        stored(&e, "job", 3, Some(3), &[]);
        // Nothing runs: only -a or a status filter shows them.
        assert!(names(&e, false, &[]).is_empty());
        assert_eq!(names(&e, true, &[]), ["job", "db", "web"]);
        assert_eq!(names(&e, false, &["status=exited"]), ["job", "db"]);
        assert_eq!(
            names(&e, false, &["status=exited", "status=created"]),
            ["job", "db", "web"]
        );
        assert_eq!(
            names(&e, true, &["label=team=a", "label=tier"]),
            ["db", "web"]
        );
        assert_eq!(
            names(&e, true, &["label=team=a", "label=tier=back"]),
            ["db"]
        );
        assert_eq!(names(&e, false, &["exited=3"]), ["job"]);
        assert_eq!(names(&e, true, &["before=030303"]), ["db", "web"]);
        assert_eq!(names(&e, true, &["since=0101", "name=o"]), ["job"]);
        assert_eq!(names(&e, true, &["ancestor=busybox", "id=02"]), ["db"]);
        let summary = &list(
            &e,
            &ListRequest {
                all: true,
                last: Some(1),
                ..Default::default()
            },
        )
        .unwrap()[0];
        assert_eq!(
            (summary.state, summary.status.as_str()),
            ("exited", summary.status.as_str())
        );
        assert!(
            summary.status.starts_with("Exited (3)"),
            "{}",
            summary.status
        );
        let bad = ListRequest {
            filters: Filters::from_flags(&["colour=red".into()]).unwrap(),
            ..Default::default()
        };
        assert_eq!(
            list(&e, &bad).unwrap_err().to_string(),
            "invalid filter 'colour'"
        );
        assert!(
            matches!(find(&e, "nope"), Err(Error::NotFound(m)) if m.to_string() == "No such container: nope")
        );
    }

    #[test]
    fn ports_published_then_exposed() {
        let (_d, e) = engine();
        let mut r = stored(&e, "web", 1, None, &[]);
        r.config.exposed_ports = ["80/tcp".to_string(), "53/udp".to_string()].into();
        r.network_settings.ports.insert(
            "80/tcp".into(),
            vec![crate::network::PortBinding {
                host_ip: "127.0.0.1".into(),
                host_port: "8080".into(),
            }],
        );
        assert_eq!(
            ports(&r),
            [
                Port {
                    ip: Some("127.0.0.1".into()),
                    private_port: 80,
                    public_port: Some(8080),
                    kind: "tcp".into()
                },
                Port {
                    ip: None,
                    private_port: 53,
                    public_port: None,
                    kind: "udp".into()
                }
            ]
        );
    }

    #[test]
    fn until_forms() {
        assert_eq!(
            until_time("10").unwrap(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(10)
        );
        assert!(until_time("2024-01-01T00:00:00Z").is_ok());
        assert!(until_time("24h").unwrap() < SystemTime::now());
        assert!(until_time("soon").is_err());
    }
}
