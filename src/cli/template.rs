//! `--format` templates: the part of Go's text/template that Docker users
//! write (fields, pipelines, `if`/`else`/`range`/`with`/`end`, variables,
//! and Docker's functions), evaluated over the JSON each command prints.
//!
//! Values are `serde_json::Value`s, so any path into `inspect`'s JSON works
//! (`{{.State.ExitCode}}`), and a value prints the way Go's `fmt` prints
//! the corresponding Go value (`[a b]` for a list, `map[k:v]` for a map).

use std::fmt::Write as _;

use serde_json::Value;

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipeline),
    If(Pipeline, Vec<Node>, Vec<Node>),
    Range(Pipeline, Vec<Node>, Vec<Node>),
    With(Pipeline, Vec<Node>, Vec<Node>),
}

/// `$a, $b := cmd | cmd`; the declared variables are set by `range` (index
/// and element) or, outside `range`, to the pipeline's value.
#[derive(Debug, Clone)]
struct Pipeline {
    decl: Vec<String>,
    cmds: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone)]
enum Arg {
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

pub type Error = String;

impl Template {
    pub fn parse(src: &str) -> Result<Template, Error> {
        let actions = split_actions(src)?;
        let mut pos = 0;
        let (nodes, end) = parse_list(&actions, &mut pos)?;
        match end {
            None => Ok(Template { nodes }),
            Some(e) => Err(format!("unexpected {{{{{e}}}}}")),
        }
    }

    /// Evaluate against `data` (the object `.` is at the top).
    pub fn render(&self, data: &Value) -> Result<String, Error> {
        let mut out = String::new();
        let mut vars = vec![("$".to_string(), data.clone())];
        exec(&self.nodes, data, &mut vars, &mut out)?;
        Ok(out)
    }
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

const FUNCS: &[&str] = &[
    "json", "join", "upper", "lower", "title", "split", "println", "print", "printf", "index",
    "len", "eq", "ne", "lt", "le", "gt", "ge", "and", "or", "not", "truncate", "pad",
];

fn exec(
    nodes: &[Node],
    dot: &Value,
    vars: &mut Vec<(String, Value)>,
    out: &mut String,
) -> Result<(), Error> {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Action(p) => {
                let v = eval_pipeline(p, dot, vars)?;
                if p.decl.is_empty() {
                    out.push_str(&show(&v));
                } else {
                    for d in &p.decl {
                        vars.push((d.clone(), v.clone()));
                    }
                }
            }
            Node::If(p, then, other) => {
                let mark = vars.len();
                let v = eval_pipeline(p, dot, vars)?;
                let r = exec(if truthy(&v) { then } else { other }, dot, vars, out);
                vars.truncate(mark);
                r?;
            }
            Node::With(p, then, other) => {
                let mark = vars.len();
                let v = eval_pipeline(p, dot, vars)?;
                let r = if truthy(&v) {
                    exec(then, &v, vars, out)
                } else {
                    exec(other, dot, vars, out)
                };
                vars.truncate(mark);
                r?;
            }
            Node::Range(p, body, other) => {
                let v = eval_pipeline(p, dot, vars)?;
                let items: Vec<(Value, Value)> = match &v {
                    Value::Array(a) => a
                        .iter()
                        .enumerate()
                        .map(|(i, x)| (Value::from(i), x.clone()))
                        .collect(),
                    Value::Object(m) => m
                        .iter()
                        .map(|(k, x)| (Value::from(k.clone()), x.clone()))
                        .collect(),
                    Value::Null => Vec::new(),
                    Value::Number(n) => (0..n.as_u64().unwrap_or(0))
                        .map(|i| (Value::from(i), Value::from(i)))
                        .collect(),
                    other => return Err(format!("range can't iterate over {}", show(other))),
                };
                if items.is_empty() {
                    exec(other, dot, vars, out)?;
                }
                for (k, x) in items {
                    let mark = vars.len();
                    match p.decl.as_slice() {
                        [] => {}
                        [e] => vars.push((e.clone(), x.clone())),
                        [i, e, ..] => {
                            vars.push((i.clone(), k));
                            vars.push((e.clone(), x.clone()));
                        }
                    }
                    let r = exec(body, &x, vars, out);
                    vars.truncate(mark);
                    r?;
                }
            }
        }
    }
    Ok(())
}

fn eval_pipeline(p: &Pipeline, dot: &Value, vars: &[(String, Value)]) -> Result<Value, Error> {
    let mut piped: Option<Value> = None;
    for cmd in &p.cmds {
        piped = Some(eval_cmd(cmd, dot, vars, piped)?);
    }
    Ok(piped.unwrap_or(Value::Null))
}

