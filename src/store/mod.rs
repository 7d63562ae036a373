//! The on-disk store: where it lives, its layout, the lock, atomic writes,
//! content-addressed layers and image configs, and the tag index.
//!
//! ```text
//! ROOT/lock                      flock: shared to read/create, exclusive to change images
//! ROOT/repositories.json         {"docker.io/library/busybox:latest": "sha256:<id>"}
//! ROOT/images/<id>.json          the image config blob, exactly as hashed for <id>
//! ROOT/images/<id>.meta          what the image layer records beside it (its manifest)
//! ROOT/blobs/sha256/<hex>        content-addressed blobs: layer archives as pulled,
//!                                loaded or imported, and manifests
//! ROOT/layers/<diff-id>/fs/      one extracted layer, shared read-only by containers
//! ROOT/layers/<diff-id>/size     uncompressed tar size in bytes
//! ROOT/containers/<id>/          container record, overlay upper/work dirs, etc files
//! ROOT/names/<name> -> <id>      name reservations (symlink creation is atomic)
//! ROOT/tmp/<what>-<pid>-<rand>   staging (directories, and files written by
//!                                `Store::replace`); renamed into place when
//!                                complete, removed by the next burrow once
//!                                <pid> is gone
//! RUNTIME/containers/<id>.pid    "PID STARTTIME" of a running container
//! ```

pub mod check;
mod content;
pub mod events;
pub mod paths;

use std::fs::{self, File};
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use sha2::{Digest, Sha256};

use crate::linux::userns::{run_in_userns, IdMapping, UsernsError};

pub use paths::StorePaths;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} {path:?}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupt store file {path:?}: {source}")]
    BadJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// An image's metadata file that is not the JSON burrow writes.
    #[error("corrupt store file {path:?}: image metadata: {source}")]
    BadMeta {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("corrupt store file {path:?}: bad digest {digest:?}")]
    BadDigest { path: PathBuf, digest: String },
    /// A tree only a user namespace could remove, and it could not. The
    /// helper's error is shown, not chained: its causes are in its text.
    #[error("corrupt store file {path:?}: cannot remove: {error}")]
    Remove { path: PathBuf, error: UsernsError },
    #[error("No such image: {0}")]
    NoSuchImage(String),
    #[error("blob {0} is not in the store")]
    NoSuchBlob(String),
    #[error("image id prefix {0:?} is ambiguous")]
    Ambiguous(String),
    #[error("locking the store {path:?}: {source}")]
    Lock {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("runtime directory {} {why}, so burrow will not use it: remove it (or have it removed), or set XDG_RUNTIME_DIR to a private directory of yours", path.display())]
    RuntimeRefused {
        path: PathBuf,
        why: crate::linux::fs::PrivateDirError,
    },
}

pub type Result<T> = std::result::Result<T, StoreError>;

pub(crate) fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { what, path, source }
}

/// An open store. Cheap to create; every method takes the paths it needs.
#[derive(Debug, Clone)]
pub struct Store {
    pub paths: StorePaths,
}

/// A held flock on the store; released on drop.
pub struct StoreLock {
    _lock: Flock<File>,
}

impl Store {
    /// Open (creating if needed) the store at `paths`.
    pub fn open(paths: StorePaths) -> Result<Self> {
        private_dir(&paths.root)?;
        // /tmp is everyone's: a runtime directory made there by someone
        // else (or a symlink to one) would hand them our pid files and
        // sockets. Checked before anything is made in it.
        runtime_base(paths.runtime_base())?;
        private_dir(&paths.runtime)?;
        for d in [
            paths.root.join("images"),
            paths.root.join("layers"),
            paths.root.join("blobs").join("sha256"),
            paths.root.join("containers"),
            paths.root.join("names"),
            paths.root.join("tmp"),
            paths.root.join("mnt"),
            paths.runtime.join("containers"),
        ] {
            if !d.is_dir() {
                fs::create_dir_all(&d).map_err(io("creating store directory", &d))?;
            }
        }
        Ok(Store { paths })
    }

