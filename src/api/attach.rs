//! Streams into and out of a container: `/attach` (the connection taken
//! over), `/start` meeting an attach that came first, `/wait` with its
//! head sent before the container ends, `/resize` and `/logs`.
//!
//! The docker CLI sends `attach`, then `wait`, then `start`, on three
//! connections (three workers): the attach waits for the start through
//! `engine::attach` (see there), so not a byte of output is missed.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use serde_json::json;

use super::http::{self, Chunked, Conn, Request};
use super::server::Stream;
use super::{empty, engine_error, error, Handled, Next};
use crate::engine::{self, logs, Engine};
use crate::monitor::{self, attach as proto};

/// What the client asked to see and send.
#[derive(Clone, Copy)]
struct Streams {
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
}

/// `POST /containers/{id}/attach`.
pub fn attach(engine: &Engine, conn: &mut Conn<Stream>, req: &Request, id: &str) -> Handled {
    let _ = conn.read_body(req, http::MAX_JSON_BODY);
    let rec = match super::containers::find(engine, id) {
        Ok(r) => r,
        Err(e) => return engine_error(&mut conn.stream, &e),
    };
    if !req.flag("stream", true) && !req.flag("logs", false) {
        return error(
            &mut conn.stream,
            400,
            "at least one of logs or stream must be set",
        );
    }
    let streams = Streams {
        stdin: req.flag("stdin", false),
        stdout: req.flag("stdout", false),
        stderr: req.flag("stderr", false),
        tty: rec.config.tty,
    };
    let content_type = if streams.tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    let up = rec.is_up(&engine.store);
    // Made before the client hears back: the `start` it sends next finds it.
    let pending = if up {
        None
    } else {
        engine::attach::expect_start(engine, &rec)
    };
    http::hijack(&mut conn.stream, req.wants_upgrade(), content_type)?;
    http::await_read(conn.stream.as_fd(), std::time::Duration::from_millis(500));
    let mut early = Early {
        stdin: conn.take_buffered(),
        stdin_done: false,
    };
    tracing::debug!(
        "attach {}: up {up}, rendezvous {}",
        rec.id,
        pending.is_some()
    );
    let monitor = match pending {
        Some(p) => await_start(engine, &p, &mut conn.stream, &mut early),
        None => monitor::connect(&engine.store, &rec.id).ok(),
    };
    tracing::debug!(
        "attach {}: monitor connected: {}",
        rec.id,
        monitor.is_some()
    );
    if let Some(sock) = monitor {
        let r = pump(&mut conn.stream, sock, streams, early);
        tracing::debug!("attach {}: pump ended: {r:?}", rec.id);
    }
    conn.stream.shutdown_write();
    Ok(Next::Close)
}

/// What the client sent while its container was not yet started.
#[derive(Default)]
struct Early {
    stdin: Vec<u8>,
    /// The client half-closed: its stdin ended.
    stdin_done: bool,
}

/// The most stdin kept for a container that has not started yet.
const MAX_EARLY_STDIN: usize = 1 << 20;

/// Wait until the container starts (or the start fails, or the client
/// goes away), keeping the stdin the client sends meanwhile.
fn await_start(
    engine: &Engine,
    pending: &engine::attach::Pending,
    client: &mut Stream,
    early: &mut Early,
) -> Option<UnixStream> {
    use engine::attach::Seen;
    loop {
        let read_client = !early.stdin_done && early.stdin.len() < MAX_EARLY_STDIN;
        let client_events = if read_client {
            PollFlags::POLLIN
        } else {
            PollFlags::empty()
        };
        let mut fds = [
            PollFd::new(pending.listener().as_fd(), PollFlags::POLLIN),
            PollFd::new(client.as_fd(), client_events),
        ];
        let _ = poll(&mut fds, PollTimeout::from(200u16));
        let client_events = fds[1].revents().unwrap_or(PollFlags::empty());
        if client_events.intersects(PollFlags::POLLHUP | PollFlags::POLLERR) {
            return None;
        }
        if client_events.contains(PollFlags::POLLIN) {
            let mut buf = [0u8; 16 * 1024];
            match client.read(&mut buf) {
                Ok(0) => early.stdin_done = true,
                Ok(n) => early.stdin.extend_from_slice(&buf[..n]),
                Err(_) => return None,
            }
        }
        match pending.look(engine) {
            Seen::Attached(sock) => return Some(sock),
            Seen::Over => return None,
            Seen::Nothing => {}
        }
    }
}

