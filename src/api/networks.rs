//! Network endpoints: list (with filters), inspect, create, connect and
//! disconnect (before a container starts), prune and remove, in Docker's
//! shapes: inspect gives back the labels and options a network was made
//! with, which Compose compares.

use serde_json::{json, Value};

use super::http::{self, Conn, Request};
use super::server::Stream;
use super::{bad_request, empty, engine_error, error, json_body, reply, BadRequest, Handled};
use crate::engine::filters::Filters;
use crate::engine::networks::{self, NetworkRequest};
use crate::engine::{self, Engine};
use crate::network::user::Network;

/// The `filters` query as the engine's filters; a bad one is a 400.
pub fn filters_of(req: &Request) -> Result<Filters, engine::Error> {
    Filters::from_json(req.param("filters").unwrap_or(""))
}

/// The fields Docker shows for every network, around the stored ones.
fn shaped(mut v: Value) -> Value {
    v["Attachable"] = false.into();
    v["Ingress"] = false.into();
    v["ConfigFrom"] = json!({ "Network": "" });
    v["ConfigOnly"] = false.into();
    if v["Options"].is_null() {
        v["Options"] = json!({});
    }
    if v["Containers"].is_null() {
        v["Containers"] = json!({});
    }
    if v["IPAM"]["Options"].is_null() {
        v["IPAM"]["Options"] = json!({});
    }
    v
}

fn listed(n: &Network) -> Value {
    shaped(serde_json::to_value(n).unwrap_or_default())
}

/// `GET /networks?filters=`.
pub fn list(engine: &Engine, conn: &mut Conn<Stream>, req: &Request) -> Handled {
    let _ = conn.read_body(req, http::MAX_JSON_BODY);
    let found = filters_of(req).and_then(|f| networks::list(engine, &f));
    match found {
        Ok(nets) => reply(
            &mut conn.stream,
            200,
            &Value::Array(nets.iter().map(listed).collect()),
        ),
        Err(e) => engine_error(&mut conn.stream, &e),
    }
}

/// `GET /networks/{id}`.
pub fn inspect(engine: &Engine, conn: &mut Conn<Stream>, req: &Request, id: &str) -> Handled {
    let _ = conn.read_body(req, http::MAX_JSON_BODY);
    match networks::inspect(engine, id) {
        Ok(v) => reply(&mut conn.stream, 200, &shaped(v)),
        Err(e) => engine_error(&mut conn.stream, &e),
    }
}

