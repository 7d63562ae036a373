//! Parsing a template: text and `{{ }}` actions, the lexer of an action,
//! and the tree of nodes and pipelines the evaluator walks.

use serde_json::Value;

use super::funcs::FUNCS;
use super::value::Error;

/// The whole template: its nodes, or why it does not parse.
pub fn nodes(src: &str) -> Result<Vec<Node>, Error> {
    let actions = split_actions(src)?;
    let mut pos = 0;
    let (nodes, end) = parse_list(&actions, &mut pos)?;
    match end {
        None => Ok(nodes),
        Some(e) => Err(format!("unexpected {{{{{e}}}}}")),
    }
}

#[derive(Debug, Clone)]
pub enum Node {
    Text(String),
    Action(Pipeline),
    If(Pipeline, Vec<Node>, Vec<Node>),
    Range(Pipeline, Vec<Node>, Vec<Node>),
    With(Pipeline, Vec<Node>, Vec<Node>),
}

/// `$a, $b := cmd | cmd`; the declared variables are set by `range` (index
/// and element) or, outside `range`, to the pipeline's value.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub decl: Vec<String>,
    pub cmds: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone)]
pub enum Arg {
    /// `.A.B` (empty path: `.` itself).
    Field(Vec<String>),
    /// `$name.A.B` (`$` alone is the top-level value).
    Var(String, Vec<String>),
    Lit(Value),
    Func(String),
    /// `(pipeline).A.B`
    Sub(Box<Pipeline>, Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Field(Vec<String>),
    Var(String, Vec<String>),
    Str(String),
    Num(Value),
    Ident(String),
    Pipe,
    Open,
    Close,
    /// `.A.B` straight after `)`.
    Chain(Vec<String>),
    Declare,
    Comma,
}

/// Text and `{{ }}` actions, with `{{-` / `-}}` trimming the adjacent
/// white space and `{{/* */}}` comments dropped.
enum Piece {
    Text(String),
    Action(String),
}

fn split_actions(src: &str) -> Result<Vec<Piece>, Error> {
    let mut out = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    while let Some(start) = rest.find("{{") {
        let mut text = &rest[..start];
        if trim_next {
            text = text.trim_start();
        }
        let after = &rest[start + 2..];
        let (after, trim_prev) = match after.strip_prefix("- ") {
            Some(a) => (a, true),
            None => (after, false),
        };
        if trim_prev {
            text = text.trim_end();
        }
        if !text.is_empty() {
            out.push(Piece::Text(text.to_string()));
        }
        let end = find_close(after).ok_or("unclosed action: missing }}")?;
        let mut body = &after[..end];
        trim_next = false;
        if let Some(b) = body.strip_suffix(" -") {
            body = b;
            trim_next = true;
        }
        let body = body.trim();
        if !(body.starts_with("/*") && body.ends_with("*/")) {
            out.push(Piece::Action(body.to_string()));
        }
        rest = &after[end + 2..];
    }
    let text = if trim_next { rest.trim_start() } else { rest };
    if !text.is_empty() {
        out.push(Piece::Text(text.to_string()));
    }
    Ok(out)
}

/// The `}}` that closes an action, skipping any inside quoted strings.
fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if b.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Nodes up to an `else` or `end` (returned as the terminator).
fn parse_list(p: &[Piece], pos: &mut usize) -> Result<(Vec<Node>, Option<String>), Error> {
    let mut nodes = Vec::new();
    while *pos < p.len() {
        let piece = &p[*pos];
        *pos += 1;
        let body = match piece {
            Piece::Text(t) => {
                nodes.push(Node::Text(t.clone()));
                continue;
            }
            Piece::Action(a) => a.as_str(),
        };
        let (word, rest) = match body.split_once(char::is_whitespace) {
            Some((w, r)) => (w, r.trim()),
            None => (body, ""),
        };
        match word {
            "end" => return Ok((nodes, Some("end".into()))),
            "else" => return Ok((nodes, Some(format!("else {rest}").trim().to_string()))),
            "if" | "range" | "with" => nodes.push(parse_block(word, rest, p, pos)?),
            _ => nodes.push(Node::Action(parse_pipeline(body)?)),
        }
    }
    Ok((nodes, None))
}

/// The rest of an `if`, `range` or `with` block up to its `end`. An
/// `{{else if X}}` is a nested `if` in the else branch that shares the
/// outer block's `end`.
fn parse_block(word: &str, cond: &str, p: &[Piece], pos: &mut usize) -> Result<Node, Error> {
    let pipe = parse_pipeline(cond)?;
    let (then, end) = parse_list(p, pos)?;
    let other = match end.as_deref() {
        Some("end") => Vec::new(),
        Some("else") => match parse_list(p, pos)? {
            (other, Some(e)) if e == "end" => other,
            _ => return Err(format!("{{{{{word}}}}} without {{{{end}}}}")),
        },
        Some(e) if word == "if" && e.starts_with("else if ") => {
            vec![parse_block("if", &e["else if ".len()..], p, pos)?]
        }
        _ => return Err(format!("{{{{{word}}}}} without {{{{end}}}}")),
    };
    Ok(match word {
        "if" => Node::If(pipe, then, other),
        "range" => Node::Range(pipe, then, other),
        _ => Node::With(pipe, then, other),
    })
}

fn lex(s: &str) -> Result<Vec<Tok>, Error> {
    let c: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let ident = |c: &[char], i: &mut usize| {
        let start = *i;
        while *i < c.len() && (c[*i].is_alphanumeric() || c[*i] == '_') {
            *i += 1;
        }
        c[start..*i].iter().collect::<String>()
    };
    let path = |c: &[char], i: &mut usize| {
        let mut parts = Vec::new();
        while *i < c.len() && c[*i] == '.' {
            *i += 1;
            let name = ident(c, i);
            if !name.is_empty() {
                parts.push(name);
            }
        }
        parts
    };
    while i < c.len() {
        match c[i] {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '|' => {
                out.push(Tok::Pipe);
                i += 1;
            }
            '(' => {
                out.push(Tok::Open);
                i += 1;
            }
            ')' => {
                out.push(Tok::Close);
                i += 1;
                if c.get(i) == Some(&'.') {
                    out.push(Tok::Chain(path(&c, &mut i)));
                }
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            ':' if c.get(i + 1) == Some(&'=') => {
                out.push(Tok::Declare);
                i += 2;
            }
            '=' => {
                out.push(Tok::Declare);
                i += 1;
            }
            '.' => out.push(Tok::Field(path(&c, &mut i))),
            '$' => {
                i += 1;
                let name = format!("${}", ident(&c, &mut i));
                out.push(Tok::Var(name, path(&c, &mut i)));
            }
            '"' => {
                i += 1;
                let mut v = String::new();
                loop {
                    match c.get(i) {
                        None => return Err("unterminated quoted string".into()),
                        Some('"') => break,
                        Some('\\') => {
                            i += 1;
                            v.push(match c.get(i) {
                                Some('n') => '\n',
                                Some('t') => '\t',
                                Some('r') => '\r',
                                Some(&x) => x,
                                None => return Err("unterminated quoted string".into()),
                            });
                        }
                        Some(&x) => v.push(x),
                    }
                    i += 1;
                }
                i += 1;
                out.push(Tok::Str(v));
            }
            '`' => {
                i += 1;
                let start = i;
                while i < c.len() && c[i] != '`' {
                    i += 1;
                }
                if i == c.len() {
                    return Err("unterminated raw string".into());
                }
                out.push(Tok::Str(c[start..i].iter().collect()));
                i += 1;
            }
            x if x.is_ascii_digit()
                || (x == '-' && c.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let start = i;
                i += 1;
                while i < c.len() && (c[i].is_ascii_digit() || c[i] == '.') {
                    i += 1;
                }
                let text: String = c[start..i].iter().collect();
                let v = if let Ok(n) = text.parse::<i64>() {
                    Value::from(n)
                } else {
                    text.parse::<f64>()
                        .map(Value::from)
                        .map_err(|_| format!("bad number {text:?}"))?
                };
                out.push(Tok::Num(v));
            }
            x if x.is_alphabetic() || x == '_' => out.push(Tok::Ident(ident(&c, &mut i))),
            x => return Err(format!("unexpected {x:?} in action")),
        }
    }
    Ok(out)
}

fn parse_pipeline(s: &str) -> Result<Pipeline, Error> {
    let toks = lex(s)?;
    let mut pos = 0;
    let p = pipeline(&toks, &mut pos)?;
    if pos != toks.len() {
        return Err(format!("unexpected {:?} in {s:?}", toks[pos]));
    }
    Ok(p)
}

fn pipeline(t: &[Tok], pos: &mut usize) -> Result<Pipeline, Error> {
    // A declaration: `$x :=` or `$i, $e :=`.
    let mut decl = Vec::new();
    let mut look = *pos;
    let mut names = Vec::new();
    while let Some(Tok::Var(n, p)) = t.get(look) {
        if !p.is_empty() {
            break;
        }
        names.push(n.clone());
        look += 1;
        match t.get(look) {
            Some(Tok::Comma) => look += 1,
            Some(Tok::Declare) => {
                decl = std::mem::take(&mut names);
                *pos = look + 1;
                break;
            }
            _ => break,
        }
    }
    let mut cmds = Vec::new();
    let mut cmd = Vec::new();
    while let Some(tok) = t.get(*pos) {
        *pos += 1;
        match tok {
            Tok::Pipe => {
                if cmd.is_empty() {
                    return Err("missing command before |".into());
                }
                cmds.push(std::mem::take(&mut cmd));
            }
            Tok::Close => {
                *pos -= 1;
                break;
            }
            Tok::Open => {
                let inner = pipeline(t, pos)?;
                if t.get(*pos) != Some(&Tok::Close) {
                    return Err("missing )".into());
                }
                *pos += 1;
                let chain = match t.get(*pos) {
                    Some(Tok::Chain(c)) => {
                        *pos += 1;
                        c.clone()
                    }
                    _ => Vec::new(),
                };
                cmd.push(Arg::Sub(Box::new(inner), chain));
            }
            Tok::Field(p) => cmd.push(Arg::Field(p.clone())),
            Tok::Var(n, p) => cmd.push(Arg::Var(n.clone(), p.clone())),
            Tok::Str(s) => cmd.push(Arg::Lit(Value::from(s.clone()))),
            Tok::Num(n) => cmd.push(Arg::Lit(n.clone())),
            Tok::Ident(w) => cmd.push(match w.as_str() {
                "true" => Arg::Lit(Value::Bool(true)),
                "false" => Arg::Lit(Value::Bool(false)),
                "nil" => Arg::Lit(Value::Null),
                f if FUNCS.contains(&f) => Arg::Func(f.to_string()),
                f => return Err(format!("function {f:?} not defined")),
            }),
            other => return Err(format!("unexpected {other:?}")),
        }
    }
    if cmd.is_empty() {
        return Err("missing value for command".into());
    }
    cmds.push(cmd);
    Ok(Pipeline { decl, cmds })
}

#[cfg(test)]
mod tests {
    use super::super::Template;
    use serde_json::json;

    #[test]
    fn errors_are_reported() {
        assert!(Template::parse("{{.A").is_err());
        assert!(Template::parse("{{bogus .A}}").is_err());
        assert!(Template::parse("{{if .A}}x").is_err());
        assert!(Template::parse("{{end}}").is_err());
        let t = Template::parse("{{.A 1}}").unwrap();
        assert!(t.render(&json!({})).is_err());
    }
}
