//! Terminals: pty pairs, controlling terminal, window size, raw mode.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::pty::Winsize;
use nix::sys::termios::{self, SetArg, Termios};

/// Make `fd` (a terminal) the controlling terminal of our new session.
pub fn set_controlling_terminal(fd: RawFd) -> nix::Result<()> {
    // SAFETY: TIOCSCTTY takes an int argument (0: do not steal); the kernel
    // validates the descriptor.
    let r = unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) };
    if r < 0 {
        Err(nix::Error::last())
    } else {
        Ok(())
    }
}

/// The window size of the terminal on `fd`.
pub fn window_size<Fd: AsFd>(fd: Fd) -> Option<(u16, u16)> {
    let mut ws = Winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one struct winsize into `ws`, which lives
    // for the duration of the call.
    let r = unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (r == 0).then_some((ws.ws_row, ws.ws_col))
}

/// Set the window size of the terminal (a pty master) on `fd`.
pub fn set_window_size<Fd: AsFd>(fd: Fd, rows: u16, cols: u16) -> nix::Result<()> {
    let ws = Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one struct winsize from `ws`, which lives for
    // the duration of the call.
    let r = unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if r < 0 {
        Err(nix::Error::last())
    } else {
        Ok(())
    }
}

/// Put the terminal on `fd` in raw mode; returns the settings to restore.
pub fn make_raw<Fd: AsFd>(fd: Fd) -> nix::Result<Termios> {
    let saved = termios::tcgetattr(&fd)?;
    let mut raw = saved.clone();
    termios::cfmakeraw(&mut raw);
    termios::tcsetattr(&fd, SetArg::TCSANOW, &raw)?;
    Ok(saved)
}

/// Echo turned off on a terminal (a password prompt) until dropped.
pub struct Echo {
    fd: std::fs::File,
    saved: Termios,
}

impl Echo {
    pub fn off<Fd: AsFd>(fd: Fd) -> nix::Result<Echo> {
        let fd = std::fs::File::from(
            fd.as_fd()
                .try_clone_to_owned()
                .map_err(|e| nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EBADF)))?,
        );
        let saved = termios::tcgetattr(&fd)?;
        let mut quiet = saved.clone();
        quiet.local_flags.remove(termios::LocalFlags::ECHO);
        termios::tcsetattr(&fd, SetArg::TCSANOW, &quiet)?;
        Ok(Echo { fd, saved })
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        restore(&self.fd, &self.saved);
    }
}

/// Restore settings saved by `make_raw`.
pub fn restore<Fd: AsFd>(fd: Fd, saved: &Termios) {
    let _ = termios::tcsetattr(fd, SetArg::TCSANOW, saved);
}

/// A pty pair from the devpts instance mounted at `pts_dir` (a container's
/// own, so `tty` inside names a real `/dev/pts/N`): (master, slave). The
/// master must be a devpts `ptmx`, not a symlink or a file a volume put
/// there, and the slave comes from the master itself (TIOCGPTPEER, Linux
/// 4.13), not from a second lookup of `/dev/pts/N`: nothing the container
/// controls chooses what becomes its terminal (runc's CVE-2025-52565).
pub fn open_pty_in(pts_dir: &std::path::Path) -> nix::Result<(OwnedFd, OwnedFd)> {
    use nix::fcntl::{open, OFlag};
    use nix::sys::stat::Mode;
    use nix::sys::statfs::{fstatfs, DEVPTS_SUPER_MAGIC};
    use std::os::fd::FromRawFd;
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let master = open(
        &pts_dir.join("ptmx"),
        flags | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )?;
    if fstatfs(&master)?.filesystem_type() != DEVPTS_SUPER_MAGIC {
        return Err(nix::Error::ENOTTY);
    }
    unlock_pty(&master)?;
    // SAFETY: TIOCGPTPEER takes the open flags as its int argument and
    // returns a new descriptor (or -1); the master is borrowed for the call.
    let slave = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            (libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) as libc::c_int,
        )
    };
    if slave < 0 {
        return Err(nix::Error::last());
    }
    // SAFETY: `slave` is a fresh descriptor from TIOCGPTPEER, owned only here.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    Ok((master, slave))
}

fn unlock_pty<Fd: AsFd>(master: Fd) -> nix::Result<()> {
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int from `unlock`, which lives for the call.
    let r = unsafe { libc::ioctl(master.as_fd().as_raw_fd(), libc::TIOCSPTLCK, &unlock) };
    if r < 0 {
        Err(nix::Error::last())
    } else {
        Ok(())
    }
}

/// A connected pair of unix stream sockets (close-on-exec), for passing a
/// pty master from the container to its monitor (runc's console socket).
pub fn console_socketpair() -> nix::Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
}

/// Send `fd` over the unix socket `sock` (SCM_RIGHTS).
pub fn send_fd(sock: RawFd, fd: RawFd) -> nix::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let fds = [fd];
    let iov = [std::io::IoSlice::new(b"t")];
    sendmsg::<()>(
        sock,
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )?;
    Ok(())
}

/// Receive one descriptor sent with `send_fd`.
pub fn recv_fd(sock: RawFd) -> nix::Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::FromRawFd;
    let mut byte = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!(RawFd);
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed `fd` in our table for
                // this message; nothing else owns it.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(nix::Error::EBADMSG)
}
