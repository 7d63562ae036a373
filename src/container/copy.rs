//! `cp` between the host and a container, as a tar stream between two forked
//! workers: one on the host, one inside the container. For a running
//! container the inner worker joins its namespaces (its mount namespace
//! shows the live rootfs); for a stopped one it mounts the container's
//! overlay privately in a user namespace of its own. Inside, paths resolve
//! against the container's root, so its symlinks cannot reach the host.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, openat, renameat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, mkdirat, Mode};
use nix::unistd::{unlinkat, UnlinkatFlags};

use super::{ContainerError, ContainerRecord, Result};
use crate::exit;
use crate::image::layer::{apply_layer_at, ApplyOptions, IdPolicy};
use crate::linux::fs::{dir_flags, open_dir, openat_in_root, remove_all_at};
use crate::linux::ns::Namespaces;
use crate::linux::userns::{run_in_userns, IdMapping};
use crate::linux::worker::{self, WorkerError};
use crate::linux::{mount, process};
use crate::sandbox::{Failure, RootfsMode, Step};
use crate::store::Store;

/// Which way to copy.
#[derive(Debug, Clone)]
pub enum Direction {
    /// Host path → container path.
    In { host: PathBuf, container: String },
    /// Container path → host path.
    Out { container: String, host: PathBuf },
}

/// One side of the copy, given its end of the pipe.
type Worker = Box<dyn FnOnce(OwnedFd) -> std::result::Result<(), Failure>>;

fn other(e: impl std::fmt::Display) -> ContainerError {
    ContainerError::Other(e.to_string())
}

/// A copy failure at `path`.
fn copy_failure(e: &std::io::Error, path: &Path) -> Failure {
    Failure::io(Step::Copy, e, 1).at(path)
}

/// A worker's outcome as it arrived, or how it ended without one.
fn outcome(w: worker::Worker<Failure>) -> Result<()> {
    let (word, code) = w.wait();
    let code = code.unwrap_or(1);
    match word {
        Ok(_) => Ok(()),
        Err(WorkerError::Failed(f)) => Err(other(f)),
        Err(_) => Err(other(format!("copy failed ({code})"))),
    }
}

/// Copy as `docker cp` does: into an existing directory the source keeps its
/// name; otherwise it is created at the destination path.
pub fn copy(
    store: &Store,
    rec: &ContainerRecord,
    mapping: &IdMapping,
    dir: &Direction,
) -> Result<()> {
    let (r, w) = process::pipe().map_err(other)?;
    let (host_side, ctr_side): (Worker, Worker);
    let (host_end, ctr_end) = match dir {
        Direction::In { host, container } => {
            if !host.exists() {
                return Err(other(format!("no such host path: {}", host.display())));
            }
            let (h, c) = (host.clone(), container.clone());
            let top = top_name(&h);
            host_side = Box::new(move |fd| pack(&h, fd));
            ctr_side = Box::new(move |fd| unpack(fd, Path::new(&c), &top, Land::Container));
            (w, r)
        }
        Direction::Out { container, host } => {
            let (h, c) = (host.clone(), container.clone());
            let top = top_name(Path::new(&c));
            host_side = Box::new(move |fd| unpack(fd, &h, &top, Land::Host));
            ctr_side = Box::new(move |fd| pack(Path::new(&c), fd));
            (r, w)
        }
    };

    // The host worker first (a plain fork), then the container worker.
    let host_worker = worker::spawn(move |report| {
        process::close_fds_except(&[host_end.as_raw_fd(), report]);
        host_side(host_end).map(|()| None)
    })
    .map_err(other)?;
    // The closure (and with it the host worker's pipe and channel ends) is
    // gone from this process: only the workers hold the pipe, so each sees
    // EOF in time.
    let inside = in_container(store, rec, mapping, ctr_end, ctr_side);
    let host = outcome(host_worker);
    // The unpacking side's failure is the cause; the packing side then
    // only saw the pipe close (EPIPE, SIGPIPE).
    match dir {
        Direction::In { .. } => inside.and(host),
        Direction::Out { .. } => host.and(inside),
    }
}

