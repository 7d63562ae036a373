//! The filesystem work of build steps, each in a child that is root of a
//! user namespace with the store's mapping: COPY and ADD unpack their tar
//! into the stage's filesystem (an overlay of its image's layers with a
//! fresh upper dir, so the upper dir is exactly the step's changes, in the
//! format `commit` archives), WORKDIR makes its directory there (owned by
//! the stage's USER, as Docker does), and
//! `COPY --from` packs files out of another image's layers. RUN runs a
//! container, as `run` does (see `mod.rs`).

use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::context::{self, ContextError, Packed, Source};
use crate::image::import::id_policy;
use crate::image::layer::{apply_layer, ApplyOptions, IdPolicy, LayerError};
use crate::image::layer_tar::{write_tree, PackError, TreeKind};
use crate::linux::mount::{self, MountError};
use crate::linux::userns::{run_in_userns, run_in_userns_with, IdMapping, UsernsError};
use crate::store::{Store, StoreError};

/// A filesystem step that failed, in this process or (as text, through
/// the user namespace's child) in the child that did the work.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Userns(#[from] UsernsError),
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error(transparent)]
    Context(#[from] ContextError),
    #[error(transparent)]
    Pack(#[from] PackError),
    #[error("creating {}: {source}", .path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("reading {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("chown {}: {source}", .path.display())]
    Chown {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("copying to {}: {source}", .path.display())]
    Rename {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("opening /: {0}")]
    OpenRoot(#[source] std::io::Error),
    #[error("{step}: {source}")]
    Sys {
        step: &'static str,
        source: nix::Error,
    },
    #[error("mounting a tmpfs on {}: {source}", .path.display())]
    Tmpfs { path: PathBuf, source: nix::Error },
    #[error("copying into {}: {source}", .path.display())]
    Unpack { path: PathBuf, source: LayerError },
    #[error("copying the step's changes into {}: {source}", .path.display())]
    Changes { path: PathBuf, source: LayerError },
    #[error("{what}: {source}")]
    User {
        what: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{what}: {uid}:{gid} is outside the ids this user can map (0-{max_uid})")]
    OutsideMapping {
        what: String,
        uid: u32,
        gid: u32,
        max_uid: u32,
    },
}

type Result<T> = std::result::Result<T, StageError>;

fn io(
    make: fn(PathBuf, std::io::Error) -> StageError,
    path: &Path,
) -> impl Fn(std::io::Error) -> StageError + Copy + '_ {
    move |e| make(path.to_path_buf(), e)
}

fn sys(step: &'static str) -> impl Fn(nix::Error) -> StageError {
    move |source| StageError::Sys { step, source }
}

fn create(path: PathBuf, source: std::io::Error) -> StageError {
    StageError::Create { path, source }
}

fn plain(path: PathBuf, source: std::io::Error) -> StageError {
    StageError::Io { path, source }
}

fn chown(path: PathBuf, source: std::io::Error) -> StageError {
    StageError::Chown { path, source }
}

/// Where a step's tar goes in the stage's filesystem.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Place {
    /// Into this directory, made with its parents when missing.
    Into(String),
    /// One file to `path`: into it when it is a directory, else as `path`
    /// itself (its parents made when missing). `name` is the tar's entry.
    Auto { path: String, name: String },
}

/// One filesystem step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// Directories to make first (WORKDIR).
    pub mkdir: Vec<String>,
    /// Owner of the directories `mkdir` creates (the stage's USER; the
    /// ones that already exist keep theirs).
    pub mkdir_owner: Option<String>,
    pub tar: Option<PathBuf>,
    pub place: Option<Place>,
    /// `--chown`: owner of the copied entries (resolved in the stage's own
    /// `/etc/passwd` and `/etc/group`).
    pub chown: Option<String>,
    /// The tar's top-level entries, which `--chown` applies to.
    pub entries: Vec<String>,
}

/// The layer dirs of an image, top first, for overlay's lowerdir.
pub fn lowers(store: &Store, image: Option<&str>) -> Result<Vec<PathBuf>> {
    let Some(id) = image else {
        return Ok(Vec::new());
    };
    let cfg = store.image_config(id)?;
    Ok(cfg
        .rootfs()
        .diff_ids()
        .iter()
        .rev()
        .map(|d| store.layer_fs(d))
        .collect())
}

