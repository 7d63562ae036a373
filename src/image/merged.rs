//! One file of an image read as its merged layers show it, without
//! mounting them: overlayfs's rules applied by hand (a 0/0 character
//! device hides the name below it, an opaque directory everything below
//! it, a directory hides a non-directory below it), symlinks followed
//! inside the image's root.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::linux::fs::{fgetxattr, open_dir};
use crate::linux::mount::OPAQUE_XATTR;

/// Symlinks followed before giving up (the kernel's own limit, path_resolution(7)).
const MAX_LINKS: usize = 40;

/// The contents of `path` in the image whose extracted layers are
/// `lowers_top_first`; None when the image has no regular file there.
pub fn read_file(lowers_top_first: &[PathBuf], path: &str) -> io::Result<Option<Vec<u8>>> {
    let mut todo: Vec<String> = components(path).rev().collect();
    let mut dir: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(name) = todo.pop() {
        if name == ".." {
            dir.pop();
            continue;
        }
        let below = layers_of_dir(lowers_top_first, &dir)?;
        let Some(found) = find(&below, &dir, &name)? else {
            return Ok(None);
        };
        let ft = found.meta.file_type();
        if ft.is_char_device() && found.meta.rdev() == 0 {
            return Ok(None);
        } else if ft.is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return Err(io::Error::from_raw_os_error(libc::ELOOP));
            }
            let target = std::fs::read_link(&found.path)?;
            let target = target.to_string_lossy();
            if target.starts_with('/') {
                dir.clear();
            }
            todo.extend(components(&target).rev());
        } else if ft.is_dir() {
            dir.push(name);
        } else if ft.is_file() && todo.is_empty() {
            return std::fs::read(&found.path).map(Some);
        } else {
            return Ok(None);
        }
    }
    Ok(None)
}

fn components(path: &str) -> impl DoubleEndedIterator<Item = String> + '_ {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
}

struct Found {
    path: PathBuf,
    meta: std::fs::Metadata,
}

/// The topmost entry `name` in directory `dir` of the layers that make it.
fn find(layers: &[PathBuf], dir: &[String], name: &str) -> io::Result<Option<Found>> {
    for l in layers {
        let path = join(l, dir).join(name);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) => return Ok(Some(Found { path, meta })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// The layers, top first, whose directory `dir` shows in the merged one:
/// from the top down to the first where it is opaque, skipping those
/// without it, and none below a layer where it is not a directory (a
/// whiteout or a file hides it). `dir` holds no symlinks: each of its
/// names was found to be a directory.
fn layers_of_dir(lowers: &[PathBuf], dir: &[String]) -> io::Result<Vec<PathBuf>> {
    let mut of = lowers.to_vec();
    for depth in 0..=dir.len() {
        let here = &dir[..depth];
        let mut kept = Vec::new();
        for l in of {
            let path = join(&l, here);
            match std::fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => {
                    kept.push(l);
                    if is_opaque(&path)? {
                        break;
                    }
                }
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        of = kept;
    }
    Ok(of)
}

fn join(layer: &Path, dir: &[String]) -> PathBuf {
    let mut p = layer.to_path_buf();
    p.extend(dir);
    p
}

fn is_opaque(dir: &Path) -> io::Result<bool> {
    let fd = open_dir(dir).map_err(io::Error::from)?;
    let mut buf = [0u8; 8];
    match fgetxattr(&fd, OPAQUE_XATTR, &mut buf) {
        Ok(Some(n)) => Ok(&buf[..n] == b"y"),
        Ok(None) => Ok(false),
        // A value that does not fit cannot be "y"; a file system without
        // xattrs holds no opaque directories.
        Err(e) if matches!(e.raw_os_error(), Some(libc::ERANGE | libc::ENOTSUP)) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn whiteout(p: &Path) -> bool {
        use nix::sys::stat::{makedev, mknod, Mode, SFlag};
        mknod(p, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0)).is_ok()
    }

    #[test]
    fn reads_through_layers_whiteouts_opaque_dirs_and_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let (top, mid, bottom) = (d.path().join("3"), d.path().join("2"), d.path().join("1"));
        for l in [&top, &mid, &bottom] {
            fs::create_dir_all(l.join("etc")).unwrap();
        }
        let layers = vec![top.clone(), mid.clone(), bottom.clone()];
        fs::write(bottom.join("etc/passwd"), "root\n").unwrap();
        fs::write(bottom.join("etc/group"), "root\n").unwrap();
        assert_eq!(
            read_file(&layers, "/etc/passwd").unwrap().as_deref(),
            Some(&b"root\n"[..])
        );
        fs::write(mid.join("etc/passwd"), "root\napp\n").unwrap();
        assert_eq!(
            read_file(&layers, "etc/passwd").unwrap().as_deref(),
            Some(&b"root\napp\n"[..])
        );
        // A relative symlink in the top layer, to a file in a lower one;
        // an absolute one climbing out of the root stays inside.
        fs::write(bottom.join("etc/passwd.real"), "real\n").unwrap();
        std::os::unix::fs::symlink("passwd.real", top.join("etc/passwd")).unwrap();
        assert_eq!(
            read_file(&layers, "/etc/passwd").unwrap().as_deref(),
            Some(&b"real\n"[..])
        );
        fs::remove_file(top.join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink("/../../../etc/passwd.real", top.join("etc/passwd")).unwrap();
        assert_eq!(
            read_file(&layers, "/etc/passwd").unwrap().as_deref(),
            Some(&b"real\n"[..])
        );
        fs::remove_file(top.join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink("passwd", top.join("etc/passwd")).unwrap();
        assert!(read_file(&layers, "/etc/passwd").is_err());
        fs::remove_file(top.join("etc/passwd")).unwrap();
        assert!(read_file(&layers, "/etc/missing").unwrap().is_none());
        assert!(read_file(&layers, "/etc").unwrap().is_none());
        // Whiteouts and opaque directories need privileges to make.
        if whiteout(&top.join("etc/passwd")) {
            assert!(read_file(&layers, "/etc/passwd").unwrap().is_none());
            fs::remove_file(top.join("etc/passwd")).unwrap();
        }
        let fd = open_dir(&mid.join("etc")).unwrap();
        if crate::linux::fs::fsetxattr(&fd, OPAQUE_XATTR, b"y").is_ok() {
            fs::remove_file(mid.join("etc/passwd")).unwrap();
            // The group file below the opaque directory is gone too.
            assert!(read_file(&layers, "/etc/group").unwrap().is_none());
            assert!(read_file(&layers, "/etc/passwd").unwrap().is_none());
        }
        // A file where a lower layer has a directory hides it.
        fs::remove_dir_all(top.join("etc")).unwrap();
        fs::write(top.join("etc"), "").unwrap();
        assert!(read_file(&layers, "/etc/group").unwrap().is_none());
    }
}
