//! The rootfs copy fallback: the image's layers flattened into one private
//! directory, merged as overlayfs would merge them, for when overlayfs
//! cannot be mounted.

use std::ffi::{CStr, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, mkdirat, mknodat, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, symlinkat, Gid, Uid};

use crate::linux::fs::{
    apply_dir_metas, dir_flags, empty_dir, fgetxattr, list_dir, open_dir, remove_all_at,
    replace_at, set_fd_meta, with_step, DirMeta,
};
use crate::linux::mount::OPAQUE_XATTR;

/// A step of the copy failed; `path` names the layer entry or destination.
#[derive(Debug, thiserror::Error)]
#[error("writing {path:?}: {source}")]
pub struct CopyError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// Copies extracted layers, bottom to top, into `dest`, merging them as
/// overlayfs would: a 0/0 character device deletes the path below it, an
/// opaque directory hides everything below it. Used when overlayfs cannot be
/// mounted.
///
/// Owners are preserved where the kernel allows (EPERM/EINVAL are ignored),
/// as are modes and mtimes. Hard links become separate copies. Device nodes
/// and sockets are skipped. `dest`'s own metadata is left alone, as an
/// overlay mount's root takes its metadata from the upper directory.
/// Symlinks in `dest` are never followed: every descent opens the next
/// directory with `O_NOFOLLOW` relative to its parent's descriptor.
pub fn flatten_layers(lowers_bottom_to_top: &[PathBuf], dest: &Path) -> Result<(), CopyError> {
    let root = open_dir(dest).map_err(|e| CopyError {
        path: dest.to_path_buf(),
        source: with_step(e, "open destination directory"),
    })?;
    let mut dirs = Vec::new();
    let mut rel = Vec::new();
    for layer in lowers_bottom_to_top {
        let src = open_dir(layer).map_err(|e| CopyError {
            path: layer.clone(),
            source: with_step(e, "open layer directory"),
        })?;
        rel.clear();
        copy_tree(src.as_fd(), root.as_fd(), &mut rel, &mut dirs).map_err(|e| CopyError {
            path: layer.join(rel_path(&rel)),
            source: e,
        })?;
    }
    apply_dir_metas(root.as_fd(), &dirs, true).map_err(|(path, e)| CopyError {
        path: dest.join(rel_path(&path)),
        source: e,
    })
}

