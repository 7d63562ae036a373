//! Values as Go's text/template sees them: how one prints (`fmt`'s `%v`),
//! whether one is true, and the marker of a missing map key.

use serde_json::Value;

/// What went wrong, in the words the user sees.
pub type Error = String;

/// A missing key is Go's "<no value>" (what a map gives), kept as a marker.
pub const NO_VALUE: &str = "\u{0}<no value>";

pub fn walk(v: &Value, path: &[String]) -> Value {
    let mut cur = v.clone();
    for k in path {
        cur = match &cur {
            Value::Object(m) => m.get(k).cloned().unwrap_or_else(|| Value::from(NO_VALUE)),
            _ => Value::from(NO_VALUE),
        };
    }
    cur
}

pub fn truthy(v: &Value) -> bool {
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
