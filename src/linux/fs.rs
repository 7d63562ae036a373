//! Filesystem helpers nix does not provide: extended attributes (layer
//! extraction) and opening a path safely inside a rootfs (mount targets).
//!
//! Every function takes an open descriptor (so callers resolve paths safely
//! first, e.g. with `openat2(RESOLVE_IN_ROOT)`) and a NUL-terminated name, and
//! returns `io::Result`; none of them follows a path on its own.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd};

/// Sets extended attribute `name` to `value` on the open file `fd`
/// (creating or replacing it).
pub fn fsetxattr<Fd: AsFd>(fd: Fd, name: &CStr, value: &[u8]) -> io::Result<()> {
    // SAFETY: `name` is a valid NUL-terminated C string and `value` is a valid
    // slice of `value.len()` bytes, both borrowed for the whole call; the kernel
    // only reads them. The descriptor is borrowed, so it stays open during the call.
    let rc = unsafe {
        libc::fsetxattr(
            fd.as_fd().as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads extended attribute `name` of the open file `fd` into `buf`.
///
/// Returns `Ok(None)` when the attribute is not set, `Ok(Some(len))` with the
/// value's length otherwise; a value longer than `buf` is an error (`ERANGE`).
pub fn fgetxattr<Fd: AsFd>(fd: Fd, name: &CStr, buf: &mut [u8]) -> io::Result<Option<usize>> {
    // SAFETY: `name` is a valid NUL-terminated C string; `buf` is a valid,
    // exclusively borrowed buffer of `buf.len()` writable bytes, and the kernel
    // writes at most that many. The descriptor is borrowed, so it stays open.
    let rc = unsafe {
        libc::fgetxattr(
            fd.as_fd().as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if rc >= 0 {
        // rc is non-negative and at most buf.len(), so the cast is lossless.
        return Ok(Some(rc as usize));
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ENODATA) {
        Ok(None)
    } else {
        Err(err)
    }
}

/// Names of the extended attributes of the open file `fd` (those the
/// caller may see: `trusted.*` is hidden outside the initial namespace).
pub fn flistxattr<Fd: AsFd>(fd: Fd) -> io::Result<Vec<std::ffi::CString>> {
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: `buf` is a valid, exclusively borrowed buffer of
        // `buf.len()` writable bytes and the kernel writes at most that many;
        // the descriptor is borrowed, so it stays open during the call.
        let rc =
            unsafe { libc::flistxattr(fd.as_fd().as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if rc >= 0 {
            // rc is non-negative and at most buf.len(), so the cast is lossless.
            buf.truncate(rc as usize);
            return Ok(buf
                .split(|b| *b == 0)
                .filter(|n| !n.is_empty())
                .filter_map(|n| std::ffi::CString::new(n).ok())
                .collect());
        }
        let err = io::Error::last_os_error();
        // The list grew between calls, or the buffer was too small: retry
        // with room for the largest list the kernel allows (64 KiB).
        if err.raw_os_error() == Some(libc::ERANGE) && buf.len() < 1 << 16 {
            buf = vec![0u8; 1 << 16];
            continue;
        }
        return Err(err);
    }
}

/// Open `path` (absolute, as seen inside the rootfs at `root`) with every
/// component resolved as if `root` were `/` (`openat2(RESOLVE_IN_ROOT)`), so
/// a symlink in the image cannot lead outside it. Missing components are
/// created: directories, and the last one as a directory when `want_dir`,
/// else as an empty file. Returns an `O_PATH` descriptor, usable as a mount
/// target through `/proc/self/fd/N`.
pub fn open_in_root(
    root: &std::path::Path,
    path: &str,
    want_dir: bool,
) -> io::Result<std::os::fd::OwnedFd> {
    use nix::fcntl::{open, openat, openat2, readlinkat, OFlag, OpenHow, ResolveFlag};
    use nix::sys::stat::{fstatat, mkdirat, Mode, SFlag};

    let root_fd = open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let how = || {
        OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
    };
    let split = |p: &str| -> Vec<String> {
        p.split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .map(str::to_string)
            .collect()
    };
    let mut comps = split(path);
    if comps.iter().any(|c| c == "..") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "path contains '..'",
        ));
    }
    // A dangling symlink on the way (`/evil -> /somewhere`) is followed by
    // rewriting the path and starting over, like securejoin; bound the hops.
    let mut hops = 0;
    'restart: loop {
        let mut prefix = String::from(".");
        for i in 0..comps.len() {
            let parent = prefix.clone();
            prefix.push('/');
            prefix.push_str(&comps[i]);
            match openat2(&root_fd, prefix.as_str(), how()) {
                Ok(_) => continue,
                Err(nix::Error::ENOENT) => {}
                Err(e) => return Err(e.into()),
            }
            let parent_fd = openat2(&root_fd, parent.as_str(), how())?;
            let c = comps[i].as_str();
            if let Ok(st) = fstatat(&parent_fd, c, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
                if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK {
                    hops += 1;
                    if hops > 40 {
                        return Err(nix::Error::ELOOP.into());
                    }
                    let target = readlinkat(&parent_fd, c)?;
                    let target = target.to_string_lossy();
                    let mut next = if target.starts_with('/') {
                        split(&target)
                    } else {
                        let mut v = comps[..i].to_vec();
                        v.extend(split(&target));
                        v
                    };
                    next.extend(comps[i + 1..].iter().cloned());
                    // `..` in a link target is resolved lexically, clamped at the root.
                    let mut clean: Vec<String> = Vec::new();
                    for c in next {
                        if c == ".." {
                            clean.pop();
                        } else {
                            clean.push(c);
                        }
                    }
                    comps = clean;
                    continue 'restart;
                }
            }
            let last = i + 1 == comps.len();
            if !last || want_dir {
                match mkdirat(&parent_fd, c, Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(nix::Error::EEXIST) => {}
                    Err(e) => return Err(e.into()),
                }
            } else {
                // An O_PATH parent is enough for openat with O_CREAT.
                let f = openat(
                    &parent_fd,
                    c,
                    OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o644),
                )?;
                drop(f);
            }
        }
        return Ok(openat2(&root_fd, prefix.as_str(), how())?);
    }
}

#[cfg(test)]
mod open_in_root_tests {
    use super::*;

    #[test]
    fn creates_inside_and_never_escapes_through_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        let outside = d.path().join("outside");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        // An image symlink to a host path: resolved inside the root instead.
        std::os::unix::fs::symlink(&outside, root.join("evil")).unwrap();
        open_in_root(&root, "/evil/target", true).unwrap();
        assert!(
            std::fs::read_dir(&outside).unwrap().next().is_none(),
            "nothing created outside"
        );
        assert!(root
            .join(outside.strip_prefix("/").unwrap())
            .join("target")
            .is_dir());
        open_in_root(&root, "/a/b/file", false).unwrap();
        assert!(root.join("a/b/file").is_file());
        assert!(open_in_root(&root, "/a/../../x", true).is_err());
    }
}