fn eval_cmd(
    cmd: &[Arg],
    dot: &Value,
    vars: &[(String, Value)],
    piped: Option<Value>,
) -> Result<Value, Error> {
    if let Some(Arg::Func(f)) = cmd.first() {
        let mut args = cmd[1..]
            .iter()
            .map(|a| eval_arg(a, dot, vars))
            .collect::<Result<Vec<_>, _>>()?;
        args.extend(piped);
        return call(f, &args);
    }
    if cmd.len() > 1 || piped.is_some() {
        return Err("only a function can take arguments".into());
    }
    eval_arg(&cmd[0], dot, vars)
}

fn eval_arg(a: &Arg, dot: &Value, vars: &[(String, Value)]) -> Result<Value, Error> {
    match a {
        Arg::Field(p) => Ok(walk(dot, p)),
        Arg::Var(n, p) => {
            let v = vars
                .iter()
                .rev()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v)
                .ok_or_else(|| format!("undefined variable {n}"))?;
            Ok(walk(v, p))
        }
        Arg::Lit(v) => Ok(v.clone()),
        Arg::Func(f) => call(f, &[]),
        Arg::Sub(p, chain) => Ok(walk(&eval_pipeline(p, dot, vars)?, chain)),
    }
}

/// A missing key is Go's "<no value>" (what a map gives), kept as a marker.
const NO_VALUE: &str = "\u{0}<no value>";

