//! An image as an OCI runtime bundle (`burrow bundle IMAGE DIR`): the root
//! filesystem its layers make, and a `config.json` from its config, for
//! engines that take bundles (Slurm's `srun --container`, `burrow-runc`,
//! runc, crun).
//!
//! The bundle is rootless as `runc spec --rootless` writes one: a user
//! namespace mapping root to the caller (and the caller's subordinate range
//! to ids 1 and up, so the files keep their owners), and the host's
//! network, which is what a job on a cluster node expects.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::{Engine, Error, Result};
use crate::image::{catalog, config, merged};
use crate::linux::userns::{self, IdMapping};
use crate::sandbox::{self, caps, UserIds};

/// What to write.
#[derive(Debug, Clone)]
pub struct BundleRequest {
    /// A local image (name or id).
    pub image: String,
    /// A directory that does not exist yet, or an empty one.
    pub dir: PathBuf,
}

/// Write the bundle; returns the image id it was made from.
pub fn bundle(engine: &Engine, req: &BundleRequest) -> Result<String> {
    let id = catalog::resolve(&engine.store, &req.image)?;
    let (image_cfg, rc) = config::load(&engine.store, &id)?;
    let lowers: Vec<PathBuf> = image_cfg
        .rootfs()
        .diff_ids()
        .iter()
        .rev()
        .map(|d| engine.store.layer_fs(d))
        .collect();
    let user = image_user(engine, &lowers, &rc.user)?;
    let process = process_of(&rc, &user);
    let config = config_json(process, &engine.mapping);

    empty_dir(&req.dir)?;
    let rootfs = req.dir.join("rootfs");
    let io = |what, path: &Path, source| Error::Io {
        what,
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir(&rootfs).map_err(|e| io("creating", &rootfs, e))?;
    // The layers' files belong to the ids of the caller's range: copied as
    // root of a user namespace with the caller's mapping, they keep them.
    let bottom_up: Vec<PathBuf> = lowers.iter().rev().cloned().collect();
    let target = rootfs.clone();
    let copied = userns::run_in_userns(&engine.mapping, move || {
        sandbox::flatten_layers(&bottom_up, &target)
    });
    if let Err(e) = copied {
        let _ = userns::run_in_userns(&engine.mapping, || std::fs::remove_dir_all(&rootfs));
        return Err(Error::CopyImage { rootfs, source: e });
    }
    let path = req.dir.join("config.json");
    let text = serde_json::to_string_pretty(&config).expect("a bundle config serializes");
    std::fs::write(&path, text + "\n").map_err(|e| io("writing", &path, e))?;
    Ok(id)
}

/// `dir` made, or found empty.
fn empty_dir(dir: &Path) -> Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(Error::invalid(format!(
                    "{} is not empty: a bundle goes into a new or empty directory",
                    dir.display()
                )));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir(dir).map_err(|source| Error::Io {
                what: "creating",
                path: dir.to_path_buf(),
                source,
            })
        }
        Err(source) => Err(Error::Io {
            what: "reading",
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// The image's `User` as numbers, looked up in its own passwd and group
/// (read from the layers inside the image's root, never through a symlink
/// out of it).
fn image_user(engine: &Engine, lowers: &[PathBuf], spec: &str) -> Result<UserIds> {
    // Copied to a directory of this process's own in the private runtime
    // directory, where the lookup reads them.
    let etc = engine
        .store
        .paths
        .runtime
        .join(format!("bundle-etc-{}", std::process::id()));
    let found = (|| {
        let scratch = |what, path: &Path| {
            let path = Some(path.to_path_buf());
            move |source| Error::File { what, path, source }
        };
        std::fs::create_dir_all(&etc).map_err(scratch("creating", &etc))?;
        for name in ["passwd", "group"] {
            let inside = format!("/etc/{name}");
            let bytes = merged::read_file(lowers, &inside)
                .map_err(|source| Error::Io {
                    what: "reading the image's",
                    path: inside.into(),
                    source,
                })?
                .unwrap_or_default();
            let copy = etc.join(name);
            std::fs::write(&copy, bytes).map_err(scratch("writing", &copy))?;
        }
        sandbox::resolve_user(spec, &etc)
            .map_err(|e| Error::refused(format!("the image's user {spec:?}"), e))
    })();
    let _ = std::fs::remove_dir_all(&etc);
    found
}

/// The bundle's `process`: the image's entrypoint and command, its
/// environment and working directory, as its user, with Docker's default
/// capabilities.
fn process_of(rc: &config::ImageRuntimeConfig, ids: &UserIds) -> Value {
    let mut args = rc.entrypoint.clone().unwrap_or_default();
    args.extend(rc.cmd.clone().unwrap_or_default());
    if args.is_empty() {
        args.push("/bin/sh".into());
    }
    let mut env = rc.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(format!("PATH={}", sandbox::DEFAULT_PATH));
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!(
            "HOME={}",
            if ids.home.is_empty() { "/" } else { &ids.home }
        ));
    }
    let caps: Vec<String> = caps::DEFAULT.iter().map(|c| format!("CAP_{c}")).collect();
    let mut user = json!({"uid": ids.uid, "gid": ids.gid});
    if !ids.groups.is_empty() {
        user["additionalGids"] = json!(ids.groups);
    }
    json!({
        "terminal": false,
        "user": user,
        "args": args,
        "env": env,
        "cwd": if rc.working_dir.is_empty() { "/" } else { rc.working_dir.as_str() },
        "capabilities": {
            "bounding": caps, "effective": caps, "permitted": caps,
        },
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": true
    })
}