/// What a container path is (Docker's `ContainerPathStat`, in Unix terms):
/// the path itself, a symlink not followed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PathStat {
    /// Its last component (`/` for the root).
    pub name: String,
    pub size: u64,
    /// `st_mode`: type and permission bits.
    pub mode: u32,
    pub mtime_secs: i64,
    pub mtime_nanos: u32,
    /// Where a symlink points, as stored.
    pub link_target: String,
}

impl PathStat {
    pub fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }
}

/// What the stat worker found.
#[derive(serde::Serialize, serde::Deserialize)]
enum StatAnswer {
    Found(PathStat),
    Missing,
}

/// An unlinked file in the store for what a worker writes or reads (an
/// archive, an answer): the worker may run in another mount namespace,
/// where only the descriptor reaches it.
pub fn scratch_file(store: &Store) -> Result<File> {
    let dir = store.root().join("tmp");
    let mode = Mode::from_bits_truncate(0o600);
    if let Ok(fd) = open(
        &dir,
        OFlag::O_TMPFILE | OFlag::O_RDWR | OFlag::O_CLOEXEC,
        mode,
    ) {
        return Ok(File::from(fd));
    }
    // A file system without O_TMPFILE: a fresh name, unlinked at once.
    let path = dir.join(format!(
        ".scratch-{}-{}",
        std::process::id(),
        crate::store::random_hex(6)
    ));
    let fd = open(
        &path,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR | OFlag::O_CLOEXEC,
        mode,
    )
    .map_err(other)?;
    let _ = std::fs::remove_file(&path);
    Ok(File::from(fd))
}

/// Stat `path` (absolute) inside the container: None when nothing is there.
pub fn stat(
    store: &Store,
    rec: &ContainerRecord,
    mapping: &IdMapping,
    path: &str,
) -> Result<Option<PathStat>> {
    use std::io::{Read, Seek};
    let mut answer = scratch_file(store)?;
    let fd: OwnedFd = answer.try_clone().map_err(other)?.into();
    let p = PathBuf::from(path);
    let path_text = path.to_string();
    in_container(
        store,
        rec,
        mapping,
        fd,
        Box::new(move |fd| {
            let found = match std::fs::symlink_metadata(&p) {
                Ok(m) => {
                    use std::os::unix::fs::MetadataExt;
                    let link_target = if m.file_type().is_symlink() {
                        std::fs::read_link(&p)
                            .map(|t| t.to_string_lossy().into_owned())
                            .unwrap_or_default()
                    } else {
                        String::new()
                    };
                    StatAnswer::Found(PathStat {
                        name: if p == Path::new("/") {
                            "/".into()
                        } else {
                            archive_name(&path_text).to_string_lossy().into_owned()
                        },
                        size: m.size(),
                        mode: m.mode(),
                        mtime_secs: m.mtime(),
                        mtime_nanos: m.mtime_nsec().clamp(0, 999_999_999) as u32,
                        link_target,
                    })
                }
                Err(e)
                    if e.kind() == std::io::ErrorKind::NotFound
                        || e.raw_os_error() == Some(libc::ENOTDIR) =>
                {
                    StatAnswer::Missing
                }
                Err(e) => return Err(copy_failure(&e, &p)),
            };
            let text = serde_json::to_vec(&found).unwrap_or_default();
            std::io::Write::write_all(&mut File::from(fd), &text).map_err(|e| copy_failure(&e, &p))
        }),
    )?;
    answer.rewind().map_err(other)?;
    let mut text = Vec::new();
    answer.read_to_end(&mut text).map_err(other)?;
    match serde_json::from_slice(&text) {
        Ok(StatAnswer::Found(s)) => Ok(Some(s)),
        Ok(StatAnswer::Missing) => Ok(None),
        Err(e) => Err(other(format!("reading a stat of {path}: {e}"))),
    }
}

