//! The supervisor of a container: the one function that starts it and
//! keeps its record truthful, for every front end (the foreground `run`, a
//! monitor). Start → record Running and write the pid file → wait → remove
//! the cgroup → record the exit → remove the pid file.
//!
//! The order of the last two is the rule `ps` relies on: a record that says
//! running while its pid file is gone means the supervisor died (`ps` shows
//! `Exited (137)`), and a pid file that names a dead PID 1 means the exit is
//! about to be recorded. The exit is written into a freshly read record, so
//! what others changed meanwhile (`pause`) is kept.

use nix::sys::signal::{kill, Signal};

use super::{
    build_spec, cgroup, record_start_failure, write_etc_files, ContainerRecord, Result, State,
};
use crate::exit;
use crate::linux::userns::IdMapping;
use crate::network;
use crate::sandbox::{self, Failure, RootfsChoice, StartError, Started, Stdio, Step};

/// The network helper's messages, in the container's directory.
pub const HELPER_LOG: &str = "network.log";
use crate::store::Store;

/// How the front end waits for the container.
pub trait Watch {
    /// PID 1 runs and the record does not say so yet: take what it handed
    /// over (a monitor receives the pty of a `-t` container). An error ends
    /// the container and is recorded as a start failure.
    fn started(&mut self, _started: &Started) -> std::result::Result<(), Failure> {
        Ok(())
    }

    /// The container is recorded as running: wait until it ends.
    fn wait(&mut self, started: Started, rec: &ContainerRecord) -> Ended;
}

/// How a container ended.
#[derive(Debug, Clone)]
pub struct Ended {
    /// PID 1's exit code (128 + signal when killed).
    pub code: i32,
    /// Why the supervisor ended it, for `State.Error` (`--timeout`).
    pub error: Option<String>,
    /// Writes that failed while it ran (its log), reported with its exit.
    pub problems: Vec<String>,
}

/// What the front end asks of the supervisor.
#[derive(Debug, Clone)]
pub struct Supervision {
    pub rootfs: RootfsChoice,
    /// Whether a delegated cgroup may be asked of the user's systemd.
    pub scopes: cgroup::SystemdScopes,
    /// PID 1's stdio.
    pub stdio: Stdio,
    /// Record the container as running and write its pid file. A foreground
    /// `run --rm` skips both: nothing can attach to it, its record is gone
    /// the moment it ends, and the two writes sit on the path `run --rm`'s
    /// startup time is measured on.
    pub list_running: bool,
    /// Where network helpers are found, and whether the keeper may serve.
    pub net: network::Access,
}

/// Whether `rec` may join the keeper's user namespace: it is on the
/// default network or a user network (a helper named with `--network
/// pasta` is its own), and maps the caller's whole range as the keeper
/// does (not keep-id, not a private user namespace asked for).
fn shares_keeper(rec: &ContainerRecord, mapping: &IdMapping) -> bool {
    matches!(
        rec.network_mode(),
        network::Mode::Private | network::Mode::User
    ) && mapping.is_range()
        && rec.host_config.userns_mode.is_empty()
}

/// The user networks `rec` is on, its own (`--network`) first, then those
/// it was connected to (a container on the default network may be on user
/// networks too), each with the names its DNS answers for it there (name
/// and aliases). Each must still exist (one cannot be removed while a
/// container names it, but a record may predate that rule).
fn user_networks(store: &Store, rec: &ContainerRecord) -> std::result::Result<UserNets, Failure> {
    let own = rec.user_network();
    if own.is_none() && rec.network_mode() != network::Mode::Private {
        return Ok(Vec::new());
    }
    let others = rec
        .network_settings
        .networks
        .keys()
        .map(String::as_str)
        .filter(|k| Some(*k) != own && *k != super::keeper::NETWORK);
    own.into_iter()
        .chain(others)
        .map(|name| {
            let net = network::user::get(store, name)
                .map_err(|e| Failure::new(Step::Network, e.to_string(), exit::BURROW))?;
            let aliases = rec
                .network_settings
                .networks
                .get(name)
                .map(|e| e.aliases.as_slice())
                .unwrap_or_default();
            let names = std::iter::once(rec.name.clone())
                .chain(aliases.iter().cloned())
                .collect();
            Ok((net, names))
        })
        .collect()
}

