//! `burrow commit` / `burrow container commit`: a container's changes as a new image.

use std::path::PathBuf;

use clap::{ArgAction, Args};

use super::Ctx;
use crate::engine::changes::{self, CommitRequest};
use crate::util::printable::escape_controls;

#[derive(Debug, Args)]
#[command(
    after_help = "A running container is paused while its changes are archived (--pause=false to keep it running; files it writes meanwhile may then be caught half way).\n\nExamples:\n  burrow commit web mysite:v2\n  burrow commit -m 'add config' -a 'Jane <jane@example.com>' web\n  burrow commit -c 'CMD [\"nginx\", \"-g\", \"daemon off;\"]' -c 'EXPOSE 80' web mysite"
)]
pub struct CommitArgs {
    /// Apply a Dockerfile instruction (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, STOPSIGNAL, VOLUME)
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
    /// Commit message, kept in the image history
    #[arg(short, long)]
    pub message: Option<String>,
    /// Author (e.g. "Jane Doe <jane@example.com>")
    #[arg(short, long)]
    pub author: Option<String>,
    /// Pause the container while committing
    #[arg(
        short,
        long,
        value_name = "BOOL",
        default_value_t = true,
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub pause: bool,
    /// Container (name or id)
    pub container: String,
    /// Name for the image: [registry/][project/]repo[:tag]
    pub reference: Option<String>,
}

pub fn run(root: Option<PathBuf>, a: CommitArgs) -> anyhow::Result<i32> {
    // A bad name is refused before the store is opened.
    super::optional_reference(a.reference.as_deref())?;
    let ctx = Ctx::open(root)?;
    let req = CommitRequest {
        changes: a.changes,
        comment: a.message.unwrap_or_default(),
        author: a.author.unwrap_or_default(),
        reference: a.reference,
        pause: a.pause,
    };
    let done = changes::commit(&ctx, &a.container, req)?;
    for n in &done.notes {
        eprintln!("note: {}", escape_controls(n));
    }
    println!("{}", done.id);
    Ok(0)
}
