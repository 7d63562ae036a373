//! `burrow port`: a container's published ports, as Docker lists them.

use std::path::PathBuf;

use clap::Args;

use super::{Ctx, Exit};
use crate::container;
use crate::exit;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  burrow port web\n  burrow port web 3000/tcp")]
pub struct PortArgs {
    /// Container name or id
    pub container: String,
    /// Only this container port: PORT[/tcp|/udp]
    pub private_port: Option<String>,
}

pub fn run(root: Option<PathBuf>, a: PortArgs) -> anyhow::Result<i32> {
    let ctx = Ctx::open(root)?;
    let rec = container::find(&ctx.store, &a.container)?;
    let want = a.private_port.as_deref().map(|p| {
        if p.contains('/') {
            p.to_string()
        } else {
            format!("{p}/tcp")
        }
    });
    let lines = crate::network::port_lines(&rec.network_settings.ports, want.as_deref());
    if lines.is_empty() {
        if let Some(w) = want {
            return Err(Exit::new(
                exit::BURROW,
                format!("No public port '{w}' published for {}", rec.name),
            )
            .into());
        }
    }
    for l in lines {
        println!("{l}");
    }
    Ok(0)
}
