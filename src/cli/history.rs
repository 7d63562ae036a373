//! `burrow history` / `burrow image history`: IMAGE CREATED CREATED BY SIZE COMMENT.

use std::path::PathBuf;

use clap::Args;

use super::{table, Ctx};
use crate::engine::catalog;
use crate::image::history;
use crate::store::short_hex;
use crate::util::human;
use crate::util::printable::json_text;

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  burrow image history busybox\n  burrow history --no-trunc mysite:v2\n  burrow image history --format json mysite"
)]
pub struct HistoryArgs {
    /// Do not truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Output format: table or json (one object per line)
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Image (name or id)
    pub image: String,
}

/// Docker's CREATED BY column width.
const CREATED_BY_WIDTH: usize = 45;

pub fn run(root: Option<PathBuf>, a: HistoryArgs) -> anyhow::Result<i32> {
    super::check_format(&a.format, &["table", "json"])?;
    let ctx = Ctx::open(root)?;
    let rows = catalog::history(&ctx, &a.image)?;
    let id = |r: &history::HistoryRow| match &r.id {
        None => "<missing>".to_string(),
        Some(id) if a.no_trunc => id.clone(),
        Some(id) => short_hex(id).to_string(),
    };
    if a.quiet {
        for r in &rows {
            println!("{}", id(r));
        }
        return Ok(0);
    }
    if a.format == "json" {
        for r in &rows {
            let line = serde_json::json!({
                    "ID": id(r),
                    "CreatedAt": r.created,
                    "CreatedSince": human::ago(&r.created),
                    "CreatedBy": r.created_by,
                    "Size": human::size(r.size),
                    "Comment": r.comment,
            })
            .to_string();
            println!("{}", json_text(&line));
        }
        return Ok(0);
    }
    let table_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                id(r),
                human::ago(&r.created),
                if a.no_trunc {
                    r.created_by.clone()
                } else {
                    truncate(&r.created_by, CREATED_BY_WIDTH)
                },
                human::size(r.size),
                r.comment.clone(),
            ]
        })
        .collect();
    table::print(
        &["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
        &table_rows,
    );
    Ok(0)
}

/// At most `width` characters, the last one `…` when cut (as Docker does).
fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut out: String = s.chars().take(width - 1).collect();
    out.push('…');
    out
}
