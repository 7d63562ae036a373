//! The whole host and store: what burrow can do here (`info`: user
//! namespaces, the id mapping, the rootfs mode, cgroups, the network
//! helper, the store) and what the store's images, containers and volumes
//! take (`df`). Front ends render both.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::json;

use super::{Engine, Result};
use crate::container::cgroup::Source;
use crate::container::{self, volumes, ContainerRecord, Status};
use crate::image::catalog::{self, ImageSummary};
use crate::image::changes;
use crate::image::usage::{self, Piece};
use crate::linux::cgroup::{self, CgroupInfo};
use crate::linux::userns::{self, IdRange};
use crate::network::helper::{self, Outbound, Why};
use crate::sandbox::{RootfsChoice, RootfsMode};

/// Whether user namespaces work here, and if not, why.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UserNamespaces {
    pub works: bool,
    pub error: Option<String>,
}

/// A range of subordinate ids.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Range {
    pub start: u32,
    pub count: u32,
}

impl From<IdRange> for Range {
    fn from(r: IdRange) -> Self {
        Range {
            start: r.start,
            count: r.count,
        }
    }
}

/// The caller's id mapping.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Mapping {
    pub uid: u32,
    pub gid: u32,
    pub sub_uids: Option<Range>,
    pub sub_gids: Option<Range>,
    pub newuidmap: Option<PathBuf>,
    pub newgidmap: Option<PathBuf>,
    /// "range" or "single".
    pub mode: &'static str,
}

/// What `info` finds, with Docker's names for what it shares with
/// `docker info` (templates written against it work).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Info {
    pub kernel: String,
    pub user_namespaces: UserNamespaces,
    pub id_mapping: Mapping,
    /// How containers get their root filesystem: overlay, copy,
    /// fuse-overlayfs, or unknown.
    pub rootfs: &'static str,
    pub rootfs_reason: Option<String>,
    pub rootfs_file_system: Option<String>,
    /// `BURROW_ROOTFS` forces the mode.
    #[serde(skip)]
    pub rootfs_forced: bool,
    pub cgroup: CgroupInfo,
    pub container_cgroups: Source,
    pub network_helper: String,
    pub network_outbound: serde_json::Value,
    /// The user's keeper of the default network, as it is now.
    pub keeper: String,
    pub store: PathBuf,
    pub runtime: PathBuf,
    /// Why the runtime directory is where it is.
    pub runtime_reason: String,
    /// Where `burrow system service` listens by default: the value of
    /// `DOCKER_HOST` for docker, Compose, docker-py and Testcontainers.
    pub docker_host: String,
    /// Whether a service answers there now.
    pub docker_host_listening: bool,
    pub kernel_version: String,
    #[serde(rename = "OSType")]
    pub os_type: &'static str,
    pub architecture: Option<String>,
    pub name: Option<String>,
    #[serde(rename = "NCPU")]
    pub ncpu: usize,
    pub containers: usize,
    pub containers_running: usize,
    pub containers_paused: usize,
    pub containers_stopped: usize,
    pub images: usize,
    pub driver: &'static str,
    pub docker_root_dir: PathBuf,
    pub server_version: &'static str,
}

/// What burrow can do on this host, and the store's counts.
/// The socket `burrow system service` listens on by default, in the
/// user's private runtime directory (`$XDG_RUNTIME_DIR/burrow/burrow.sock`).
pub fn api_socket(engine: &Engine) -> std::path::PathBuf {
    engine.store.paths.runtime_base().join("burrow.sock")
}