    /// Make the runtime directories 0700 again if they are open (made by
    /// a burrow from before they were private: they live until the next
    /// reboot). They hold burrow's state only, so every command closes
    /// them, as it reclaims debris; an open store root is only reported
    /// (`system check`), since its mode may be the user's own choice.
    pub fn close_runtime_dirs(&self) {
        use std::os::unix::fs::PermissionsExt;
        for d in [self.paths.runtime_base(), &self.paths.runtime] {
            if fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o077 != 0) {
                let _ = fs::set_permissions(d, fs::Permissions::from_mode(0o700));
            }
        }
    }

    pub fn root(&self) -> &Path {
        &self.paths.root
    }

    fn lock(&self, arg: FlockArg) -> Result<StoreLock> {
        let p = self.paths.root.join("lock");
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(io("opening lock", &p))?;
        let lock =
            Flock::lock(f, arg).map_err(|(_, source)| StoreError::Lock { path: p, source })?;
        Ok(StoreLock { _lock: lock })
    }

    /// For changing images and tags.
    pub fn lock_exclusive(&self) -> Result<StoreLock> {
        self.lock(FlockArg::LockExclusive)
    }

    /// For reading images consistently and creating containers from them.
    pub fn lock_shared(&self) -> Result<StoreLock> {
        self.lock(FlockArg::LockShared)
    }

    /// An exclusive flock on a container's directory: a start holds it until
    /// the container is recorded as running, a removal while it removes, so
    /// `rm -f` never removes a container that is half started. None when
    /// the directory does not exist.
    pub fn lock_container(&self, id: &str) -> Result<Option<StoreLock>> {
        let p = self.container_dir(id);
        let f = match File::open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("opening", &p)(e)),
        };
        let lock = Flock::lock(f, FlockArg::LockExclusive)
            .map_err(|(_, source)| StoreError::Lock { path: p, source })?;
        Ok(Some(StoreLock { _lock: lock }))
    }

    /// A new private staging directory under tmp/, named after our pid so a
    /// later run can tell abandoned ones (dead pid) from live ones.
    pub fn staging_dir(&self, what: &str) -> Result<PathBuf> {
        self.staging_dir_for(what, &random_hex(6))
    }

    /// A staging directory whose name ends in `tag` (a container id being
    /// created), so others can tell that `tag` is being made by a live process.
    pub fn staging_dir_for(&self, what: &str, tag: &str) -> Result<PathBuf> {
        let p = self.staging_path(what, tag);
        fs::create_dir(&p).map_err(io("creating staging directory", &p))?;
        Ok(p)
    }

    /// The path (not created) of a staging entry `what-<our pid>-tag`.
    pub fn staging_path(&self, what: &str, tag: &str) -> PathBuf {
        self.paths
            .root
            .join("tmp")
            .join(format!("{what}-{}-{tag}", std::process::id()))
    }

    /// Is a live process staging something named `what-<pid>-tag`?
    pub fn live_staging(&self, what: &str, tag: &str) -> bool {
        let Ok(rd) = fs::read_dir(self.paths.root.join("tmp")) else {
            return false;
        };
        rd.filter_map(|e| e.ok()).any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let mut parts = name.splitn(3, '-');
            parts.next() == Some(what)
                && parts
                    .next()
                    .and_then(|p| p.parse::<u32>().ok())
                    .is_some_and(pid_alive)
                && parts.next() == Some(tag)
        })
    }

    /// A staging directory for work whose result is renamed into the store
    /// (an import, pull, load or commit). Whatever is left of it is removed
    /// when the guard is dropped, as root of a user namespace with `mapping`
    /// when its files belong to subordinate ids.
    pub fn staging<'m>(&self, what: &str, mapping: &'m IdMapping) -> Result<Staging<'m>> {
        Ok(Staging {
            path: self.staging_dir(what)?,
            mapping,
        })
    }

    /// Staging directories whose creating process is gone (an import that was
    /// killed): the caller removes them, inside the user namespace if needed.
    pub fn abandoned_staging(&self) -> Vec<PathBuf> {
        let Ok(rd) = fs::read_dir(self.paths.root.join("tmp")) else {
            return Vec::new();
        };
        rd.filter_map(|e| e.ok())
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                !staging_pid(&name).is_some_and(pid_alive)
            })
            .map(|e| e.path())
            .collect()
    }

    /// Remove what killed imports, pulls and loads left under tmp/ (owned
    /// by subordinate ids, so through the user namespace when needed).
    pub fn remove_abandoned_staging(&self, mapping: &IdMapping) {
        for d in self.abandoned_staging() {
            tracing::debug!("removing abandoned staging {d:?}");
            let _ = remove_path(&d, mapping);
        }
    }

    /// Replace the store file `path` atomically: the new content is written
    /// to a staging file in tmp/ (named after our pid, so a killed writer's
    /// leftover is reclaimed like any staging) and renamed over `path`.
    /// `durable` syncs the file before and its directory after the rename,
    /// for files whose loss would lose user data.
    pub fn replace(&self, path: &Path, bytes: &[u8], durable: bool) -> Result<()> {
        let tmp = self.staging_path("write", &random_hex(6));
        let written = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            if durable {
                f.sync_all()?;
            }
            Ok(())
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io("writing", &tmp)(e));
        }
        if let Err(e) = fs::rename(&tmp, path) {
            let _ = fs::remove_file(&tmp);
            return Err(io("replacing", path)(e));
        }
        if durable {
            sync_dir(path.parent().unwrap_or(Path::new(".")));
        }
        Ok(())
    }

    // ---- containers ----

    pub fn containers_dir(&self) -> PathBuf {
        self.paths.root.join("containers")
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.containers_dir().join(id)
    }

    /// Where a container's overlay is mounted, in the container's own mount
    /// namespace: one empty directory shared by all of them, so starting
    /// and removing a container makes and removes no mount point on disk.
    pub fn mount_point(&self) -> PathBuf {
        self.paths.root.join("mnt")
    }

    pub fn names_dir(&self) -> PathBuf {
        self.paths.root.join("names")
    }

    /// The exit code of a `--rm` container whose record is gone, left by
    /// its monitor for whoever waits for it (the API's `/wait`).
    pub fn removed_exit_file(&self, id: &str) -> PathBuf {
        self.paths
            .runtime
            .join("containers")
            .join(format!("{id}.exit"))
    }

    pub fn pid_file(&self, id: &str) -> PathBuf {
        self.paths
            .runtime
            .join("containers")
            .join(format!("{id}.pid"))
    }

    /// The file a container's monitor holds a lock on while it runs.
    pub fn monitor_lock_file(&self, id: &str) -> PathBuf {
        self.paths
            .runtime
            .join("containers")
            .join(format!("{id}.monitor"))
    }
}

