//! Named and anonymous volumes: `ROOT/volumes/<name>/_data` with a small
//! `volume.json` beside it, created atomically, listed, removed when no
//! container uses them, and seeded from the image on first use (Docker's
//! copy-up of the image's content at the mount path).

use std::collections::BTreeMap;
use std::fs;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::mounts::MountSpec;
use super::ContainerRecord;
use crate::image::layer::{apply_layer, ApplyOptions, LayerError};
use crate::image::layer_tar::{write_tree, PackError, TreeKind};
use crate::linux::userns::{run_in_userns, IdMapping, UsernsError};
use crate::linux::{fs as lfs, mount, process};
use crate::store::{self, Store, StoreError};
use crate::util::human;

/// The label Docker puts on a volume made for a container's anonymous mount.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";
const META_FILE: &str = "volume.json";
const DATA_DIR: &str = "_data";

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("invalid volume name {0:?}: {rule}", rule = super::mounts::VOLUME_NAME_RULE)]
    BadName(String),
    #[error("No such volume: {0}")]
    NoSuch(String),
    #[error("remove {name}: volume is in use - [{}]", .ids.join(", "))]
    InUse { name: String, ids: Vec<String> },
    #[error("seeding volume {name} from the image's {path}: {source}")]
    Seed {
        name: String,
        path: String,
        #[source]
        source: Box<UsernsError>,
    },
    /// The volume's directory, closed to us, could not be read from inside
    /// the user namespace either.
    #[error("reading {path:?}: {source}")]
    Look {
        path: PathBuf,
        #[source]
        source: Box<UsernsError>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Result<T> = std::result::Result<T, VolumeError>;

/// What `volume.json` holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Meta {
    created_at: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// One volume, as `volume inspect` shows it (Docker's field names).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    pub created_at: String,
    pub driver: &'static str,
    /// Docker shows `null` for a volume without labels.
    pub labels: Option<BTreeMap<String, String>>,
    pub mountpoint: String,
    pub name: String,
    pub options: Option<BTreeMap<String, String>>,
    pub scope: &'static str,
}

impl Volume {
    pub fn is_anonymous(&self) -> bool {
        self.labels
            .as_ref()
            .is_some_and(|l| l.contains_key(ANONYMOUS_LABEL))
    }
}

/// Docker's rule for volume names (see `mounts::is_volume_name`).
pub fn validate_name(name: &str) -> Result<()> {
    if super::mounts::is_volume_name(name) {
        Ok(())
    } else {
        Err(VolumeError::BadName(name.to_string()))
    }
}

fn volumes_dir(store: &Store) -> PathBuf {
    store.root().join("volumes")
}

fn volume_dir(store: &Store, name: &str) -> PathBuf {
    volumes_dir(store).join(name)
}

/// The directory bound into containers.
pub fn data_dir(store: &Store, name: &str) -> PathBuf {
    volume_dir(store, name).join(DATA_DIR)
}

/// Create the volume `name` (a random 64-hex name when `None`) unless it
/// exists; returns its name. The directory is made complete in `tmp/` and
/// renamed into place, so a volume is either whole or absent, and of two
/// concurrent creates of one name both see the same volume.
pub fn create(
    store: &Store,
    name: Option<&str>,
    labels: &BTreeMap<String, String>,
) -> Result<String> {
    let name = match name {
        Some(n) => {
            validate_name(n)?;
            n.to_string()
        }
        None => store::random_hex(32),
    };
    let dest = volume_dir(store, &name);
    if dest.join(META_FILE).is_file() {
        return Ok(name);
    }
    let parent = volumes_dir(store);
    fs::create_dir_all(&parent).map_err(store::io("creating", &parent))?;
    let staging = store.staging_dir("volume")?;
    let made = (|| {
        let data = staging.join(DATA_DIR);
        fs::create_dir(&data).map_err(store::io("creating", &data))?;
        let meta = Meta {
            created_at: human::now_rfc3339(),
            labels: labels.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&meta).expect("volume meta serializes");
        store::write_atomic(&staging.join(META_FILE), &bytes, false)?;
        match fs::rename(&staging, &dest) {
            Ok(()) => Ok(()),
            // Made by someone else meanwhile: theirs is as good as ours.
            Err(_) if dest.join(META_FILE).is_file() => {
                let _ = fs::remove_dir_all(&staging);
                Ok(())
            }
            Err(e) => Err(store::io("creating volume", &dest)(e).into()),
        }
    })();
    if made.is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    made.map(|()| name)
}

