//! `burrow info`: what burrow can do on this host, and how to fix what it can't.

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;

use super::format::Format;
use super::Ctx;
use crate::container::Status;
use crate::linux::{cgroup, userns};
use crate::network::helper::{self, Outbound, Why};

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  burrow info\n  burrow info --format json\n  burrow info --format '{{.ContainersRunning}} running, rootfs {{.Rootfs}}'"
)]
pub struct InfoArgs {
    /// text, json, or a Go template ('{{.KernelVersion}}', '{{.IdMapping.Mode}}')
    #[arg(short, long, default_value = "text")]
    pub format: String,
}

pub fn run(root: Option<PathBuf>, a: InfoArgs) -> anyhow::Result<i32> {
    let format = Format::parse(&a.format, &["text"])?;
    let ctx = Ctx::open(root)?;
    let m = &ctx.mapping;
    let uname = nix::sys::utsname::uname().ok();
    let kernel = uname
        .as_ref()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let userns_result = userns::run_in_userns(m, || Ok(()));
    let rootfs = store_rootfs(&ctx);
    let cg = cgroup::detect(Path::new("/sys/fs/cgroup"), Path::new("/proc/self/cgroup"));
    let source = crate::container::cgroup::source(super::systemd_scopes());
    let (mut running, mut paused, mut stopped) = (0, 0, 0);
    let containers = crate::container::list(&ctx.store)?;
    for r in &containers {
        match r.live_status(&ctx.store) {
            Status::Running => running += 1,
            Status::Paused => paused += 1,
            _ => stopped += 1,
        }
    }
    let images = ctx.store.image_ids()?.len();
    let outbound = helper::outbound(&super::helper_path());
    // Why the runtime directory is where it is: the session's, or the
    // fallback and the reason.
    let runtime_reason = ctx
        .store
        .paths
        .runtime_from
        .reason()
        .unwrap_or_else(|| "from XDG_RUNTIME_DIR".into());
    let range = |r: Option<userns::IdRange>| r.map(|r| json!({"start": r.start, "count": r.count}));
    let info = json!({
        "Kernel": kernel,
        "UserNamespaces": {
            "Works": userns_result.is_ok(),
            "Error": userns_result.as_ref().err().map(|e| e.to_string()),
        },
        "IdMapping": {
            "Uid": m.uid,
            "Gid": m.gid,
            "SubUids": range(m.sub_uids),
            "SubGids": range(m.sub_gids),
            "Newuidmap": m.newuidmap,
            "Newgidmap": m.newgidmap,
            "Mode": if m.is_range() { "range" } else { "single" },
        },
        "Rootfs": rootfs.mode,
        "RootfsReason": rootfs.reason,
        "RootfsFileSystem": rootfs.file_system,
        "Cgroup": cg,
        "ContainerCgroups": source,
        "NetworkHelper": helper::describe(&outbound),
        "NetworkOutbound": outbound_json(&outbound),
        "Store": ctx.store.paths.root,
        "Runtime": ctx.store.paths.runtime,
        "RuntimeReason": runtime_reason,
        // Docker's names for what it shares with burrow, for templates
        // written against `docker info`.
        "KernelVersion": kernel,
        "OSType": std::env::consts::OS,
        "Architecture": uname.as_ref().map(|u| u.machine().to_string_lossy().into_owned()),
        "Name": uname.as_ref().map(|u| u.nodename().to_string_lossy().into_owned()),
        "NCPU": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "Containers": containers.len(),
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": stopped,
        "Images": images,
        "Driver": rootfs.mode,
        "DockerRootDir": ctx.store.paths.root,
        "ServerVersion": env!("CARGO_PKG_VERSION"),
    });
    match &format {
        Format::Json => {
            println!("{}", serde_json::to_string_pretty(&info)?);
            return Ok(0);
        }
        Format::Template { .. } => {
            format.print(&[info], &[])?;
            return Ok(0);
        }
        Format::Default => {}
    }
    println!("Kernel:            {kernel}");
    println!(
        "Network helper:    {}",
        info["NetworkHelper"].as_str().unwrap_or("")
    );
    match &userns_result {
        Ok(()) => println!("User namespaces:   work"),
        Err(e) => println!("User namespaces:   DO NOT WORK: {e}"),
    }
    match (m.sub_uids, m.sub_gids) {
        (Some(u), Some(g)) => println!(
            "Subordinate ids:   uids {}-{}, gids {}-{}",
            u.start,
            u.start as u64 + u.count as u64 - 1,
            g.start,
            g.start as u64 + g.count as u64 - 1
        ),
        _ => println!("Subordinate ids:   none (only your own id is mapped; add a range to /etc/subuid and /etc/subgid for multi-user images)"),
    }
    println!(
        "newuidmap/newgidmap: {}",
        if m.newuidmap.is_some() && m.newgidmap.is_some() {
            "installed"
        } else {
            "missing (apt-get install uidmap)"
        }
    );
    println!(
        "ID mapping:        {}",
        if m.is_range() {
            "range (container ids 0-65536)"
        } else {
            "single (container root = you)"
        }
    );
    println!("Rootfs mode:       {}", rootfs.line());
    println!(
        "Cgroups:           {}{}",
        cg.mode,
        match (&cg.own_v2_dir, cg.writable) {
            (Some(d), true) => format!(
                ", delegated: {} [{}]",
                d.display(),
                cg.controllers.join(" ")
            ),
            (Some(d), false) => format!(", not delegated ({} is not writable)", d.display()),
            (None, _) => String::new(),
        }
    );
    use crate::container::cgroup::Source;
    println!(
        "Container cgroups: {}",
        match &source {
            Source::Delegated { base, controllers } => format!(
                "in the delegated {} [{}]",
                base.display(),
                controllers.join(" ")
            ),
            Source::Systemd {
                manager,
                controllers,
            } => format!(
                "a scope from your systemd each ({manager} [{}])",
                controllers.join(" ")
            ),
            Source::None { reason } => format!("none, so no limits ({reason})"),
        }
    );
    println!("Store:             {}", ctx.store.paths.root.display());
    println!(
        "Runtime directory: {} ({})",
        ctx.store.paths.runtime.display(),
        crate::util::printable::escape_controls(&runtime_reason)
    );
    Ok(0)
}

