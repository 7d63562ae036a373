//! The Docker Engine API on a socket (`burrow system service`): the second
//! front end over the engine, for the docker CLI, Compose, docker-py and
//! Testcontainers.
//!
//! `http.rs` reads requests and writes answers, `server.rs` accepts
//! connections (a worker process each), this file routes a request to its
//! handler; `system.rs`, `containers.rs`, `attach.rs`, `exec.rs`,
//! `images.rs` turn Docker's JSON into engine requests and the engine's
//! results into Docker's JSON.

pub mod archive;
pub mod attach;
pub mod build;
pub mod containers;
pub mod error;
pub mod events;
pub mod exec;
pub mod http;
pub mod images;
pub mod networks;
pub mod server;
pub mod stats;
pub mod system;
pub mod volumes;

use std::io::Write;

use serde_json::{json, Value};

use crate::engine::{self, Engine, Kind};
pub use error::BadRequest;
use http::{Conn, HttpError, Request};
use server::Stream;

/// The API version burrow speaks (docker 20.10's); clients may ask for
/// a lower one.
pub const API_VERSION: &str = "1.41";
/// The lowest version burrow answers to, as Docker's daemon.
pub const MIN_API_VERSION: &str = "1.24";

/// A connection's worker: requests one after another until the client
/// closes, or a handler takes the connection over.
pub fn handle_connection(engine: &Engine, stream: Stream) {
    let mut conn = Conn::new(stream);
    loop {
        let req = match conn.read_head() {
            Ok(r) => r,
            Err(HttpError::Closed) => return,
            Err(HttpError::Io(_)) => return,
            Err(e) => {
                let _ = error(&mut conn.stream, 400, &e.to_string());
                return;
            }
        };
        tracing::debug!("{} {}", req.method, req.path);
        let keep = req.keep_alive();
        http::answering_head(req.method == "HEAD");
        match route(engine, &mut conn, &req) {
            Ok(Next::Continue) if keep => {}
            Ok(_) => return,
            Err(e) => {
                tracing::debug!("{} {}: {e}", req.method, req.path);
                return;
            }
        }
    }
}

/// What the connection does after a handler.
pub enum Next {
    /// Read the next request.
    Continue,
    /// The handler took the connection over, or closed it.
    Close,
}

/// A handler's result: the connection failed (the client went away).
pub type Handled = std::io::Result<Next>;

/// Write `value` as a JSON answer.
pub fn reply(w: &mut impl Write, status: u16, value: &Value) -> Handled {
    let body = serde_json::to_vec(value).unwrap_or_default();
    http::respond(w, status, Some("application/json"), &body, false)?;
    Ok(Next::Continue)
}

/// An empty answer (204, 304).
pub fn empty(w: &mut impl Write, status: u16) -> Handled {
    http::respond(w, status, None, b"", false)?;
    Ok(Next::Continue)
}

/// A request refused before the engine saw it: a 400 with its reason.
pub fn bad_request(w: &mut impl Write, e: &BadRequest) -> Handled {
    error(w, 400, &e.to_string())
}

/// Docker's error answer: `{"message": ...}`.
pub fn error(w: &mut impl Write, status: u16, message: &str) -> Handled {
    reply(w, status, &json!({ "message": message }))
}

/// The HTTP status of an engine error.
pub fn status_of(e: &engine::Error) -> u16 {
    match e.kind() {
        Kind::Invalid => 400,
        Kind::NotFound => 404,
        Kind::Conflict => 409,
        Kind::CannotRun(_) | Kind::Internal => 500,
    }
}

/// An engine error as Docker's answer.
pub fn engine_error(w: &mut impl Write, e: &engine::Error) -> Handled {
    error(w, status_of(e), &crate::util::message::one_line_of(e))
}

