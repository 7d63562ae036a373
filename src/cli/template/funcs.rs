//! Docker's and Go's template functions: the names the parser accepts and
//! what each does with its evaluated arguments.

use std::fmt::Write as _;

use serde_json::Value;

use super::value::{show, truthy, Error, NO_VALUE};

pub const FUNCS: &[&str] = &[
    "json", "join", "upper", "lower", "title", "split", "println", "print", "printf", "index",
    "len", "eq", "ne", "lt", "le", "gt", "ge", "and", "or", "not", "truncate", "pad",
];

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

/// Call `f` with its evaluated arguments (a piped value comes last).
pub fn call(f: &str, a: &[Value]) -> Result<Value, Error> {
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
        _ => return logic(f, a),
    })
}

/// Indexing, length, comparison and the boolean functions.
fn logic(f: &str, a: &[Value]) -> Result<Value, Error> {
    Ok(match f {
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
    use super::super::tests::r;
    use serde_json::json;

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
}
