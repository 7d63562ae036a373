//! `exec`: a process in a running container made from a bundle.

use std::os::fd::AsRawFd;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use super::bundle::{self, Config, ProcessPlan};
use super::create::{to_process, write_pid_file};
use super::state::{Dir, Status};
use super::{ExecArgs, Log};
use crate::sandbox::seccomp::Seccomp;
use crate::sandbox::{self, Stdio};

/// `exec`: a process in the running container, through the same joiner
/// and `enter_and_exec` as `burrow exec`.
pub(super) fn exec(root: &Path, log: &Log, a: &ExecArgs) -> Result<i32> {
    let dir = Dir::new(root, &a.id)?;
    let s = dir.load()?;
    if dir.status(&s) == Status::Stopped {
        bail!("cannot exec in a stopped container");
    }
    let cfg = Config::read(&s.bundle).ok();
    let mut pp: ProcessPlan = match &a.process {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let p: oci_spec::runtime::Process = serde_json::from_slice(&bytes)
                .with_context(|| format!("parsing {}", path.display()))?;
            bundle::process_plan(&p)?
        }
        None => {
            let base = cfg
                .as_ref()
                .and_then(|c| c.spec.process().as_ref())
                .ok_or_else(|| anyhow!("no process in the bundle, and no --process"))?;
            let mut p = bundle::process_plan(base)?;
            if a.command.is_empty() {
                bail!("exec needs a command, or --process");
            }
            p.argv = a.command.clone();
            p.terminal = a.tty;
            p
        }
    };
    if let Some(c) = &a.cwd {
        pp.cwd = c.clone();
    }
    for kv in &a.env {
        let key = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
        pp.env
            .retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
        pp.env.push(kv.clone());
    }
    for c in &a.cap {
        let n = crate::linux::caps::number(c).ok_or_else(|| anyhow!("unknown capability {c}"))?;
        // Bounding, effective and permitted, as runc and crun add it.
        let b = crate::linux::caps::bit(n);
        pp.caps.bounding |= b;
        pp.caps.effective |= b;
        pp.caps.permitted |= b;
    }
    if let Some(u) = &a.user {
        let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
        pp.uid = uid.parse().with_context(|| format!("--user {u}"))?;
        pp.gid = gid.parse().with_context(|| format!("--user {u}"))?;
    }
    pp.no_new_privs |= a.no_new_privs;
    if a.preserve_fds > 0 {
        log.debug("--preserve-fds: only stdio reaches the process");
    }
    let console = match (pp.terminal || a.tty, &a.console_socket) {
        (true, Some(path)) => Some(
            std::os::unix::net::UnixStream::connect(path)
                .with_context(|| format!("connecting to console socket {}", path.display()))?,
        ),
        _ => None,
    };
    let stdio = match (&console, pp.terminal || a.tty) {
        (Some(c), _) => Stdio::ConsoleSocket(c.as_raw_fd()),
        (None, true) => Stdio::Pty,
        (None, false) => Stdio::Inherit,
    };
    let profile = match &cfg {
        Some(c) => c.seccomp_profile()?,
        None => None,
    };
    let seccomp = Seccomp::build(profile.as_ref(), pp.caps.bounding);
    let spec = sandbox::exec::ExecSpec {
        pid1: s.pid,
        pid1_start: s.start_time,
        process: to_process(&pp, seccomp, stdio, a.detach),
        cgroup: None,
        relay_signals: true,
    };
    let execd = sandbox::exec::exec(&spec).map_err(|e| anyhow!("{e}"))?;
    drop(console);
    if let Some(p) = &a.pid_file {
        write_pid_file(p, execd.pid.as_raw())?;
    }
    if a.detach {
        return Ok(0);
    }
    Ok(execd.wait_relaying_signals())
}