/// Start `rec`, wait for it through `watch`, and record how it ended.
/// Returns PID 1's exit code.
pub fn supervise(
    store: &Store,
    rec: &mut ContainerRecord,
    mapping: &IdMapping,
    how: Supervision,
    watch: &mut impl Watch,
) -> Result<i32> {
    // Held until the container is recorded as running: an `rm -f` waits
    // for that, then finds it up and kills it, or removed it before and
    // the start finds nothing to start.
    let lock = store.lock_container(&rec.id)?;
    if lock.is_none() || !ContainerRecord::path(store, &rec.id).is_file() {
        return Err(super::ContainerError::NoSuch(rec.id.clone()));
    }
    let mut spec = build_spec(store, rec, mapping, how.rootfs, how.stdio);
    if spec.process.init {
        spec.process.init_program = crate::sandbox::init::find(&how.net.helper_path);
    }
    let NetPlan {
        user_nets,
        on_default,
        user_net,
        aliases,
        networking: Networking {
            own: helper,
            shared,
        },
    } = plan_network(store, rec, mapping, &how.net)
        .map_err(|f| refuse(store, rec, mapping, f.into()))?;
    // On the keeper, a user network is one of its bridges; else the
    // network's switch, which serves one network per container.
    let switched = if shared.is_some() {
        None
    } else {
        user_net.as_ref()
    };
    let mut joining = Joining {
        store,
        helper,
        switched,
        log: spec.dir.join(HELPER_LOG),
        id: rec.id.clone(),
        name: rec.name.clone(),
        aliases: &aliases,
        running: None,
        member: None,
    };
    let needed = joining.helper.is_some() || switched.is_some();
    let mut join = |pid1| joining.join(pid1);
    let hook: Option<sandbox::BeforeSetup> = needed.then_some(&mut join);
    // The container's cgroup, before anything forks; we stay outside it.
    let links = shared
        .as_ref()
        .map(|j: &sandbox::link::Join| j.links.clone())
        .unwrap_or_default();
    spec.join = shared;
    let started = cgroup::for_start(rec, how.scopes).and_then(|cg| {
        spec.cgroup = cg;
        sandbox::start_with(&spec, hook).inspect_err(|_| {
            cgroup::discard(&spec);
        })
    });
    // The inner process holds the keeper's locks now; ours must go, so that
    // they are released when it ends.
    spec.join = None;
    let mut started = started.map_err(|e| refuse(store, rec, mapping, e))?;
    if let Err(failure) = watch.started(&started) {
        let e = abandon(started, &spec, rec, failure);
        return Err(refuse(store, rec, mapping, e));
    }

    rec.rootfs_mode = Some(started.rootfs);
    note_copy_fallback(store, how.rootfs, started.rootfs);
    record_addresses(
        rec,
        on_default,
        &links,
        &user_nets,
        user_net.as_ref(),
        joining.member.as_ref(),
    );
    rec.cgroup = spec.cgroup.as_ref().map(|p| p.dir.clone());
    let mut trouble = if how.list_running {
        record_running(store, rec, started.pid1)
    } else {
        Ok(())
    };
    // Only now may a `--rm` container's end remove the record: one that
    // ended already must not be written again after that.
    started.recorded();
    drop(lock);
    super::events::record(store, rec, "start", &[]);

    let ended = watch.wait(started, rec);
    // The container is gone from its network (address, names) before its
    // end is recorded: whoever waits for that end sees the names gone.
    if let Some(m) = joining.member {
        m.leave();
    }
    let oom_killed = cgroup::discard(&spec);
    trouble = trouble.and(record_end(store, rec, &ended, oom_killed));
    // The helper outlives the container by the time it takes to record the
    // exit: whoever waits for the container sees it recorded sooner.
    if let Some(r) = joining.running {
        r.stop();
    }
    trouble?;
    Ok(ended.code)
}

