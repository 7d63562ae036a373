//! Terminals: pty pairs, controlling terminal, window size, raw mode.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::pty::{openpty, Winsize};
use nix::sys::termios::{self, SetArg, Termios};

/// A new pty pair: (master, slave).
pub fn open_pty() -> nix::Result<(OwnedFd, OwnedFd)> {
    let p = openpty(None, None)?;
    Ok((p.master, p.slave))
}

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

/// Restore settings saved by `make_raw`.
pub fn restore<Fd: AsFd>(fd: Fd, saved: &Termios) {
    let _ = termios::tcsetattr(fd, SetArg::TCSANOW, saved);
}