pub fn info(engine: &Engine) -> Result<Info> {
    let m = &engine.mapping;
    let uname = nix::sys::utsname::uname().ok();
    let kernel = uname
        .as_ref()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let userns_result = userns::run_in_userns(m, || Ok::<_, std::convert::Infallible>(()));
    let rootfs = store_rootfs(engine);
    let cg = cgroup::detect(Path::new("/sys/fs/cgroup"), Path::new("/proc/self/cgroup"));
    let source = crate::container::cgroup::source(engine.settings.systemd);
    let (mut running, mut paused, mut stopped) = (0, 0, 0);
    let containers = container::list(&engine.store)?;
    for r in &containers {
        match r.live_status(&engine.store) {
            Status::Running => running += 1,
            Status::Paused => paused += 1,
            _ => stopped += 1,
        }
    }
    let images = engine.store.image_ids()?.len();
    let outbound = helper::outbound(&engine.settings.helper_path);
    let paths = &engine.store.paths;
    // Why the runtime directory is where it is: the session's, or the
    // fallback and the reason.
    let runtime_reason = paths
        .runtime_from
        .reason()
        .unwrap_or_else(|| "from XDG_RUNTIME_DIR".into());
    Ok(Info {
        kernel_version: kernel.clone(),
        kernel,
        user_namespaces: UserNamespaces {
            works: userns_result.is_ok(),
            error: userns_result.as_ref().err().map(|e| e.to_string()),
        },
        id_mapping: Mapping {
            uid: m.uid,
            gid: m.gid,
            sub_uids: m.sub_uids.map(Range::from),
            sub_gids: m.sub_gids.map(Range::from),
            newuidmap: m.newuidmap.clone(),
            newgidmap: m.newgidmap.clone(),
            mode: if m.is_range() { "range" } else { "single" },
        },
        rootfs: rootfs.mode,
        rootfs_reason: rootfs.reason,
        rootfs_file_system: rootfs.file_system,
        rootfs_forced: rootfs.forced,
        cgroup: cg,
        container_cgroups: source,
        network_helper: helper::describe(&outbound),
        network_outbound: outbound_json(&outbound),
        keeper: match engine.settings.keeper {
            Some(_) => {
                crate::network::keeper::status(paths.runtime_base(), &engine.mapping).to_string()
            }
            None => "off (BURROW_KEEPER=off): a network helper per container".into(),
        },
        store: paths.root.clone(),
        runtime: paths.runtime.clone(),
        runtime_reason,
        docker_host: format!("unix://{}", api_socket(engine).display()),
        docker_host_listening: std::os::unix::net::UnixStream::connect(api_socket(engine)).is_ok(),
        os_type: std::env::consts::OS,
        architecture: uname
            .as_ref()
            .map(|u| u.machine().to_string_lossy().into_owned()),
        name: uname
            .as_ref()
            .map(|u| u.nodename().to_string_lossy().into_owned()),
        ncpu: std::thread::available_parallelism().map_or(1, |n| n.get()),
        containers: containers.len(),
        containers_running: running,
        containers_paused: paused,
        containers_stopped: stopped,
        images,
        driver: rootfs.mode,
        docker_root_dir: paths.root.clone(),
        server_version: env!("CARGO_PKG_VERSION"),
    })
}

/// The outbound access of a private network: the helper, whether it can
/// start, and if not, why and the fix.
fn outbound_json(o: &Outbound) -> serde_json::Value {
    match o {
        Outbound::Helper(h) => json!({
            "Helper": h.kind.name(),
            "Path": h.path,
            "Usable": true,
        }),
        Outbound::LoopbackOnly(Why::NoTun {
            helper: kind,
            problem,
        }) => json!({
            "Helper": kind.name(),
            "Usable": false,
            "Problem": helper::tun_problem(problem),
            "Fix": helper::tun_fix(problem),
        }),
        Outbound::LoopbackOnly(Why::Offline { installed }) => json!({
            "Helper": installed.map(|k| k.name()),
            "Usable": false,
            "Problem": "the host has no default route",
        }),
        Outbound::LoopbackOnly(Why::NotInstalled) => json!({
            "Helper": null,
            "Usable": false,
            "Problem": "neither pasta nor slirp4netns is installed",
            "Fix": "apt-get install passt",
        }),
    }
}

/// How this store's containers get their root filesystem, and why.
struct RootfsInfo {
    mode: &'static str,
    reason: Option<String>,
    file_system: Option<String>,
    forced: bool,
}

/// `BURROW_ROOTFS` when it forces a mode, else the store's probed mode
/// (cached in the store; see `container::rootfs`).
fn store_rootfs(engine: &Engine) -> RootfsInfo {
    let word = RootfsMode::word;
    if let RootfsChoice::Force(m) = engine.settings.rootfs {
        return RootfsInfo {
            mode: word(m),
            reason: None,
            file_system: None,
            forced: true,
        };
    }
    match crate::container::rootfs::probe(&engine.store, &engine.mapping) {
        Some(a) => RootfsInfo {
            mode: word(a.mode),
            file_system: Some(a.fs_name()),
            reason: a.reason,
            forced: false,
        },
        None => RootfsInfo {
            mode: "unknown",
            reason: Some("the store is not writable, so overlayfs could not be tried".into()),
            file_system: None,
            forced: false,
        },
    }
}

/// What a kind of object takes, and what pruning it would give back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Totals {
    pub count: usize,
    pub active: usize,
    pub size: u64,
    pub reclaimable: u64,
}

/// One image in `df`: its pieces' size, of which `shared` another image
/// holds too, and how many containers use it.
#[derive(Debug, Clone)]
pub struct DfImage {
    pub summary: ImageSummary,
    pub size: u64,
    pub shared: u64,
    pub containers: usize,
}

/// One container in `df`: what its changes take.
#[derive(Debug, Clone)]
pub struct DfContainer {
    pub record: ContainerRecord,
    pub size: u64,
    pub running: bool,
    /// Docker's status text.
    pub status: String,
}

/// One volume in `df`: how many containers mount it, and its size.
#[derive(Debug, Clone)]
pub struct DfVolume {
    pub volume: volumes::Volume,
    pub links: usize,
    pub size: u64,
}

/// What `system df` shows.
#[derive(Debug, Clone)]
pub struct Df {
    /// Every image but the build cache.
    pub images: Vec<DfImage>,
    /// Untagged images made by build steps.
    pub build_cache: Vec<DfImage>,
    pub containers: Vec<DfContainer>,
    pub volumes: Vec<DfVolume>,
    pub images_total: Totals,
    pub containers_total: Totals,
    pub volumes_total: Totals,
    pub build_cache_total: Totals,
    /// Layers and blobs no image names any more.
    pub unowned: u64,
}