/// Write `path` (absolute) inside the container to `out` as a tar stream,
/// its top entry named after the path's last component (`docker cp`'s
/// archive).
pub fn archive(
    store: &Store,
    rec: &ContainerRecord,
    mapping: &IdMapping,
    path: &str,
    out: File,
) -> Result<()> {
    use std::io::Seek;
    let p = PathBuf::from(path);
    let name = archive_name(path);
    if name != Path::new(".") {
        return in_container(
            store,
            rec,
            mapping,
            out.into(),
            Box::new(move |fd| pack_as(&p, &name, fd)),
        );
    }
    // A directory's contents: Docker's client renames entries by replacing
    // their leading `.`, so every name must start with `./`, which the tar
    // writer would normalise away. The archive is written as usual, then
    // copied with the names spelled out.
    let mut plain = scratch_file(store)?;
    let writer = plain.try_clone().map_err(other)?;
    in_container(
        store,
        rec,
        mapping,
        writer.into(),
        Box::new(move |fd| pack_as(&p, &name, fd)),
    )?;
    plain.rewind().map_err(other)?;
    dot_prefixed(plain, out).map_err(other)
}

/// Copy a tar stream, each entry's name prefixed with `./` (the top
/// directory itself named `./`). Names too long for a header go in GNU
/// long-name entries, as the tar writer would put them.
fn dot_prefixed(input: impl std::io::Read, out: File) -> std::io::Result<()> {
    let mut archive = tar::Archive::new(input);
    let mut b = tar::Builder::new(std::io::BufWriter::new(out));
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry.path_bytes().into_owned();
        let name = name.strip_prefix(b"./").unwrap_or(&name);
        let mut full = b"./".to_vec();
        if name != b"." {
            full.extend_from_slice(name);
        }
        let link = entry.link_name_bytes().map(|l| l.into_owned());
        let mut header = entry.header().clone();
        if let Some(l) = &link {
            if l.len() > 100 {
                long_name(&mut b, tar::EntryType::GNULongLink, l)?;
            }
            set_field(&mut header.as_old_mut().linkname, l);
        }
        if full.len() > 100 {
            long_name(&mut b, tar::EntryType::GNULongName, &full)?;
        }
        set_field(&mut header.as_old_mut().name, &full);
        header.set_cksum();
        b.append(&header, &mut entry)?;
    }
    b.into_inner()?.into_inner().map_err(|e| e.into_error())?;
    Ok(())
}

/// A header name field: as much as fits, NUL-padded.
fn set_field(field: &mut [u8], value: &[u8]) {
    field.fill(0);
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// A GNU long-name (or long-link) entry for the entry after it.
fn long_name<W: std::io::Write>(
    b: &mut tar::Builder<W>,
    kind: tar::EntryType,
    value: &[u8],
) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    set_field(&mut h.as_old_mut().name, b"././@LongLink");
    h.set_mode(0o644);
    h.set_entry_type(kind);
    let mut data = value.to_vec();
    data.push(0);
    h.set_size(data.len() as u64);
    h.set_cksum();
    b.append(&h, data.as_slice())
}

/// Unpack the tar stream in `input` into the existing directory `dir`
/// (absolute) inside the container, every entry resolved inside it as
/// `cp` does. With `no_overwrite_dir_non_dir`, an entry that would put a
/// non-directory where a directory is, or the other way round, fails the
/// copy before anything is written.
pub fn extract(
    store: &Store,
    rec: &ContainerRecord,
    mapping: &IdMapping,
    dir: &str,
    input: File,
    no_overwrite_dir_non_dir: bool,
) -> Result<()> {
    let d = PathBuf::from(dir);
    in_container(
        store,
        rec,
        mapping,
        input.into(),
        Box::new(move |fd| {
            use std::io::Seek;
            let sys = |e: nix::Error, at: &Path| Failure::sys(Step::Copy, e, 1).at(at);
            let root = open(
                "/",
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| sys(e, Path::new("/")))?;
            let target = openat_in_root(
                root.as_fd(),
                in_root(&d),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY,
            )
            .map_err(|e| sys(e, &d))?;
            let mut reader = File::from(fd);
            if no_overwrite_dir_non_dir {
                check_kinds(&mut reader, target.as_fd(), &d)?;
                reader.rewind().map_err(|e| copy_failure(&e, &d))?;
            }
            into(reader, target, &d)
        }),
    )
}