/// The per-user runtime directory (`/tmp/burrow-run-UID`,
/// `$XDG_RUNTIME_DIR/burrow`): made 0700 when missing, and refused when it
/// is not a private directory of ours (see `fs::private_dir_of_ours`):
/// whoever planted it could read or replace our pid files and sockets.
fn runtime_base(base: &Path) -> Result<()> {
    use crate::linux::fs::{private_dir_of_ours, PrivateDirError};
    private_dir_of_ours(base).map_err(|e| match e {
        PrivateDirError::Io { step, source } => io(step, base)(source),
        why => StoreError::RuntimeRefused {
            path: base.to_path_buf(),
            why,
        },
    })
}

/// Create `dir` and each missing parent 0700, as the XDG base directory
/// specification asks of a missing data directory: a container's root is
/// the user, so what it leaves in its upper directory (a set-user-id copy
/// of a program) must be out of other users' reach. An existing directory
/// keeps its mode (`system check --repair` closes an open one).
fn private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io("creating store directory", dir))
}

/// A staging directory that removes what is left of itself when dropped
/// (see [`Store::staging`]).
pub struct Staging<'m> {
    path: PathBuf,
    mapping: &'m IdMapping,
}

impl std::ops::Deref for Staging<'_> {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl Drop for Staging<'_> {
    fn drop(&mut self) {
        if self.path.exists() {
            let _ = remove_tree(&self.path, self.mapping);
        }
    }
}

/// `rm -rf`, retried as root of a user namespace with the caller's mapping
/// when plain deletion is refused: files a container or an import created
/// may belong to subordinate ids, which only that namespace can delete.
pub fn remove_tree(dir: &Path, mapping: &IdMapping) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e)
            if e.kind() == std::io::ErrorKind::PermissionDenied
                || e.raw_os_error() == Some(libc::EPERM) =>
        {
            let d = dir.to_path_buf();
            run_in_userns(mapping, move || {
                fs::remove_dir_all(&d).map_err(io("removing", &d))
            })
            .map_err(|error| StoreError::Remove {
                path: dir.to_path_buf(),
                error,
            })
        }
        Err(e) => Err(io("removing", dir)(e)),
    }
}