/// The volume named `name`.
pub fn get(store: &Store, name: &str) -> Result<Volume> {
    let dir = volume_dir(store, name);
    let p = dir.join(META_FILE);
    if validate_name(name).is_err() {
        return Err(VolumeError::NoSuch(name.to_string()));
    }
    let bytes = match fs::read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(VolumeError::NoSuch(name.to_string()))
        }
        Err(e) => return Err(store::io("reading", &p)(e).into()),
    };
    let meta: Meta =
        serde_json::from_slice(&bytes).map_err(|source| StoreError::BadJson { path: p, source })?;
    Ok(Volume {
        created_at: meta.created_at,
        driver: "local",
        labels: (!meta.labels.is_empty()).then_some(meta.labels),
        mountpoint: dir.join(DATA_DIR).to_string_lossy().into_owned(),
        name: name.to_string(),
        options: None,
        scope: "local",
    })
}

/// Every volume, by name.
pub fn list(store: &Store) -> Result<Vec<Volume>> {
    let dir = volumes_dir(store);
    let rd = match fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(store::io("listing", &dir)(e).into()),
    };
    let mut out: Vec<Volume> = rd
        .flatten()
        .filter_map(|e| get(store, &e.file_name().to_string_lossy()).ok())
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The volume names a container mounts.
pub fn names_of(rec: &ContainerRecord) -> impl Iterator<Item = &str> {
    rec.host_config
        .mounts
        .iter()
        .filter(|m| m.kind == "volume" && !m.name.is_empty())
        .map(|m| m.name.as_str())
}

/// Ids of the containers (in any state) that mount `name`.
pub fn users(containers: &[ContainerRecord], name: &str) -> Vec<String> {
    containers
        .iter()
        .filter(|c| names_of(c).any(|n| n == name))
        .map(|c| c.id.clone())
        .collect()
}

/// Bytes the volume's files take, those of subordinate ids included.
pub fn size(store: &Store, mapping: &IdMapping, name: &str) -> u64 {
    crate::image::changes::size_as(&data_dir(store, name), mapping)
}

/// Remove a volume no container uses. It is moved into `tmp/` first, so it
/// stops listing at once; its files may belong to subordinate ids, so they
/// go through the user namespace when needed.
pub fn remove(
    store: &Store,
    mapping: &IdMapping,
    containers: &[ContainerRecord],
    name: &str,
) -> Result<()> {
    get(store, name)?;
    let ids = users(containers, name);
    if !ids.is_empty() {
        return Err(VolumeError::InUse {
            name: name.to_string(),
            ids,
        });
    }
    let dir = volume_dir(store, name);
    let staging = store.staging_dir("volume-rm")?;
    let doomed = staging.join(name);
    fs::rename(&dir, &doomed).map_err(store::io("removing volume", &dir))?;
    store::remove_tree(&staging, mapping)?;
    Ok(())
}

/// Remove the anonymous volumes of `rec` (a container being removed, with
/// `rm -v` or `--rm`) that none of `others` uses; named volumes stay, as
/// in Docker.
pub fn remove_anonymous(
    store: &Store,
    mapping: &IdMapping,
    rec: &ContainerRecord,
    others: &[ContainerRecord],
) -> Result<()> {
    let others: Vec<ContainerRecord> = others.iter().filter(|c| c.id != rec.id).cloned().collect();
    for name in names_of(rec) {
        match get(store, name) {
            Ok(v) if v.is_anonymous() && users(&others, name).is_empty() => {
                remove(store, mapping, &others, name)?
            }
            _ => {}
        }
    }
    Ok(())
}

