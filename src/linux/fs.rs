//! Filesystem syscalls nix does not wrap (extended attributes), used by layer extraction.
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
