//! Column-aligned tables like Docker's tabwriter output: a column is as
//! wide as its widest cell plus 3 spaces, and at least 10 (Docker's
//! formatter: minwidth 10, padding 3), so `IMAGE     COMMAND` as Docker.

use crate::util::printable::escape_controls;

/// Docker's formatter tabwriter: minimum cell width, padding.
const MIN_WIDTH: usize = 10;
const PADDING: usize = 3;

/// One line of cells, each padded to its column's width but the last,
/// which is not a column; trailing blanks trimmed.
fn line(cells: &[impl AsRef<str>], widths: &[usize]) -> String {
    let mut s = String::new();
    for (i, c) in cells.iter().enumerate() {
        let c = c.as_ref();
        if i + 1 == cells.len() {
            s.push_str(c);
        } else {
            s.push_str(&format!(
                "{c:<w$}",
                w = (widths[i] + PADDING).max(MIN_WIDTH)
            ));
        }
    }
    s.trim_end().to_string()
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
    println!("{}", line(headers, &widths));
    for r in &rows {
        println!("{}", line(r, &widths));
    }
}

/// Print `items` (JSON objects of string fields) under `headers`, a
/// column for each field in `keys`; a missing field is an empty cell.
pub fn print_fields(headers: &[&str], keys: &[&str], items: &[serde_json::Value]) {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|v| {
            keys.iter()
                .map(|k| v[k].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .collect();
    print(headers, &rows);
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
        out.push_str(&line(cells, &widths));
        out.push('\n');
    }
    out
}