fn text(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

/// Docker's create body as the engine's request.
pub fn create_request(body: &Value) -> Result<NetworkRequest, BadRequest> {
    let name = text(&body["Name"]).ok_or(BadRequest::Missing("the network needs a Name"))?;
    let config = &body["IPAM"]["Config"];
    let first = config.as_array().and_then(|c| c.first());
    if config.as_array().is_some_and(|c| c.len() > 1) {
        return Err(BadRequest::ManyIpamConfigs);
    }
    Ok(NetworkRequest {
        name,
        labels: super::string_map(&body["Labels"], "Labels")?,
        subnet: first.and_then(|c| text(&c["Subnet"])),
        gateway: first.and_then(|c| text(&c["Gateway"])),
        internal: body["Internal"].as_bool().unwrap_or(false),
        driver: text(&body["Driver"]),
        options: super::string_map(&body["Options"], "Options")?,
        check_duplicate: body["CheckDuplicate"].as_bool().unwrap_or(false),
        enable_ipv6: body["EnableIPv6"].as_bool().unwrap_or(false),
    })
}

/// `POST /networks/create`: 201 `{"Id","Warning"}`.
pub fn create(engine: &Engine, conn: &mut Conn<Stream>, req: &Request) -> Handled {
    let body = match json_body(conn, req) {
        Ok(b) => b,
        Err(e) => return bad_request(&mut conn.stream, &e),
    };
    let nreq = match create_request(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(&mut conn.stream, &e),
    };
    match networks::create(engine, &nreq) {
        Ok(n) => reply(&mut conn.stream, 201, &json!({ "Id": n.id, "Warning": "" })),
        Err(e) => engine_error(&mut conn.stream, &e),
    }
}

/// `POST /networks/{id}/connect`: `{"Container", "EndpointConfig":
/// {"Aliases"}}`; a container that has not started joins when it starts.
pub fn connect(engine: &Engine, conn: &mut Conn<Stream>, req: &Request, id: &str) -> Handled {
    let body = match json_body(conn, req) {
        Ok(b) => b,
        Err(e) => return bad_request(&mut conn.stream, &e),
    };
    let Some(container) = text(&body["Container"]) else {
        return error(&mut conn.stream, 400, "Container is required");
    };
    let aliases: Vec<String> = body["EndpointConfig"]["Aliases"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    match networks::connect(engine, id, &container, &aliases) {
        Ok(()) => empty_ok(conn),
        Err(e) => engine_error(&mut conn.stream, &e),
    }
}

/// `POST /networks/{id}/disconnect`: `{"Container", "Force"}`.
pub fn disconnect(engine: &Engine, conn: &mut Conn<Stream>, req: &Request, id: &str) -> Handled {
    let body = match json_body(conn, req) {
        Ok(b) => b,
        Err(e) => return bad_request(&mut conn.stream, &e),
    };
    let Some(container) = text(&body["Container"]) else {
        return error(&mut conn.stream, 400, "Container is required");
    };
    match networks::disconnect(engine, id, &container) {
        Ok(()) => empty_ok(conn),
        Err(e) => engine_error(&mut conn.stream, &e),
    }
}

/// Docker answers connect and disconnect with a 200 and no body.
fn empty_ok(conn: &mut Conn<Stream>) -> Handled {
    empty(&mut conn.stream, 200)
}

/// `POST /networks/prune?filters=`.
pub fn prune(engine: &Engine, conn: &mut Conn<Stream>, req: &Request) -> Handled {
    let _ = conn.read_body(req, http::MAX_JSON_BODY);
    match filters_of(req).and_then(|f| networks::prune(engine, &f)) {
        Ok(names) => reply(&mut conn.stream, 200, &json!({ "NetworksDeleted": names })),
        Err(e) => engine_error(&mut conn.stream, &e),
    }
}

/// `DELETE /networks/{id}`: 204.
pub fn remove(engine: &Engine, conn: &mut Conn<Stream>, req: &Request, id: &str) -> Handled {
    let _ = conn.read_body(req, http::MAX_JSON_BODY);
    match networks::remove(engine, id) {
        Ok(()) => empty(&mut conn.stream, 204),
        Err(e) => engine_error(&mut conn.stream, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_create_body() {
        let body = json!({
            "Name": "proj_default",
            "CheckDuplicate": true,
            "Driver": "bridge",
            "Internal": false,
            "Options": {},
            "IPAM": {"Driver": "default", "Config": [{"Subnet": "10.77.0.0/24", "Gateway": "10.77.0.1"}]},
            "Labels": {"com.docker.compose.project": "proj", "com.docker.compose.network": "default"},
        });
        let r = create_request(&body).unwrap();
        assert_eq!(r.name, "proj_default");
        assert_eq!(r.subnet.as_deref(), Some("10.77.0.0/24"));
        assert_eq!(r.gateway.as_deref(), Some("10.77.0.1"));
        assert_eq!(r.labels["com.docker.compose.project"], "proj");
        assert!(r.options.is_empty() && r.check_duplicate);
        assert!(create_request(&json!({"Driver": "bridge"})).is_err());
        assert!(create_request(&json!({"Name": "x", "Labels": {"a": 1}})).is_err());
        let v = shaped(json!({"Name": "n", "IPAM": {"Driver": "default", "Config": []}}));
        assert_eq!(v["Options"], json!({}));
        assert_eq!(v["Containers"], json!({}));
        assert_eq!(v["ConfigFrom"]["Network"], "");
    }
}