/// The user networks a container is on, each with the names its DNS
/// answers for it there.
type UserNets = Vec<(network::user::Network, Vec<String>)>;

/// Where a container is networked, worked out before it starts.
struct NetPlan {
    user_nets: UserNets,
    /// On the default network: its bridge comes first (the default
    /// route), then the user networks it was connected to.
    on_default: bool,
    /// Its own user network (`--network NAME`).
    user_net: Option<network::user::Network>,
    /// Its aliases there.
    aliases: Vec<String>,
    networking: Networking,
}

/// The networks `rec` is on and how it reaches them; a failure when it
/// cannot reach them all.
fn plan_network(
    store: &Store,
    rec: &ContainerRecord,
    mapping: &IdMapping,
    access: &network::Access,
) -> std::result::Result<NetPlan, Failure> {
    let user_nets = user_networks(store, rec)?;
    let on_default = rec.network_mode() == network::Mode::Private;
    let user_net = rec
        .user_network()
        .and(user_nets.first().map(|(n, _)| n.clone()));
    let aliases: Vec<String> = user_net
        .as_ref()
        .and_then(|n| rec.network_settings.networks.get(&n.name))
        .map(|e| e.aliases.clone())
        .unwrap_or_default();
    let networking = networking(store, rec, mapping, access, &user_nets, on_default)?;
    // Without the keeper, a container reaches one network: through its
    // helper, or its user network's switch.
    let without_keeper = usize::from(on_default) + user_nets.len();
    if networking.shared.is_none() && without_keeper > 1 {
        return Err(keeper_needed(rec, without_keeper));
    }
    Ok(NetPlan {
        user_nets,
        on_default,
        user_net,
        aliases,
        networking,
    })
}

/// What joins a container to its networks once PID 1 exists (it targets
/// PID 1's namespace) and before PID 1 sets itself up, so the command
/// starts with its network ready; and what that leaves to end with it.
struct Joining<'a> {
    store: &'a Store,
    /// The container's own network helper.
    helper: Option<network::Helper>,
    /// The user network whose switch it joins.
    switched: Option<&'a network::user::Network>,
    /// The helper's messages.
    log: std::path::PathBuf,
    id: String,
    name: String,
    aliases: &'a [String],
    /// The helper, started.
    running: Option<network::helper::Running>,
    /// On a user network's switch, the container's port: held while it
    /// runs, dropped (the leave) once it has ended.
    member: Option<network::member::Membership>,
}

impl Joining<'_> {
    fn join(&mut self, pid1: nix::unistd::Pid) -> std::result::Result<(), Failure> {
        let net_failure =
            |e: network::NetworkError| Failure::new(Step::Network, e.to_string(), exit::BURROW);
        if let Some(h) = &self.helper {
            self.running = Some(h.start(pid1.as_raw(), &self.log).map_err(net_failure)?);
        }
        if let Some(n) = self.switched {
            let who = network::member::Joiner {
                id: &self.id,
                name: &self.name,
                aliases: self.aliases,
                hosts_file: self.store.container_dir(&self.id).join("hosts"),
                pid1: pid1.as_raw(),
            };
            let store = self.store;
            let m = network::member::join(&store.paths.runtime, store.root(), n, &who)
                .map_err(net_failure)?;
            self.member = Some(m);
        }
        Ok(())
    }
}

/// A failed start recorded as such; the error to return.
fn refuse(
    store: &Store,
    rec: &mut ContainerRecord,
    mapping: &IdMapping,
    e: StartError,
) -> super::ContainerError {
    record_start_failure(store, rec, mapping, &e);
    e.into()
}

/// How a container reaches its networks: the helper it starts for itself
/// (none when the keeper serves it, or with loopback only), and what it
/// joins of the keeper's.
struct Networking {
    own: Option<network::Helper>,
    shared: Option<sandbox::link::Join>,
}