/// Carry out `plan` on the filesystem of `image` (none: empty), recording
/// the changes in `dir/upper`. Returns whether anything changed.
pub fn apply(
    store: &Store,
    mapping: &IdMapping,
    image: Option<&str>,
    dir: &Path,
    plan: Plan,
) -> Result<bool> {
    let mut lowers = lowers(store, image)?;
    let (upper, work, empty) = (dir.join("upper"), dir.join("work"), dir.join("empty"));
    for d in [&upper, &work, &empty] {
        std::fs::create_dir(d).map_err(io(create, d))?;
    }
    // overlayfs needs a lower dir; an empty one stands for `scratch`.
    lowers.push(empty);
    let tar = match &plan.tar {
        Some(p) => Some(File::open(p).map_err(io(plain, p))?),
        None => None,
    };
    let ids = id_policy(mapping);
    let target = store.mount_point();
    let up = upper.clone();
    let spool = dir.join("upper.tar");
    // The child's error crosses to this process as its text.
    run_in_userns(mapping, move || {
        apply_in_child(plan, tar, ids, &lowers, &up, &work, &target, &spool)
    })?;
    let changed = std::fs::read_dir(&upper)
        .map_err(|source| StageError::Read {
            path: upper.clone(),
            source,
        })?
        .next()
        .is_some();
    Ok(changed)
}

/// In the user namespace's child: the stage's root mounted, `plan` carried
/// out in it.
#[allow(clippy::too_many_arguments)]
fn apply_in_child(
    plan: Plan,
    tar: Option<File>,
    ids: IdPolicy,
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    spool: &Path,
) -> Result<()> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(sys("unshare"))?;
    if mount::overlay(lowers, upper, work, target).is_ok() {
        nix::unistd::chroot(target).map_err(sys("chroot"))?;
        nix::unistd::chdir("/").map_err(sys("chdir"))?;
        return carry_out(plan, tar, ids);
    }
    // The store's file system cannot hold an upper dir (FUSE, NFS):
    // the step's upper dir is a tmpfs in this namespace, copied into
    // the store's afterwards in the same format.
    on_tmpfs_upper(lowers, work, target, upper, spool, ids, || {
        carry_out(plan, tar, ids)
    })
}

/// Run `step` chrooted in an overlay of `lowers` whose upper dir is on a
/// tmpfs mounted over `scratch`, then write that upper dir (whiteouts,
/// opaque dirs and all) into `upper` through a tar spooled at `spool`.
/// Runs in the step's own user and mount namespace: the chroot is left
/// again through a descriptor of the real root kept open across it.
fn on_tmpfs_upper(
    lowers: &[PathBuf],
    scratch: &Path,
    target: &Path,
    upper: &Path,
    spool: &Path,
    ids: IdPolicy,
    step: impl FnOnce() -> Result<()>,
) -> Result<()> {
    use nix::mount::MsFlags;
    nix::mount::mount(
        Some("tmpfs"),
        scratch,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0700"),
    )
    .map_err(|source| StageError::Tmpfs {
        path: scratch.to_path_buf(),
        source,
    })?;
    let (u, w) = (scratch.join("u"), scratch.join("w"));
    for d in [&u, &w] {
        std::fs::create_dir(d).map_err(io(create, d))?;
    }
    mount::overlay(lowers, &u, &w, target)?;
    let outside = File::open("/").map_err(StageError::OpenRoot)?;
    nix::unistd::chroot(target).map_err(sys("chroot"))?;
    nix::unistd::chdir("/").map_err(sys("chdir"))?;
    let done = step();
    nix::unistd::fchdir(&outside).map_err(sys("fchdir"))?;
    nix::unistd::chroot(".").map_err(sys("chroot"))?;
    done?;
    let file = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(spool)
        .map_err(io(create, spool))?;
    let (_, mut file) = write_tree(&u, TreeKind::OverlayUpper, file)?;
    std::io::Seek::rewind(&mut file).map_err(io(plain, spool))?;
    let applied = apply_layer(file, upper, &ApplyOptions { ids })
        .map(|_| ())
        .map_err(|source| StageError::Changes {
            path: upper.to_path_buf(),
            source,
        });
    let _ = std::fs::remove_file(spool);
    applied
}

/// Inside the stage's root: make, unpack, chown.
fn carry_out(plan: Plan, tar: Option<File>, ids: IdPolicy) -> Result<()> {
    let mkdir = |d: &Path| std::fs::create_dir_all(d).map_err(io(create, d));
    let dir_owner = match &plan.mkdir_owner {
        Some(spec) => owner(spec, ids, &format!("USER {spec}"))?,
        None => None,
    };
    for d in &plan.mkdir {
        let made = mkdir_new(Path::new(d))?;
        if let Some((uid, gid)) = dir_owner {
            for p in made {
                std::os::unix::fs::lchown(&p, Some(uid), Some(gid)).map_err(io(chown, &p))?;
            }
        }
    }
    let (Some(tar), Some(place)) = (tar, &plan.place) else {
        return Ok(());
    };
    let opts = ApplyOptions { ids };
    let unpack = |into: &Path, tar: File| -> Result<()> {
        apply_layer(tar, into, &opts)
            .map(|_| ())
            .map_err(|source| StageError::Unpack {
                path: into.to_path_buf(),
                source,
            })
    };
    // The copied entries, where they ended up (for --chown).
    let landed: Vec<PathBuf> = match place {
        Place::Into(d) => {
            let d = Path::new(d);
            mkdir(d)?;
            unpack(d, tar)?;
            plan.entries.iter().map(|e| d.join(e)).collect()
        }
        Place::Auto { path, name } => {
            let path = Path::new(path);
            if path.is_dir() {
                unpack(path, tar)?;
                vec![path.join(name)]
            } else {
                let parent = path.parent().unwrap_or(Path::new("/"));
                mkdir(parent)?;
                let tmp = parent.join(format!(".burrow-build-{}", std::process::id()));
                mkdir(&tmp)?;
                unpack(&tmp, tar)?;
                std::fs::rename(tmp.join(name), path).map_err(|source| StageError::Rename {
                    path: path.to_path_buf(),
                    source,
                })?;
                std::fs::remove_dir(&tmp).map_err(io(plain, &tmp))?;
                vec![path.to_path_buf()]
            }
        }
    };
    if let Some(spec) = &plan.chown {
        if let Some((uid, gid)) = owner(spec, ids, &format!("--chown={spec}"))? {
            for p in landed {
                chown_tree(&p, uid, gid)?;
            }
        }
    }
    Ok(())
}