/// A request body as JSON (`{}` when empty); a body that is not JSON is a
/// 400.
pub fn json_body(conn: &mut Conn<Stream>, req: &Request) -> Result<Value, BadRequest> {
    let body = conn.read_body(req, http::MAX_JSON_BODY)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    // Docker's rule: a body is JSON, and a request that says otherwise is
    // refused rather than guessed at.
    if let Some(ct) = req.header("content-type") {
        let mime = ct.split(';').next().unwrap_or("").trim();
        if !mime.eq_ignore_ascii_case("application/json") {
            return Err(BadRequest::ContentType(ct.to_string()));
        }
    }
    serde_json::from_slice(&body).map_err(BadRequest::Json)
}

/// Route one request. Handlers that take a body read it themselves; for
/// the rest it is read and dropped here, so the next request on the
/// connection starts where it should.
fn route(engine: &Engine, conn: &mut Conn<Stream>, req: &Request) -> Handled {
    if let Some(v) = &req.version {
        if version_below(v, MIN_API_VERSION) {
            let _ = conn.read_body(req, http::MAX_JSON_BODY);
            return error(
                &mut conn.stream,
                400,
                &format!("client version {v} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"),
            );
        }
    }
    let parts: Vec<&str> = req.path.trim_end_matches('/').split('/').skip(1).collect();
    let method = req.method.as_str();
    match (method, parts.as_slice()) {
        ("GET" | "HEAD", ["_ping"]) => system::ping(conn, req),
        ("GET", ["version"]) => system::version(conn),
        ("GET", ["info"]) => system::info(engine, conn),
        ("GET", ["events"]) => events::events(engine, conn, req),
        ("POST", ["containers", "create"]) => containers::create(engine, conn, req),
        ("GET", ["containers", "json"]) => containers::list(engine, conn, req),
        ("POST", ["containers", "prune"]) => containers::prune(engine, conn, req),
        ("GET", ["containers", id, "json"]) => containers::inspect(engine, conn, id),
        ("POST", ["containers", id, "start"]) => containers::start(engine, conn, req, id),
        ("POST", ["containers", id, "wait"]) => attach::wait(engine, conn, req, id),
        ("POST", ["containers", id, "attach"]) => attach::attach(engine, conn, req, id),
        ("POST", ["containers", id, "resize"]) => attach::resize(engine, conn, req, id),
        ("GET", ["containers", id, "logs"]) => attach::logs(engine, conn, req, id),
        ("POST", ["containers", id, "stop"]) => containers::stop(engine, conn, req, id),
        ("POST", ["containers", id, "restart"]) => containers::restart(engine, conn, req, id),
        ("POST", ["containers", id, "kill"]) => containers::kill(engine, conn, req, id),
        ("POST", ["containers", id, "pause"]) => containers::pause(engine, conn, req, id, true),
        ("POST", ["containers", id, "unpause"]) => containers::pause(engine, conn, req, id, false),
        ("POST", ["containers", id, "rename"]) => containers::rename(engine, conn, req, id),
        ("DELETE", ["containers", id]) => containers::remove(engine, conn, req, id),
        ("POST", ["containers", id, "exec"]) => exec::create(engine, conn, req, id),
        ("POST", ["exec", id, "start"]) => exec::start(engine, conn, req, id),
        ("POST", ["exec", id, "resize"]) => exec::resize(engine, conn, req, id),
        ("GET", ["exec", id, "json"]) => exec::inspect(engine, conn, id),
        ("POST", ["images", "create"]) => images::create(engine, conn, req),
        ("GET", ["images", "json"]) => images::list(engine, conn, req),
        ("POST", ["build"]) => build::build(engine, conn, req),
        ("GET", ["images", "get"]) => images::save(engine, conn, req, None),
        ("POST", ["images", "load"]) => images::load(engine, conn, req),
        ("POST", ["images", "prune"]) => images::prune(engine, conn, req),
        ("GET", ["containers", id, "top"]) => stats::top(engine, conn, req, id),
        ("GET", ["containers", id, "export"]) => archive::export(engine, conn, id),
        ("GET", ["containers", id, "changes"]) => archive::changes(engine, conn, id),
        ("POST", ["commit"]) => images::commit(engine, conn, req),
        ("GET", ["containers", id, "stats"]) => stats::stats(engine, conn, req, id),
        ("GET" | "HEAD" | "PUT", ["containers", id, "archive"]) => {
            archive::archive(engine, conn, req, id)
        }
        ("GET", ["system", "df"]) => stats::df(engine, conn, req),
        ("GET", ["networks"]) => networks::list(engine, conn, req),
        ("POST", ["networks", "create"]) => networks::create(engine, conn, req),
        ("POST", ["networks", "prune"]) => networks::prune(engine, conn, req),
        ("GET", ["networks", id]) => networks::inspect(engine, conn, req, id),
        ("DELETE", ["networks", id]) => networks::remove(engine, conn, req, id),
        ("POST", ["networks", id, "connect"]) => networks::connect(engine, conn, req, id),
        ("POST", ["networks", id, "disconnect"]) => networks::disconnect(engine, conn, req, id),
        ("GET", ["volumes"]) => volumes::list(engine, conn, req),
        ("POST", ["volumes", "create"]) => volumes::create(engine, conn, req),
        ("POST", ["volumes", "prune"]) => volumes::prune(engine, conn, req),
        ("GET", ["volumes", name]) => volumes::inspect(engine, conn, req, name),
        ("DELETE", ["volumes", name]) => volumes::remove(engine, conn, req, name),
        _ => not_routed(engine, conn, req, &parts),
    }
}