/// Docker's `noOverwriteDirNonDir`: no entry of the stream may replace a
/// directory with something else, or something else with a directory.
fn check_kinds(
    reader: &mut File,
    dir: BorrowedFd<'_>,
    at: &Path,
) -> std::result::Result<(), Failure> {
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(|e| copy_failure(&e, at))?;
    for entry in entries {
        let entry = entry.map_err(|e| copy_failure(&e, at))?;
        let path = entry.path().map_err(|e| copy_failure(&e, at))?.into_owned();
        let rel: PathBuf = path
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect();
        if rel.as_os_str().is_empty() {
            continue;
        }
        let Ok(st) = fstatat(dir, &rel, AtFlags::AT_SYMLINK_NOFOLLOW) else {
            continue;
        };
        let existing_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
        let entry_dir = entry.header().entry_type().is_dir();
        if existing_dir != entry_dir {
            let detail = if existing_dir {
                "cannot overwrite a directory with a non-directory"
            } else {
                "cannot overwrite a non-directory with a directory"
            };
            return Err(Failure::new(Step::Copy, detail, 1).at(at.join(&rel)));
        }
    }
    Ok(())
}

/// Run `f` with the container's root as `/`, in a child process.
fn in_container(
    store: &Store,
    rec: &ContainerRecord,
    mapping: &IdMapping,
    fd: OwnedFd,
    f: Worker,
) -> Result<()> {
    if rec.is_up(store) {
        let start = rec
            .pid1_start(store)
            .ok_or_else(|| ContainerError::NotRunning(rec.name.clone()))?;
        let ns = Namespaces::open(Path::new("/proc"), rec.state.pid, start).map_err(other)?;
        let w = worker::spawn(move |report| {
            let joined = ns.join();
            // Its descriptors are closed here, not by close_fds_except
            // under it (dropping an OwnedFd already closed aborts).
            drop(ns);
            joined.map_err(|e| Failure::new(Step::JoinNamespaces, e.to_string(), exit::BURROW))?;
            process::close_fds_except(&[fd.as_raw_fd(), report]);
            f(fd).map(|()| None)
        })
        .map_err(other)?;
        return outcome(w);
    }
    // Stopped: mount its rootfs privately and chroot into it. (chroot is
    // fine here: nothing after it creates a user namespace.)
    let dir = store.container_dir(&rec.id);
    let mount_point = store.mount_point();
    let lowers = rec.lowers(store);
    let copy_mode = rec.rootfs_mode == Some(RootfsMode::Copy);
    let fuse_mode = rec.rootfs_mode == Some(RootfsMode::FuseOverlayfs);
    // This worker inherits only our stdio, its end of the pipe and the host
    // worker's channel (nothing else is open here). Its failure comes back
    // as run_in_userns's message.
    run_in_userns(mapping, move || {
        let enter = || -> std::result::Result<(), Failure> {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
                .map_err(|e| Failure::sys(Step::Unshare, e, 1))?;
            // Served by fuse-overlayfs for as long as the copy runs; it
            // stays in the root it started in (chroot moves only us).
            let mut daemon = None;
            let root = if copy_mode {
                dir.join("rootfs")
            } else if fuse_mode {
                let (upper, work) = (dir.join("upper"), dir.join("work"));
                daemon = Some(
                    crate::linux::fuse_overlay::Daemon::mount(
                        &lowers,
                        Some((&upper, &work)),
                        &mount_point,
                        None,
                    )
                    .map_err(|e| Failure::new(Step::Overlay, e.to_string(), 1))?,
                );
                mount_point
            } else {
                mount::overlay(&lowers, &dir.join("upper"), &dir.join("work"), &mount_point)
                    .map_err(|e| Failure::sys(Step::Overlay, e.source, 1).at(&mount_point))?;
                mount_point
            };
            nix::unistd::chroot(&root)
                .map_err(|e| Failure::sys(Step::PivotRoot, e, 1).at(&root))?;
            nix::unistd::chdir("/").map_err(|e| Failure::sys(Step::Workdir, e, 1).at("/"))?;
            let done = f(fd);
            if let Some(d) = daemon {
                // What was copied in is written through before it ends.
                d.stop(Path::new("/"));
            }
            done
        };
        enter()
    })
    .map_err(|e| other(e.to_string()))
}

/// The name a copied item has in the stream: its last component, or `.`
/// for a directory named by `/`, `.` or `..` (its contents are copied).
fn top_name(p: &Path) -> PathBuf {
    match p.components().next_back() {
        Some(Component::Normal(n)) => PathBuf::from(n),
        _ => PathBuf::from("."),
    }
}