/// The ids `spec` (shown in errors as `what`) names in the stage's `/etc/passwd` and `/etc/group`, or
/// None when the store keeps no owners (every file is root's).
fn owner(spec: &str, ids: IdPolicy, what: &str) -> Result<Option<(u32, u32)>> {
    let IdPolicy::Keep { max_uid, max_gid } = ids else {
        return Ok(None);
    };
    let who =
        crate::sandbox::resolve_user(spec, Path::new("/etc")).map_err(|e| StageError::User {
            what: what.to_string(),
            source: Box::new(e),
        })?;
    if who.uid > max_uid || who.gid > max_gid {
        return Err(StageError::OutsideMapping {
            what: what.to_string(),
            uid: who.uid,
            gid: who.gid,
            max_uid,
        });
    }
    Ok(Some((who.uid, who.gid)))
}

/// `mkdir -p d`, returning the directories it created, outermost first.
fn mkdir_new(d: &Path) -> Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    let mut p = d;
    while std::fs::symlink_metadata(p).is_err() {
        missing.push(p.to_path_buf());
        match p.parent() {
            Some(parent) => p = parent,
            None => break,
        }
    }
    std::fs::create_dir_all(d).map_err(io(create, d))?;
    missing.reverse();
    Ok(missing)
}

fn chown_tree(p: &Path, uid: u32, gid: u32) -> Result<()> {
    let err = io(chown, p);
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).map_err(err)?;
    let meta = std::fs::symlink_metadata(p).map_err(err)?;
    if meta.is_dir() {
        for e in std::fs::read_dir(p).map_err(err)? {
            chown_tree(&e.map_err(err)?.path(), uid, gid)?;
        }
    } else if meta.is_file() {
        // chown clears set-id bits; the mode the file was copied with stays.
        std::fs::set_permissions(p, meta.permissions()).map_err(err)?;
    }
    Ok(())
}

/// `COPY --from`: pack `patterns` out of `image`'s filesystem into `out`,
/// in a child that sees the image's layers as its root (their files may
/// belong to subordinate ids, and their symlinks must resolve inside).
pub fn pack_from_image(
    store: &Store,
    mapping: &IdMapping,
    image: &str,
    what: &str,
    patterns: &[String],
    chmod: Option<u32>,
    out: File,
) -> Result<Packed> {
    let mut lowers = lowers(store, Some(image))?;
    let empty = store.staging_dir("build-empty")?;
    // A read-only overlay needs two lower dirs; an empty one is harmless.
    lowers.push(empty.clone());
    let target = store.mount_point();
    let what = what.to_string();
    let patterns = patterns.to_vec();
    // The child's error crosses to this process as its text.
    let r = run_in_userns_with(mapping, move || {
        pack_in_child(&lowers, &target, what, &patterns, chmod, out)
    });
    let _ = std::fs::remove_dir(&empty);
    Ok(r?)
}

/// In the user namespace's child: the image's layers mounted as the root,
/// `patterns` packed out of it.
fn pack_in_child(
    lowers: &[PathBuf],
    target: &Path,
    what: String,
    patterns: &[String],
    chmod: Option<u32>,
    out: File,
) -> Result<Packed> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(sys("unshare"))?;
    mount::overlay_readonly(lowers, target)?;
    nix::unistd::chroot(target).map_err(sys("chroot"))?;
    nix::unistd::chdir("/").map_err(sys("chdir"))?;
    let src = Source {
        root: PathBuf::from("/"),
        ignore: Default::default(),
        what,
    };
    let mut sources = Vec::new();
    for p in patterns {
        sources.extend(context::expand(&src, p)?);
    }
    Ok(context::pack(&src, &sources, chmod, out)?)
}
