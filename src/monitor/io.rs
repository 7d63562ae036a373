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

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(fd: OwnedFd) -> Vec<u8> {
        let mut got = Vec::new();
        File::from(fd).read_to_end(&mut got).unwrap();
        got
    }

    #[test]
    fn output_goes_to_every_client_in_frames_and_a_gone_one_is_dropped() {
        let (a, mut a_peer) = UnixStream::pair().unwrap();
        let (b, b_peer) = UnixStream::pair().unwrap();
        drop(b_peer);
        let mut clients = vec![Client::new(a), Client::new(b)];
        broadcast(&mut clients, attach::STDERR, b"oops");
        assert!(clients[0].alive);
        assert!(!clients[1].alive, "a client whose socket is gone");
        let want = attach::frame(attach::STDERR, b"oops");
        let mut got = vec![0; want.len()];
        a_peer.read_exact(&mut got).unwrap();
        assert_eq!(got, want);
    }

    #[test]
    fn a_client_frames_become_stdin_and_its_end() {
        let (r, w) = process::pipe().unwrap();
        let mut io = ParentIo {
            input: Some(w),
            master: None,
            stdout: None,
            stderr: None,
        };
        let (sock, mut peer) = UnixStream::pair().unwrap();
        let mut client = Client::new(sock);
        let mut bytes = attach::frame(attach::STDIN, b"hel");
        // Without a pty a resize has nowhere to go.
        bytes.extend(attach::frame(attach::RESIZE, &[0, 24, 0, 80]));
        bytes.extend(attach::frame(attach::STDIN, b"lo"));
        bytes.extend(attach::frame(attach::STDIN_EOF, &[]));
        peer.write_all(&bytes).unwrap();
        client.read_input(&mut io);
        assert!(client.alive);
        assert!(io.input.is_none(), "the end of stdin closes our end");
        assert_eq!(read_all(r), b"hello");
        drop(peer);
        client.read_input(&mut io);
        assert!(!client.alive, "a client that hung up");
    }

    #[test]
    fn with_a_pty_input_and_its_end_go_to_the_master_and_output_is_stdout() {
        let (r, w) = process::pipe().unwrap();
        let mut io = ParentIo {
            input: None,
            master: Some(w),
            stdout: None,
            stderr: None,
        };
        let outputs = io.outputs();
        assert_eq!(outputs.len(), 1);
        assert_eq!(outputs[0].0, attach::STDOUT);
        assert!(outputs[0].1.is_some());
        drop(outputs);
        io.write_input(b"ls\n");
        io.close_input();
        drop(io);
        // The terminal's EOF character (Ctrl-D) ends its input.
        assert_eq!(read_all(r), b"ls\n\x04");
    }

    #[test]
    fn pipes_for_the_container_and_their_other_ends_for_us() {
        let cio = ContainerIo::new(false, false).unwrap();
        let sandbox::Stdio::Pipes([stdin, stdout, stderr]) = cio.for_container() else {
            panic!("pipes without a tty");
        };
        assert_eq!(stdin, cio.null.as_ref().unwrap().as_raw_fd());
        assert_eq!(stdout, cio.stdout.as_ref().unwrap().1.as_raw_fd());
        assert_eq!(stderr, cio.stderr.as_ref().unwrap().1.as_raw_fd());
        let cio = ContainerIo::new(false, true).unwrap();
        let sandbox::Stdio::Pipes([stdin, ..]) = cio.for_container() else {
            panic!("pipes without a tty");
        };
        assert_eq!(stdin, cio.stdin.as_ref().unwrap().0.as_raw_fd());
        let (container_out, container_err) = (
            cio.stdout.as_ref().unwrap().1.try_clone().unwrap(),
            cio.stderr.as_ref().unwrap().1.try_clone().unwrap(),
        );
        let io = cio.parent_side().unwrap();
        assert!(io.input.is_some() && io.master.is_none());
        write_all_fd(&container_out, b"out").unwrap();
        write_all_fd(&container_err, b"err").unwrap();
        drop((container_out, container_err));
        let outputs: Vec<(u8, Vec<u8>)> = io
            .outputs()
            .into_iter()
            .map(|(stream, fd)| (stream, fd.map(read_all).unwrap_or_default()))
            .collect();
        drop(io);
        assert_eq!(
            outputs,
            [
                (attach::STDOUT, b"out".to_vec()),
                (attach::STDERR, b"err".to_vec())
            ]
        );
    }

    #[test]
    fn with_a_tty_the_container_gets_a_console_socket_and_we_its_master() {
        let cio = ContainerIo::new(true, true).unwrap();
        let sandbox::Stdio::ConsoleSocket(theirs) = cio.for_container() else {
            panic!("a console socket with a tty");
        };
        let (r, w) = process::pipe().unwrap();
        tty::send_fd(theirs, w.as_raw_fd()).unwrap();
        drop(w);
        let io = cio.parent_side().unwrap();
        assert!(io.input.is_none() && io.stdout.is_none());
        io.write_input(b"x");
        drop(io);
        assert_eq!(read_all(r), b"x");
    }
}