/// Remove a staging directory or file, whatever it is.
pub fn remove_path(p: &Path, mapping: &IdMapping) -> Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => remove_tree(p, mapping),
        Ok(_) => match fs::remove_file(p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("removing", p)(e)),
            _ => Ok(()),
        },
        Err(_) => Ok(()),
    }
}

/// Is process `pid` alive (or at least present)?
pub fn pid_alive(pid: u32) -> bool {
    pid != 0 && Path::new(&format!("/proc/{pid}")).exists()
}

/// Flush everything written to the store's filesystem (extracted layers,
/// blobs): called once before an image's config makes it visible, so a
/// power loss cannot leave a listed image with layers that lost their data.
pub fn sync_filesystem(store: &Store) {
    if let Ok(d) = File::open(store.root()) {
        let _ = nix::unistd::syncfs(d.as_fd());
    }
}

/// fsync a directory, so a rename into it survives a power loss. Best
/// effort: a filesystem that cannot sync directories loses nothing more
/// than it did before.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Write `bytes` to `path` via a temp file in the same directory and a rename,
/// so readers see the old or the new content, never a torn one. `durable`
/// adds an fsync for files whose loss would lose user data.
pub fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let mut f = File::create(&tmp).map_err(io("creating", &tmp))?;
    f.write_all(bytes).map_err(io("writing", &tmp))?;
    if durable {
        nix::unistd::fsync(f.as_fd()).map_err(|e| io("syncing", &tmp)(e.into()))?;
    }
    drop(f);
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io("replacing", path)(e)
    })
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// True for `sha256:` and 64 lowercase hex digits: the only digests the
/// store names files after, so an untrusted digest never becomes a path.
pub fn valid_digest(d: &str) -> bool {
    d.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// The first 12 hex digits of an id or digest: Docker's short form.
pub fn short_hex(id: &str) -> &str {
    let h = hex_of(id);
    &h[..h.len().min(12)]
}

/// The hex part of `sha256:<hex>` (or the string itself).
pub fn hex_of(id: &str) -> &str {
    id.strip_prefix("sha256:").unwrap_or(id)
}

/// The pid in a staging name `what-<pid>-tag`: the next to last part, as
/// `what` may hold dashes (`build-copy`) and the tag (hex) never does.
fn staging_pid(name: &str) -> Option<u32> {
    name.rsplit('-').nth(1).and_then(|p| p.parse().ok())
}

/// `n` random bytes as hex, from the kernel's CSPRNG.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    if let Ok(mut f) = File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut buf);
    }
    hex(&buf)
}

/// A fresh store in a temp dir, for unit tests here and in the layers above.
#[cfg(test)]
pub fn temp_store() -> (tempfile::TempDir, Store) {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(StorePaths {
        root: d.path().join("root"),
        runtime: d.path().join("run").join("store"),
        runtime_from: Default::default(),
    })
    .unwrap();
    (d, s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        temp_store()
    }

    #[test]
    fn commit_layer_is_idempotent() {
        let (_d, s) = store();
        let a = s.staging_dir("layer").unwrap();
        fs::create_dir(a.join("fs")).unwrap();
        assert!(s.commit_layer(&a, "sha256:ab", 10).unwrap());
        let b = s.staging_dir("layer").unwrap();
        fs::create_dir(b.join("fs")).unwrap();
        assert!(!s.commit_layer(&b, "sha256:ab", 10).unwrap());
        assert_eq!(s.layer_size("sha256:ab"), 10);
        assert!(s.abandoned_staging().is_empty(), "our own pid is alive");
    }

    #[test]
    fn staging_with_a_dash_in_its_name_is_ours_while_we_live() {
        let (_d, s) = store();
        let copy = s.staging_dir("build-copy").unwrap();
        assert!(
            s.abandoned_staging().is_empty(),
            "{copy:?} taken for abandoned"
        );
        assert_eq!(staging_pid("build-copy-12572-ba157029e6c6"), Some(12572));
        assert_eq!(staging_pid("write-7-00ff"), Some(7));
        assert_eq!(staging_pid("stray"), None);
    }

    #[test]
    fn atomic_write_replaces() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        write_atomic(&p, b"one", false).unwrap();
        write_atomic(&p, b"two", true).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(
            fs::read_dir(d.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }
}