/// The top entry's name in an archive of `path`, as Docker's API names it:
/// `.` for a path ending in `/.` (a directory's contents), else its last
/// component.
fn archive_name(path: &str) -> PathBuf {
    if path.ends_with("/.") {
        PathBuf::from(".")
    } else {
        top_name(Path::new(path))
    }
}

/// Write `src` as a tar stream, its top entry named after `src`.
fn pack(src: &Path, fd: OwnedFd) -> std::result::Result<(), Failure> {
    pack_as(src, &top_name(src), fd)
}

/// Write `src` as a tar stream, its top entry named `name`.
fn pack_as(src: &Path, name: &Path, fd: OwnedFd) -> std::result::Result<(), Failure> {
    let meta = std::fs::symlink_metadata(src).map_err(|e| copy_failure(&e, src))?;
    let mut b = tar::Builder::new(File::from(fd));
    b.follow_symlinks(false);
    let r = if meta.is_dir() && crate::linux::fs::is_kernel_fs(src) {
        if name.as_os_str().is_empty() {
            Ok(())
        } else {
            b.append_path_with_name(src, name)
        }
    } else if meta.is_dir() {
        append_tree(
            &mut b,
            src,
            name,
            std::os::unix::fs::MetadataExt::dev(&meta),
        )
    } else {
        b.append_path_with_name(src, name)
    };
    r.and_then(|()| b.finish())
        .map_err(|e| copy_failure(&e, src))
}

/// Append the directory `src` as `name`, and everything under it, symlinks
/// as themselves. The mounts a running container has of the kernel's own
/// file systems (its /proc, /sys, /dev/pts, /dev/mqueue) go in as empty
/// directories, as Docker copies a container's tree: their files are the
/// running system, many unreadable, and not the container's data.
fn append_tree(
    b: &mut tar::Builder<File>,
    src: &Path,
    name: &Path,
    dev: u64,
) -> std::io::Result<()> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    // An empty name is the archive's own top (a directory's contents).
    if !name.as_os_str().is_empty() {
        b.append_path_with_name(src, name)?;
    }
    let mut entries: Vec<_> = std::fs::read_dir(src)?.collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let inner = name.join(e.file_name());
        let meta = std::fs::symlink_metadata(&path)?;
        let kind = meta.file_type();
        if kind.is_char_device() || kind.is_block_device() || kind.is_fifo() {
            append_special(b, &meta, &inner)?;
        } else if kind.is_socket() {
            // A socket is a live endpoint, not data: Docker skips it too.
        } else if !meta.is_dir() || (meta.dev() != dev && crate::linux::fs::is_kernel_fs(&path)) {
            b.append_path_with_name(&path, &inner)?;
        } else {
            append_tree(b, &path, &inner, meta.dev())?;
        }
    }
    Ok(())
}

/// A device node or fifo as a header alone (the tar writer's own path for
/// these names the entry after the source path, not `name`).
fn append_special(
    b: &mut tar::Builder<File>,
    meta: &std::fs::Metadata,
    name: &Path,
) -> std::io::Result<()> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let kind = meta.file_type();
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
    h.set_size(0);
    h.set_entry_type(if kind.is_char_device() {
        tar::EntryType::Char
    } else if kind.is_block_device() {
        tar::EntryType::Block
    } else {
        tar::EntryType::Fifo
    });
    let dev = meta.rdev();
    h.set_device_major(nix::sys::stat::major(dev) as u32)?;
    h.set_device_minor(nix::sys::stat::minor(dev) as u32)?;
    b.append_data(&mut h, name, std::io::empty())
}

/// Which file system a copy lands in, and so how its destination resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Land {
    /// The user's: the destination's parent is opened as the user named it,
    /// but its last component is never followed. The container may have put
    /// the symlink there (a first `cp` out of a symlink leaves one, as
    /// Docker's does), and following it would let a second copy write
    /// wherever it points (`~/.ssh`, `~/.local/bin`). A symlink there is
    /// replaced by the copy, as a missing name would be created.
    Host,
    /// The container's (this process has its root as `/`): every component,
    /// symlinks included, resolves inside that root (`openat2`
    /// `RESOLVE_IN_ROOT`, no magic links), as Docker resolves container paths
    /// in scope; a symlink the container swaps in mid-copy stays inside it.
    Container,
}