/// The network helper for a private namespace (none: loopback only), and
/// the /etc files that name its resolver. The default network and user
/// networks go through the user's keeper when they can: the container
/// joins its namespaces and needs no helper (nor switch) of its own.
fn networking(
    store: &Store,
    rec: &ContainerRecord,
    mapping: &IdMapping,
    access: &network::Access,
    user_nets: &UserNets,
    on_default: bool,
) -> std::result::Result<Networking, Failure> {
    let found = network::helper::find(rec.network_mode(), &access.helper_path)
        .map_err(|e| Failure::new(Step::Network, e.to_string(), exit::BURROW))?;
    let mut shared = None;
    // The container's own helper, the one that serves it, and the
    // resolver its resolv.conf names.
    let mut resolver = found.as_ref().map(|h| h.kind.dns_address().to_string());
    let (own, named) = match (found, access.keeper) {
        (Some(helper), Some(idle)) if shares_keeper(rec, mapping) => {
            let user: Vec<super::keeper::OnNetwork> = user_nets
                .iter()
                .map(|(network, names)| super::keeper::OnNetwork { network, names })
                .collect();
            let places = super::keeper::Places {
                default: on_default,
                user: &user,
            };
            let joined = super::keeper::join(store, mapping, &helper, &rec.id, places, idle)
                .map_err(|e| Failure::new(Step::Network, e.to_string(), exit::BURROW))?;
            match joined {
                Some((joined, kind)) => {
                    // The holder's responder on a user network's
                    // gateway, or the helper's resolver.
                    let first_user = usize::from(on_default);
                    resolver = Some(match joined.links.get(first_user) {
                        Some(l) if !user.is_empty() => l.gateway.to_string(),
                        _ => kind.dns_address().to_string(),
                    });
                    shared = Some(joined);
                    (None, Some(network::Helper { kind, ..helper }))
                }
                None => (Some(helper.clone()), Some(helper)),
            }
        }
        (h, _) => (h.clone(), h),
    };
    write_etc_files(store, rec, named.as_ref(), resolver.as_deref())
        .map_err(|e| Failure::io(Step::Network, &e, exit::BURROW))?;
    Ok(Networking { own, shared })
}

/// Why a container on `networks` networks cannot start: without the
/// keeper it reaches one network only (through its helper or its user
/// network's switch).
fn keeper_needed(rec: &ContainerRecord, networks: usize) -> Failure {
    Failure::new(
        Step::Network,
        format!(
            "container {} is on {} networks: more than one needs the user's keeper (a subordinate id range and an open /dev/net/tun; not BURROW_KEEPER=off)",
            rec.name,
            networks
        ),
        exit::BURROW,
    )
}

/// A started container its front end could not take: unusable without
/// what it should have handed over, it is ended and its cgroup removed.
/// The start's failure.
fn abandon(
    started: Started,
    spec: &sandbox::Spec,
    rec: &ContainerRecord,
    failure: Failure,
) -> StartError {
    let _ = kill(started.pid1, Signal::SIGKILL);
    let _ = started.wait_relaying_signals();
    cgroup::discard(spec);
    StartError {
        failure,
        cleaned_up: rec.host_config.auto_remove,
    }
}

/// `rec` recorded as running PID 1 `pid1`.
fn record_running(store: &Store, rec: &mut ContainerRecord, pid1: nix::unistd::Pid) -> Result<()> {
    rec.state = State::running(pid1.as_raw());
    // A health check says `starting` from the moment the record says
    // running, as Docker's does: a client reads it at once (Compose's
    // `service_healthy` takes a container without it for one with no
    // health check), before the monitor's prober has begun.
    let checked = rec.config.healthcheck.as_ref();
    if checked.is_some_and(super::health::state::probes) {
        super::health::reset(store, &rec.id);
    }
    // The pid file first: a record that says running without one means
    // its supervisor died (see the module comment), and a reader
    // between the two writes would report a kill.
    let _ = rec.write_pid_file(store);
    let saved = rec.save(store);
    if saved.is_err() {
        // A container no record shows must not run on.
        let _ = kill(pid1, Signal::SIGKILL);
    }
    saved
}

