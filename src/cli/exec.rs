//! `burrow exec`: run a command in a running container.

use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::path::PathBuf;

use clap::Args;

use super::{Ctx, Exit};
use crate::container::{self, ContainerError, ExecOptions};
use crate::exit;

#[derive(Debug, Args)]
#[command(
    after_help = "The command runs in the container's user, mount, uts, ipc and pid namespaces, \
with the container's Env, User and WorkingDir unless overridden. Its exit code is burrow's; \
SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to burrow are relayed to it.\n\n\
-t gives the command a pty from the container's own /dev/pts (so `tty` names it), relayed \
to the caller's terminal in raw mode, window size included. Without a terminal on stdin, -t \
is ignored.\n\n\
Examples:\n  burrow exec box cat /etc/hostname\n  burrow exec -e X=1 -w /tmp box sh -c 'echo $X; pwd'\n  \
burrow exec -it box sh\n  burrow exec -d box sh -c 'sleep 10; touch /done'"
)]
pub struct ExecArgs {
    /// Keep STDIN open
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal (from the container's own /dev/pts)
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Detached: run the command in the background, print nothing
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[command(flatten)]
    pub env: super::run::EnvArgs,
    /// Working directory inside the container [default: the container's]
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// User inside the container: name|uid[:group|gid] [default: the container's]
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Container (name or id)
    pub container: String,
    /// Command and arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub cmd: Vec<String>,
}

pub fn run(root: Option<PathBuf>, a: ExecArgs) -> anyhow::Result<i32> {
    // Every flag is checked before anything is forked.
    let overrides = a.env.collect()?;
    crate::engine::create::check_workdir(a.workdir.as_deref())?;
    if a.user.as_deref() == Some("") {
        return Err(Exit::new(exit::BURROW, "the user given with -u is empty").into());
    }
    let tty = a.tty && !a.detach && std::io::stdin().is_terminal();
    if a.tty && !a.detach && !tty {
        eprintln!("burrow: note: -t ignored: stdin is not a terminal");
    }
    let ctx = Ctx::open(root)?;

    let rec = crate::engine::containers::exec_target(&ctx, &a.container).map_err(|e| match e {
        crate::engine::Error::Container(c) => anyhow::Error::from(c),
        // `exec` has said a missing container with 125 from the start.
        crate::engine::Error::NotFound(m) => Exit::new(exit::BURROW, m.to_string()).into(),
        e => e.into(),
    })?;
    let opts = ExecOptions {
        argv: a.cmd,
        env: overrides,
        workdir: a.workdir,
        user: a.user,
        interactive: a.interactive,
        tty,
        detach: a.detach,
        single_id: !ctx.mapping.is_range(),
        output: None,
    };
    let execd = match container::exec(&ctx.store, &rec, opts) {
        Ok(e) => e,
        Err(ContainerError::Start(e)) => {
            return Err(Exit::new(e.code(), format!("container {}: {e}", rec.name)).into())
        }
        Err(e) => return Err(e.into()),
    };
    if a.detach {
        return Ok(0);
    }
    // The joiner relays our terminal to the command's pty: put ours in raw
    // mode (Ctrl-C becomes a byte the pty turns into SIGINT) and restore it
    // on every way out.
    let saved = tty
        .then(|| crate::linux::tty::make_raw(std::io::stdin().as_fd()).ok())
        .flatten();
    let code = execd.wait_relaying_signals();
    if let Some(t) = saved {
        crate::linux::tty::restore(std::io::stdin().as_fd(), &t);
    }
    Ok(code)
}
