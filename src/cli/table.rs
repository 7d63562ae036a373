//! Column-aligned tables like Docker's tabwriter output: a column is as
//! wide as its widest cell plus 3 spaces, and at least 10 (Docker's
//! formatter: minwidth 10, padding 3), so `IMAGE     COMMAND` as Docker.

use crate::util::printable::escape_controls;

/// Docker's formatter tabwriter: minimum cell width, padding.
const MIN_WIDTH: usize = 10;
const PADDING: usize = 3;

fn cell(c: &str, width: usize) -> String {
    format!("{c:<w$}", w = (width + PADDING).max(MIN_WIDTH))
}

/// Print `rows` under `headers`. Cells are escaped first (see
/// `util::printable`): they hold image and container text.
pub fn print(headers: &[&str], rows: &[Vec<String>]) {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| escape_controls(c).into_owned()).collect())
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&cell(c, widths[i]));
            }
        }
        println!("{}", s.trim_end());
    };
    line(headers.to_vec());
    for r in &rows {
        line(r.iter().map(String::as_str).collect());
    }
}

/// Align tab-separated cells the way `print` aligns its columns (a
/// `table` format's rendered lines); lines keep their own cell counts.
pub fn align(text: &str) -> String {
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    let mut widths: Vec<usize> = Vec::new();
    for cells in &lines {
        // The last cell of a line is not a column: it is never padded.
        for (i, c) in cells.iter().enumerate().take(cells.len().saturating_sub(1)) {
            if widths.len() <= i {
                widths.push(0);
            }
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for cells in &lines {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&cell(c, widths[i]));
            }
        }
        out.push_str(s.trim_end());
        out.push('\n');
    }
    out
}