/// What the store's images, containers and volumes take, and what
/// pruning would reclaim.
pub fn df(engine: &Engine) -> Result<Df> {
    let store = &engine.store;
    let images = catalog::list(store)?;
    let containers = container::list(store)?;
    // Everything the store keeps for images counts: the extracted layers,
    // the blobs kept beside them (layer archives for push and save, and
    // manifests) and the configs, each piece once however many images share
    // it. Untagged images made by build steps are the Build Cache row (as
    // Docker's builder cache is), the rest the Images row, which also holds
    // what no image names any more (layers kept for containers whose image
    // is gone, debris of interrupted pulls), since `image prune` is what
    // reclaims that. Reclaimable is what `image prune -a` would remove:
    // the pieces of images no container uses, minus the layers a container
    // still runs on.
    let usage = usage::usage(store)?;
    let is_cache = |i: &ImageSummary| i.build_cache && i.tags.is_empty();
    let (cache_images, images): (Vec<_>, Vec<_>) = images.into_iter().partition(is_cache);
    let active_images: BTreeSet<&str> = containers.iter().map(|c| c.image.as_str()).collect();
    let pieces_of = |imgs: &[ImageSummary]| -> BTreeSet<Piece> {
        imgs.iter()
            .filter_map(|i| usage.images.get(&i.id))
            .flatten()
            .cloned()
            .collect()
    };
    let mut pinned: BTreeSet<Piece> = containers
        .iter()
        .flat_map(|c| c.layers.iter().map(|l| Piece::Layer(l.clone())))
        .collect();
    for id in &active_images {
        pinned.extend(usage.images.get(*id).into_iter().flatten().cloned());
    }
    let mut image_pieces = pieces_of(&images);
    image_pieces.extend(usage.unowned.iter().cloned());
    let cache_pieces: BTreeSet<Piece> = pieces_of(&cache_images)
        .difference(&image_pieces)
        .cloned()
        .collect();
    let sum = |set: &BTreeSet<Piece>, reclaimable: bool| -> u64 {
        set.iter()
            .filter(|p| !reclaimable || !pinned.contains(*p))
            .map(|p| usage.size(p))
            .sum()
    };
    let active_in = |imgs: &[ImageSummary]| {
        imgs.iter()
            .filter(|i| active_images.contains(i.id.as_str()))
            .count()
    };
    let images_total = Totals {
        count: images.len(),
        active: active_in(&images),
        size: sum(&image_pieces, false),
        reclaimable: sum(&image_pieces, true),
    };
    let build_cache_total = Totals {
        count: cache_images.len(),
        active: active_in(&cache_images),
        size: sum(&cache_pieces, false),
        reclaimable: sum(&cache_pieces, true),
    };
    // Each image's own size: its pieces, of which those another image
    // holds too are shared.
    let df_image = |img: ImageSummary| -> DfImage {
        let mine = usage.images.get(&img.id).cloned().unwrap_or_default();
        let size = mine.iter().map(|p| usage.size(p)).sum();
        let shared = mine
            .iter()
            .filter(|p| usage.owners(p) > 1)
            .map(|p| usage.size(p))
            .sum();
        let users = containers.iter().filter(|c| c.image == img.id).count();
        DfImage {
            summary: img,
            size,
            shared,
            containers: users,
        }
    };
    let df_containers: Vec<DfContainer> = containers
        .iter()
        .map(|c| DfContainer {
            size: changes::size_as(&store.container_dir(&c.id).join("upper"), &engine.mapping),
            running: c.is_up(store),
            status: c.status_text(store),
            record: c.clone(),
        })
        .collect();
    let containers_total = Totals {
        count: df_containers.len(),
        active: df_containers.iter().filter(|c| c.running).count(),
        size: df_containers.iter().map(|c| c.size).sum(),
        reclaimable: df_containers
            .iter()
            .filter(|c| !c.running)
            .map(|c| c.size)
            .sum(),
    };
    // Volumes any container (running or not) mounts are active, as in Docker.
    let df_volumes: Vec<DfVolume> = volumes::list(store)?
        .into_iter()
        .map(|v| DfVolume {
            size: volumes::size(store, &engine.mapping, &v.name),
            links: volumes::users(&containers, &v.name).len(),
            volume: v,
        })
        .collect();
    let volumes_total = Totals {
        count: df_volumes.len(),
        active: df_volumes.iter().filter(|v| v.links > 0).count(),
        size: df_volumes.iter().map(|v| v.size).sum(),
        reclaimable: df_volumes
            .iter()
            .filter(|v| v.links == 0)
            .map(|v| v.size)
            .sum(),
    };
    let unowned = usage.unowned.iter().map(|p| usage.size(p)).sum();
    Ok(Df {
        images: images.into_iter().map(&df_image).collect(),
        build_cache: cache_images.into_iter().map(&df_image).collect(),
        containers: df_containers,
        volumes: df_volumes,
        images_total,
        containers_total,
        volumes_total,
        build_cache_total,
        unowned,
    })
}