fn walk(v: &Value, path: &[String]) -> Value {
    let mut cur = v.clone();
    for k in path {
        cur = match &cur {
            Value::Object(m) => m.get(k).cloned().unwrap_or_else(|| Value::from(NO_VALUE)),
            _ => Value::from(NO_VALUE),
        };
    }
    cur
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty() && s != NO_VALUE,
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// How Go's `fmt` prints the value (`%v`).
pub fn show(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if s == NO_VALUE => "<no value>".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(show).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => format!(
            "map[{}]",
            m.iter()
                .map(|(k, x)| format!("{k}:{}", show(x)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

fn as_str(v: &Value) -> String {
    show(v)
}

fn arity(f: &str, args: &[Value], n: usize) -> Result<(), Error> {
    if args.len() == n {
        Ok(())
    } else {
        Err(format!(
            "wrong number of args for {f}: want {n} got {}",
            args.len()
        ))
    }
}

fn call(f: &str, a: &[Value]) -> Result<Value, Error> {
    Ok(match f {
        "json" => {
            arity(f, a, 1)?;
            let v = if a[0].as_str() == Some(NO_VALUE) {
                &Value::Null
            } else {
                &a[0]
            };
            Value::from(serde_json::to_string(v).map_err(|e| e.to_string())?)
        }
        "join" => {
            arity(f, a, 2)?;
            let items = match &a[0] {
                Value::Array(x) => x.iter().map(as_str).collect::<Vec<_>>(),
                Value::Null => Vec::new(),
                other => return Err(format!("join: {} is not a list", show(other))),
            };
            Value::from(items.join(&as_str(&a[1])))
        }
        "upper" => {
            arity(f, a, 1)?;
            Value::from(as_str(&a[0]).to_uppercase())
        }
        "lower" => {
            arity(f, a, 1)?;
            Value::from(as_str(&a[0]).to_lowercase())
        }
        "title" => {
            arity(f, a, 1)?;
            Value::from(title(&as_str(&a[0])))
        }
        "split" => {
            arity(f, a, 2)?;
            let (s, sep) = (as_str(&a[0]), as_str(&a[1]));
            Value::from(
                s.split(sep.as_str())
                    .map(|p| Value::from(p.to_string()))
                    .collect::<Vec<_>>(),
            )
        }
        "truncate" => {
            arity(f, a, 2)?;
            let n = a[1].as_u64().ok_or("truncate: length must be a number")? as usize;
            Value::from(as_str(&a[0]).chars().take(n).collect::<String>())
        }
        "pad" => {
            arity(f, a, 3)?;
            let (l, r) = (
                a[1].as_u64().unwrap_or(0) as usize,
                a[2].as_u64().unwrap_or(0) as usize,
            );
            Value::from(format!(
                "{}{}{}",
                " ".repeat(l),
                as_str(&a[0]),
                " ".repeat(r)
            ))
        }
        // Go's Sprint puts spaces only between operands that are not strings.
        "print" => Value::from(sprint(a)),
        "println" => Value::from(format!(
            "{}\n",
            a.iter().map(as_str).collect::<Vec<_>>().join(" ")
        )),
        "printf" => {
            let (fmt, rest) = a.split_first().ok_or("printf: missing format")?;
            Value::from(printf(&as_str(fmt), rest)?)
        }
        "index" => {
            let (first, keys) = a.split_first().ok_or("index: missing value")?;
            let mut cur = first.clone();
            for k in keys {
                cur = match (&cur, k) {
                    (Value::Array(x), Value::Number(n)) => {
                        let i = n.as_u64().ok_or("index: negative index")? as usize;
                        x.get(i)
                            .cloned()
                            .ok_or_else(|| format!("index out of range: {i}"))?
                    }
                    (Value::Object(m), key) => m
                        .get(&as_str(key))
                        .cloned()
                        .unwrap_or_else(|| Value::from(NO_VALUE)),
                    (Value::String(s), Value::Number(n)) => {
                        let i = n.as_u64().ok_or("index: negative index")? as usize;
                        Value::from(*s.as_bytes().get(i).ok_or("index out of range")?)
                    }
                    (other, _) => return Err(format!("can't index item of type {}", show(other))),
                };
            }
            cur
        }
        "len" => {
            arity(f, a, 1)?;
            Value::from(match &a[0] {
                Value::Array(x) => x.len(),
                Value::Object(m) => m.len(),
                Value::String(s) => s.len(),
                Value::Null => 0,
                other => return Err(format!("len of {}", show(other))),
            })
        }
        "eq" => {
            let (x, rest) = a.split_first().ok_or("eq: missing arguments")?;
            Value::Bool(rest.iter().any(|y| same(x, y)))
        }
        "ne" => {
            arity(f, a, 2)?;
            Value::Bool(!same(&a[0], &a[1]))
        }
        "lt" | "le" | "gt" | "ge" => {
            arity(f, a, 2)?;
            let ord = compare(&a[0], &a[1]).ok_or_else(|| format!("{f}: incomparable values"))?;
            use std::cmp::Ordering::*;
            Value::Bool(match f {
                "lt" => ord == Less,
                "le" => ord != Greater,
                "gt" => ord == Greater,
                _ => ord != Less,
            })
        }
        "and" => a
            .iter()
            .find(|x| !truthy(x))
            .or(a.last())
            .cloned()
            .unwrap_or(Value::Null),
        "or" => a
            .iter()
            .find(|x| truthy(x))
            .or(a.last())
            .cloned()
            .unwrap_or(Value::Null),
        "not" => {
            arity(f, a, 1)?;
            Value::Bool(!truthy(&a[0]))
        }
        other => return Err(format!("function {other:?} not defined")),
    })
}

fn same(x: &Value, y: &Value) -> bool {
    match (x.as_f64(), y.as_f64()) {
        (Some(a), Some(b)) => a == b,
        _ => x == y,
    }
}

fn compare(x: &Value, y: &Value) -> Option<std::cmp::Ordering> {
    match (x, y) {
        (Value::Number(a), Value::Number(b)) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

fn title(s: &str) -> String {
    let mut out = String::new();
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    out
}

fn sprint(a: &[Value]) -> String {
    let mut out = String::new();
    for (i, v) in a.iter().enumerate() {
        if i > 0 && !a[i - 1].is_string() && !v.is_string() {
            out.push(' ');
        }
        out.push_str(&show(v));
    }
    out
}

/// Go's `fmt.Sprintf` for the verbs people use: `%s %v %d %q %f %x %%`,
/// with flags `-`, `0`, a width and a precision.
fn printf(fmt: &str, args: &[Value]) -> Result<String, Error> {
    let mut out = String::new();
    let mut it = args.iter();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut left, mut zero) = (false, false);
        while let Some(&f) = chars.peek() {
            match f {
                '-' => left = true,
                '0' => zero = true,
                '+' | ' ' | '#' => {}
                _ => break,
            }
            chars.next();
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let mut prec: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                chars.next();
            }
            prec = Some(p.parse().unwrap_or(0));
        }
        let verb = chars.next().ok_or("printf: format ends in %")?;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(v) = it.next() else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        let body = match verb {
            'd' => match v.as_f64() {
                Some(n) => format!("{}", n as i64),
                None => format!("%!d({})", show(v)),
            },
            'f' | 'g' | 'e' => match v.as_f64() {
                Some(n) => format!("{n:.p$}", p = prec.unwrap_or(6)),
                None => format!("%!{verb}({})", show(v)),
            },
            'x' => match v.as_u64() {
                Some(n) => format!("{n:x}"),
                None => show(v).bytes().map(|b| format!("{b:02x}")).collect(),
            },
            'q' => serde_json::to_string(&show(v)).unwrap_or_default(),
            't' | 's' | 'v' => {
                let s = show(v);
                match prec {
                    Some(p) if verb == 's' => s.chars().take(p).collect(),
                    _ => s,
                }
            }
            other => format!("%!{other}({})", show(v)),
        };
        let w: usize = width.parse().unwrap_or(0);
        let n = body.chars().count();
        if n >= w {
            out.push_str(&body);
        } else if left {
            out.push_str(&body);
            out.push_str(&" ".repeat(w - n));
        } else if zero && matches!(verb, 'd' | 'f' | 'x') {
            out.push_str(&"0".repeat(w - n));
            out.push_str(&body);
        } else {
            out.push_str(&" ".repeat(w - n));
            out.push_str(&body);
        }
    }
    if it.next().is_some() {
        out.push_str("%!(EXTRA)");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(t: &str, v: &Value) -> String {
        Template::parse(t).unwrap().render(v).unwrap()
    }

    #[test]
    fn fields_and_paths() {
        let v = json!({"Id": "abc", "State": {"ExitCode": 3, "Running": false},
            "Config": {"Env": ["A=1", "B=2"], "Labels": {"k": "v"}}});
        assert_eq!(r("{{.Id}}", &v), "abc");
        assert_eq!(r("{{.State.ExitCode}}", &v), "3");
        assert_eq!(r("{{.Config.Env}}", &v), "[A=1 B=2]");
        assert_eq!(r("{{.Config.Labels}}", &v), "map[k:v]");
        assert_eq!(r("{{.Config.Labels.nope}}", &v), "<no value>");
        assert_eq!(r("x{{.State.Running}}y", &v), "xfalsey");
        assert_eq!(r("{{json .Config.Env}}", &v), r#"["A=1","B=2"]"#);
        assert_eq!(r("{{.Config.Env | json}}", &v), r#"["A=1","B=2"]"#);
        assert_eq!(r("{{$.Id}}", &v), "abc");
    }

    #[test]
    fn functions() {
        let v = json!({"Names": "web", "L": ["a", "b"], "S": "a,b,c", "N": 2.5});
        assert_eq!(r("{{join .L \", \"}}", &v), "a, b");
        assert_eq!(
            r("{{upper .Names}} {{title \"hello world\"}}", &v),
            "WEB Hello World"
        );
        assert_eq!(r("{{lower \"ABC\"}}", &v), "abc");
        assert_eq!(r("{{index (split .S \",\") 1}}", &v), "b");
        assert_eq!(r("{{len .L}} {{len .S}}", &v), "2 5");
        assert_eq!(r("{{index .L 0}}", &v), "a");
        assert_eq!(r("{{println .Names}}", &v), "web\n");
        assert_eq!(
            r("{{printf \"%-5s|%3d|%.1f|%q\" .Names 7 .N .Names}}", &v),
            "web  |  7|2.5|\"web\""
        );
        assert_eq!(r("{{split .S \",\" | len}}", &json!({"S": ""})), "1");
        assert_eq!(r("{{truncate .Names 2}}", &v), "we");
    }

    #[test]
    fn control_flow() {
        let v = json!({"Env": ["A=1", "B=2"], "M": {"x": 1, "y": 2}, "Up": true, "E": []});
        assert_eq!(r("{{range .Env}}[{{.}}]{{end}}", &v), "[A=1][B=2]");
        assert_eq!(
            r("{{range $k, $v := .M}}{{$k}}={{$v}};{{end}}", &v),
            "x=1;y=2;"
        );
        assert_eq!(r("{{range .E}}x{{else}}none{{end}}", &v), "none");
        assert_eq!(r("{{if .Up}}up{{else}}down{{end}}", &v), "up");
        assert_eq!(r("{{if not .Up}}a{{else if .M}}b{{else}}c{{end}}", &v), "b");
        assert_eq!(r("{{with .M}}{{.y}}{{end}}", &v), "2");
        assert_eq!(r("{{if eq .M.x 1}}one{{end}}", &v), "one");
        assert_eq!(
            r("{{- range .Env }}\n  {{ . }}\n{{- end }}", &v),
            "\n  A=1\n  B=2"
        );
        assert_eq!(r("{{$n := len .Env}}{{$n}}", &v), "2");
        assert_eq!(r("a{{/* note */}}b", &v), "ab");
    }

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