/// The whole `config.json` around `process`.
fn config_json(process: Value, mapping: &IdMapping) -> Value {
    let lines = |own: u32, range| {
        crate::sandbox::user::map_lines(own, range, false)
            .into_iter()
            .map(|(c, h, n)| json!({"containerID": c, "hostID": h, "size": n}))
            .collect::<Vec<_>>()
    };
    let tmpfs = |opts: &[&str]| json!(opts);
    json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "burrow",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": tmpfs(&["nosuid", "strictatime", "mode=755", "size=65536k"])},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": tmpfs(&["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"])},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": tmpfs(&["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"])},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": tmpfs(&["nosuid", "noexec", "nodev"])},
            {"destination": "/sys", "type": "none", "source": "/sys",
             "options": tmpfs(&["rbind", "nosuid", "noexec", "nodev", "ro"])},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
             "options": tmpfs(&["nosuid", "nodev", "mode=1777"])}
        ],
        "linux": {
            "uidMappings": lines(mapping.uid, mapping.is_range().then_some(mapping.sub_uids).flatten()),
            "gidMappings": lines(mapping.gid, mapping.is_range().then_some(mapping.sub_gids).flatten()),
            "namespaces": [
                {"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
                {"type": "mount"}, {"type": "user"}
            ],
            "maskedPaths": sandbox::MASKED_PATHS,
            "readonlyPaths": sandbox::READONLY_PATHS
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_runs_the_images_command_as_its_user() {
        let rc = config::ImageRuntimeConfig {
            entrypoint: Some(vec!["/entry".into()]),
            cmd: Some(vec!["serve".into(), "-v".into()]),
            env: vec!["A=1".into()],
            working_dir: "/srv".into(),
            ..Default::default()
        };
        let ids = UserIds {
            uid: 100,
            gid: 101,
            home: "/home/app".into(),
            groups: vec![],
        };
        let p = process_of(&rc, &ids);
        assert_eq!(p["args"], json!(["/entry", "serve", "-v"]));
        assert_eq!(p["cwd"], "/srv");
        assert_eq!(
            (p["user"]["uid"].clone(), p["user"]["gid"].clone()),
            (json!(100), json!(101))
        );
        let env: Vec<&str> = p["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(env.contains(&"A=1") && env.contains(&"HOME=/home/app"));
        assert!(env.iter().any(|e| e.starts_with("PATH=")));
        assert_eq!(p["capabilities"]["bounding"].as_array().unwrap().len(), 14);

        let m = IdMapping {
            uid: 1000,
            gid: 1000,
            sub_uids: Some(userns::IdRange {
                start: 100000,
                count: 65536,
            }),
            sub_gids: Some(userns::IdRange {
                start: 200000,
                count: 65536,
            }),
            newuidmap: Some("/usr/bin/newuidmap".into()),
            newgidmap: Some("/usr/bin/newgidmap".into()),
            uid_map: Vec::new(),
            gid_map: Vec::new(),
        };
        let c = config_json(p, &m);
        assert_eq!(
            c["linux"]["uidMappings"],
            json!([{"containerID": 0, "hostID": 1000, "size": 1},
                   {"containerID": 1, "hostID": 100000, "size": 65536}])
        );
        assert_eq!(
            c["linux"]["gidMappings"][1],
            json!({"containerID": 1, "hostID": 200000, "size": 65536})
        );
        // Without the setuid helpers the range cannot be mapped.
        let single = config_json(
            json!({}),
            &IdMapping {
                newuidmap: None,
                ..m
            },
        );
        assert_eq!(
            single["linux"]["uidMappings"],
            json!([{"containerID": 0, "hostID": 1000, "size": 1}])
        );
        // The host's network, as `runc spec --rootless` leaves it.
        assert!(!c["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == "network"));
    }
}