/// A start that fell back to copying the rootfs: the store's probe said
/// overlayfs (or fuse-overlayfs) mounts, this start said not; later starts
/// copy without trying, and the next command says so.
fn note_copy_fallback(store: &Store, choice: RootfsChoice, got: sandbox::RootfsMode) {
    if got != sandbox::RootfsMode::Copy {
        return;
    }
    match choice {
        RootfsChoice::Auto => super::rootfs::record_start_fallback(
            store,
            "overlayfs failed: the overlay mount was refused",
        ),
        RootfsChoice::FuseOrCopy => {
            super::rootfs::record_start_fallback(store, "fuse-overlayfs failed to mount")
        }
        RootfsChoice::Force(_) => {}
    }
}

/// The container's addresses in its network settings: on the keeper's
/// bridges (`links`: the default network's first, then its user networks'
/// in order) and on a user network's switch (`member`).
fn record_addresses(
    rec: &mut ContainerRecord,
    on_default: bool,
    links: &[sandbox::link::Link],
    user_nets: &UserNets,
    user_net: Option<&network::user::Network>,
    member: Option<&network::member::Membership>,
) {
    let ns = &mut rec.network_settings;
    let mut links = links.iter();
    if on_default {
        if let Some(link) = links.next() {
            ns.networks.insert(
                super::keeper::NETWORK.into(),
                super::keeper::endpoint(link, super::keeper::NETWORK, &[]),
            );
            ns.ip_address = link.address.to_string();
            ns.ip_prefix_len = link.prefix;
            ns.gateway = link.gateway.to_string();
        }
    }
    for ((n, _), link) in user_nets.iter().zip(links) {
        let aliases = ns
            .networks
            .get(&n.name)
            .map(|e| e.aliases.clone())
            .unwrap_or_default();
        ns.networks.insert(
            n.name.clone(),
            super::keeper::endpoint(link, &n.id, &aliases),
        );
    }
    if let (Some(n), Some(m)) = (user_net, member) {
        rec.network_settings
            .networks
            .insert(n.name.clone(), m.endpoint.clone());
    }
}

