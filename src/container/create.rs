//! Creating a container: the user's options merged over the image's config
//! (environment, command, healthcheck), the record and the directory it
//! lives in, the rootfs prepared.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::{
    cgroup, host_resolv_conf, keep_id, mounts, names, volumes, ContainerConfig, ContainerError,
    ContainerRecord, HostConfig, LogConfig, NetworkSettings, RestartPolicy, Result, State,
};
use crate::image::config::{set_env, Healthcheck, ImageRuntimeConfig};
use crate::linux::userns::IdMapping;
use crate::sandbox;
use crate::store::{self, Store};
use crate::util::human;

/// What the user asked for on top of the image (create/run flags), in
/// checked form: `engine::create` makes them from a front end's request
/// after checking every field (a build makes its RUN steps' own).
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub name: Option<String>,
    /// The image as the user typed it (shown by `ps`).
    pub image: String,
    pub image_id: String,
    /// CMD arguments from the command line; empty means the image's Cmd.
    pub cmd: Vec<String>,
    /// `KEY=VALUE` in order: env-file entries, then `-e` (later wins).
    pub env: Vec<String>,
    /// Replaces the image's Entrypoint (an empty list clears it).
    pub entrypoint: Option<Vec<String>>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub auto_remove: bool,
    pub interactive: bool,
    pub tty: bool,
    /// `--timeout`: kill the container after this many seconds.
    pub timeout: Option<u64>,
    pub mounts: Vec<mounts::MountSpec>,
    pub readonly_rootfs: bool,
    /// `--userns=keep-id`.
    pub keep_id: bool,
    /// `--userns=private`: a user namespace of its own even where the
    /// user's containers share one.
    pub private_userns: bool,
    /// `--init`.
    pub init: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub security_opt: Vec<String>,
    /// `--privileged`.
    pub privileged: bool,
    /// Resource limits, checked against what this host can enforce.
    pub resources: cgroup::Resources,
    /// `--label` and `--label-file`, merged over the image's labels.
    pub labels: BTreeMap<String, String>,
    /// `--network`, `-p`, `-P`, `--dns`, `--add-host`, parsed and checked.
    pub network: NetworkOptions,
    /// `--log-driver`, `--log-opt`, parsed and checked.
    pub log_config: LogConfig,
    /// `--restart`, parsed.
    pub restart_policy: RestartPolicy,
    /// `--health-*` (or the API's `Healthcheck`), merged over the image's
    /// field by field; `["NONE"]` turns it off.
    pub healthcheck: Option<crate::image::config::Healthcheck>,
    /// `--health-on-failure`, validated by the engine.
    pub health_on_failure: String,
}

/// The network flags of create/run.
#[derive(Debug, Clone, Default)]
pub struct NetworkOptions {
    pub mode: String,
    pub publish: Vec<crate::network::PortSpec>,
    pub publish_all: bool,
    pub dns: Vec<String>,
    pub extra_hosts: Vec<String>,
    /// `--network-alias`, on a user network only.
    pub aliases: Vec<String>,
}

