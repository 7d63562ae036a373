//! The service's listener and its processes: one single-threaded accept
//! loop that forks one worker process per connection, and exits after an
//! idle time with no client.
//!
//! A worker is a fork of a process with one thread, and has one thread
//! itself, so it may fork containers (a user namespace cannot be entered by
//! a process with threads). A long pull, a followed log or an attached
//! container holds one worker, never the others: clients in parallel
//! (compose starting several services, tests in parallel) do not wait for
//! each other.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::engine::Engine;
use crate::linux::process;

/// Where the service listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// A unix socket at this path (made 0600; its directory must be 0700).
    Unix(PathBuf),
    /// A TCP address on loopback.
    Tcp(std::net::SocketAddr),
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("invalid address {0:?}: use unix:///PATH or tcp://127.0.0.1:PORT")]
    BadUri(String),
    #[error("{0}: tcp:// binds loopback only (anyone who can connect controls your containers)")]
    NotLoopback(String),
    #[error("another service is already listening on {0}")]
    InUse(PathBuf),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("forking a connection's worker: {0}")]
    Fork(String),
}

impl Listen {
    /// `unix:///path`, `unix:/path`, `tcp://HOST:PORT` (HOST a loopback
    /// address or `localhost`).
    pub fn parse(uri: &str) -> Result<Listen, ServiceError> {
        if let Some(p) = uri
            .strip_prefix("unix://")
            .or_else(|| uri.strip_prefix("unix:"))
        {
            if !p.starts_with('/') {
                return Err(ServiceError::BadUri(uri.into()));
            }
            return Ok(Listen::Unix(PathBuf::from(p)));
        }
        if let Some(hp) = uri.strip_prefix("tcp://") {
            let hp = hp.trim_end_matches('/');
            let (host, port) = hp
                .rsplit_once(':')
                .ok_or_else(|| ServiceError::BadUri(uri.into()))?;
            let port: u16 = port.parse().map_err(|_| ServiceError::BadUri(uri.into()))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let ip: std::net::IpAddr = match host {
                "localhost" | "" => std::net::Ipv4Addr::LOCALHOST.into(),
                h => h.parse().map_err(|_| ServiceError::BadUri(uri.into()))?,
            };
            if !ip.is_loopback() {
                return Err(ServiceError::NotLoopback(uri.into()));
            }
            return Ok(Listen::Tcp((ip, port).into()));
        }
        Err(ServiceError::BadUri(uri.into()))
    }

    /// What to put in `DOCKER_HOST`.
    pub fn uri(&self) -> String {
        match self {
            Listen::Unix(p) => format!("unix://{}", p.display()),
            Listen::Tcp(a) => format!("tcp://{a}"),
        }
    }
}

/// A bound listener.
pub enum Listener {
    Unix(UnixListener),
    Tcp(std::net::TcpListener),
}

/// One accepted connection.
pub enum Stream {
    Unix(UnixStream),
    Tcp(std::net::TcpStream),
}

impl io::Read for Stream {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(b),
            Stream::Tcp(s) => s.read(b),
        }
    }
}

impl io::Write for Stream {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(b),
            Stream::Tcp(s) => s.write(b),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            Stream::Unix(s) => s.as_fd(),
            Stream::Tcp(s) => s.as_fd(),
        }
    }
}

impl Stream {
    /// No more writes: the client reads EOF (the end of an attach stream).
    pub fn shutdown_write(&self) {
        let _ = match self {
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Write),
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
        };
    }

    pub fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
        })
    }
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ServiceError {
    let path = path.display().to_string();
    move |source| ServiceError::Io { what, path, source }
}