/// The outbound access of a private network, for `--format json`: the
/// helper, whether it can start, and if not, why and the fix.
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

impl RootfsInfo {
    fn line(&self) -> String {
        let mut line = self.mode.to_string();
        if self.forced {
            line.push_str(" (BURROW_ROOTFS)");
        } else if self.mode == "copy" || self.mode == "fuse-overlayfs" {
            let what = if self.mode == "copy" {
                "each container gets a full copy of its image"
            } else {
                "containers get a fuse-overlayfs mount"
            };
            line.push_str(&format!(
                " (overlayfs cannot be mounted on this store's file system, {}, from a user namespace: {}; {what})",
                self.file_system.as_deref().unwrap_or("unknown"),
                self.reason.as_deref().unwrap_or("unknown reason")
            ));
        } else if let Some(r) = &self.reason {
            line.push_str(&format!(" ({r})"));
        }
        line
    }
}

/// `BURROW_ROOTFS` when it forces a mode, else the store's probed mode
/// (cached in the store; see `container::rootfs`).
fn store_rootfs(ctx: &Ctx) -> RootfsInfo {
    use crate::sandbox::{RootfsChoice, RootfsMode};
    let word = RootfsMode::word;
    if let Ok(RootfsChoice::Force(m)) = super::rootfs_choice() {
        return RootfsInfo {
            mode: word(m),
            reason: None,
            file_system: None,
            forced: true,
        };
    }
    match crate::container::rootfs::probe(&ctx.store, &ctx.mapping) {
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
