//! fuse-overlayfs(1) as a child process: an overlay mount served from user
//! space, for file systems where the kernel's overlayfs refuses an upper
//! directory (FUSE, NFS). Found on PATH, started in the foreground (`-f`) so
//! it stays our child, killed and reaped by whoever holds the handle.
//!
//! The daemon serves the mount from the mount namespace it was started in;
//! whoever pivots into the mount must do so in another mount namespace,
//! or pivot_root(2) moves the daemon's own root and working directory onto
//! the mount it serves.

use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The program's name on PATH.
pub const PROGRAM: &str = "fuse-overlayfs";

/// How long a mount may take to appear before the start counts as failed.
const MOUNT_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum FuseOverlayError {
    #[error("fuse-overlayfs is not installed (no executable {PROGRAM} on PATH)")]
    Missing,
    #[error("starting {0}: {1}")]
    Spawn(PathBuf, std::io::Error),
    #[error("fuse-overlayfs exited ({0}) before mounting: {1}")]
    Exited(String, String),
    #[error("fuse-overlayfs did not mount {0:?} within {1:?}")]
    Timeout(PathBuf, Duration),
    #[error("{0:?}: {1}")]
    Target(PathBuf, std::io::Error),
}

/// The executable fuse-overlayfs on PATH, if any: a regular file with an
/// execute bit (a `/dev/null` bound over it is not).
pub fn find() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin".into());
    super::fs::executable_in(&path, PROGRAM)
}

/// What identifies the installed program: path, size and mtime. A cached
/// answer about whether it works holds while this does.
pub fn identity() -> Option<String> {
    let p = find()?;
    let m = std::fs::metadata(&p).ok()?;
    Some(format!("{}:{}:{}", p.display(), m.size(), m.mtime()))
}

/// Whether `/dev/fuse` opens for reading and writing (it does not where the
/// device is absent or root-only, as in many CI containers).
pub fn device_usable() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .is_ok()
}

/// A running fuse-overlayfs serving one mount. Dropping it kills and reaps
/// the daemon (the mount then fails with ENOTCONN until it is unmounted or
/// its namespace ends).
#[derive(Debug)]
pub struct Daemon {
    child: Option<Child>,
    target: PathBuf,
}

impl Daemon {
    /// Mount `lowers` (top-most first) with `upper` and `work` (both None:
    /// a read-only view) at `target`, and wait until the mount is there.
    /// The daemon's stderr goes to `log` (else nowhere); it dies with our
    /// thread (PR_SET_PDEATHSIG).
    pub fn mount(
        lowers: &[PathBuf],
        upper_work: Option<(&Path, &Path)>,
        target: &Path,
        log: Option<&Path>,
    ) -> Result<Daemon, FuseOverlayError> {
        let program = find().ok_or(FuseOverlayError::Missing)?;
        let before = std::fs::metadata(target)
            .map_err(|e| FuseOverlayError::Target(target.to_path_buf(), e))?
            .dev();
        // fuse-overlayfs splits lowerdir on ':' and the options on ',';
        // it takes a backslash as an escape (fuse-overlayfs(1), libfuse's
        // option parser).
        let esc = |p: &Path| {
            p.to_string_lossy()
                .replace('\\', "\\\\")
                .replace(':', "\\:")
                .replace(',', "\\,")
        };
        let mut opts = format!(
            "lowerdir={}",
            lowers.iter().map(|l| esc(l)).collect::<Vec<_>>().join(":")
        );
        if let Some((upper, work)) = upper_work {
            opts.push_str(&format!(",upperdir={},workdir={}", esc(upper), esc(work)));
        }
        let stderr = match log.and_then(|l| std::fs::File::create(l).ok()) {
            Some(f) => Stdio::from(f),
            None => Stdio::null(),
        };
        let mut cmd = Command::new(&program);
        cmd.arg("-f")
            .arg("-o")
            .arg(opts)
            .arg(target)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        // SAFETY: the closure runs in the forked child before exec and only
        // makes async-signal-safe calls (prctl, sigaction, sigprocmask,
        // close_range), touching no memory shared with the parent.
        unsafe {
            cmd.pre_exec(|| {
                // Die with the thread that started us, as the container does.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
                // An ignored SIGTERM or SIGINT survives exec, and libfuse
                // installs its exit handlers only over the default action
                // (lib/fuse_signals.c): restore it.
                for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGPIPE] {
                    libc::signal(s, libc::SIG_DFL);
                }
                let mut none: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut none);
                libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
                // Nothing of the caller's (a container's stdio, channels)
                // past exec; close-on-exec rather than closed, so the
                // pipe that reports a failed exec to the parent still
                // works.
                libc::syscall(
                    libc::SYS_close_range,
                    3u32,
                    u32::MAX,
                    libc::CLOSE_RANGE_CLOEXEC,
                );
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| FuseOverlayError::Spawn(program.clone(), e))?;
        let mut d = Daemon {
            child: Some(child),
            target: target.to_path_buf(),
        };
        let start = Instant::now();
        let mut pause = Duration::from_micros(200);
        loop {
            if let Some(child) = d.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    d.child = None;
                    let said = log
                        .and_then(|l| std::fs::read_to_string(l).ok())
                        .map(|s| s.trim().lines().last().unwrap_or_default().to_string())
                        .unwrap_or_default();
                    return Err(FuseOverlayError::Exited(status.to_string(), said));
                }
            }
            if std::fs::metadata(target).is_ok_and(|m| m.dev() != before) {
                return Ok(d);
            }
            if start.elapsed() > MOUNT_TIMEOUT {
                return Err(FuseOverlayError::Timeout(
                    target.to_path_buf(),
                    MOUNT_TIMEOUT,
                ));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }

    /// The daemon's pid.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Write what the kernel still caches for the mount through to the
    /// daemon (syncfs(2) on `seen_at`, where the caller sees the mount: `/`
    /// once it pivoted into it), then kill and reap it.
    pub fn stop(mut self, seen_at: &Path) {
        self.finish(Some(seen_at));
    }

    fn finish(&mut self, seen_at: Option<&Path>) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let at = seen_at.unwrap_or(&self.target);
        if let Ok(f) = std::fs::File::open(at) {
            // SAFETY: syncfs takes a descriptor we own for the call.
            unsafe { libc::syncfs(f.as_raw_fd()) };
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.finish(None);
    }
}