/// Turn the volume mounts of `mounts` into binds of their `_data`: a named
/// volume that does not exist is created, an anonymous one gets a fresh
/// name. Returns the names of the volumes this made.
pub fn resolve(
    store: &Store,
    mapping: &IdMapping,
    mounts: &mut [MountSpec],
) -> Result<Vec<String>> {
    let mut made = Vec::new();
    for m in mounts.iter_mut().filter(|m| m.kind == "volume") {
        let created = if m.name.is_empty() {
            let labels = BTreeMap::from([(ANONYMOUS_LABEL.to_string(), String::new())]);
            create(store, None, &labels).map(|n| m.name = n)
        } else if get(store, &m.name).is_err() {
            create(store, Some(&m.name), &BTreeMap::new()).map(|_| ())
        } else {
            m.source = data_dir(store, &m.name).to_string_lossy().into_owned();
            m.driver = "local".into();
            continue;
        };
        if let Err(e) = created {
            discard_anonymous(store, mapping, &made);
            return Err(e);
        }
        made.push(m.name.clone());
        m.source = data_dir(store, &m.name).to_string_lossy().into_owned();
        m.driver = "local".into();
    }
    Ok(made)
}

/// Remove the anonymous ones among `names`, volumes a create made before
/// it failed (no container record names them, so none uses them). Named
/// volumes stay, as in Docker.
pub fn discard_anonymous(store: &Store, mapping: &IdMapping, names: &[String]) {
    for name in names {
        if get(store, name).is_ok_and(|v| v.is_anonymous()) {
            if let Err(e) = remove(store, mapping, &[], name) {
                tracing::warn!("removing volume {name}: {e}");
            }
        }
    }
}

/// Docker's copy-up: an empty volume takes the image's content at the
/// mount path (owners, modes and times kept) the first time a container
/// mounts it. The image's layers are merged read-only in a user namespace
/// with the container's mapping, so owners read and land as the container
/// sees them; the path resolves inside that root, so an image's symlinks
/// cannot point the copy at a host path.
pub fn seed(
    store: &Store,
    mapping: &IdMapping,
    lowers: &[PathBuf],
    name: &str,
    path: &str,
) -> Result<()> {
    let data = data_dir(store, name);
    if lowers.is_empty() || !is_empty(&data, mapping)? {
        return Ok(());
    }
    let mount_point = store.mount_point();
    let lowers = lowers.to_vec();
    let rel = path.trim_start_matches('/').to_string();
    let ids = crate::image::import::id_policy(mapping);
    let data_in = data.clone();
    run_in_userns(mapping, move || {
        let root = if lowers.len() == 1 {
            lowers[0].clone()
        } else {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(SeedError::Unshare)?;
            mount::overlay_readonly(&lowers, &mount_point).map_err(SeedError::Overlay)?;
            mount_point
        };
        let root_fd = lfs::open_dir(&root).map_err(|e| SeedError::Open(root.clone(), e))?;
        let src = match lfs::openat_in_root(root_fd.as_fd(), rel.as_str(), lfs::dir_flags()) {
            Ok(fd) => fd,
            // Nothing (or no directory) there in the image: nothing to copy.
            Err(nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR) => return Ok(()),
            Err(e) => return Err(SeedError::OpenInImage(rel.clone(), e)),
        };
        // The kernel's name for what was resolved in the root: no symlinks
        // left in it, inside a mount only this process sees (or a layer).
        let src_path = fs::read_link(format!("/proc/self/fd/{}", src.as_raw_fd()))
            .map_err(|e| SeedError::Resolve(rel.clone(), e))?;
        copy_tree(&src_path, &data_in, ApplyOptions { ids }).map_err(SeedError::Copy)?;
        // The volume's root takes the image directory's owner and mode.
        let st = nix::sys::stat::fstat(&src).map_err(|e| SeedError::Stat(rel.clone(), e))?;
        let dst = lfs::open_dir(&data_in).map_err(|e| SeedError::Open(data_in.clone(), e))?;
        if matches!(ids, crate::image::layer::IdPolicy::Keep { .. }) {
            nix::unistd::fchown(
                &dst,
                Some(nix::unistd::Uid::from_raw(st.st_uid)),
                Some(nix::unistd::Gid::from_raw(st.st_gid)),
            )
            .map_err(|e| SeedError::Chown(data_in.clone(), e))?;
        }
        nix::sys::stat::fchmod(
            &dst,
            nix::sys::stat::Mode::from_bits_truncate(st.st_mode & 0o7777),
        )
        .map_err(|e| SeedError::Chmod(data_in.clone(), e))?;
        Ok(())
    })
    .map_err(|source| VolumeError::Seed {
        name: name.to_string(),
        path: path.to_string(),
        source: Box::new(source),
    })
}