fn is_opaque(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let mut buf = [0u8; 8];
    match fgetxattr(fd, OPAQUE_XATTR, &mut buf) {
        Ok(Some(n)) => Ok(&buf[..n] == b"y"),
        Ok(None) => Ok(false),
        // A value that does not fit cannot be "y"; a filesystem without
        // xattrs cannot hold opaque directories.
        Err(e) if matches!(e.raw_os_error(), Some(libc::ERANGE) | Some(libc::ENOTSUP)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// What a copied entry keeps of its layer's original.
struct Meta {
    mode: u32,
    owner: (u32, u32),
    mtime: TimeSpec,
}

/// Copies the contents of layer directory `src` into `dst`. `rel` is the
/// path of `src` relative to the layer root; on error it names the entry
/// that failed.
fn copy_tree(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    rel: &mut Vec<u8>,
    dirs: &mut Vec<DirMeta>,
) -> io::Result<()> {
    for name in list_dir(src).map_err(|e| with_step(e, "list layer directory"))? {
        let name = name.as_c_str();
        let base = rel.len();
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(name.to_bytes());
        let st = fstatat(src, name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| with_step(e, "stat layer entry"))?;
        let meta = Meta {
            mode: st.st_mode & 0o7777,
            owner: (st.st_uid, st.st_gid),
            mtime: TimeSpec::new(st.st_mtime, st.st_mtime_nsec),
        };
        match st.st_mode & libc::S_IFMT {
            libc::S_IFCHR if st.st_rdev == 0 => match remove_all_at(dst, name) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(with_step(e, "apply whiteout")),
            },
            libc::S_IFDIR => {
                let sfd = openat(src, name, dir_flags(), Mode::empty())
                    .map_err(|e| with_step(e, "open layer directory"))?;
                let dfd = merge_dir(sfd.as_fd(), dst, name)?;
                copy_tree(sfd.as_fd(), dfd.as_fd(), rel, dirs)?;
                dirs.push(DirMeta {
                    path: rel.clone(),
                    mode: meta.mode,
                    mtime: meta.mtime,
                    owner: Some(meta.owner),
                });
            }
            libc::S_IFREG => copy_file(src, dst, name, &meta)?,
            libc::S_IFLNK => copy_symlink(src, dst, name, &meta)?,
            libc::S_IFIFO => make_fifo(dst, name, &meta)?,
            // Devices and sockets: cannot be created unprivileged, and
            // `apply_layer` never produces them.
            _ => {}
        }
        rel.truncate(base);
    }
    Ok(())
}

/// The destination directory a layer directory merges into: the one already
/// there (emptied first when the layer's is opaque), or a new one where
/// nothing or a non-directory was.
fn merge_dir(
    layer_dir: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    name: &CStr,
) -> io::Result<std::os::fd::OwnedFd> {
    let opaque = is_opaque(layer_dir).map_err(|e| with_step(e, "read opaque xattr"))?;
    match openat(dst, name, dir_flags(), Mode::empty()) {
        Ok(fd) => {
            if opaque {
                empty_dir(fd.as_fd()).map_err(|e| with_step(e, "empty opaque directory"))?;
            }
            Ok(fd)
        }
        Err(e @ (Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP)) => {
            if e != Errno::ENOENT {
                // A file or symlink is in the way.
                remove_all_at(dst, name)
                    .map_err(|e| with_step(e, "remove entry replaced by a directory"))?;
            }
            // 0700 until the end: see `apply_dir_metas`.
            mkdirat(dst, name, Mode::from_bits_truncate(0o700))
                .map_err(|e| with_step(e, "create directory"))?;
            openat(dst, name, dir_flags(), Mode::empty())
                .map_err(|e| with_step(e, "open new directory"))
        }
        Err(e) => Err(with_step(e, "open directory")),
    }
}

fn copy_file(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, name: &CStr, meta: &Meta) -> io::Result<()> {
    let mut from = File::from(
        openat(
            src,
            name,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| with_step(e, "open layer file"))?,
    );
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let (fd, _) = replace_at(dst, name.to_bytes(), || {
        openat(dst, name, flags, Mode::from_bits_truncate(0o600))
    })
    .map_err(|e| with_step(e, "create file"))?;
    let mut to = File::from(fd);
    // File-to-file io::copy uses copy_file_range on Linux.
    io::copy(&mut from, &mut to).map_err(|e| with_step(e, "copy file data"))?;
    stamp(to.as_fd(), meta, "file")
}

fn copy_symlink(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    name: &CStr,
    meta: &Meta,
) -> io::Result<()> {
    let target = readlinkat(src, name).map_err(|e| with_step(e, "read symbolic link"))?;
    replace_at(dst, name.to_bytes(), || {
        symlinkat(target.as_os_str(), dst, name)
    })
    .map_err(|e| with_step(e, "create symbolic link"))?;
    lenient_chown(fchownat(
        dst,
        name,
        Some(Uid::from_raw(meta.owner.0)),
        Some(Gid::from_raw(meta.owner.1)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    ))
    .map_err(|e| with_step(e, "chown symbolic link"))?;
    utimensat(
        dst,
        name,
        &meta.mtime,
        &meta.mtime,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| with_step(e, "set symbolic link mtime"))
}

fn make_fifo(dst: BorrowedFd<'_>, name: &CStr, meta: &Meta) -> io::Result<()> {
    replace_at(dst, name.to_bytes(), || {
        mknodat(
            dst,
            name,
            SFlag::S_IFIFO,
            Mode::from_bits_truncate(0o600),
            0,
        )
    })
    .map_err(|e| with_step(e, "create fifo"))?;
    let fd = openat(
        dst,
        name,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| with_step(e, "open fifo"))?;
    stamp(fd.as_fd(), meta, "fifo")
}

/// Gives a new file or fifo its original's owner, mode and mtime; `what`
/// names it in the error's step.
fn stamp(fd: BorrowedFd<'_>, meta: &Meta, what: &str) -> io::Result<()> {
    lenient_chown(fchown(
        fd,
        Some(Uid::from_raw(meta.owner.0)),
        Some(Gid::from_raw(meta.owner.1)),
    ))
    .map_err(|e| with_step(e, format_args!("chown {what}")))?;
    set_fd_meta(fd, None, meta.mode, &meta.mtime)
        .map_err(|e| with_step(e, format_args!("set {what} mode/mtime")))
}

/// Owners the current user namespace cannot represent (or cannot assign)
/// are left as they are: the copy fallback is best effort.
fn lenient_chown(r: nix::Result<()>) -> nix::Result<()> {
    match r {
        Err(Errno::EPERM) | Err(Errno::EINVAL) => Ok(()),
        r => r,
    }
}

fn rel_path(b: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(b))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    use tar::EntryType;

    use super::*;
    use crate::image::layer::apply_layer;
    use crate::image::layer::fixtures::{header, names, xattr, Env, Tar, KEEP, MTIME};

    fn layer(env: &Env, name: &str, tar: &[u8]) -> PathBuf {
        let dir = env.tmp.path().join("layers").join(name);
        fs::create_dir_all(&dir).unwrap();
        apply_layer(tar, &dir, &KEEP).unwrap();
        dir
    }

    #[test]
    fn flatten_merges_whiteouts_and_opaque_dirs() {
        let env = Env::new();
        let l1 = layer(
            &env,
            "l1",
            &Tar::new()
                .dir("a/", 0o755)
                .file("a/one", b"1")
                .file("a/two", b"2")
                .dir("b/", 0o755)
                .file("b/x", b"x")
                .dir("c/", 0o750)
                .file("c/sub/y", b"y")
                .file("keep", b"v1")
                .file("gone", b"g")
                .link(EntryType::Symlink, "link", "a/one")
                .entry("fifo", header(EntryType::Fifo, 0, 0o600), b"")
                .file_mode("ro/file", b"r", 0o444)
                .dir("ro/", 0o555)
                .finish(),
        );
        let l2 = layer(
            &env,
            "l2",
            &Tar::new()
                .file(".wh.b", b"")
                .dir("c/", 0o750)
                .dir("ro/", 0o555)
                .dir("a/", 0o700)
                .file("a/.wh..wh..opq", b"")
                .file("a/new", b"n")
                .file("c/sub/z", b"z")
                .file("keep", b"v2")
                .file(".wh.gone", b"")
                .file("ro/added", b"+")
                .finish(),
        );
        let l3 = layer(
            &env,
            "l3",
            &Tar::new()
                .dir("c/", 0o750)
                .file("c/.wh.sub", b"")
                .dir("b/", 0o755)
                .file("b/again", b"again")
                .finish(),
        );
        flatten_layers(&[l1, l2, l3], &env.dest).unwrap();
        let d = &env.dest;
        assert_eq!(names(d), ["a", "b", "c", "fifo", "keep", "link", "ro"]);
        assert_eq!(names(&d.join("a")), ["new"]);
        assert_eq!(names(&d.join("b")), ["again"]);
        assert!(names(&d.join("c")).is_empty());
        assert_eq!(names(&d.join("ro")), ["added", "file"]);
        assert_eq!(fs::read(d.join("keep")).unwrap(), b"v2");
        assert_eq!(fs::read_link(d.join("link")).unwrap(), Path::new("a/one"));
        assert!(fs::symlink_metadata(d.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo());
        let a = fs::metadata(d.join("a")).unwrap();
        assert_eq!(a.mode() & 0o7777, 0o700, "upper layer's mode wins");
        assert_eq!(
            xattr(&d.join("a"), OPAQUE_XATTR),
            None,
            "no overlay xattrs copied"
        );
        let c = fs::metadata(d.join("c")).unwrap();
        assert_eq!((c.mode() & 0o7777, c.mtime()), (0o750, MTIME as i64));
        assert_eq!(fs::metadata(d.join("ro")).unwrap().mode() & 0o7777, 0o555);
        let f = fs::metadata(d.join("ro/file")).unwrap();
        assert_eq!((f.mode() & 0o7777, f.mtime()), (0o444, MTIME as i64));
        assert_eq!(fs::read(d.join("ro/file")).unwrap(), b"r");
        env.assert_contained();
    }

    #[test]
    fn flatten_never_follows_symlinks_in_dest() {
        let env = Env::new();
        let out = env.out();
        let l1 = layer(
            &env,
            "l1",
            &Tar::new()
                .link(EntryType::Symlink, "s", &out)
                .link(EntryType::Symlink, "f", &format!("{out}/file"))
                .finish(),
        );
        let l2 = layer(
            &env,
            "l2",
            &Tar::new()
                .dir("s/", 0o755)
                .file("s/file", b"pwned")
                .file("f", b"pwned")
                .finish(),
        );
        flatten_layers(&[l1, l2], &env.dest).unwrap();
        assert!(fs::symlink_metadata(env.dest.join("s")).unwrap().is_dir());
        assert_eq!(fs::read(env.dest.join("s/file")).unwrap(), b"pwned");
        assert!(fs::symlink_metadata(env.dest.join("f")).unwrap().is_file());
        env.assert_contained();
    }
}
