//! The two ends of a copy's tar stream: a tree packed as tar, and a tar
//! unpacked where `cp` puts it, resolved as the file system it lands in
//! requires.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, openat, renameat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, mkdirat, Mode};
use nix::unistd::{unlinkat, UnlinkatFlags};

use super::copy_failure;
use crate::image::layer::{apply_layer_at, ApplyOptions, IdPolicy};
use crate::linux::fs::{dir_flags, open_dir, openat_in_root, remove_all_at};
use crate::sandbox::{Failure, Step};

/// The name a copied item has in the stream: its last component, or `.`
/// for a directory named by `/`, `.` or `..` (its contents are copied).
pub(super) fn top_name(p: &Path) -> PathBuf {
    match p.components().next_back() {
        Some(Component::Normal(n)) => PathBuf::from(n),
        _ => PathBuf::from("."),
    }
}

/// The top entry's name in an archive of `path`, as Docker's API names it:
/// `.` for a path ending in `/.` (a directory's contents), else its last
/// component.
pub(super) fn archive_name(path: &str) -> PathBuf {
    if path.ends_with("/.") {
        PathBuf::from(".")
    } else {
        top_name(Path::new(path))
    }
}

/// Write `src` as a tar stream, its top entry named after `src`.
pub(super) fn pack(src: &Path, fd: OwnedFd) -> std::result::Result<(), Failure> {
    pack_as(src, &top_name(src), fd)
}

/// Write `src` as a tar stream, its top entry named `name`.
pub(super) fn pack_as(src: &Path, name: &Path, fd: OwnedFd) -> std::result::Result<(), Failure> {
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
pub(super) enum Land {
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
pub(super) fn unpack(
    fd: OwnedFd,
    dst: &Path,
    top: &Path,
    land: Land,
) -> std::result::Result<(), Failure> {
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
pub(super) fn in_root(p: &Path) -> &Path {
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
pub(super) fn into(reader: File, dir: OwnedFd, dst: &Path) -> std::result::Result<(), Failure> {
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