/// Create a container record and its directory; nothing runs yet. Its
/// volumes are made (named ones that do not exist, an anonymous one for each
/// image `VOLUME` no mount covers) and empty ones seeded from the image.
pub fn create(store: &Store, mapping: &IdMapping, opts: &CreateOptions) -> Result<ContainerRecord> {
    let (image_cfg, rc) = crate::image::config::load(store, &opts.image_id)?;
    let mut config = merge_config(&rc, opts)?;
    if let Some(n) = &opts.name {
        names::validate(n)?;
    }
    let mut mounts = opts.mounts.clone();
    add_image_volumes(&rc, &mut mounts);
    let new_volumes = volumes::resolve(store, mapping, &mut mounts)?;
    // A create that fails leaves no anonymous volume behind.
    let undo = |e: ContainerError| {
        volumes::discard_anonymous(store, mapping, &new_volumes);
        e
    };
    let layers: Vec<PathBuf> = image_cfg
        .rootfs()
        .diff_ids()
        .iter()
        .rev()
        .map(|d| store.layer_fs(d))
        .collect();
    let seen_as = if opts.keep_id {
        crate::sandbox::user::keep_id(mapping)
    } else {
        mapping.clone()
    };
    for m in mounts.iter().filter(|m| m.kind == "volume" && !m.no_copy) {
        volumes::seed(store, &seen_as, &layers, &m.name, &m.destination)
            .map_err(|e| undo(e.into()))?;
    }

    let keep_id_files = keep_id_files(opts, mapping, &layers, &mounts, &config).map_err(undo)?;
    let id = store::random_hex(32);
    // Docker's default hostname is the short id.
    config.hostname = opts
        .hostname
        .clone()
        .unwrap_or_else(|| id[..12].to_string());
    // The directory is made in staging (named after the id, so others can
    // tell a create in progress from a dangling name) and renamed into
    // containers/ complete with its record: a killed create leaves only
    // staging and a name link, which the next burrow removes.
    let dir = store
        .staging_dir_for(CREATE_STAGING, &id)
        .map_err(|e| undo(e.into()))?;
    let name = match &opts.name {
        Some(n) => names::reserve(store, n, &id).map(|()| n.clone()),
        None => names::reserve_generated(store, &id),
    };
    let name = match name {
        Ok(n) => n,
        Err(e) => {
            let _ = fs::remove_dir_all(&dir);
            return Err(undo(e));
        }
    };
    let fail = |e: ContainerError, name: &str, id: &str| {
        // The name first: while it exists, staging or the container does.
        names::release(store, name, id);
        let _ = fs::remove_dir_all(&dir);
        undo(e)
    };

    let made = write_files(&dir, &config, keep_id_files.as_ref());
    if let Err(e) = made {
        return Err(fail(
            ContainerError::Create {
                path: dir.clone(),
                source: e,
            },
            &name,
            &id,
        ));
    }
    let (path, args) = match config.argv().split_first() {
        Some((p, a)) => (p.clone(), a.to_vec()),
        None => unreachable!("merge_config guarantees a command"),
    };
    let rec = ContainerRecord {
        id,
        name,
        created: human::now_rfc3339(),
        image: opts.image_id.clone(),
        path,
        args,
        config,
        host_config: host_config(opts, mounts),
        state: State::default(),
        rootfs_mode: None,
        layers: image_cfg.rootfs().diff_ids().clone(),
        cgroup: None,
        network_settings: network_settings(opts),
        restart_count: 0,
    };
    if let Err(e) = rec.save_in(store, &dir) {
        return Err(fail(e, &rec.name, &rec.id));
    }
    let dest = store.container_dir(&rec.id);
    if let Err(e) = fs::rename(&dir, &dest) {
        let e = ContainerError::Create {
            path: dest,
            source: e,
        };
        return Err(fail(e, &rec.name, &rec.id));
    }
    Ok(rec)
}

/// A volume for each of the image's VOLUME paths no mount covers.
fn add_image_volumes(rc: &ImageRuntimeConfig, mounts: &mut Vec<mounts::MountSpec>) {
    for path in &rc.volumes {
        let covered = mounts
            .iter()
            .any(|m| m.destination.trim_end_matches('/') == path.trim_end_matches('/'));
        // Paths from a pulled config are untrusted; the mount itself resolves
        // inside the root, and these two are never sensible targets.
        let sane = path.starts_with('/') && path != "/" && !path.split('/').any(|c| c == "..");
        if !covered && sane {
            mounts.push(mounts::anonymous_volume(path));
        }
    }
}

/// keep-id: the caller's passwd and group entries, made once here so
/// that what the container changes in them lasts across restarts.
fn keep_id_files(
    opts: &CreateOptions,
    mapping: &IdMapping,
    layers: &[PathBuf],
    mounts: &[mounts::MountSpec],
    config: &ContainerConfig,
) -> Result<Option<keep_id::EtcFiles>> {
    let host_user = opts
        .keep_id
        .then(|| keep_id::HostUser::lookup(mapping.uid, mapping.gid))
        .flatten();
    let Some(user) = host_user else {
        return Ok(None);
    };
    let (passwd, group) =
        keep_id::image_files(layers, mapping).map_err(ContainerError::ImageUsers)?;
    let targets: Vec<&str> = mounts.iter().map(|m| m.destination.as_str()).collect();
    Ok(Some(keep_id::etc_files(
        &user,
        &passwd,
        &group,
        &targets,
        &config.working_dir,
    )))
}

/// The container directory's own files: the overlay's upper and work
/// directories, hosts, hostname, resolv.conf, and keep-id's passwd and
/// group.
fn write_files(
    dir: &Path,
    config: &ContainerConfig,
    keep_id_files: Option<&keep_id::EtcFiles>,
) -> std::io::Result<()> {
    for d in ["upper", "work"] {
        fs::create_dir(dir.join(d))?;
    }
    fs::write(
        dir.join("hosts"),
        format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{}\n",
            config.hostname
        ),
    )?;
    fs::write(dir.join("hostname"), format!("{}\n", config.hostname))?;
    fs::write(dir.join("resolv.conf"), host_resolv_conf())?;
    if let Some(f) = keep_id_files {
        fs::write(dir.join("passwd"), &f.passwd)?;
        fs::write(dir.join("group"), &f.group)?;
    }
    Ok(())
}

