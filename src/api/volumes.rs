//! Volume endpoints: list (with filters), inspect, create, prune and
//! remove, in Docker's shapes.

use serde_json::{json, Value};

use super::http::{self, Conn, Request};
use super::networks::filters_of;
use super::server::Stream;
use super::{
    bad_request, empty, engine_error, json_body, reply, version_below, BadRequest, Handled,
};
use crate::engine::volumes::{self, VolumeRequest};
use crate::engine::Engine;

/// `GET /volumes?filters=`: `{"Volumes": [...], "Warnings": []}`.
pub fn list(engine: &Engine, conn: &mut Conn<Stream>, req: &Request) -> Handled {
    let _ = conn.read_body(req, http::MAX_JSON_BODY);
    match filters_of(req).and_then(|f| volumes::list(engine, &f)) {
        Ok(entries) => {
            let vols: Vec<Value> = entries
                .iter()
                .map(|e| serde_json::to_value(&e.volume).unwrap_or_default())
                .collect();
            reply(
                &mut conn.stream,
                200,
                &json!({ "Volumes": vols, "Warnings": [] }),
            )
        }
        Err(e) => engine_error(&mut conn.stream, &e),
    }
}

/// `GET /volumes/{name}`.
pub fn inspect(engine: &Engine, conn: &mut Conn<Stream>, req: &Request, name: &str) -> Handled {
    let _ = conn.read_body(req, http::MAX_JSON_BODY);
    match volumes::inspect(engine, name) {
        Ok(v) => reply(&mut conn.stream, 200, &v),
        Err(e) => engine_error(&mut conn.stream, &e),
    }
}

/// Docker's create body (`Name`, `Driver`, `DriverOpts`, `Labels`) as the
/// engine's request.
pub fn create_request(body: &Value) -> Result<VolumeRequest, BadRequest> {
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
    Ok(VolumeRequest {
        name: text(&body["Name"]),
        labels: super::string_map(&body["Labels"], "Labels")?,
        driver: text(&body["Driver"]),
        options: super::string_map(&body["DriverOpts"], "DriverOpts")?,
    })
}

/// `POST /volumes/create`: 201 and the volume.
pub fn create(engine: &Engine, conn: &mut Conn<Stream>, req: &Request) -> Handled {
    let body = match json_body(conn, req) {
        Ok(b) => b,
        Err(e) => return bad_request(&mut conn.stream, &e),
    };
    let vreq = match create_request(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(&mut conn.stream, &e),
    };
    match volumes::create(engine, &vreq).and_then(|v| volumes::inspect(engine, &v.name)) {
        Ok(v) => reply(&mut conn.stream, 201, &v),
        Err(e) => engine_error(&mut conn.stream, &e),
    }
}

/// `POST /volumes/prune?filters=`: every unused volume before API 1.42,
/// only anonymous ones from it on (unless `all=true`), as Docker.
pub fn prune(engine: &Engine, conn: &mut Conn<Stream>, req: &Request) -> Handled {
    let _ = conn.read_body(req, http::MAX_JSON_BODY);
    let all = version_below(req.version.as_deref().unwrap_or(super::API_VERSION), "1.42");
    match filters_of(req).and_then(|f| volumes::prune(engine, all, &f)) {
        Ok((names, space)) => reply(
            &mut conn.stream,
            200,
            &json!({ "VolumesDeleted": names, "SpaceReclaimed": space }),
        ),
        Err(e) => engine_error(&mut conn.stream, &e),
    }
}

/// `DELETE /volumes/{name}?force=`: 204.
pub fn remove(engine: &Engine, conn: &mut Conn<Stream>, req: &Request, name: &str) -> Handled {
    let _ = conn.read_body(req, http::MAX_JSON_BODY);
    match volumes::remove(engine, name, req.flag("force", false)) {
        Ok(_) => empty(&mut conn.stream, 204),
        Err(e) => engine_error(&mut conn.stream, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_body() {
        let r = create_request(&json!({
            "Name": "data", "Driver": "local", "DriverOpts": {}, "Labels": {"a": "b"}
        }))
        .unwrap();
        assert_eq!(r.name.as_deref(), Some("data"));
        assert_eq!(r.driver.as_deref(), Some("local"));
        assert_eq!(r.labels["a"], "b");
        assert!(create_request(&json!({})).unwrap().name.is_none());
        assert!(create_request(&json!({"Labels": ["a"]})).is_err());
    }
}
