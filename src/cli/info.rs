//! `burrow info`: what burrow can do on this host, and how to fix what it can't.

use std::path::PathBuf;

use clap::Args;

use super::format::Format;
use super::Ctx;
use crate::container::cgroup::Source;
use crate::engine::system::{self, Info};

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
    let info = system::info(&ctx)?;
    match &format {
        Format::Json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::to_value(&info)?)?
            );
            return Ok(0);
        }
        Format::Template { .. } => {
            format.print(&[serde_json::to_value(&info)?], &[])?;
            return Ok(0);
        }
        Format::Default => {}
    }
    let m = &info.id_mapping;
    let cg = &info.cgroup;
    println!("Kernel:            {}", info.kernel);
    println!("Network helper:    {}", info.network_helper);
    println!("Keeper:            {}", info.keeper);
    match &info.user_namespaces.error {
        None => println!("User namespaces:   work"),
        Some(e) => println!("User namespaces:   DO NOT WORK: {e}"),
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
        if m.mode == "range" {
            "range (container ids 0-65536)"
        } else {
            "single (container root = you)"
        }
    );
    println!("Rootfs mode:       {}", rootfs_line(&info));
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
    println!(
        "Container cgroups: {}",
        match &info.container_cgroups {
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
    println!("Store:             {}", info.store.display());
    println!(
        "Runtime directory: {} ({})",
        info.runtime.display(),
        crate::util::printable::escape_controls(&info.runtime_reason)
    );
    println!(
        "Docker API:        export DOCKER_HOST={} ({})",
        info.docker_host,
        if info.docker_host_listening {
            "`burrow system service` is listening"
        } else {
            "serve it with `burrow system service`"
        }
    );
    Ok(0)
}

/// The rootfs mode, and why when it is not plain overlayfs.
fn rootfs_line(info: &Info) -> String {
    let mode = info.rootfs;
    let mut line = mode.to_string();
    if info.rootfs_forced {
        line.push_str(" (BURROW_ROOTFS)");
    } else if mode == "copy" || mode == "fuse-overlayfs" {
        let what = if mode == "copy" {
            "each container gets a full copy of its image"
        } else {
            "containers get a fuse-overlayfs mount"
        };
        line.push_str(&format!(
            " (overlayfs cannot be mounted on this store's file system, {}, from a user namespace: {}; {what})",
            info.rootfs_file_system.as_deref().unwrap_or("unknown"),
            info.rootfs_reason.as_deref().unwrap_or("unknown reason")
        ));
    } else if let Some(r) = &info.rootfs_reason {
        line.push_str(&format!(" ({r})"));
    }
    line
}