/// Unpack a tar stream whose top entry is `top` (the copied item) to `dst`:
/// into it if it is an existing directory, else as `dst` itself. A `dst`
/// ending in `/` must be an existing directory (Docker's rule).
fn unpack(fd: OwnedFd, dst: &Path, top: &Path, land: Land) -> std::result::Result<(), Failure> {
    let reader = File::from(fd);
    let sys = |e: nix::Error, at: &Path| Failure::sys(Step::Copy, e, 1).at(at);
    let bytes = dst.as_os_str().as_bytes();
    let want_dir = bytes.ends_with(b"/") || bytes.ends_with(b"/.");
    let root = match land {
        Land::Host => None,
        Land::Container => Some(
            open(
                "/",
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| sys(e, Path::new("/")))?,
        ),
    };
    // A directory to read or fill, resolved the way `land` says.
    let open_dir_at = |p: &Path| match &root {
        None => open_dir(p),
        Some(root) => openat_in_root(
            root.as_fd(),
            in_root(p),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY,
        ),
    };
    let Some(Component::Normal(name)) = dst.components().next_back() else {
        // `/`, `.` or `..`: a directory the caller named as such.
        let dir = open_dir_at(dst).map_err(|e| sys(e, dst))?;
        return into(reader, dir, dst);
    };
    let parent = dst
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let pfd = open_dir_at(parent).map_err(|e| match e {
        Errno::ENOENT | Errno::ENOTDIR => {
            Failure::new(Step::Copy, "no such directory", 1).at(parent)
        }
        e => sys(e, parent),
    })?;
    let existing = match &root {
        // O_NOFOLLOW: a symlink is not a directory to copy into.
        None => openat(pfd.as_fd(), name, dir_flags(), Mode::empty()),
        Some(_) => open_dir_at(dst),
    };
    match existing {
        Ok(dir) => return into(reader, dir, dst),
        Err(Errno::ENOENT) if want_dir => {
            return Err(Failure::new(Step::Copy, "no such directory", 1).at(dst))
        }
        Err(Errno::ENOTDIR | Errno::ELOOP) if want_dir => {
            let detail = if land == Land::Host && is_symlink(pfd.as_fd(), name) {
                "a symbolic link, not followed at a copy's destination"
            } else {
                "not a directory"
            };
            return Err(Failure::new(Step::Copy, detail, 1).at(dst));
        }
        Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => {}
        Err(e) => return Err(sys(e, dst)),
    }
    replace_with_copy(reader, pfd.as_fd(), name, top, dst)
}

/// `p` (absolute inside the container) as a path relative to its root.
fn in_root(p: &Path) -> &Path {
    match p.strip_prefix("/") {
        Ok(r) if !r.as_os_str().is_empty() => r,
        Ok(_) => Path::new("."),
        Err(_) => p,
    }
}

fn is_symlink(dir: BorrowedFd<'_>, name: &OsStr) -> bool {
    fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK)
}

fn layer_failure(e: &dyn std::fmt::Display, at: &Path) -> Failure {
    Failure::new(Step::Copy, e.to_string(), 1).at(at)
}

fn copy_options() -> ApplyOptions {
    ApplyOptions {
        ids: IdPolicy::Collapse,
    }
}

/// Unpack into the open directory `dir` (the existing destination): every
/// entry resolves inside it, so nothing lands outside.
fn into(reader: File, dir: OwnedFd, dst: &Path) -> std::result::Result<(), Failure> {
    apply_layer_at(reader, dir, dst, &copy_options())
        .map(|_| ())
        .map_err(|e| layer_failure(&e, dst))
}

