//! Exec endpoints: an exec instance is made by `POST
//! /containers/{id}/exec` (a record in the runtime directory), run by
//! `POST /exec/{id}/start` on the connection it takes over, and read back
//! (its exit code) by `GET /exec/{id}/json`.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::http::{self, Conn, Request};
use super::server::Stream;
use super::{bad_request, engine_error, error, json_body, reply, Handled, Next};
use crate::container::{self, ExecOptions};
use crate::engine::{self, Engine};
use crate::linux::process;

/// An exec instance as kept between its create and its start.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ExecRecord {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "ContainerID")]
    container_id: String,
    cmd: Vec<String>,
    env: Vec<String>,
    user: String,
    working_dir: String,
    tty: bool,
    attach_stdin: bool,
    attach_stdout: bool,
    attach_stderr: bool,
    running: bool,
    exit_code: Option<i32>,
    pid: i32,
}

fn path(engine: &Engine, id: &str) -> Option<PathBuf> {
    // Ids are ours: hex only, so a request cannot name another file.
    (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| {
        engine
            .store
            .paths
            .runtime
            .join("execs")
            .join(format!("{id}.json"))
    })
}

fn load(engine: &Engine, id: &str) -> Option<ExecRecord> {
    let p = path(engine, id)?;
    serde_json::from_slice(&std::fs::read(p).ok()?).ok()
}

fn save(engine: &Engine, rec: &ExecRecord) -> std::io::Result<()> {
    let p = path(engine, &rec.id).ok_or_else(|| std::io::Error::other("bad exec id"))?;
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = p.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec(rec).unwrap_or_default())?;
    std::fs::rename(tmp, p)
}

fn no_such_exec(w: &mut Stream, id: &str) -> Handled {
    error(w, 404, &format!("No such exec instance: {id}"))
}

