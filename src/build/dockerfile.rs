//! The Dockerfile parser: parser directives (`# escape=`, `# syntax=`),
//! comments, line continuations, instructions with their flags and their
//! exec (JSON array) or shell form, and the variable substitution Docker
//! applies to the instructions that take it. Parsing keeps the line each
//! instruction starts on, so every later error can name it.

use std::collections::BTreeMap;

pub use super::error::InstructionError;
use crate::image::config::Healthcheck;
use crate::util::human::go_duration;

/// A parse or substitution error, with the Dockerfile line it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Dockerfile:{line}: {msg}")]
pub struct ParseError {
    pub line: usize,
    pub msg: String,
}

/// The instructions Docker knows.
pub const KEYWORDS: &[&str] = &[
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "MAINTAINER",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
];

/// One instruction as written (continuations joined, flags split off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// The line the instruction starts on (1-based).
    pub line: usize,
    /// Upper case.
    pub keyword: String,
    /// `--name=value` flags before the arguments (COPY, ADD, FROM, RUN, HEALTHCHECK).
    pub flags: Vec<(String, String)>,
    /// The arguments after the flags, continuations joined, trimmed.
    pub args: String,
    /// A heredoc's body (`RUN <<EOF` ... `EOF`), its lines after the
    /// instruction's up to the terminator, with a final newline.
    pub heredoc: Option<Heredoc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The terminator word.
    pub word: String,
    pub body: String,
}

impl Instruction {
    /// `KEYWORD [flags] args`, as shown in `STEP n/m:` lines.
    pub fn text(&self) -> String {
        let mut s = self.keyword.clone();
        for (k, v) in &self.flags {
            s.push_str(&format!(" --{k}={v}"));
        }
        if !self.args.is_empty() {
            s.push(' ');
            s.push_str(&self.args);
        }
        s
    }

    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The JSON exec form, when the arguments are one.
    pub fn exec_form(&self) -> Option<Vec<String>> {
        exec_form(&self.args)
    }

    fn err(&self, msg: impl Into<String>) -> ParseError {
        ParseError {
            line: self.line,
            msg: msg.into(),
        }
    }
}

/// `["a", "b"]` as a list; anything else (including malformed JSON, which
/// Docker runs as shell form) is None.
pub fn exec_form(args: &str) -> Option<Vec<String>> {
    if !args.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(args).ok()
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub escape: char,
    pub instructions: Vec<Instruction>,
}

/// Flags each instruction accepts; anything else is an error at parse time,
/// so a typo (`--chwon`) does not silently do nothing.
fn allowed_flags(keyword: &str) -> &'static [&'static str] {
    match keyword {
        "FROM" => &["platform"],
        "COPY" => &["from", "chown", "chmod", "link"],
        "ADD" => &["chown", "chmod", "link"],
        "HEALTHCHECK" => &[
            "interval",
            "timeout",
            "start-period",
            "start-interval",
            "retries",
        ],
        _ => &[],
    }
}

/// Parse `text`.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let lines: Vec<&str> = text.lines().collect();
    let (escape, first) = directives(&lines)?;

    let mut instructions = Vec::new();
    let mut i = first;
    while i < lines.len() {
        let trimmed = lines[i].trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            i += 1;
            continue;
        }
        let start = i;
        let joined = join_continued(&lines, &mut i, escape);
        let mut ins = parse_instruction(start + 1, &joined)?;
        read_heredoc(&mut ins, &lines, &mut i)?;
        instructions.push(ins);
    }
    if instructions.is_empty() {
        return Err(ParseError {
            line: lines.len().max(1),
            msg: "the Dockerfile has no instructions".into(),
        });
    }
    if let Some(bad) = instructions
        .iter()
        .find(|i| i.keyword != "ARG")
        .filter(|i| i.keyword != "FROM")
    {
        return Err(bad.err(format!(
            "{} before the first FROM: only ARG may come before FROM",
            bad.keyword
        )));
    }
    Ok(Dockerfile {
        escape,
        instructions,
    })
}

