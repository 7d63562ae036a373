//! Image endpoints: pull (`POST /images/create`) with Docker's progress
//! records, list, inspect and tag.

use serde_json::{json, Value};

use super::http::{self, Chunked, Conn, Request};
use super::server::Stream;
use super::{empty, engine_error, error, reply, Handled, Next};
use crate::engine::{self, images::PullRequest, Engine};
use crate::image::catalog;
use crate::image::pull::Progress;
use crate::image::reference::Reference;
use crate::image::registry::ClientOptions;

/// `fromImage` and `tag` as one reference (`tag` may be a digest).
fn reference_of(from: &str, tag: Option<&str>) -> Result<Reference, String> {
    let name = match tag.filter(|t| !t.is_empty()) {
        Some(t) if t.starts_with("sha256:") => format!("{from}@{t}"),
        Some(t) => format!("{from}:{t}"),
        None => from.to_string(),
    };
    Reference::parse(&name).map_err(|e| e.to_string())
}

/// `POST /images/create?fromImage=&tag=&platform=`: pull, answered as a
/// stream of progress records. A pull that fails before anything was
/// sent is an HTTP error (404 for an image the registry does not have).
pub fn create(engine: &Engine, conn: &mut Conn<Stream>, req: &Request) -> Handled {
    let _ = conn.read_body(req, http::MAX_JSON_BODY);
    let Some(from) = req.param("fromImage").filter(|f| !f.is_empty()) else {
        return error(
            &mut conn.stream,
            501,
            "burrow imports images with `burrow import`; fromSrc is not served",
        );
    };
    let reference = match reference_of(from, req.param("tag")) {
        Ok(r) => r,
        Err(e) => return error(&mut conn.stream, 400, &e),
    };
    let preq = PullRequest {
        reference: reference.clone(),
        platform: req
            .param("platform")
            .filter(|p| !p.is_empty())
            .map(str::to_string),
        registry: ClientOptions::default(),
        progress: Progress::Quiet,
    };
    let before = catalog::resolve(&engine.store, &reference.to_string()).ok();
    let mut sink = engine::Collect::default();
    let pulled = if reference.to_string() == "docker.io/library/hello-world:latest" {
        engine::images::find_or_pull(
            engine,
            from,
            engine::images::PullPolicy::Missing,
            &preq,
            &mut sink,
        )
        .map(|id| (id, String::new()))
    } else {
        engine::images::pull(engine, &preq, &mut sink).map(|p| (p.id, p.digest))
    };
    let (id, digest) = match pulled {
        Ok(p) => p,
        Err(engine::Error::Pull { not_found: true, cause }) => {
            return error(
                &mut conn.stream,
                404,
                &format!(
                    "pull access denied for {}, repository does not exist or may require 'docker login': {}",
                    reference.short_repository(),
                    crate::util::message::one_line(&cause)
                ),
            )
        }
        Err(e) => return engine_error(&mut conn.stream, &e),
    };
    let tag = reference.tag.clone().unwrap_or_else(|| "latest".into());
    let mut s = Chunked::start(&mut conn.stream, 200, "application/json")?;
    s.json(
        &json!({"status": format!("Pulling from {}", reference.short_repository()), "id": tag}),
    )?;
    if !digest.is_empty() {
        s.json(&json!({"status": format!("Digest: {digest}")}))?;
    }
    let status = if before.as_deref() == Some(id.as_str()) {
        format!("Status: Image is up to date for {}", reference.short())
    } else {
        format!("Status: Downloaded newer image for {}", reference.short())
    };
    s.json(&json!({"status": status}))?;
    s.finish()?;
    Ok(Next::Continue)
}

fn summary_json(s: &catalog::ImageSummary) -> Value {
    let created = humantime::parse_rfc3339_weak(&s.created)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let tags: Vec<String> = s.tags.iter().map(|t| t.short()).collect();
    json!({
        "Id": s.id,
        "ParentId": "",
        "RepoTags": if tags.is_empty() { vec!["<none>:<none>".to_string()] } else { tags },
        "RepoDigests": s.repo_digests,
        "Created": created,
        "Size": s.size,
        "SharedSize": -1,
        "VirtualSize": s.size,
        "Labels": s.runtime.labels,
        "Containers": -1,
    })
}

/// `GET /images/json`.
pub fn list(engine: &Engine, conn: &mut Conn<Stream>, req: &Request) -> Handled {
    let _ = conn.read_body(req, http::MAX_JSON_BODY);
    let lreq = match super::containers::filters(req) {
        Ok(filters) => engine::catalog::ImageListRequest {
            all: req.flag("all", false),
            filters,
            digests: req.flag("digests", false),
            repository: None,
        },
        Err(e) => return engine_error(&mut conn.stream, &e),
    };
    match engine::catalog::list(engine, &lreq) {
        Ok(entries) => {
            let out: Vec<Value> = entries.iter().map(|e| summary_json(&e.summary)).collect();
            reply(&mut conn.stream, 200, &Value::Array(out))
        }
        Err(e) => engine_error(&mut conn.stream, &e),
    }
}

/// `GET /images/{name}/json`.
pub fn inspect(engine: &Engine, conn: &mut Conn<Stream>, name: &str) -> Handled {
    match engine::catalog::inspect(engine, name) {
        Ok(mut v) => {
            v["ContainerConfig"] = v["Config"].clone();
            v["Parent"] = "".into();
            v["Comment"] = "".into();
            v["DockerVersion"] = "".into();
            v["Author"] = "".into();
            v["VirtualSize"] = v["Size"].clone();
            v["GraphDriver"] = json!({"Name": "overlay", "Data": null});
            v["Metadata"] = json!({"LastTagTime": "0001-01-01T00:00:00Z"});
            reply(&mut conn.stream, 200, &v)
        }
        Err(engine::Error::NotFound(_)) => {
            error(&mut conn.stream, 404, &format!("No such image: {name}"))
        }
        Err(e) => engine_error(&mut conn.stream, &e),
    }
}

/// `POST /images/{name}/tag?repo=&tag=`.
pub fn tag(engine: &Engine, conn: &mut Conn<Stream>, req: &Request, name: &str) -> Handled {
    let _ = conn.read_body(req, http::MAX_JSON_BODY);
    let Some(repo) = req.param("repo").filter(|r| !r.is_empty()) else {
        return error(&mut conn.stream, 400, "repository name (repo) is required");
    };
    let target = match req.param("tag").filter(|t| !t.is_empty()) {
        Some(t) => format!("{repo}:{t}"),
        None => repo.to_string(),
    };
    match engine::catalog::tag(engine, name, &target) {
        Ok(()) => empty(&mut conn.stream, 201),
        Err(e) => engine_error(&mut conn.stream, &e),
    }
}