/// Paths with a name that may hold slashes (images), swarm and plugin
/// paths answered as podman answers them, and everything else.
fn not_routed(engine: &Engine, conn: &mut Conn<Stream>, req: &Request, parts: &[&str]) -> Handled {
    let method = req.method.as_str();
    if parts.first() == Some(&"images") && parts.len() >= 2 {
        let last = parts[parts.len() - 1];
        let name = parts[1..parts.len() - 1].join("/");
        match (method, last) {
            ("GET", "json") if parts.len() > 2 => return images::inspect(engine, conn, &name),
            ("POST", "tag") if parts.len() > 2 => return images::tag(engine, conn, req, &name),
            ("GET", "history") if parts.len() > 2 => {
                return images::history(engine, conn, req, &name)
            }
            ("POST", "push") if parts.len() > 2 => return images::push(engine, conn, req, &name),
            ("GET", "get") if parts.len() > 2 => {
                return images::save(engine, conn, req, Some(&name))
            }
            _ => {}
        }
        if method == "DELETE" {
            return images::remove(engine, conn, req, &parts[1..].join("/"));
        }
    }
    let _ = conn.read_body(req, http::MAX_JSON_BODY);
    let w = &mut conn.stream;
    match parts.first().copied() {
        Some("swarm" | "services" | "nodes" | "tasks" | "secrets" | "configs") => error(
            w,
            503,
            "This node is not a swarm manager: burrow does not support swarm services",
        ),
        Some("plugins" | "distribution") => error(
            w,
            404,
            &format!("Path {} is not supported by burrow", req.path),
        ),
        _ => error(w, 404, &format!("page not found: {method} {}", req.path)),
    }
}

/// A JSON object of strings (`Labels`, `Options`, `DriverOpts`); `null`
/// is empty, anything else is refused naming `field`.
pub fn string_map(
    v: &Value,
    field: &str,
) -> Result<std::collections::BTreeMap<String, String>, BadRequest> {
    match v {
        Value::Null => Ok(Default::default()),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(BadRequest::NotString {
                    field: field.to_string(),
                    key: k.clone(),
                }),
            })
            .collect(),
        _ => Err(BadRequest::NotStrings {
            field: field.to_string(),
        }),
    }
}

/// Whether API version `a` is below `b` (`1.9` < `1.24`).
pub fn version_below(a: &str, b: &str) -> bool {
    let parse = |v: &str| -> Vec<u32> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parse(a) < parse(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_number() {
        assert!(version_below("1.9", "1.24"));
        assert!(!version_below("1.41", "1.24"));
        assert!(!version_below("1.24", "1.24"));
    }
}
