//! The container's stdio as the monitor holds it (its ends before PID 1
//! runs, ours after) and the attach clients on the container's socket:
//! their input framed to the container, its output broadcast to them.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use crate::linux::{process, tty};
use crate::sandbox;
use crate::store::Store;

use super::attach;

/// The attach socket of a container. Unix socket paths are limited to 107
/// bytes, so it is named by the short id, directly in the runtime dir.
pub fn socket_path(store: &Store, id: &str) -> PathBuf {
    store
        .paths
        .runtime
        .join(format!("{}.sock", &id[..id.len().min(12)]))
}
/// Connect to a running container's monitor.
pub fn connect(store: &Store, id: &str) -> std::io::Result<UnixStream> {
    UnixStream::connect(socket_path(store, id))
}

/// The container's stdio as the monitor holds it.
pub(super) struct ContainerIo {
    tty: Option<(OwnedFd, OwnedFd)>,
    stdin: Option<(OwnedFd, OwnedFd)>,
    stdout: Option<(OwnedFd, OwnedFd)>,
    stderr: Option<(OwnedFd, OwnedFd)>,
    null: Option<OwnedFd>,
}

impl ContainerIo {
    pub(super) fn new(tty_mode: bool, open_stdin: bool) -> nix::Result<Self> {
        if tty_mode {
            // PID 1 opens the pty in the container's devpts and sends us
            // the master over this socket pair.
            let (ours, theirs) = tty::console_socketpair()?;
            return Ok(ContainerIo {
                tty: Some((ours, theirs)),
                stdin: None,
                stdout: None,
                stderr: None,
                null: None,
            });
        }
        let null = File::open("/dev/null")
            .map(OwnedFd::from)
            .map_err(|_| nix::Error::ENOENT)?;
        Ok(ContainerIo {
            tty: None,
            stdin: if open_stdin {
                Some(process::pipe()?)
            } else {
                None
            },
            stdout: Some(process::pipe()?),
            stderr: Some(process::pipe()?),
            null: Some(null),
        })
    }

    /// PID 1's stdio: the console socket (`-t`), else stdin (a pipe or
    /// /dev/null), stdout and stderr pipes.
    pub(super) fn for_container(&self) -> sandbox::Stdio {
        if let Some((_, theirs)) = &self.tty {
            return sandbox::Stdio::ConsoleSocket(theirs.as_raw_fd());
        }
        let stdin = match (&self.stdin, &self.null) {
            (Some((r, _)), _) => r.as_raw_fd(),
            (None, Some(n)) => n.as_raw_fd(),
            (None, None) => 0,
        };
        sandbox::Stdio::Pipes([
            stdin,
            self.stdout.as_ref().map_or(1, |(_, w)| w.as_raw_fd()),
            self.stderr.as_ref().map_or(2, |(_, w)| w.as_raw_fd()),
        ])
    }

    /// Drop the ends that belong to the container now that it has them;
    /// with `-t`, receive the pty master PID 1 sent before it exec'd.
    pub(super) fn parent_side(self) -> nix::Result<ParentIo> {
        Ok(match self.tty {
            Some((ours, _theirs)) => ParentIo {
                input: None,
                master: Some(tty::recv_fd(ours.as_raw_fd())?),
                stdout: None,
                stderr: None,
            },
            None => ParentIo {
                input: self.stdin.map(|(_, w)| w),
                master: None,
                stdout: self.stdout.map(|(r, _)| r),
                stderr: self.stderr.map(|(r, _)| r),
            },
        })
    }
}

pub(super) struct ParentIo {
    input: Option<OwnedFd>,
    master: Option<OwnedFd>,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
}

impl ParentIo {
    /// Streams to read: (stream id, fd). A pty is all stdout.
    pub(super) fn outputs(&self) -> Vec<(u8, Option<OwnedFd>)> {
        let dup = |f: &OwnedFd| f.try_clone().ok();
        match &self.master {
            Some(m) => vec![(attach::STDOUT, dup(m))],
            None => vec![
                (attach::STDOUT, self.stdout.as_ref().and_then(dup)),
                (attach::STDERR, self.stderr.as_ref().and_then(dup)),
            ],
        }
    }

    fn write_input(&self, data: &[u8]) {
        let target = self.master.as_ref().or(self.input.as_ref());
        if let Some(fd) = target {
            let _ = write_all_fd(fd, data);
        }
    }

    fn close_input(&mut self) {
        match &self.master {
            // With a pty, end of input is the terminal's EOF character.
            Some(m) => {
                let _ = write_all_fd(m, &[4]);
            }
            // Dropping our write end gives the container EOF on stdin.
            None => self.input = None,
        }
    }

    fn resize(&self, rows: u16, cols: u16) {
        if let Some(m) = &self.master {
            let _ = tty::set_window_size(m, rows, cols);
        }
    }
}

pub(super) struct Client {
    pub(super) sock: UnixStream,
    frames: attach::Frames,
    pub(super) alive: bool,
}

impl Client {
    pub(super) fn new(sock: UnixStream) -> Self {
        Client {
            sock,
            frames: attach::Frames::default(),
            alive: true,
        }
    }

    pub(super) fn read_input(&mut self, io: &mut ParentIo) {
        let mut buf = [0u8; 16 * 1024];
        match self.sock.read(&mut buf) {
            Ok(0) | Err(_) => self.alive = false,
            Ok(n) => {
                self.frames.feed(&buf[..n]);
                while let Some((kind, data)) = self.frames.next_frame() {
                    match kind {
                        attach::STDIN => io.write_input(&data),
                        attach::STDIN_EOF => io.close_input(),
                        attach::RESIZE if data.len() == 4 => io.resize(
                            u16::from_be_bytes([data[0], data[1]]),
                            u16::from_be_bytes([data[2], data[3]]),
                        ),
                        _ => {}
                    }
                }
            }
        }
    }
}

fn write_all_fd(fd: &OwnedFd, mut data: &[u8]) -> nix::Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(nix::Error::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

pub(super) fn broadcast(clients: &mut [Client], stream: u8, data: &[u8]) {
    let f = attach::frame(stream, data);
    for c in clients.iter_mut() {
        if c.sock.write_all(&f).is_err() {
            c.alive = false;
        }
    }
}
