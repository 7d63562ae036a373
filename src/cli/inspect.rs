//! `burrow inspect`, `image inspect`, `container inspect`: JSON arrays with
//! Docker's field names.

use std::path::PathBuf;

use clap::Args;

use crate::engine::{catalog, containers};

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  burrow image inspect busybox\n  burrow container inspect web\n  burrow inspect web busybox\n  burrow inspect -f '{{.State.ExitCode}}' web\n  burrow inspect --format '{{json .Config.Env}}' web"
)]
pub struct InspectArgs {
    /// A Go template applied to each object ('{{.State.Status}}'), or json
    #[arg(short, long)]
    pub format: Option<String>,
    /// Only look for this kind of object
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub kind: Option<TypeArg>,
    /// Names or ids
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TypeArg {
    Container,
    Image,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Any,
    Image,
    Container,
}

pub fn run(root: Option<PathBuf>, a: InspectArgs, kind: Kind) -> anyhow::Result<i32> {
    let kind = match (kind, a.kind) {
        (Kind::Any, Some(TypeArg::Container)) => Kind::Container,
        (Kind::Any, Some(TypeArg::Image)) => Kind::Image,
        (k, _) => k,
    };
    let what = match kind {
        Kind::Image => "image",
        Kind::Container => "container",
        Kind::Any => "object",
    };
    super::inspect_each(root, &a.names, a.format.as_deref(), |engine, name| {
        let as_container = || containers::inspect(engine, name).ok();
        let as_image = || catalog::inspect(engine, name).ok();
        let found = match kind {
            Kind::Container => as_container(),
            Kind::Image => as_image(),
            Kind::Any => as_container().or_else(as_image),
        };
        found.ok_or_else(|| crate::engine::Error::not_found(format!("No such {what}: {name}")))
    })
}
