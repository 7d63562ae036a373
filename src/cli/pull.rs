//! `burrow pull`, the registry flags `run`/`create` share with it, and how
//! the CLI shows the progress of pulls, pushes and builds.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Ctx, Exit};
use crate::build::BuildEvent;
use crate::engine::images::{self, PullRequest};
use crate::engine::Event;
use crate::exit;
use crate::image::progress::PullEvent;
use crate::image::pull::PullOptions;
use crate::image::reference::Reference;
use crate::image::registry::ClientOptions;

/// How to reach registries, for every verb that talks to one.
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// Require HTTPS with a verified certificate (false also allows plain HTTP);
    /// loopback registries may always use plain HTTP
    #[arg(long = "tls-verify", value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub tls_verify: bool,
}

impl RegistryArgs {
    pub fn client(&self) -> ClientOptions {
        ClientOptions {
            insecure: !self.tls_verify,
            credential: None,
        }
    }
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  burrow pull alpine\n  burrow pull --platform linux/arm64 debian:12\n  burrow pull localhost:5000/team/app:1.0\n  burrow pull alpine@sha256:<digest>"
)]
pub struct PullArgs {
    /// Print only the image's name when done
    #[arg(short, long)]
    pub quiet: bool,
    /// Platform to pull from a multi-platform image: os/arch[/variant]
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Image: [registry/][project/]repo[:tag|@digest]
    pub image: String,
}

pub fn run(root: Option<PathBuf>, a: PullArgs) -> anyhow::Result<i32> {
    let reference =
        Reference::parse(&a.image).map_err(|e| Exit::new(exit::BURROW, e.to_string()))?;
    // A bad platform is refused before the store is opened.
    images::platform(a.platform.as_deref())?;
    let ctx = Ctx::open(root)?;
    let req = PullRequest {
        reference: reference.clone(),
        platform: a.platform.clone(),
        registry: a.registry.client(),
        progress: PullOptions::progress_for(a.quiet, false),
    };
    let mut sink = ctx.stderr();
    sink.render = Render::new(Out::Stdout);
    images::pull(&ctx, &req, &mut sink)?;
    drop(sink);
    println!("{reference}");
    Ok(0)
}

/// Where the CLI shows progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Out {
    Stdout,
    Stderr,
}

/// How the CLI shows the progress of pulls, pushes and builds: Docker's
/// plain lines, or on a terminal one bar per layer being pulled. A build's
/// own lines go to stdout and its notes to stderr, wherever `out` is.
pub struct Render {
    out: Out,
    /// Nothing of pushes (`push -q`).
    pub quiet: bool,
    /// Bars for a pull's layers; set up at the first layer on a terminal.
    bars: Option<Bars>,
}

struct Bars {
    multi: MultiProgress,
    style: ProgressStyle,
    layers: Vec<(String, ProgressBar)>,
}

impl Render {
    pub fn new(out: Out) -> Self {
        Render {
            out,
            quiet: false,
            bars: None,
        }
    }

    fn terminal(&self) -> bool {
        match self.out {
            Out::Stdout => std::io::stdout().is_terminal(),
            Out::Stderr => std::io::stderr().is_terminal(),
        }
    }

    fn line(&mut self, line: &str) {
        self.clear_bars();
        let _ = match self.out {
            Out::Stdout => writeln!(std::io::stdout(), "{line}"),
            Out::Stderr => writeln!(std::io::stderr(), "{line}"),
        };
    }

    fn clear_bars(&mut self) {
        if let Some(bars) = self.bars.take() {
            let _ = bars.multi.clear();
        }
    }

    /// Show a pull, push or build event; false for any other.
    pub fn event(&mut self, event: &Event) -> bool {
        match event {
            Event::Pull(e) => self.pull(e),
            Event::Push(e) => {
                if let Some(line) = e.line().filter(|_| !self.quiet) {
                    self.line(&line);
                }
            }
            Event::Build(BuildEvent::Step(line)) => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{}", crate::util::printable::escape_line(line));
                let _ = out.flush();
            }
            Event::Build(BuildEvent::Note(line)) => eprintln!("{line}"),
            Event::Build(BuildEvent::Output(text)) => {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(text.as_bytes());
                let _ = out.flush();
            }
            // The command prints the id it gets back.
            Event::Build(BuildEvent::Built(_)) => {}
            _ => return false,
        }
        true
    }

    fn pull(&mut self, e: &PullEvent) {
        let bar = |bars: &Option<Bars>, id: &str| {
            bars.as_ref()
                .and_then(|b| b.layers.iter().find(|(i, _)| i == id))
                .map(|(_, b)| b.clone())
        };
        match e {
            PullEvent::PullingFsLayer { id, size } if self.bars.is_some() || self.terminal() => {
                let out = self.out;
                let bars = self.bars.get_or_insert_with(|| Bars {
                    multi: MultiProgress::with_draw_target(match out {
                        Out::Stderr => ProgressDrawTarget::stderr(),
                        Out::Stdout => ProgressDrawTarget::stdout(),
                    }),
                    style: ProgressStyle::with_template(
                        "{prefix}: {msg:12} {bar:30} {bytes}/{total_bytes}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    layers: Vec::new(),
                });
                // No steady tick: it would start a thread of its own.
                let b = bars.multi.add(ProgressBar::new(*size));
                b.set_style(bars.style.clone());
                b.set_prefix(id.clone());
                b.set_message("Waiting");
                bars.layers.push((id.clone(), b));
            }
            PullEvent::Downloading { id, current, total } => {
                if let Some(b) = bar(&self.bars, id) {
                    b.set_message("Downloading");
                    b.set_length(*total);
                    b.set_position(*current);
                }
            }
            PullEvent::PullComplete { id } if self.bars.is_some() => {
                if let Some(b) = bar(&self.bars, id) {
                    b.set_message("Pull complete");
                    b.finish();
                }
            }
            e => {
                if let Some(line) = e.line() {
                    self.line(&line);
                }
            }
        }
    }
}

impl Drop for Render {
    fn drop(&mut self) {
        self.clear_bars();
    }
}

/// `--pull` of `run` and `create`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PullPolicy {
    /// Pull when the image is not in the store
    Missing,
    /// Pull every time
    Always,
    /// Never pull: fail when the image is not in the store
    Never,
}

impl From<PullPolicy> for crate::engine::images::PullPolicy {
    fn from(p: PullPolicy) -> Self {
        use crate::engine::images::PullPolicy as P;
        match p {
            PullPolicy::Missing => P::Missing,
            PullPolicy::Always => P::Always,
            PullPolicy::Never => P::Never,
        }
    }
}
