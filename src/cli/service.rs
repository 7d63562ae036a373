//! `burrow system service`: the Docker Engine API on a socket, for the
//! docker CLI, Compose, docker-py and Testcontainers.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{Ctx, Exit};
use crate::api::server::{self, Listen, Listener};
use crate::exit;

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  burrow system service\n  burrow system service --time 0 unix:///tmp/burrow.sock\n  export DOCKER_HOST=unix://$XDG_RUNTIME_DIR/burrow/burrow.sock; docker run --rm alpine echo hi"
)]
pub struct ServiceArgs {
    /// Exit after this many seconds with no client connected (0: never)
    #[arg(
        short = 't',
        long = "time",
        value_name = "SECONDS",
        default_value_t = 5
    )]
    pub time: u64,
    /// Where to listen: unix:///PATH, or tcp://127.0.0.1:PORT (loopback
    /// only) [default: unix://$XDG_RUNTIME_DIR/burrow/burrow.sock]
    pub uri: Option<String>,
}

pub fn run(root: Option<PathBuf>, a: ServiceArgs) -> anyhow::Result<i32> {
    let bad = |e: server::ServiceError| Exit::new(exit::BURROW, e.to_string());
    let ctx = Ctx::open(root)?;
    let listener = match (crate::linux::systemd::activated_socket(), &a.uri) {
        (Some(fd), _) => Listener::activated(fd),
        (None, uri) => {
            let listen = match uri {
                Some(u) => Listen::parse(u).map_err(bad)?,
                None => Listen::Unix(crate::engine::system::api_socket(&ctx)),
            };
            if let Listen::Tcp(addr) = &listen {
                eprintln!(
                    "burrow: serving on tcp://{addr}: anyone on this host who can connect to it controls your containers"
                );
            }
            let l = Listener::bind(&listen).map_err(bad)?;
            tracing::info!("listening on {}", listen.uri());
            l
        }
    };
    let idle = (a.time > 0).then(|| Duration::from_secs(a.time));
    server::serve(&ctx, &listener, idle, crate::api::handle_connection).map_err(bad)?;
    Ok(0)
}