/// The record's `HostConfig`: the options as Docker names them.
fn host_config(opts: &CreateOptions, mounts: Vec<mounts::MountSpec>) -> HostConfig {
    HostConfig {
        auto_remove: opts.auto_remove,
        timeout: opts.timeout,
        mounts,
        readonly_rootfs: opts.readonly_rootfs,
        init: opts.init,
        cap_add: opts.cap_add.clone(),
        cap_drop: opts.cap_drop.clone(),
        security_opt: opts.security_opt.clone(),
        privileged: opts.privileged,
        userns_mode: if opts.keep_id {
            "keep-id".into()
        } else if opts.private_userns {
            "private".into()
        } else {
            String::new()
        },
        resources: opts.resources.clone(),
        network_mode: if opts.network.mode.is_empty() {
            "private".into()
        } else {
            opts.network.mode.clone()
        },
        port_bindings: crate::network::bindings_of(&opts.network.publish),
        publish_all_ports: opts.network.publish_all,
        dns: opts.network.dns.clone(),
        extra_hosts: opts.network.extra_hosts.clone(),
        log_config: opts.log_config.clone(),
        restart_policy: opts.restart_policy.clone(),
    }
}

/// The record's network settings: a user network's endpoint with the
/// aliases asked for, none for the other modes.
fn network_settings(opts: &CreateOptions) -> NetworkSettings {
    NetworkSettings {
        networks: match crate::network::Mode::parse(&opts.network.mode) {
            Ok(crate::network::Mode::User) => [(
                opts.network.mode.clone(),
                crate::network::member::Endpoint {
                    aliases: opts.network.aliases.clone(),
                    ..Default::default()
                },
            )]
            .into(),
            _ => Default::default(),
        },
        ..Default::default()
    }
}

/// What a container's staging directory is called while it is created.
pub(crate) const CREATE_STAGING: &str = "create";

/// Docker's rules: CMD args replace Cmd; `--entrypoint` replaces Entrypoint
/// and drops the image's Cmd; Env is image, then env-file, then `-e`.
pub(super) fn merge_config(
    rc: &ImageRuntimeConfig,
    opts: &CreateOptions,
) -> Result<ContainerConfig> {
    let mut env = rc.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, format!("PATH={}", sandbox::DEFAULT_PATH));
    }
    for kv in &opts.env {
        set_env(&mut env, kv);
    }
    let (entrypoint, cmd) = match &opts.entrypoint {
        Some(ep) if ep.is_empty() => (None, Some(opts.cmd.clone())),
        Some(ep) => (Some(ep.clone()), Some(opts.cmd.clone())),
        None => (
            rc.entrypoint.clone(),
            if opts.cmd.is_empty() {
                rc.cmd.clone()
            } else {
                Some(opts.cmd.clone())
            },
        ),
    };
    let cfg = ContainerConfig {
        hostname: String::new(),
        user: opts.user.clone().unwrap_or_else(|| rc.user.clone()),
        env,
        cmd,
        entrypoint,
        working_dir: opts
            .workdir
            .clone()
            .unwrap_or_else(|| rc.working_dir.clone()),
        labels: {
            let mut l = rc.labels.clone();
            l.extend(opts.labels.clone());
            l
        },
        exposed_ports: rc.exposed_ports.clone(),
        stop_signal: rc.stop_signal.clone(),
        healthcheck: merge_healthcheck(rc.docker.healthcheck.as_ref(), opts.healthcheck.as_ref()),
        health_on_failure: opts.health_on_failure.clone(),
        shell: rc.docker.shell.clone(),
        image: opts.image.clone(),
        tty: opts.tty,
        open_stdin: opts.interactive,
    };
    if cfg.argv().is_empty() {
        return Err(ContainerError::NoCommand);
    }
    Ok(cfg)
}

/// Docker's merge of a container's health check over its image's: each
/// field the container leaves unset (an empty test, a zero duration or
/// count) is the image's.
pub(super) fn merge_healthcheck(
    image: Option<&Healthcheck>,
    user: Option<&Healthcheck>,
) -> Option<Healthcheck> {
    let Some(user) = user else {
        return image.cloned();
    };
    let mut h = user.clone();
    if let Some(i) = image {
        if h.test.is_empty() {
            h.test = i.test.clone();
        }
        let keep = |mine: &mut i64, theirs: i64| {
            if *mine == 0 {
                *mine = theirs;
            }
        };
        keep(&mut h.interval, i.interval);
        keep(&mut h.timeout, i.timeout);
        keep(&mut h.start_period, i.start_period);
        keep(&mut h.start_interval, i.start_interval);
        keep(&mut h.retries, i.retries);
    }
    Some(h)
}