/// How the container ended, in a freshly read record (unless it removes
/// itself), then its pid file removed and its events; the record's write.
fn record_end(
    store: &Store,
    rec: &mut ContainerRecord,
    ended: &Ended,
    oom_killed: bool,
) -> Result<()> {
    let mut saved = Ok(());
    // `rm -f` may have removed the container meanwhile: then there is
    // nothing left to record, and no directory to write in.
    let latest = match ContainerRecord::load(store, &rec.id) {
        Err(super::ContainerError::NoSuch(_)) => None,
        r => Some(r.unwrap_or_else(|_| rec.clone())),
    };
    if let (false, Some(mut latest)) = (rec.host_config.auto_remove, latest) {
        latest.state.finish(ended.code);
        latest.state.oom_killed = oom_killed;
        latest.cgroup = None;
        latest.network_settings.clear_running();
        if let Some(e) = &ended.error {
            latest.state.error = e.clone();
        }
        // Kept even when the disk is full (see `save_exit`).
        saved = latest.save_exit(store, &ended.problems);
        *rec = latest;
    }
    // After the record: see the module comment.
    let _ = std::fs::remove_file(store.pid_file(&rec.id));
    super::events::record(store, rec, "die", &[("exitCode", ended.code.to_string())]);
    if rec.host_config.auto_remove {
        super::events::record(store, rec, "destroy", &[]);
    }
    saved
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::{health, Status};
    use crate::image::config::Healthcheck;
    use crate::store::events::Journal;
    use nix::unistd::Pid;

    /// No process has it (beyond any pid_max), so nothing is signalled.
    const NO_PID: i32 = i32::MAX - 1;

    fn checked(store: &Store) -> ContainerRecord {
        let mut rec = ContainerRecord::saved_for_test(store, "checked");
        rec.config.healthcheck = Some(Healthcheck {
            test: vec!["CMD".into(), "true".into()],
            ..Default::default()
        });
        rec.save(store).unwrap();
        rec
    }

    fn actions(store: &Store) -> Vec<String> {
        Journal::open(store, true)
            .1
            .into_iter()
            .map(|e| e.action)
            .collect()
    }

    fn ended(code: i32) -> Ended {
        Ended {
            code,
            error: None,
            problems: Vec::new(),
        }
    }

    #[test]
    fn a_start_records_running_with_its_pid_file_and_the_health_starting() {
        let (_d, store) = crate::store::temp_store();
        let mut rec = checked(&store);
        // The last run ended unhealthy.
        let mut last = health::Recorder::new(&store, &rec.id);
        let failed = health::ProbeResult {
            exit_code: 1,
            ..Default::default()
        };
        last.add(failed, false, 1);
        assert_eq!(
            health::load(&store, &rec.id).unwrap().status,
            health::UNHEALTHY
        );
        record_running(&store, &mut rec, Pid::from_raw(NO_PID)).unwrap();
        let saved = ContainerRecord::load(&store, &rec.id).unwrap();
        assert_eq!(
            (saved.state.status, saved.state.pid),
            (Status::Running, NO_PID)
        );
        assert_eq!(saved.state.started_at, rec.state.started_at);
        assert_eq!(saved.state.finished_at, "0001-01-01T00:00:00Z");
        assert!(store.pid_file(&rec.id).exists());
        let h = health::load(&store, &rec.id).unwrap();
        assert_eq!((h.status.as_str(), h.failing_streak), (health::STARTING, 0));
        assert_eq!(h.log.len(), 1, "the results are kept");
        // Without a health check there is no health to show.
        let mut plain = ContainerRecord::saved_for_test(&store, "plain");
        record_running(&store, &mut plain, Pid::from_raw(NO_PID)).unwrap();
        assert!(health::load(&store, &plain.id).is_none());
    }

    #[test]
    fn an_end_is_written_into_the_latest_record() {
        let (_d, store) = crate::store::temp_store();
        let mut rec = ContainerRecord::saved_for_test(&store, "ends");
        rec.cgroup = Some("/sys/fs/cgroup/x".into());
        rec.network_settings.ip_address = "10.0.0.2".into();
        record_running(&store, &mut rec, Pid::from_raw(NO_PID)).unwrap();
        // Meanwhile a rename and a pause.
        let mut other = ContainerRecord::load(&store, &rec.id).unwrap();
        other.name = "renamed".into();
        other.state.pause("freezer");
        other.save(&store).unwrap();
        let how = Ended {
            code: 137,
            error: Some("killed after --timeout 1s".into()),
            problems: Vec::new(),
        };
        record_end(&store, &mut rec, &how, true).unwrap();
        let saved = ContainerRecord::load(&store, &rec.id).unwrap();
        for r in [&rec, &saved] {
            assert_eq!(r.name, "renamed");
            assert_eq!((r.state.status, r.state.paused), (Status::Exited, false));
            assert_eq!((r.state.exit_code, r.state.oom_killed), (137, true));
            assert!(r.state.finished_at >= r.state.started_at, "{:?}", r.state);
            assert_eq!(r.state.error, "killed after --timeout 1s");
            assert!(r.cgroup.is_none() && r.network_settings.ip_address.is_empty());
        }
        assert!(!store.pid_file(&rec.id).exists());
        assert_eq!(actions(&store), ["die"]);
    }

    #[test]
    fn the_problems_of_a_run_are_its_error() {
        let (_d, store) = crate::store::temp_store();
        let mut rec = ContainerRecord::saved_for_test(&store, "full");
        record_running(&store, &mut rec, Pid::from_raw(NO_PID)).unwrap();
        let mut how = ended(0);
        how.problems = vec!["writing the log: No space left on device".into()];
        record_end(&store, &mut rec, &how, false).unwrap();
        let saved = ContainerRecord::load(&store, &rec.id).unwrap();
        assert_eq!(saved.state.error, how.problems[0]);
        assert_eq!(saved.exit_problems(&store), how.problems);
    }

    #[test]
    fn a_removed_container_s_end_writes_no_record() {
        // `--rm`: the sandbox removed the record before the exit came.
        let (_d, store) = crate::store::temp_store();
        let mut rec = ContainerRecord::saved_for_test(&store, "gone");
        rec.host_config.auto_remove = true;
        record_running(&store, &mut rec, Pid::from_raw(NO_PID)).unwrap();
        std::fs::remove_file(ContainerRecord::path(&store, &rec.id)).unwrap();
        record_end(&store, &mut rec, &ended(0), false).unwrap();
        assert!(!ContainerRecord::path(&store, &rec.id).exists());
        assert!(!store.pid_file(&rec.id).exists());
        assert_eq!(actions(&store), ["die", "destroy"]);
        // `rm -f` while it ran: its directory is gone, and stays gone.
        let (_d, store) = crate::store::temp_store();
        let mut rec = ContainerRecord::saved_for_test(&store, "forced");
        record_running(&store, &mut rec, Pid::from_raw(NO_PID)).unwrap();
        std::fs::remove_dir_all(store.container_dir(&rec.id)).unwrap();
        record_end(&store, &mut rec, &ended(137), false).unwrap();
        assert!(!store.container_dir(&rec.id).exists());
        assert!(!store.pid_file(&rec.id).exists());
        assert_eq!(actions(&store), ["die"]);
    }

    #[test]
    fn the_addresses_of_a_run_are_recorded_and_cleared_at_its_end() {
        let (_d, store) = crate::store::temp_store();
        let mut rec = ContainerRecord::saved_for_test(&store, "addressed");
        let front: network::user::Network = serde_json::from_value(serde_json::json!({
            "Name": "front", "Id": "f1", "Created": "", "Scope": "local",
            "Driver": "bridge", "EnableIPv6": false,
            "IPAM": {"Driver": "default", "Config": []},
            "Internal": false, "Labels": {},
        }))
        .unwrap();
        let aliased = network::member::Endpoint {
            aliases: vec!["web".into()],
            ..Default::default()
        };
        rec.network_settings
            .networks
            .insert("front".into(), aliased);
        let link = |last: u8| sandbox::link::Link {
            address: [10, last, 0, 2].into(),
            prefix: 24,
            gateway: [10, last, 0, 1].into(),
            bridge: String::new(),
            make_bridge: false,
            mtu: 1500,
            mac: [2, 0, 0, 0, 0, last],
        };
        let user_nets: UserNets = vec![(front, vec!["addressed".into()])];
        record_addresses(&mut rec, true, &[link(1), link(2)], &user_nets, None, None);
        let ns = &rec.network_settings;
        assert_eq!((ns.ip_address.as_str(), ns.ip_prefix_len), ("10.1.0.2", 24));
        assert_eq!(ns.gateway, "10.1.0.1");
        assert_eq!(
            ns.networks[super::super::keeper::NETWORK].ip_address,
            "10.1.0.2"
        );
        let on_front = &ns.networks["front"];
        assert_eq!(
            (on_front.ip_address.as_str(), on_front.network_id.as_str()),
            ("10.2.0.2", "f1")
        );
        assert_eq!(on_front.aliases, ["web"], "the aliases stay");
        rec.network_settings.clear_running();
        let ns = &rec.network_settings;
        assert!(ns.ip_address.is_empty() && ns.gateway.is_empty());
        assert!(ns.networks["front"].ip_address.is_empty());
        assert_eq!(ns.networks["front"].aliases, ["web"]);
    }
}
