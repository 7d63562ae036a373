//! `--format` templates: the part of Go's text/template that Docker users
//! write (fields, pipelines, `if`/`else`/`range`/`with`/`end`, variables,
//! and Docker's functions), evaluated over the JSON each command prints.
//!
//! Values are `serde_json::Value`s, so any path into `inspect`'s JSON works
//! (`{{.State.ExitCode}}`), and a value prints the way Go's `fmt` prints
//! the corresponding Go value (`[a b]` for a list, `map[k:v]` for a map).

mod funcs;
mod parse;
mod value;

use serde_json::Value;

use self::funcs::call;
use self::parse::{Arg, Node, Pipeline};
use self::value::{show, truthy, walk, Error};

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

impl Template {
    pub fn parse(src: &str) -> Result<Template, Error> {
        Ok(Template {
            nodes: parse::nodes(src)?,
        })
    }

    /// Evaluate against `data` (the object `.` is at the top).
    pub fn render(&self, data: &Value) -> Result<String, Error> {
        let mut out = String::new();
        let mut vars = vec![("$".to_string(), data.clone())];
        exec(&self.nodes, data, &mut vars, &mut out)?;
        Ok(out)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `t` rendered over `v`, both known to be good.
    pub(super) fn r(t: &str, v: &Value) -> String {
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
}
