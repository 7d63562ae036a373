//! `--rm` cleanup by the inner process through directory fds opened before
//! PID 1's pivot_root (after it, the store's paths are out of reach), so the
//! removal needs no unmount and no path lookup in the container's tree.

use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::dir::{Dir, Type};
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{unlinkat, UnlinkatFlags};

/// One path to delete later: its parent directory (held open) and its name.
pub struct Removal {
    parent: OwnedFd,
    name: OsString,
}

impl Removal {
    /// Open `path`'s parent now, to delete `path` later.
    pub fn prepare(path: &Path) -> nix::Result<Self> {
        let parent = path.parent().ok_or(nix::Error::EINVAL)?;
        let name = path.file_name().ok_or(nix::Error::EINVAL)?.to_os_string();
        let parent = open(
            parent,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Removal { parent, name })
    }

    /// Delete it, recursively if it is a directory; missing is fine.
    pub fn run(&self) {
        remove_at(self.parent.as_fd(), &self.name);
    }
}

/// `rm -rf parent/name` without following symlinks.
fn remove_at<Fd: AsFd>(parent: Fd, name: &std::ffi::OsStr) {
    match unlinkat(&parent, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(nix::Error::ENOENT) => return,
        Err(nix::Error::EISDIR) | Err(nix::Error::EPERM) => {}
        Err(e) => {
            tracing::debug!("cleanup: unlink {name:?}: {e}");
            return;
        }
    }
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    if let Ok(mut dir) = Dir::openat(&parent, name, flags, Mode::empty()) {
        let children: Vec<(OsString, Option<Type>)> = dir
            .iter()
            .filter_map(|e| e.ok())
            .filter(|e| !matches!(e.file_name().to_bytes(), b"." | b".."))
            .map(|e| {
                (
                    std::ffi::OsStr::from_bytes(e.file_name().to_bytes()).to_os_string(),
                    e.file_type(),
                )
            })
            .collect();
        for (child, kind) in children {
            // Files go with one unlink; directories (or files that would
            // not unlink) recurse.
            let unlinked = kind != Some(Type::Directory)
                && unlinkat(&dir, child.as_os_str(), UnlinkatFlags::NoRemoveDir).is_ok();
            if !unlinked {
                remove_at(&dir, &child);
            }
        }
    }
    if let Err(e) = unlinkat(&parent, name, UnlinkatFlags::RemoveDir) {
        tracing::debug!("cleanup: rmdir {name:?}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_trees_files_and_missing_paths_without_following_links() {
        let d = tempfile::tempdir().unwrap();
        let outside = d.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), "x").unwrap();
        let tree = d.path().join("tree");
        std::fs::create_dir_all(tree.join("a/b")).unwrap();
        std::fs::write(tree.join("a/b/f"), "x").unwrap();
        std::os::unix::fs::symlink(&outside, tree.join("a/link")).unwrap();
        std::fs::write(d.path().join("file"), "x").unwrap();
        let removals = [
            Removal::prepare(&tree).unwrap(),
            Removal::prepare(&d.path().join("file")).unwrap(),
            Removal::prepare(&d.path().join("missing")).unwrap(),
        ];
        for r in &removals {
            r.run();
        }
        assert!(!tree.exists());
        assert!(!d.path().join("file").exists());
        assert!(outside.join("keep").exists(), "symlink was not followed");
    }
}