/// Parser directives: `# key=value` lines at the very top, before any
/// other comment, blank line or instruction. The escape character, and the
/// index of the first line after them.
fn directives(lines: &[&str]) -> Result<(char, usize), ParseError> {
    let mut escape = '\\';
    let mut first = 0;
    let mut seen = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let Some(rest) = l.trim().strip_prefix('#') else {
            break;
        };
        let Some((k, v)) = rest.split_once('=') else {
            break;
        };
        let key = k.trim().to_ascii_lowercase();
        if key.is_empty() || key.contains(char::is_whitespace) {
            break;
        }
        if seen.contains(&key) {
            return Err(ParseError {
                line: i + 1,
                msg: format!("only one {key} parser directive can be used"),
            });
        }
        match key.as_str() {
            "escape" => {
                escape = match v.trim() {
                    "\\" => '\\',
                    "`" => '`',
                    other => {
                        return Err(ParseError {
                            line: i + 1,
                            msg: format!("invalid escape token {other:?}: only \\ or ` is valid"),
                        })
                    }
                }
            }
            // A frontend image to parse with: burrow is its own frontend.
            "syntax" | "check" => {}
            // Unknown directives are comments, as in Docker.
            _ => break,
        }
        seen.push(key);
        first = i + 1;
    }
    Ok((escape, first))
}

/// The instruction starting at line `*i` with its continuation lines
/// joined; comment and blank lines inside a continued instruction are
/// dropped, as Docker does. `*i` ends past its last line.
fn join_continued(lines: &[&str], i: &mut usize, escape: char) -> String {
    let mut joined = String::new();
    let mut cur = lines[*i].trim_start().to_string();
    loop {
        let t = cur.trim_end();
        match t.strip_suffix(escape) {
            Some(body) if !ends_escaped(body, escape) => {
                joined.push_str(body);
                *i += 1;
                loop {
                    match lines.get(*i) {
                        None => break,
                        Some(l) if l.trim().is_empty() || l.trim_start().starts_with('#') => {
                            *i += 1
                        }
                        Some(_) => break,
                    }
                }
                match lines.get(*i) {
                    Some(l) => cur = l.to_string(),
                    None => break,
                }
            }
            _ => {
                joined.push_str(t);
                *i += 1;
                break;
            }
        }
    }
    joined
}

/// The heredoc a RUN instruction's arguments open, read from line `*i` up
/// to its terminating word (`*i` ends past it); other instructions may
/// not open one.
fn read_heredoc(ins: &mut Instruction, lines: &[&str], i: &mut usize) -> Result<(), ParseError> {
    let Some((word, strip)) = heredoc_marker(&ins.args) else {
        return Ok(());
    };
    if ins.keyword != "RUN" {
        return Err(ins.err(format!(
            "heredocs are supported in RUN only, not in {}",
            ins.keyword
        )));
    }
    let mut body = String::new();
    loop {
        let Some(l) = lines.get(*i) else {
            return Err(ins.err(format!("the heredoc has no terminating {word:?} line")));
        };
        *i += 1;
        let l = if strip { l.trim_start_matches('\t') } else { l };
        if l == word {
            break;
        }
        body.push_str(l);
        body.push('\n');
    }
    ins.heredoc = Some(Heredoc { word, body });
    Ok(())
}

/// The terminator of the heredoc `s` opens (`<<EOF`, `<<-EOF`, `<<"EOF"`,
/// `<<'EOF'`) and whether its lines lose their leading tabs.
fn heredoc_marker(s: &str) -> Option<(String, bool)> {
    let at = s.find("<<")?;
    let rest = &s[at + 2..];
    let (strip, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.trim_start_matches(['"', '\'']);
    let word: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!word.is_empty() && !word.starts_with(|c: char| c.is_ascii_digit())).then_some((word, strip))
}

/// Whether `args` is nothing but a heredoc marker (`RUN <<EOF`).
pub fn heredoc_only(args: &str) -> bool {
    let t = args.trim();
    heredoc_marker(t).is_some_and(|(w, strip)| {
        let rest = t.trim_start_matches("<<");
        let rest = if strip { &rest[1..] } else { rest };
        rest.trim_matches(['"', '\'']) == w
    })
}

/// Whether `s` ends in an escape character that is itself escaped (`\\` at
/// the end of a line is a literal backslash, not a continuation).
fn ends_escaped(s: &str, escape: char) -> bool {
    s.chars().rev().take_while(|c| *c == escape).count() % 2 == 1
}