/// `POST /containers/{id}/exec`.
pub fn create(engine: &Engine, conn: &mut Conn<Stream>, req: &Request, id: &str) -> Handled {
    let body = match json_body(conn, req) {
        Ok(b) => b,
        Err(e) => return bad_request(&mut conn.stream, &e),
    };
    let rec = match engine::containers::exec_target(engine, id.trim_start_matches('/')) {
        Ok(r) => r,
        Err(e) => return engine_error(&mut conn.stream, &e),
    };
    let strings = |k: &str| -> Vec<String> {
        body[k]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let cmd = strings("Cmd");
    if cmd.is_empty() {
        return error(&mut conn.stream, 400, "No exec command specified");
    }
    let env = strings("Env");
    for e in &env {
        if let Err(e) = engine::create::check_env(e) {
            return engine_error(&mut conn.stream, &e);
        }
    }
    let working_dir = body["WorkingDir"].as_str().unwrap_or("").to_string();
    if let Err(e) = engine::create::check_workdir(
        Some(&working_dir)
            .filter(|w| !w.is_empty())
            .map(|w| w.as_str()),
    ) {
        return engine_error(&mut conn.stream, &e);
    }
    let exec = ExecRecord {
        id: crate::store::random_hex(32),
        container_id: rec.id.clone(),
        cmd,
        env,
        user: body["User"].as_str().unwrap_or("").to_string(),
        working_dir,
        tty: body["Tty"].as_bool().unwrap_or(false),
        attach_stdin: body["AttachStdin"].as_bool().unwrap_or(false),
        attach_stdout: body["AttachStdout"].as_bool().unwrap_or(true),
        attach_stderr: body["AttachStderr"].as_bool().unwrap_or(true),
        running: false,
        exit_code: None,
        pid: 0,
    };
    if let Err(e) = save(engine, &exec) {
        return error(
            &mut conn.stream,
            500,
            &format!("saving the exec instance: {e}"),
        );
    }
    reply(&mut conn.stream, 201, &json!({"Id": exec.id}))
}

/// `GET /exec/{id}/json`.
pub fn inspect(engine: &Engine, conn: &mut Conn<Stream>, id: &str) -> Handled {
    let Some(e) = load(engine, id) else {
        return no_such_exec(&mut conn.stream, id);
    };
    reply(
        &mut conn.stream,
        200,
        &json!({
            "ID": e.id,
            "ContainerID": e.container_id,
            "Running": e.running,
            "ExitCode": e.exit_code,
            "Pid": e.pid,
            "OpenStdin": e.attach_stdin,
            "OpenStdout": e.attach_stdout,
            "OpenStderr": e.attach_stderr,
            "CanRemove": false,
            "DetachKeys": "",
            "ProcessConfig": {
                "tty": e.tty,
                "entrypoint": e.cmd.first(),
                "arguments": e.cmd.get(1..).unwrap_or(&[]),
                "privileged": false,
                "user": e.user,
            },
        }),
    )
}

/// Where a running `exec -t` takes its terminal's new sizes: named by a
/// short id, as a socket's path must fit in `sun_path`.
fn resize_path(engine: &Engine, id: &str) -> PathBuf {
    engine
        .store
        .paths
        .runtime
        .join(format!("{}.exec", &id[..id.len().min(12)]))
}

/// `POST /exec/{id}/resize?h=&w=`: the size goes to the worker that runs
/// the exec, which sets it on the exec's terminal.
pub fn resize(engine: &Engine, conn: &mut Conn<Stream>, req: &Request, id: &str) -> Handled {
    let _ = conn.read_body(req, http::MAX_JSON_BODY);
    let Some(exec) = load(engine, id) else {
        return no_such_exec(&mut conn.stream, id);
    };
    let (Some(h), Some(w)) = (
        req.param("h").and_then(|h| h.parse::<u16>().ok()),
        req.param("w").and_then(|w| w.parse::<u16>().ok()),
    ) else {
        return error(&mut conn.stream, 400, "resize needs numbers h and w");
    };
    let sent =
        std::os::unix::net::UnixStream::connect(resize_path(engine, &exec.id)).and_then(|mut s| {
            let mut size = h.to_be_bytes().to_vec();
            size.extend_from_slice(&w.to_be_bytes());
            s.write_all(&size)
        });
    match sent {
        Ok(()) => super::empty(&mut conn.stream, 200),
        Err(_) => error(
            &mut conn.stream,
            409,
            &format!("exec {id} is not running with a terminal"),
        ),
    }
}

/// Copy between the client and our end of the exec's terminal until the
/// exec's side closes, taking new sizes from `resizes`.
fn relay_terminal(
    client: &mut Stream,
    master: &OwnedFd,
    resizes: Option<&std::os::unix::net::UnixListener>,
    joiner: nix::unistd::Pid,
    early: Vec<u8>,
) -> std::io::Result<()> {
    let mut to_exec = std::fs::File::from(master.try_clone()?);
    let mut from_exec = std::fs::File::from(master.try_clone()?);
    if !early.is_empty() {
        to_exec.write_all(&early)?;
    }
    let mut reader = client.try_clone()?;
    let mut client_open = true;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut fds = vec![PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        let reader_fd = reader.try_clone()?;
        if client_open {
            fds.push(PollFd::new(reader_fd.as_fd(), PollFlags::POLLIN));
        }
        let resize_at = fds.len();
        if let Some(l) = resizes {
            fds.push(PollFd::new(l.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let ready = process::ready(&fds);
        drop(fds);
        if ready[0] {
            // EIO: every descriptor of the other side is closed.
            match from_exec.read(&mut buf) {
                Ok(n) if n > 0 => client.write_all(&buf[..n])?,
                _ => return Ok(()),
            }
        }
        if client_open && ready[1] {
            match reader.read(&mut buf) {
                Ok(n) if n > 0 => to_exec.write_all(&buf[..n])?,
                _ => client_open = false,
            }
        }
        if resizes.is_some() && ready.get(resize_at) == Some(&true) {
            if let Some(Ok((mut s, _))) = resizes.map(|l| l.accept()) {
                let mut size = [0u8; 4];
                if s.read_exact(&mut size).is_ok() {
                    let rows = u16::from_be_bytes([size[0], size[1]]);
                    let cols = u16::from_be_bytes([size[2], size[3]]);
                    let _ = crate::linux::tty::set_window_size(master, rows, cols);
                    let _ = nix::sys::signal::kill(joiner, nix::sys::signal::Signal::SIGWINCH);
                }
            }
        }
    }
}

/// `POST /exec/{id}/start`: detached, at once; else on the connection,
/// taken over, until the process ends.
pub fn start(engine: &Engine, conn: &mut Conn<Stream>, req: &Request, id: &str) -> Handled {
    let body = match json_body(conn, req) {
        Ok(b) => b,
        Err(e) => return bad_request(&mut conn.stream, &e),
    };
    let Some(mut exec) = load(engine, id) else {
        return no_such_exec(&mut conn.stream, id);
    };
    if exec.running || exec.exit_code.is_some() {
        return error(&mut conn.stream, 409, &format!("exec {id} has already run"));
    }
    let rec = match super::containers::find(engine, &exec.container_id) {
        Ok(r) => r,
        Err(e) => return engine_error(&mut conn.stream, &e),
    };
    if let Err(e) = engine::containers::exec_target(engine, &rec.id) {
        return engine_error(&mut conn.stream, &e);
    }
    let detach = body["Detach"].as_bool().unwrap_or(false);
    let tty = exec.tty || body["Tty"].as_bool().unwrap_or(false);
    let opts = ExecOptions {
        argv: exec.cmd.clone(),
        env: exec.env.clone(),
        workdir: Some(exec.working_dir.clone()).filter(|w| !w.is_empty()),
        user: Some(exec.user.clone()).filter(|u| !u.is_empty()),
        interactive: exec.attach_stdin,
        tty,
        detach,
        single_id: !engine.mapping.is_range(),
        output: None,
    };
    if detach {
        return match container::exec(&engine.store, &rec, opts) {
            Ok(execd) => {
                exec.running = true;
                exec.pid = execd.pid.as_raw();
                let _ = save(engine, &exec);
                super::empty(&mut conn.stream, 200)
            }
            Err(e) => engine_error(&mut conn.stream, &e.into()),
        };
    }
    let content_type = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    // Bound before the client hears back: its first resize follows at once.
    let resize_at = resize_path(engine, &exec.id);
    let resizes = tty
        .then(|| std::os::unix::net::UnixListener::bind(&resize_at).ok())
        .flatten();
    http::hijack(&mut conn.stream, req.wants_upgrade(), content_type)?;
    http::await_read(conn.stream.as_fd(), std::time::Duration::from_millis(500));
    let early = conn.take_buffered();
    let code = run_attached(
        engine,
        &rec,
        opts,
        &mut conn.stream,
        early,
        &mut exec,
        resizes.as_ref(),
    );
    if resizes.is_some() {
        let _ = std::fs::remove_file(&resize_at);
    }
    exec.running = false;
    exec.exit_code = Some(code);
    let _ = save(engine, &exec);
    conn.stream.shutdown_write();
    Ok(Next::Close)
}

/// Run the exec with this worker's stdio joined to the client: with a TTY
/// the socket itself is the terminal's other end; without, pipes whose
/// output is framed here. Returns the exit code.
fn run_attached(
    engine: &Engine,
    rec: &container::ContainerRecord,
    opts: ExecOptions,
    client: &mut Stream,
    early: Vec<u8>,
    exec: &mut ExecRecord,
    resizes: Option<&std::os::unix::net::UnixListener>,
) -> i32 {
    let tty = opts.tty;
    let stdin = opts.interactive;
    let sock = client.as_fd().as_raw_fd();
    let mut terminal = None;
    let pipes = if tty {
        // The exec relays its pty to our fds 0 and 1, and copies their
        // window size on SIGWINCH: they are a terminal of ours, whose size
        // `/exec/{id}/resize` sets, relayed to the client here.
        match nix::pty::openpty(None, None).map(|p| (p.master, p.slave)) {
            Ok((master, slave)) => {
                let _ = crate::linux::tty::make_raw(&slave);
                let _ = process::dup_onto(slave.as_raw_fd(), 0);
                let _ = process::dup_onto(slave.as_raw_fd(), 1);
                terminal = Some(master);
            }
            Err(_) => {
                let _ = process::dup_onto(sock, 0);
                let _ = process::dup_onto(sock, 1);
            }
        }
        None
    } else {
        // Stdin is a socket, not a pipe: the exec's joiner (a fork of this
        // worker) holds copies of our descriptors, so only a shutdown, not
        // a close, can end the process's input when the client's does.
        use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
        let inp = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        );
        let (Ok(out), Ok(err), Ok(inp)) = (process::pipe(), process::pipe(), inp) else {
            return crate::exit::BURROW;
        };
        let _ = process::dup_onto(inp.0.as_raw_fd(), 0);
        let _ = process::dup_onto(out.1.as_raw_fd(), 1);
        let _ = process::dup_onto(err.1.as_raw_fd(), 2);
        Some((out.0, err.0, inp.1))
    };
    let execd = container::exec(&engine.store, rec, opts);
    // Our copies of the child's ends go, so its exit closes the pipes.
    if let Ok(null) = std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for fd in 0..3 {
            let _ = process::dup_onto(null.as_raw_fd(), fd);
        }
    }
    let execd = match execd {
        Ok(e) => e,
        Err(e) => {
            let msg = format!(
                "{}\n",
                crate::util::message::one_line_of(&engine::Error::from(e))
            );
            let _ = if tty {
                client.write_all(msg.as_bytes())
            } else {
                client.write_all(&frame(2, msg.as_bytes()))
            };
            return crate::exit::CANNOT_RUN;
        }
    };
    exec.running = true;
    exec.pid = execd.pid.as_raw();
    let _ = save(engine, exec);
    if let Some((out, err, inp)) = pipes {
        let _ = pump(client, out, err, stdin.then_some(inp), early);
    } else if let Some(master) = terminal {
        let _ = relay_terminal(client, &master, resizes, execd.joiner(), early);
    }
    execd.wait_relaying_signals()
}

fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut v = vec![stream, 0, 0, 0];
    v.extend_from_slice(&(data.len() as u32).to_be_bytes());
    v.extend_from_slice(data);
    v
}

/// Frame the exec's stdout and stderr to the client and copy the client's
/// bytes to its stdin, until both outputs end.
fn pump(
    client: &mut Stream,
    out: OwnedFd,
    err: OwnedFd,
    inp: Option<OwnedFd>,
    early: Vec<u8>,
) -> std::io::Result<()> {
    let mut out = Some(std::fs::File::from(out));
    let mut err = Some(std::fs::File::from(err));
    let mut inp = inp.map(std::fs::File::from);
    if let (Some(i), false) = (&mut inp, early.is_empty()) {
        let _ = i.write_all(&early);
    }
    let mut reader = client.try_clone()?;
    let mut buf = vec![0u8; 64 * 1024];
    while out.is_some() || err.is_some() {
        let mut fds = Vec::new();
        let mut kinds = Vec::new();
        if let Some(o) = &out {
            fds.push(PollFd::new(o.as_fd(), PollFlags::POLLIN));
            kinds.push(1u8);
        }
        if let Some(e) = &err {
            fds.push(PollFd::new(e.as_fd(), PollFlags::POLLIN));
            kinds.push(2u8);
        }
        let reader_fd = reader.try_clone()?;
        if inp.is_some() {
            fds.push(PollFd::new(reader_fd.as_fd(), PollFlags::POLLIN));
            kinds.push(0u8);
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let ready: Vec<u8> = process::ready_among(kinds.iter().copied(), &fds);
        drop(fds);
        for k in ready {
            match k {
                0 => {
                    let n = reader.read(&mut buf).unwrap_or(0);
                    if n == 0 {
                        // The client's half-close: the end of stdin.
                        if let Some(i) = inp.take() {
                            let _ = nix::sys::socket::shutdown(
                                i.as_raw_fd(),
                                nix::sys::socket::Shutdown::Write,
                            );
                        }
                    } else if let Some(i) = &mut inp {
                        if i.write_all(&buf[..n]).is_err() {
                            inp = None;
                        }
                    }
                }
                k => {
                    let src = if k == 1 { &mut out } else { &mut err };
                    let n = src.as_mut().map_or(0, |f| f.read(&mut buf).unwrap_or(0));
                    if n == 0 {
                        *src = None;
                    } else {
                        client.write_all(&frame(k, &buf[..n]))?;
                    }
                }
            }
        }
    }
    Ok(())
}