/// Docker's frame header: stream, three zero bytes, big-endian length.
fn docker_frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + data.len());
    out.push(stream);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// Copy between the client and the monitor until the container ends: its
/// output to the client (raw with a TTY, framed without), the client's
/// bytes to its stdin, the client's half-close as the end of stdin.
fn pump(
    client: &mut Stream,
    mut sock: UnixStream,
    s: Streams,
    early: Early,
) -> std::io::Result<()> {
    let mut client_in = client.try_clone()?;
    let mut stdin_open = s.stdin;
    if stdin_open && !early.stdin.is_empty() {
        sock.write_all(&proto::frame(proto::STDIN, &early.stdin))?;
    }
    if stdin_open && early.stdin_done {
        stdin_open = false;
        sock.write_all(&proto::frame(proto::STDIN_EOF, &[]))?;
    }
    let mut frames = proto::Frames::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let sock_fd = sock.try_clone()?;
        let client_fd = client_in.try_clone()?;
        let mut fds = vec![PollFd::new(sock_fd.as_fd(), PollFlags::POLLIN)];
        if stdin_open {
            fds.push(PollFd::new(client_fd.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let ready = crate::linux::process::ready(&fds);
        drop(fds);
        let from_monitor = ready[0];
        let from_client = ready.get(1) == Some(&true);
        if from_client {
            let n = client_in.read(&mut buf).unwrap_or(0);
            if n == 0 {
                stdin_open = false;
                sock.write_all(&proto::frame(proto::STDIN_EOF, &[]))?;
            } else {
                sock.write_all(&proto::frame(proto::STDIN, &buf[..n]))?;
            }
        }
        if from_monitor {
            let n = sock.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            frames.feed(&buf[..n]);
            while let Some((kind, data)) = frames.next_frame() {
                match kind {
                    proto::STDOUT if s.stdout => {
                        if s.tty {
                            client.write_all(&data)?;
                        } else {
                            client.write_all(&docker_frame(1, &data))?;
                        }
                    }
                    proto::STDERR if s.stderr => {
                        if s.tty {
                            client.write_all(&data)?;
                        } else {
                            client.write_all(&docker_frame(2, &data))?;
                        }
                    }
                    proto::EXIT => return Ok(()),
                    _ => {}
                }
            }
        }
    }
}

/// `POST /containers/{id}/resize?h=&w=`: the new size goes to the
/// container's monitor, which sets it on the terminal.
pub fn resize(engine: &Engine, conn: &mut Conn<Stream>, req: &Request, id: &str) -> Handled {
    let _ = conn.read_body(req, http::MAX_JSON_BODY);
    let rec = match super::containers::find(engine, id) {
        Ok(r) => r,
        Err(e) => return engine_error(&mut conn.stream, &e),
    };
    let (Some(h), Some(w)) = (
        req.param("h").and_then(|h| h.parse::<u16>().ok()),
        req.param("w").and_then(|w| w.parse::<u16>().ok()),
    ) else {
        return error(&mut conn.stream, 400, "resize needs numbers h and w");
    };
    if !rec.is_up(&engine.store) {
        return error(
            &mut conn.stream,
            409,
            &format!("Container {} is not running", rec.id),
        );
    }
    if let Ok(mut s) = monitor::connect(&engine.store, &rec.id) {
        let mut size = h.to_be_bytes().to_vec();
        size.extend_from_slice(&w.to_be_bytes());
        let _ = s.write_all(&proto::frame(proto::RESIZE, &size));
    }
    empty(&mut conn.stream, 200)
}

/// Wait `d` on the client's connection: true when it went away (closed,
/// or half-closed: a client waiting for an answer sends nothing more).
pub fn client_gone(client: &Stream, d: Duration) -> bool {
    let mut fds = [PollFd::new(client.as_fd(), PollFlags::POLLIN)];
    let ms = PollTimeout::try_from(d.as_millis() as i32).unwrap_or(PollTimeout::MAX);
    let _ = poll(&mut fds, ms);
    let ev = fds[0].revents().unwrap_or(PollFlags::empty());
    if ev.intersects(PollFlags::POLLHUP | PollFlags::POLLERR) {
        return true;
    }
    if ev.contains(PollFlags::POLLIN) {
        use nix::sys::socket::{recv, MsgFlags};
        let mut b = [0u8; 1];
        match recv(
            client.as_fd().as_raw_fd(),
            &mut b,
            MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(0) => return true,
            // Bytes we do not read (a pipelined request) would wake the
            // poll at once: wait the time out instead.
            Ok(_) => std::thread::sleep(d),
            Err(_) => return true,
        }
    }
    false
}

/// `POST /containers/{id}/wait?condition=not-running|next-exit|removed`:
/// the head at once (the docker CLI starts the container only once it has
/// it), the body when the condition holds. A client that leaves ends the
/// wait.
pub fn wait(engine: &Engine, conn: &mut Conn<Stream>, req: &Request, id: &str) -> Handled {
    let _ = conn.read_body(req, http::MAX_JSON_BODY);
    let rec = match super::containers::find(engine, id) {
        Ok(r) => r,
        Err(e) => return engine_error(&mut conn.stream, &e),
    };
    let condition: engine::attach::Condition = match req.param("condition").unwrap_or("").parse() {
        Ok(c) => c,
        Err(e) => return engine_error(&mut conn.stream, &e),
    };
    let mut stream = Chunked::start(&mut conn.stream, 200, "application/json")?;
    let client = stream.inner().try_clone()?;
    let code = engine::attach::wait(engine, &rec, condition, &mut |d| !client_gone(&client, d));
    let Some(code) = code else {
        return Ok(Next::Close);
    };
    stream.json(&json!({"StatusCode": code, "Error": null}))?;
    stream.finish()?;
    Ok(Next::Continue)
}

/// `GET /containers/{id}/logs`: framed without a TTY, raw with one;
/// `follow` streams until the container stops.
pub fn logs(engine: &Engine, conn: &mut Conn<Stream>, req: &Request, id: &str) -> Handled {
    let _ = conn.read_body(req, http::MAX_JSON_BODY);
    let rec = match super::containers::find(engine, id) {
        Ok(r) => r,
        Err(e) => return engine_error(&mut conn.stream, &e),
    };
    let parsed = (|| -> Result<logs::LogsRequest, engine::Error> {
        let time = |k: &str| match req.param(k) {
            None | Some("") | Some("0") => Ok(None),
            Some(t) => logs::parse_time(t).map(Some),
        };
        Ok(logs::LogsRequest {
            tail: logs::parse_tail(req.param("tail").unwrap_or("all"))?,
            since: time("since")?,
            until: time("until")?,
            follow: req.flag("follow", false),
        })
    })();
    let lreq = match parsed {
        Ok(r) => r,
        Err(e) => return engine_error(&mut conn.stream, &e),
    };
    let (want_out, want_err, stamps) = (
        req.flag("stdout", false),
        req.flag("stderr", false),
        req.flag("timestamps", false),
    );
    let mut reader = match logs::open(engine, &rec, &lreq) {
        Ok(r) => r,
        Err(e) => return engine_error(&mut conn.stream, &e),
    };
    let tty = rec.config.tty;
    let ct = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    let mut stream = Chunked::start(&mut conn.stream, 200, ct)?;
    let client = stream.inner().try_clone().ok();
    loop {
        match reader.step(engine) {
            Ok(logs::Step::Entries(entries)) => {
                let mut out = Vec::new();
                for e in entries {
                    let (kind, wanted) = if e.stream == "stderr" {
                        (2, want_err)
                    } else {
                        (1, want_out)
                    };
                    if !wanted {
                        continue;
                    }
                    let mut line = Vec::new();
                    if stamps {
                        line.extend_from_slice(e.time.as_bytes());
                        line.push(b' ');
                    }
                    line.extend_from_slice(e.log.as_bytes());
                    if tty {
                        out.extend_from_slice(&line);
                    } else {
                        out.extend_from_slice(&docker_frame(kind, &line));
                    }
                }
                stream.send(&out)?;
            }
            Ok(logs::Step::Idle) => {
                if client
                    .as_ref()
                    .is_none_or(|c| client_gone(c, Duration::from_millis(100)))
                {
                    return Ok(Next::Close);
                }
            }
            Ok(logs::Step::End) | Err(_) => break,
        }
    }
    stream.finish()?;
    Ok(Next::Continue)
}