/// Why the child seeding a volume failed. Its text is what crosses back to
/// the parent (`UsernsError::Child`), so each message is whole.
#[derive(Debug, thiserror::Error)]
enum SeedError {
    #[error("new mount namespace: {0}")]
    Unshare(#[source] nix::Error),
    #[error("{0}")]
    Overlay(#[source] mount::MountError),
    #[error("opening {0:?}: {1}")]
    Open(PathBuf, #[source] nix::Error),
    #[error("opening /{0}: {1}")]
    OpenInImage(String, #[source] nix::Error),
    #[error("resolving /{0}: {1}")]
    Resolve(String, #[source] std::io::Error),
    #[error("{0}")]
    Copy(#[source] CopyTreeError),
    #[error("stat /{0}: {1}")]
    Stat(String, #[source] nix::Error),
    #[error("chown {0:?}: {1}")]
    Chown(PathBuf, #[source] nix::Error),
    #[error("chmod {0:?}: {1}")]
    Chmod(PathBuf, #[source] nix::Error),
}

/// Whether the volume's directory is empty. Seeded from an image, it may
/// belong to a subordinate id and be closed to us; then look from inside
/// the user namespace, where we are its owner's root.
fn is_empty(data: &Path, mapping: &IdMapping) -> Result<bool> {
    let look = |p: &Path| fs::read_dir(p).map(|mut rd| rd.next().is_none());
    match look(data) {
        Ok(empty) => Ok(empty),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            let p = data.to_path_buf();
            crate::linux::userns::run_in_userns_with(mapping, move || {
                look(&p).map_err(store::io("reading", &p))
            })
            .map_err(|source| VolumeError::Look {
                path: data.to_path_buf(),
                source: Box::new(source),
            })
        }
        Err(e) => Err(store::io("reading", data)(e).into()),
    }
}

/// `src`'s tree into `dst` as a tar stream through a pipe: packed by a
/// thread, applied here with the layer code's in-root rules.
fn copy_tree(src: &Path, dst: &Path, opts: ApplyOptions) -> std::result::Result<(), CopyTreeError> {
    let (r, w) = process::pipe().map_err(CopyTreeError::Pipe)?;
    std::thread::scope(|s| {
        let packer = s.spawn(move || {
            write_tree(src, TreeKind::Plain, fs::File::from(w))
                .map(|_| ())
                .map_err(CopyTreeError::from)
        });
        let applied = apply_layer(fs::File::from(r), dst, &opts).map_err(CopyTreeError::from);
        let packed = packer.join().unwrap_or(Err(CopyTreeError::Panicked));
        packed.and(applied.map(|_| ()))
    })
}

/// Why a directory could not be copied into a volume.
#[derive(Debug, thiserror::Error)]
enum CopyTreeError {
    #[error("pipe: {0}")]
    Pipe(#[source] nix::Error),
    #[error(transparent)]
    Pack(#[from] PackError),
    #[error(transparent)]
    Apply(#[from] LayerError),
    #[error("the packing thread panicked")]
    Panicked,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["ab", "my-vol", "a.b_c", "0x"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a", "-ab", ".ab", "a/b", "a b", "ä1"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn create_get_list_remove() {
        let (_d, store) = store::temp_store();
        let labels = BTreeMap::from([("k".to_string(), "v".to_string())]);
        assert_eq!(create(&store, Some("data"), &labels).unwrap(), "data");
        // Creating again is a no-op, as in Docker.
        assert_eq!(
            create(&store, Some("data"), &BTreeMap::new()).unwrap(),
            "data"
        );
        let v = get(&store, "data").unwrap();
        assert_eq!(v.labels.unwrap()["k"], "v");
        assert!(Path::new(&v.mountpoint).is_dir());
        let anon = create(&store, None, &BTreeMap::new()).unwrap();
        assert_eq!(anon.len(), 64);
        assert_eq!(list(&store).unwrap().len(), 2);
        assert!(matches!(get(&store, "nope"), Err(VolumeError::NoSuch(_))));
        let mapping = IdMapping::detect(Path::new("/nonexistent")).single();
        remove(&store, &mapping, &[], "data").unwrap();
        assert!(matches!(
            remove(&store, &mapping, &[], "data"),
            Err(VolumeError::NoSuch(_))
        ));
        assert_eq!(list(&store).unwrap().len(), 1);
    }
}