impl Listener {
    /// Bind `listen`. A unix socket's directory is made 0700 when missing,
    /// a socket left by a dead service is replaced, one a live service
    /// answers on is refused.
    pub fn bind(listen: &Listen) -> Result<Listener, ServiceError> {
        match listen {
            Listen::Unix(path) => {
                if let Some(dir) = path.parent() {
                    if !dir.exists() {
                        std::fs::DirBuilder::new()
                            .recursive(true)
                            .mode(0o700)
                            .create(dir)
                            .map_err(io_err("creating", dir))?;
                    }
                }
                if path.exists() {
                    if UnixStream::connect(path).is_ok() {
                        return Err(ServiceError::InUse(path.clone()));
                    }
                    std::fs::remove_file(path).map_err(io_err("removing the stale", path))?;
                }
                let l = UnixListener::bind(path).map_err(io_err("listening on", path))?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                    .map_err(io_err("setting the mode of", path))?;
                Ok(Listener::Unix(l))
            }
            Listen::Tcp(addr) => {
                let l = std::net::TcpListener::bind(addr)
                    .map_err(io_err("listening on", Path::new(&addr.to_string())))?;
                Ok(Listener::Tcp(l))
            }
        }
    }

    /// A socket systemd passed in (socket activation).
    pub fn activated(fd: OwnedFd) -> Listener {
        use nix::sys::socket::SockaddrLike;
        // A unix socket unit is the one shipped; TCP sockets are accepted too.
        let domain = nix::sys::socket::getsockname::<nix::sys::socket::SockaddrStorage>(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
        )
        .ok()
        .and_then(|a| a.family());
        match domain {
            Some(nix::sys::socket::AddressFamily::Unix) | None => {
                Listener::Unix(UnixListener::from(fd))
            }
            Some(_) => Listener::Tcp(std::net::TcpListener::from(fd)),
        }
    }

    fn set_nonblocking(&self) -> io::Result<()> {
        match self {
            Listener::Unix(l) => l.set_nonblocking(true),
            Listener::Tcp(l) => l.set_nonblocking(true),
        }
    }

    fn accept(&self) -> io::Result<Stream> {
        let s = match self {
            Listener::Unix(l) => Stream::Unix(l.accept()?.0),
            Listener::Tcp(l) => Stream::Tcp(l.accept()?.0),
        };
        // The worker blocks on its own connection.
        match &s {
            Stream::Unix(u) => u.set_nonblocking(false)?,
            Stream::Tcp(t) => {
                t.set_nonblocking(false)?;
                let _ = t.set_nodelay(true);
            }
        }
        Ok(s)
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            Listener::Unix(l) => l.as_fd(),
            Listener::Tcp(l) => l.as_fd(),
        }
    }
}

/// Accept connections until `idle` passes with no connection open (never,
/// when `None`), one forked worker per connection running `handle`.
pub fn serve(
    engine: &Engine,
    listener: &Listener,
    idle: Option<Duration>,
    handle: fn(&Engine, Stream),
) -> Result<(), ServiceError> {
    listener
        .set_nonblocking()
        .map_err(io_err("configuring", Path::new("the listener")))?;
    let mut workers: Vec<Pid> = Vec::new();
    let mut quiet_since = Instant::now();
    loop {
        workers.retain(|&pid| {
            !matches!(
                waitpid(pid, Some(WaitPidFlag::WNOHANG)),
                Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) | Err(_)
            )
        });
        if !workers.is_empty() {
            quiet_since = Instant::now();
        }
        let wait = match idle {
            Some(idle) if workers.is_empty() => {
                let left = idle.saturating_sub(quiet_since.elapsed());
                if left.is_zero() {
                    return Ok(());
                }
                left.min(Duration::from_millis(250))
            }
            // Workers are reaped a quarter second after they end.
            _ => Duration::from_millis(250),
        };
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        let timeout = PollTimeout::try_from(wait.as_millis() as i32).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            Ok(0) | Err(nix::Error::EINTR) => continue,
            Ok(_) => {}
            Err(e) => {
                return Err(ServiceError::Io {
                    what: "waiting on",
                    path: "the listener".into(),
                    source: e.into(),
                })
            }
        }
        let stream = match listener.accept() {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!("accepting a connection: {e}");
                continue;
            }
        };
        let pid = process::fork_child(|| {
            // A client gone mid-answer is an error to handle, not a signal
            // that kills the worker between two steps of its work.
            let _ = process::ignore_signal(nix::sys::signal::Signal::SIGPIPE);
            handle(engine, stream);
            0
        })
        .map_err(|e| ServiceError::Fork(e.to_string()))?;
        workers.push(pid);
        quiet_since = Instant::now();
    }
}