/// Unpack into a fresh directory beside `name` (in `parent`), then rename
/// the copied item over `name`: rename(2) replaces a symlink there itself,
/// never what it points to.
fn replace_with_copy(
    reader: File,
    parent: BorrowedFd<'_>,
    name: &OsStr,
    top: &Path,
    dst: &Path,
) -> std::result::Result<(), Failure> {
    let sys = |e: nix::Error| Failure::sys(Step::Copy, e, 1).at(dst);
    let tmp = PathBuf::from(format!(".burrow-cp-{}", std::process::id()));
    mkdirat(parent, &tmp, Mode::from_bits_truncate(0o700)).map_err(sys)?;
    let result = (|| {
        let tfd = openat(parent, &tmp, dir_flags(), Mode::empty()).map_err(sys)?;
        let staged = tfd.try_clone().map_err(|e| copy_failure(&e, dst))?;
        apply_layer_at(reader, staged, dst, &copy_options()).map_err(|e| layer_failure(&e, dst))?;
        let (from_dir, from): (BorrowedFd<'_>, &Path) = if top == Path::new(".") {
            (parent, &tmp)
        } else {
            (tfd.as_fd(), top)
        };
        fstatat(from_dir, from, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|_| Failure::new(Step::Copy, "nothing to copy", 1).at(dst))?;
        match renameat(from_dir, from, parent, name) {
            // A directory cannot be renamed over a non-directory: a symlink
            // there goes first (a regular file stays, and is the error).
            Err(Errno::ENOTDIR) if is_symlink(parent, name) => {
                unlinkat(parent, name, UnlinkatFlags::NoRemoveDir).map_err(sys)?;
                renameat(from_dir, from, parent, name).map_err(sys)
            }
            r => r.map_err(sys),
        }
    })();
    let _ = remove_all_at(parent, &tmp);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream holding directory `k` with `k/.ssh/authorized_keys`.
    fn stream(dir: &Path) -> OwnedFd {
        let src = dir.join("src/k/.ssh");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("authorized_keys"), "attacker\n").unwrap();
        let path = dir.join("stream.tar");
        let mut b = tar::Builder::new(File::create(&path).unwrap());
        b.append_dir_all("k", dir.join("src/k")).unwrap();
        b.finish().unwrap();
        File::open(&path).unwrap().into()
    }

    #[test]
    fn a_directorys_contents_are_named_from_dot() {
        let d = tempfile::tempdir().unwrap();
        let long = "l".repeat(120);
        std::fs::create_dir_all(d.path().join("src/sub")).unwrap();
        std::fs::write(d.path().join("src/sub/y"), "y").unwrap();
        std::fs::write(d.path().join("src").join(&long), "z").unwrap();
        let plain = d.path().join("plain.tar");
        let mut b = tar::Builder::new(File::create(&plain).unwrap());
        b.append_dir_all(".", d.path().join("src")).unwrap();
        b.finish().unwrap();
        drop(b);
        let out = d.path().join("out.tar");
        dot_prefixed(File::open(&plain).unwrap(), File::create(&out).unwrap()).unwrap();
        let mut names: Vec<String> = tar::Archive::new(File::open(&out).unwrap())
            .entries()
            .unwrap()
            .map(|e| String::from_utf8(e.unwrap().path_bytes().into_owned()).unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["./", &format!("./{long}"), "./sub", "./sub/y"]);
    }

    #[test]
    fn a_host_destination_symlink_is_replaced_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let home = d.path().join("home");
        std::fs::create_dir(&home).unwrap();
        let out = d.path().join("out");
        std::os::unix::fs::symlink(&home, &out).unwrap();
        unpack(stream(d.path()), &out, Path::new("k"), Land::Host).unwrap();
        assert!(std::fs::read_dir(&home).unwrap().next().is_none());
        assert!(!out.symlink_metadata().unwrap().file_type().is_symlink());
        assert!(out.join(".ssh/authorized_keys").is_file());

        // Named as a directory (`out/`), a symlink is refused, not followed.
        std::fs::remove_dir_all(&out).unwrap();
        std::os::unix::fs::symlink(&home, &out).unwrap();
        let slash = PathBuf::from(format!("{}/", out.display()));
        let e = unpack(stream(d.path()), &slash, Path::new("k"), Land::Host).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(std::fs::read_dir(&home).unwrap().next().is_none());

        // A real directory is copied into, and a symlink inside it in the
        // copy's way is replaced.
        let real = d.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&home, real.join("k")).unwrap();
        unpack(stream(d.path()), &real, Path::new("k"), Land::Host).unwrap();
        assert!(real.join("k/.ssh/authorized_keys").is_file());
        assert!(std::fs::read_dir(&home).unwrap().next().is_none());
    }
}