fn parse_instruction(line: usize, text: &str) -> Result<Instruction, ParseError> {
    let err = |msg: String| ParseError { line, msg };
    let text = text.trim();
    let (word, mut rest) = match text.split_once(char::is_whitespace) {
        Some((w, r)) => (w, r.trim_start()),
        None => (text, ""),
    };
    let keyword = word.to_ascii_uppercase();
    if !KEYWORDS.contains(&keyword.as_str()) {
        return Err(err(format!("unknown instruction: {word}")));
    }
    let mut flags = Vec::new();
    let allowed = allowed_flags(&keyword);
    while let Some(f) = rest.strip_prefix("--") {
        let (flag, after) = match f.split_once(char::is_whitespace) {
            Some((a, b)) => (a, b.trim_start()),
            None => (f, ""),
        };
        let (name, value) = flag.split_once('=').unwrap_or((flag, "true"));
        if !allowed.contains(&name) {
            return Err(err(format!("{keyword} does not support the flag --{name}")));
        }
        flags.push((name.to_string(), value.to_string()));
        rest = after;
    }
    let args = rest.trim().to_string();
    let needs_args = !matches!(keyword.as_str(), "HEALTHCHECK");
    if needs_args && args.is_empty() {
        return Err(err(format!("{keyword} requires at least one argument")));
    }
    Ok(Instruction {
        line,
        keyword,
        flags,
        args,
        heredoc: None,
    })
}

