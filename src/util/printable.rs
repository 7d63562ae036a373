//! Text from images and containers made safe to print on a terminal: an
//! image's CMD, build history, labels and file names are the image
//! author's, and an escape sequence among them (`ESC ]0;…BEL` retitles the
//! window, `ESC [2J` clears it, OSC 52 writes the clipboard, and some
//! terminals answer queries as typed input) would act on the user's
//! terminal when `ps`, `history` or `diff` prints it.
//!
//! Control characters (C0, DEL and C1: Unicode's `Cc`) are written the way
//! Go's `strconv.Quote` writes them (`\n`, `\t`, `\x1b`, `\u009b`), which
//! is how Docker's CLI shows the command column. Everything else is kept.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `s` with each control character replaced by its Go escape; other text,
/// backslashes included, unchanged (so ordinary names print as before).
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_char(&mut out, c);
    }
    Cow::Owned(out)
}

/// A line of burrow's own log that quotes image text (build steps):
/// like [`escape_controls`], but a tab, harmless to a terminal and common
/// in Dockerfiles, is kept.
pub fn escape_line(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() && c != '\t') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\t' => out.push(c),
            c => push_char(&mut out, c),
        }
    }
    Cow::Owned(out)
}

/// `s` as Go's `strconv.Quote` writes it (for printable text): in double
/// quotes, with `"` and `\` backslashed and control characters escaped.
/// Docker's `ps` prints the COMMAND column this way.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => push_char(&mut out, c),
        }
    }
    out.push('"');
    out
}

/// Serialized JSON with DEL and C1 characters written as `\u00XX`:
/// serde_json (like Go's encoder) escapes only C0, and the others can only
/// occur inside strings, where the escape means the same character.
pub fn json_text(json: &str) -> Cow<'_, str> {
    if !json.chars().any(char::is_control) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 8);
    for c in json.chars() {
        // Newlines and indentation of pretty-printed JSON are its own.
        if c.is_control() && !matches!(c, '\n' | '\t' | '\r') {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// One character, escaped if it is a control character.
fn push_char(out: &mut String, c: char) {
    match c {
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        c if u32::from(c) < 0x20 || c == '\x7f' => {
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        }
        c if c.is_control() => {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        }
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_as_go_does() {
        let evil = "a\x1b]0;pwned\x07b\x1b[2J\u{9b}31m\x7f\0\t\n\r\x0b\x0c\x08";
        assert_eq!(
            escape_controls(evil),
            r"a\x1b]0;pwned\ab\x1b[2J\u009b31m\x7f\x00\t\n\r\v\f\b"
        );
        let out = escape_controls(evil);
        assert!(!out.chars().any(char::is_control));
    }

    #[test]
    fn a_log_line_keeps_its_tabs() {
        assert!(matches!(escape_line("RUN a\tb"), Cow::Borrowed(_)));
        assert_eq!(escape_line("RUN\ta\x1b[2J\n"), "RUN\ta\\x1b[2J\\n");
    }

    #[test]
    fn ordinary_text_is_unchanged_and_not_copied() {
        for s in ["sh -c 'echo hi'", r"C:\path", "héllo → ✓", "\"quoted\"", ""] {
            assert!(matches!(escape_controls(s), Cow::Borrowed(x) if x == s));
        }
    }

    #[test]
    fn go_quote_matches_strconv_quote() {
        // Outputs of Go's strconv.Quote for the same strings.
        assert_eq!(go_quote("sh"), r#""sh""#);
        assert_eq!(go_quote(r#"sh -c "echo \x""#), r#""sh -c \"echo \\x\"""#);
        assert_eq!(go_quote("\x1b]0;pwned\x07"), r#""\x1b]0;pwned\a""#);
        assert_eq!(go_quote("a\u{85}b"), r#""a\u0085b""#);
        assert_eq!(go_quote("é…"), "\"é…\"");
    }

    #[test]
    fn json_text_escapes_what_serde_leaves() {
        let v = serde_json::json!({"k\u{1b}": "x\u{1b}[2J\u{7f}\u{9b}"});
        let s = serde_json::to_string_pretty(&v).unwrap();
        let safe = json_text(&s);
        assert!(!safe
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r')));
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, v, "the escapes mean the same characters");
    }
}
