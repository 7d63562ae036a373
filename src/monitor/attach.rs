//! The attach protocol between a monitor and `attach`/`start -a`/`run -it`
//! clients, over the container's unix socket: frames of one kind byte, a
//! big-endian u32 length, and the payload. The client half (terminal raw
//! mode, window size, detach keys) lives here too.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::linux::tty;

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
/// Monitor → client: the container ended; payload is the exit code (i32 BE).
pub const EXIT: u8 = 3;
/// Client → monitor: window size, rows and cols as u16 BE.
pub const RESIZE: u8 = 4;
/// Client → monitor: no more stdin.
pub const STDIN_EOF: u8 = 5;

pub fn frame(kind: u8, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(5 + data.len());
    v.push(kind);
    v.extend_from_slice(&(data.len() as u32).to_be_bytes());
    v.extend_from_slice(data);
    v
}

/// Reassembles frames from a byte stream.
#[derive(Default)]
pub struct Frames {
    buf: Vec<u8>,
}

impl Frames {
    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    pub fn next_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        if self.buf.len() < 5 {
            return None;
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if self.buf.len() < 5 + len {
            return None;
        }
        let kind = self.buf[0];
        let data = self.buf[5..5 + len].to_vec();
        self.buf.drain(..5 + len);
        Some((kind, data))
    }
}

/// How an attached session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// The container exited with this code.
    Exited(i32),
    /// The user typed the detach keys (Ctrl-P Ctrl-Q).
    Detached,
    /// The monitor went away without saying.
    Lost,
}

/// Ctrl-P then Ctrl-Q, Docker's default detach sequence.
const DETACH_KEYS: [u8; 2] = [0x10, 0x11];

/// Stream a container's output to our stdout/stderr and, with `stdin`, our
/// stdin to it, until it ends or the user detaches. On a terminal with `tty`,
/// the terminal goes raw (restored on every exit path) and window size
/// changes are forwarded.
pub fn client(mut sock: UnixStream, stdin: bool, tty_mode: bool) -> std::io::Result<End> {
    let stdin_fd = std::io::stdin();
    let is_term = nix::unistd::isatty(stdin_fd.as_fd()).unwrap_or(false);
    let raw = (tty_mode && is_term)
        .then(|| tty::make_raw(stdin_fd.as_fd()).ok())
        .flatten();
    let _restore = RestoreOnDrop(raw);
    if tty_mode && is_term {
        send_size(&mut sock);
    }
    let mut set = SigSet::empty();
    set.add(Signal::SIGWINCH);
    let _ = set.thread_block();
    let sfd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).ok();

    let mut frames = Frames::default();
    let mut buf = vec![0u8; 64 * 1024];
    let mut stdin_open = stdin;
    let mut pending_ctrl_p = false;
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    loop {
        let sock_fd = sock.try_clone()?;
        let mut fds = vec![PollFd::new(sock_fd.as_fd(), PollFlags::POLLIN)];
        let stdin_idx = stdin_open.then(|| {
            fds.push(PollFd::new(stdin_fd.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        let sig_idx = sfd.as_ref().map(|s| {
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let ready = |i: usize| {
            fds[i].revents().is_some_and(|r| {
                r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
            })
        };
        let sock_ready = ready(0);
        let stdin_ready = stdin_idx.is_some_and(ready);
        let sig_ready = sig_idx.is_some_and(ready);
        drop(fds);
        if sig_ready {
            if let Some(s) = &sfd {
                while let Ok(Some(_)) = s.read_signal() {}
            }
            send_size(&mut sock);
        }
        if stdin_ready {
            let n = nix::unistd::read(stdin_fd.as_fd(), &mut buf).unwrap_or(0);
            if n == 0 {
                stdin_open = false;
                sock.write_all(&frame(STDIN_EOF, &[]))?;
            } else {
                let mut data = Vec::with_capacity(n);
                for &b in &buf[..n] {
                    // Detach keys only make sense on a terminal in raw mode.
                    if tty_mode && is_term {
                        if pending_ctrl_p && b == DETACH_KEYS[1] {
                            return Ok(End::Detached);
                        }
                        if b == DETACH_KEYS[0] {
                            pending_ctrl_p = true;
                            continue;
                        }
                        if pending_ctrl_p {
                            data.push(DETACH_KEYS[0]);
                            pending_ctrl_p = false;
                        }
                    }
                    data.push(b);
                }
                if !data.is_empty() {
                    sock.write_all(&frame(STDIN, &data))?;
                }
            }
        }
        if sock_ready {
            let n = match sock.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => 0,
            };
            if n == 0 {
                return Ok(End::Lost);
            }
            frames.feed(&buf[..n]);
            while let Some((kind, data)) = frames.next_frame() {
                match kind {
                    STDOUT => {
                        out.write_all(&data)?;
                        out.flush()?;
                    }
                    STDERR => {
                        err.write_all(&data)?;
                        err.flush()?;
                    }
                    EXIT if data.len() == 4 => {
                        return Ok(End::Exited(i32::from_be_bytes([
                            data[0], data[1], data[2], data[3],
                        ])));
                    }
                    _ => {}
                }
            }
        }
    }
}

fn send_size(sock: &mut UnixStream) {
    if let Some((rows, cols)) = tty::window_size(std::io::stdin().as_fd()) {
        let mut p = rows.to_be_bytes().to_vec();
        p.extend_from_slice(&cols.to_be_bytes());
        let _ = sock.write_all(&frame(RESIZE, &p));
    }
}

struct RestoreOnDrop(Option<nix::sys::termios::Termios>);

impl Drop for RestoreOnDrop {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            tty::restore(std::io::stdin().as_fd(), t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_in_pieces() {
        let mut bytes = frame(STDOUT, b"hello");
        bytes.extend(frame(EXIT, &7i32.to_be_bytes()));
        let mut f = Frames::default();
        for chunk in bytes.chunks(3) {
            f.feed(chunk);
        }
        assert_eq!(f.next_frame(), Some((STDOUT, b"hello".to_vec())));
        assert_eq!(f.next_frame(), Some((EXIT, 7i32.to_be_bytes().to_vec())));
        assert_eq!(f.next_frame(), None);
    }
}