/// Expand `$VAR`, `${VAR}`, `${VAR:-default}` and `${VAR:+alt}` in `s` from
/// `vars`, as Docker does for FROM, COPY, ADD, ENV, ARG, LABEL, EXPOSE,
/// USER, WORKDIR, VOLUME and STOPSIGNAL. Text in single quotes is left as
/// it is, `escape` before `$` makes it literal, and the quotes stay for the
/// instruction's own word splitting. Unset variables expand to nothing.
pub fn substitute(
    s: &str,
    vars: &BTreeMap<String, String>,
    escape: char,
) -> Result<String, InstructionError> {
    let mut out = String::with_capacity(s.len());
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut single = false;
    let mut double = false;
    while i < chars.len() {
        let c = chars[i];
        if c == escape && !single && i + 1 < chars.len() {
            let n = chars[i + 1];
            if n == '$' {
                out.push('$');
            } else {
                // Other escapes are for the instruction's word splitting.
                out.push(c);
                out.push(n);
            }
            i += 2;
            continue;
        }
        match c {
            '\'' if !double => {
                single = !single;
                out.push(c);
                i += 1;
            }
            '"' if !single => {
                double = !double;
                out.push(c);
                i += 1;
            }
            '$' if !single && i + 1 < chars.len() => {
                if chars[i + 1] == '{' {
                    let close = matching_brace(&chars[i + 2..])
                        .ok_or_else(|| InstructionError::MissingBrace(s.to_string()))?;
                    let inner: String = chars[i + 2..i + 2 + close].iter().collect();
                    out.push_str(&expand_braced(&inner, vars, escape)?);
                    i += close + 3;
                } else {
                    let name: String = chars[i + 1..]
                        .iter()
                        .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                        .collect();
                    if name.is_empty() {
                        out.push('$');
                        i += 1;
                    } else {
                        out.push_str(vars.get(&name).map_or("", String::as_str));
                        i += 1 + name.chars().count();
                    }
                }
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// The index of the `}` that closes a `${` whose inside starts `rest`.
fn matching_brace(rest: &[char]) -> Option<usize> {
    let mut depth = 0;
    for (i, c) in rest.iter().enumerate() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

fn expand_braced(
    inner: &str,
    vars: &BTreeMap<String, String>,
    escape: char,
) -> Result<String, InstructionError> {
    let valid = |n: &str| {
        !n.is_empty()
            && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !n.starts_with(|c: char| c.is_ascii_digit())
    };
    if let Some((name, word)) = inner.split_once(":-") {
        if !valid(name) {
            return Err(InstructionError::BadSubstitution(inner.to_string()));
        }
        return match vars.get(name).filter(|v| !v.is_empty()) {
            Some(v) => Ok(v.clone()),
            None => substitute(word, vars, escape),
        };
    }
    if let Some((name, word)) = inner.split_once(":+") {
        if !valid(name) {
            return Err(InstructionError::BadSubstitution(inner.to_string()));
        }
        return match vars.get(name).filter(|v| !v.is_empty()) {
            Some(_) => substitute(word, vars, escape),
            None => Ok(String::new()),
        };
    }
    if !valid(inner) {
        return Err(InstructionError::BadSubstitution(inner.to_string()));
    }
    Ok(vars.get(inner).cloned().unwrap_or_default())
}

/// Whether Docker substitutes variables in this instruction's arguments.
pub fn substitutes(keyword: &str) -> bool {
    matches!(
        keyword,
        "FROM"
            | "COPY"
            | "ADD"
            | "ENV"
            | "ARG"
            | "LABEL"
            | "EXPOSE"
            | "USER"
            | "WORKDIR"
            | "VOLUME"
            | "STOPSIGNAL"
    )
}

/// Words of ENV, ARG, LABEL and the shell form of COPY/ADD sources: the
/// same splitting `--change` uses, with the Dockerfile's escape character.
pub use crate::image::change::words;

/// `KEY=VALUE ...` pairs (or the legacy `KEY VALUE` of ENV and LABEL).
pub fn key_values(
    args: &str,
    escape: char,
    legacy: bool,
) -> Result<Vec<(String, String)>, InstructionError> {
    let w = words(args, escape)?;
    if w.is_empty() {
        return Err(InstructionError::MissingArguments);
    }
    if legacy && !w[0].contains('=') {
        let (k, v) = args
            .split_once(char::is_whitespace)
            .ok_or(InstructionError::NeedsKeyValue)?;
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    w.into_iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(InstructionError::ExpectedKeyValue(p)),
        })
        .collect()
}

/// `HEALTHCHECK [--interval=D] [--timeout=D] [--start-period=D]
/// [--start-interval=D] [--retries=N] CMD command` or `HEALTHCHECK NONE`,
/// as Docker stores it (see [`Healthcheck`]).
pub fn healthcheck(ins: &Instruction) -> Result<Healthcheck, InstructionError> {
    let (kind, rest) = match ins.args.split_once(char::is_whitespace) {
        Some((k, r)) => (k.to_ascii_uppercase(), r.trim()),
        None => (ins.args.to_ascii_uppercase(), ""),
    };
    match kind.as_str() {
        "NONE" if rest.is_empty() && ins.flags.is_empty() => Ok(Healthcheck {
            test: vec!["NONE".into()],
            ..Default::default()
        }),
        "NONE" => Err(InstructionError::HealthcheckNoneArgs),
        "CMD" => {
            let test = match exec_form(rest) {
                Some(v) if v.is_empty() => Vec::new(),
                Some(v) => [vec!["CMD".to_string()], v].concat(),
                None if rest.is_empty() => Vec::new(),
                None => vec!["CMD-SHELL".to_string(), rest.to_string()],
            };
            if test.is_empty() {
                return Err(InstructionError::HealthcheckNoCommand);
            }
            let duration = |name: &str| -> Result<i64, InstructionError> {
                let Some(v) = ins.flag(name) else {
                    return Ok(0);
                };
                let d = go_duration(v).map_err(|source| InstructionError::Duration {
                    flag: name.to_string(),
                    value: v.to_string(),
                    source,
                })?;
                // Docker's floor: zero means the default, anything else
                // must be at least a millisecond.
                if d != 0 && d < 1_000_000 {
                    return Err(InstructionError::DurationTooShort {
                        flag: name.to_string(),
                        value: v.to_string(),
                    });
                }
                Ok(d)
            };
            let retries = match ins.flag("retries") {
                None => 0,
                Some(v) => match v.parse::<i64>() {
                    Ok(n) if n >= 0 => n,
                    Ok(_) => return Err(InstructionError::NegativeRetries(v.to_string())),
                    Err(_) => return Err(InstructionError::Retries(v.to_string())),
                },
            };
            Ok(Healthcheck {
                test,
                interval: duration("interval")?,
                timeout: duration("timeout")?,
                start_period: duration("start-period")?,
                start_interval: duration("start-interval")?,
                retries,
            })
        }
        "" => Err(InstructionError::HealthcheckKind),
        other => Err(InstructionError::HealthcheckUnknown(other.to_string())),
    }
}

/// `ONBUILD INSTRUCTION`: the trigger, checked as Docker does when it is
/// declared (it runs in a build that uses this image as its FROM).
pub fn onbuild_trigger(ins: &Instruction) -> Result<Instruction, InstructionError> {
    let trigger = parse_instruction(ins.line, &ins.args).map_err(InstructionError::Trigger)?;
    match trigger.keyword.as_str() {
        "ONBUILD" => Err(InstructionError::OnbuildChain),
        "FROM" | "MAINTAINER" => Err(InstructionError::OnbuildNotAllowed(trigger.keyword)),
        _ => Ok(trigger),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `text` as the instruction after a FROM.
    fn one(text: &str) -> Instruction {
        parse(&format!("FROM scratch\n{text}\n"))
            .unwrap()
            .instructions
            .remove(1)
    }

    #[test]
    fn healthcheck_forms_and_flags() {
        let h = healthcheck(&one(
            "HEALTHCHECK --interval=5s --timeout=3s --retries=3 CMD wget -q -O- localhost || exit 1",
        ))
        .unwrap();
        assert_eq!(h.test, ["CMD-SHELL", "wget -q -O- localhost || exit 1"]);
        assert_eq!(
            (h.interval, h.timeout, h.retries),
            (5_000_000_000, 3_000_000_000, 3)
        );
        assert_eq!((h.start_period, h.start_interval), (0, 0));
        let h = healthcheck(&one(
            r#"healthcheck --start-period=1m --start-interval=500ms cmd ["/bin/check", "-v"]"#,
        ))
        .unwrap();
        assert_eq!(h.test, ["CMD", "/bin/check", "-v"]);
        assert_eq!(
            (h.start_period, h.start_interval),
            (60_000_000_000, 500_000_000)
        );
        assert_eq!(
            healthcheck(&one("HEALTHCHECK NONE")).unwrap().test,
            ["NONE"]
        );
        for (bad, says) in [
            ("HEALTHCHECK NONE x", "takes no arguments"),
            ("HEALTHCHECK --interval=1s NONE", "takes no arguments"),
            ("HEALTHCHECK", "needs CMD"),
            ("HEALTHCHECK CMD", "needs a command"),
            ("HEALTHCHECK CMD []", "needs a command"),
            ("HEALTHCHECK RUN true", "unknown type \"RUN\""),
            ("HEALTHCHECK --interval=5 CMD true", "missing unit"),
            ("HEALTHCHECK --timeout=500us CMD true", "less than 1ms"),
            ("HEALTHCHECK --retries=-1 CMD true", "cannot be negative"),
            ("HEALTHCHECK --retries=x CMD true", "whole number"),
        ] {
            let e = healthcheck(&one(bad)).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert!(parse("FROM scratch\nHEALTHCHECK --intervall=5s CMD true").is_err());
    }

    #[test]
    fn onbuild_triggers_are_checked_when_declared() {
        let t = onbuild_trigger(&one("ONBUILD copy --chown=1:1 a /b")).unwrap();
        assert_eq!((t.keyword.as_str(), t.args.as_str()), ("COPY", "a /b"));
        assert_eq!(t.flag("chown"), Some("1:1"));
        for (bad, says) in [
            ("ONBUILD ONBUILD RUN x", "chaining"),
            ("ONBUILD FROM busybox", "FROM isn't allowed"),
            ("ONBUILD MAINTAINER me", "MAINTAINER isn't allowed"),
            ("ONBUILD RUNN x", "unknown instruction"),
            ("ONBUILD COPY --chwon=1 a b", "does not support"),
        ] {
            let e = onbuild_trigger(&one(bad)).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    fn vars(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn continuations_comments_and_forms() {
        let df = parse(
            "# syntax=docker/dockerfile:1\n\
             ARG BASE=busybox\n\
             FROM $BASE AS build\n\
             # a comment\n\
             RUN echo one \\\n\
             # a comment inside\n\
             \n\
                 && echo two\n\
             CMD [\"sh\", \"-c\", \"echo hi\"]\n\
             copy --chown=1:2 a b /dst/\n",
        )
        .unwrap();
        let i = &df.instructions;
        assert_eq!(i.len(), 5);
        assert_eq!((i[0].keyword.as_str(), i[0].line), ("ARG", 2));
        assert_eq!(i[2].keyword, "RUN");
        assert_eq!(i[2].args, "echo one && echo two");
        assert_eq!(i[2].line, 5);
        assert_eq!(i[3].line, 9);
        assert_eq!(i[3].exec_form().unwrap(), ["sh", "-c", "echo hi"]);
        assert_eq!(i[2].exec_form(), None);
        assert_eq!(i[4].keyword, "COPY");
        assert_eq!(i[4].flag("chown"), Some("1:2"));
        assert_eq!(i[4].args, "a b /dst/");
        assert_eq!(i[4].line, 10);
    }

    #[test]
    fn escape_directive() {
        let df = parse("# escape=`\nFROM scratch\nRUN dir c:\\ `\n  && echo x\n").unwrap();
        assert_eq!(df.escape, '`');
        assert_eq!(df.instructions[1].args, "dir c:\\   && echo x");
        // After an instruction, it is only a comment.
        let df = parse("FROM scratch\n# escape=`\nRUN a \\\n b\n").unwrap();
        assert_eq!(df.escape, '\\');
        assert_eq!(df.instructions[1].args, "a  b");
        assert!(parse("# escape=x\nFROM scratch\n").is_err());
    }

    #[test]
    fn heredocs() {
        let df = parse("FROM busybox\nRUN <<EOF\necho a\n  echo b\nEOF\nRUN cat > /f <<-'END'\n\tx\n\tEND\nCMD x\n")
            .unwrap();
        let i = &df.instructions;
        assert_eq!(i.len(), 4);
        assert_eq!(i[1].args, "<<EOF");
        let h = i[1].heredoc.as_ref().unwrap();
        assert_eq!(
            (h.word.as_str(), h.body.as_str()),
            ("EOF", "echo a\n  echo b\n")
        );
        assert_eq!(i[2].heredoc.as_ref().unwrap().body, "x\n");
        assert_eq!((i[3].keyword.as_str(), i[3].line), ("CMD", 9));
        assert!(parse("FROM busybox\nRUN <<EOF\necho\n").is_err());
        assert!(parse("FROM busybox\nCOPY <<EOF /f\nx\nEOF\n").is_err());
    }

    #[test]
    fn escaped_backslash_ends_the_line() {
        let df = parse("FROM scratch\nRUN echo a\\\\\nRUN b\n").unwrap();
        assert_eq!(df.instructions.len(), 3);
        assert_eq!(df.instructions[1].args, "echo a\\\\");
    }

    #[test]
    fn bad_instructions_name_their_line() {
        let e = parse("FROM busybox\n\nRUNN echo\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.msg.contains("unknown instruction: RUNN"), "{e}");
        let e = parse("FROM busybox\nCOPY --chwon=1 a b\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().starts_with("Dockerfile:2: "), "{e}");
        let e = parse("RUN echo\nFROM busybox\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = parse("FROM busybox\nWORKDIR\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(parse("# only a comment\n").is_err());
    }

    #[test]
    fn substitution() {
        let v = vars(&[("A", "x"), ("EMPTY", ""), ("P", "/opt")]);
        let s = |t: &str| substitute(t, &v, '\\').unwrap();
        assert_eq!(s("$A ${A} ${A}y $Ay"), "x x xy ");
        assert_eq!(s("${EMPTY:-d} ${NONE:-d} ${A:-d}"), "d d x");
        assert_eq!(s("${A:+set} ${NONE:+set}."), "set .");
        assert_eq!(s("'$A' \"$A\" \\$A"), "'$A' \"x\" $A");
        assert_eq!(s("${P}/bin $"), "/opt/bin $");
        assert_eq!(s("${NONE:-${P}/lib}"), "/opt/lib");
        assert!(substitute("${A", &v, '\\').is_err());
        assert!(substitute("${A B}", &v, '\\').is_err());
        assert_eq!(substitute("`$A", &v, '`').unwrap(), "$A");
    }

    #[test]
    fn words_and_key_values() {
        assert_eq!(
            key_values(r#"A=1 B="two words" C=a\ b"#, '\\', true).unwrap(),
            [
                ("A".into(), "1".into()),
                ("B".into(), "two words".into()),
                ("C".into(), "a b".into())
            ]
        );
        assert_eq!(
            key_values("LEGACY some value", '\\', true).unwrap(),
            [("LEGACY".into(), "some value".into())]
        );
        assert!(key_values("=x", '\\', false).is_err());
        assert_eq!(words("a 'b c' d", '\\').unwrap(), ["a", "b c", "d"]);
    }
}
