//! `exec` for a container record: the process to run, built from the
//! record and the user's overrides the way `run` builds PID 1's, handed to
//! the sandbox to join the running container.

use super::{container_env, ContainerError, ContainerRecord, Result};
use crate::image::config::set_env;
use crate::sandbox::exec::{self as sandbox_exec, ExecError, ExecSpec, Execd};
use crate::sandbox::{Process, Stdio};
use crate::store::Store;

/// What the user asked `exec` for.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub argv: Vec<String>,
    /// `KEY=VALUE` overrides, applied over the container's environment.
    pub env: Vec<String>,
    /// `-w` [default: the container's WorkingDir].
    pub workdir: Option<String>,
    /// `-u` [default: the container's User].
    pub user: Option<String>,
    /// `-i`: keep stdin.
    pub interactive: bool,
    /// `-t` with a terminal on stdin: a pty from the container's devpts.
    pub tty: bool,
    /// `-d`: in the background, nobody waits.
    pub detach: bool,
    /// The container maps one id only (no subordinate range).
    pub single_id: bool,
    /// Stdout and stderr both to this descriptor, stdin from /dev/null
    /// (a health probe's captured output).
    pub output: Option<std::os::fd::RawFd>,
}

/// Start `opts.argv` in the running container `rec`. Returns once it has
/// been exec'd; a container that is gone is `NotRunning`.
pub fn exec(store: &Store, rec: &ContainerRecord, opts: ExecOptions) -> Result<Execd> {
    let spec = exec_spec(store, rec, opts)?;
    run(rec, &spec)
}

/// Start a process `exec_spec` prepared.
pub fn run(rec: &ContainerRecord, spec: &ExecSpec) -> Result<Execd> {
    sandbox_exec::exec(spec).map_err(|e| exec_error(rec, e))
}

/// The error of an exec in `rec` that could not start.
pub fn exec_error(rec: &ContainerRecord, e: ExecError) -> ContainerError {
    match e {
        ExecError::NotRunning => ContainerError::NotRunning(rec.name.clone()),
        ExecError::Failed(e) => ContainerError::Start(e),
    }
}

/// What `exec` runs, built once: a caller that execs the same command
/// again and again (a health check) keeps it.
pub fn exec_spec(store: &Store, rec: &ContainerRecord, opts: ExecOptions) -> Result<ExecSpec> {
    let not_running = || ContainerError::NotRunning(rec.name.clone());
    let pid1_start = rec.pid1_start(store).ok_or_else(not_running)?;
    let mut env = container_env(rec, opts.tty);
    for kv in &opts.env {
        set_env(&mut env, kv);
    }
    let stdio = if let Some(fd) = opts.output {
        Stdio::Pipes([0, fd, fd])
    } else if opts.detach {
        Stdio::Detached
    } else if opts.tty {
        Stdio::Pty
    } else {
        Stdio::Inherit
    };
    Ok(ExecSpec {
        pid1: rec.state.pid,
        pid1_start,
        process: Process {
            argv: opts.argv,
            env,
            cwd: opts
                .workdir
                .unwrap_or_else(|| rec.config.working_dir.clone()),
            user: opts.user.unwrap_or_else(|| rec.config.user.clone()),
            caps: rec.caps(),
            seccomp: rec.seccomp(opts.single_id),
            fake_ids: rec.fakes_ids(opts.single_id),
            stdin: opts.interactive || opts.tty,
            stdio,
            init: false,
            init_program: None,
            no_new_privs: rec.no_new_privs(),
            groups: None,
            outlives_parent: false,
            cap_sets: None,
        },
        cgroup: rec.cgroup.clone().filter(|d| d.exists()),
        relay_signals: opts.output.is_none(),
    })
}
