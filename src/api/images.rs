//! Image endpoints: pull (`POST /images/create`) and push with Docker's
//! progress records, list, inspect, history, tag, remove, prune, and
//! images as archives (`get`, `load`).

use serde_json::{json, Value};

use super::http::{self, Chunked, Conn, Request};
use super::server::Stream;
use super::{bad_request, empty, engine_error, error, reply, BadRequest, Handled, Next};
use crate::engine::catalog::Removed;
use crate::engine::{self, images::PullRequest, Engine};
use crate::image::archive::{LoadSource, SaveFormat, SaveTarget};
use crate::image::catalog;
use crate::image::pull::Progress;
use crate::image::reference::Reference;
use crate::image::registry::auth::Credential;
use crate::image::registry::ClientOptions;

/// `fromImage` and `tag` as one reference (`tag` may be a digest).
fn reference_of(from: &str, tag: Option<&str>) -> Result<Reference, BadRequest> {
    let name = match tag.filter(|t| !t.is_empty()) {
        Some(t) if t.starts_with("sha256:") => format!("{from}@{t}"),
        Some(t) => format!("{from}:{t}"),
        None => from.to_string(),
    };
    Ok(Reference::parse(&name)?)
}

/// `POST /images/create?fromImage=&tag=&platform=`: pull, answered as a
/// stream of the engine's progress records from the first one on. A pull
/// that fails before anything was sent is an HTTP error (404 for an image
/// the registry does not have); after, the error ends the stream.
pub fn create(engine: &Engine, conn: &mut Conn<Stream>, req: &Request) -> Handled {
    if req.param("fromSrc").is_some() {
        return import(engine, conn, req);
    }
    let _ = conn.read_body(req, http::MAX_JSON_BODY);
    let Some(from) = req.param("fromImage").filter(|f| !f.is_empty()) else {
        return error(&mut conn.stream, 400, "fromImage or fromSrc is required");
    };
    let reference = match reference_of(from, req.param("tag")) {
        Ok(r) => r,
        Err(e) => return bad_request(&mut conn.stream, &e),
    };
    let registry = match registry_options(req) {
        Ok(r) => r,
        Err(e) => return bad_request(&mut conn.stream, &e),
    };
    let preq = PullRequest {
        reference: reference.clone(),
        platform: req
            .param("platform")
            .filter(|p| !p.is_empty())
            .map(str::to_string),
        registry,
        progress: Progress::Lines,
    };
    let before = catalog::resolve(&engine.store, &reference.to_string()).ok();
    let mut sink = StreamSink::new(&mut conn.stream);
    // The pull policy's own rule serves `hello-world` from burrow itself.
    let pulled = engine::images::find_or_pull(
        engine,
        from,
        engine::images::PullPolicy::Always,
        &preq,
        &mut sink,
    );
    match pulled {
        Ok(id) => {
            if !sink.done {
                // The built-in image says no `Done` of its own.
                let status = if before.as_deref() == Some(id.as_str()) {
                    format!("Status: Image is up to date for {}", reference.short())
                } else {
                    format!("Status: Downloaded newer image for {}", reference.short())
                };
                sink.record(&json!({ "status": status }));
            }
            sink.finish()
        }
        Err(engine::Error::Pull {
            not_found: true,
            cause,
        }) if !sink.started() => error(
            sink.into_stream(),
            404,
            &format!(
                "pull access denied for {}, repository does not exist or may require 'docker login': {}",
                reference.short_repository(),
                crate::util::message::one_line_of(&cause)
            ),
        ),
        Err(e) => sink.fail(&e),
    }
}

/// `POST /images/create?fromSrc=-&repo=&tag=&message=&changes=`: the body
/// (a root filesystem tarball) as an image, answered as Docker answers,
/// with the new id as a progress record. Only `-` (the body) is a source:
/// a URL would have the service fetch from wherever a client names.
fn import(engine: &Engine, conn: &mut Conn<Stream>, req: &Request) -> Handled {
    if req.param("fromSrc") != Some("-") {
        let _ = conn.read_body(req, http::MAX_JSON_BODY);
        return error(
            &mut conn.stream,
            400,
            "only fromSrc=- (the archive in the body) is served",
        );
    }
    let reference = new_name(req);
    let ireq = engine::images::ImportRequest {
        changes: changes(req),
        reference,
        comment: req.param("message").unwrap_or("").to_string(),
        total_bytes: None,
    };
    let imported = match conn.body(req) {
        Ok(body) => engine::images::import(engine, body, ireq),
        Err(e) => return error(&mut conn.stream, 400, &e.to_string()),
    };
    match imported {
        Ok(done) => {
            let mut sink = StreamSink::new(&mut conn.stream);
            sink.record(&json!({ "status": done.id }));
            sink.finish()
        }
        Err(e) => {
            // The rest of a body the import stopped reading cannot be told
            // from a next request: the connection ends with the answer.
            engine_error(&mut conn.stream, &e)?;
            Ok(Next::Close)
        }
    }
}

/// A sink that answers with a chunked stream of Docker's JSON records,
/// started at the first record: until then, a failure can still be an
/// HTTP status.
pub struct StreamSink<'a> {
    state: SinkState<'a>,
    /// A pull's `Done` went by.
    pub done: bool,
    /// A pull's "Pulling from" record, held until the next one: Docker
    /// says it once the manifest is found, so a missing image is still an
    /// HTTP 404.
    held: Option<Value>,
}

enum SinkState<'a> {
    Idle(&'a mut Stream),
    Started(Chunked<'a, Stream>),
    /// The client went away: the rest is dropped.
    Gone,
}

impl<'a> StreamSink<'a> {
    pub fn new(w: &'a mut Stream) -> Self {
        StreamSink {
            state: SinkState::Idle(w),
            done: false,
            held: None,
        }
    }

    pub fn started(&self) -> bool {
        !matches!(self.state, SinkState::Idle(_))
    }

    /// Send one record, starting the stream first if need be.
    pub fn record(&mut self, v: &Value) {
        if let Some(h) = self.held.take() {
            self.send(&h);
        }
        self.send(v);
    }

    fn send(&mut self, v: &Value) {
        let state = std::mem::replace(&mut self.state, SinkState::Gone);
        self.state = match state {
            SinkState::Idle(w) => match Chunked::start(w, 200, "application/json") {
                Ok(mut s) => match s.json(v) {
                    Ok(()) => SinkState::Started(s),
                    Err(_) => SinkState::Gone,
                },
                Err(_) => SinkState::Gone,
            },
            SinkState::Started(mut s) => match s.json(v) {
                Ok(()) => SinkState::Started(s),
                Err(_) => SinkState::Gone,
            },
            SinkState::Gone => SinkState::Gone,
        };
    }

    /// The connection, for an HTTP error before the stream started.
    fn into_stream(self) -> &'a mut Stream {
        match self.state {
            SinkState::Idle(w) => w,
            _ => unreachable!("the stream has started"),
        }
    }

    /// End the stream (an empty one if nothing was sent).
    pub fn finish(mut self) -> Handled {
        if let Some(h) = self.held.take() {
            self.send(&h);
        }
        match self.state {
            SinkState::Idle(w) => Chunked::start(w, 200, "application/json")?.finish()?,
            SinkState::Started(s) => s.finish()?,
            SinkState::Gone => return Ok(Next::Close),
        }
        Ok(Next::Continue)
    }

    /// A failure: its HTTP status before the stream started, else Docker's
    /// error record to end it.
    pub fn fail(mut self, e: &engine::Error) -> Handled {
        if !self.started() {
            return engine_error(self.into_stream(), e);
        }
        self.record(&engine::images::json_error(
            &crate::util::message::one_line_of(e),
        ));
        self.finish()
    }
}

impl engine::Sink for StreamSink<'_> {
    fn event(&mut self, event: engine::Event) {
        use crate::image::progress::PullEvent;
        match &event {
            engine::Event::Pull(PullEvent::Done { .. }) => self.done = true,
            engine::Event::Pull(PullEvent::Pulling { .. }) if !self.started() => {
                self.held = engine::images::json_messages(&event).into_iter().next();
                return;
            }
            _ => {}
        }
        for v in engine::images::json_messages(&event) {
            self.record(&v);
        }
    }
}

/// `X-Registry-Auth`: base64url JSON `{"username", "password",
/// "serveraddress"}` (or `"auth"`: base64 `user:password`); empty or `{}`
/// is none.
pub fn registry_auth(header: Option<&str>) -> Result<Option<Credential>, BadRequest> {
    use base64::Engine as _;
    let Some(h) = header.map(str::trim).filter(|h| !h.is_empty()) else {
        return Ok(None);
    };
    let b64 = base64::engine::general_purpose::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let std = base64::engine::general_purpose::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let raw = b64
        .decode(h)
        .or_else(|_| std.decode(h))
        .map_err(BadRequest::AuthBase64)?;
    let v: Value = serde_json::from_slice(&raw).map_err(BadRequest::AuthJson)?;
    let field = |k: &str| v[k].as_str().filter(|s| !s.is_empty()).map(str::to_string);
    if let (Some(username), Some(secret)) = (field("username"), field("password")) {
        return Ok(Some(Credential { username, secret }));
    }
    if let Some(auth) = field("auth") {
        let pair = std
            .decode(auth.trim())
            .map_err(BadRequest::AuthPairBase64)?;
        let pair = String::from_utf8_lossy(&pair);
        if let Some((u, p)) = pair.split_once(':') {
            return Ok(Some(Credential {
                username: u.to_string(),
                secret: p.to_string(),
            }));
        }
    }
    if let Some(token) = field("identitytoken") {
        return Ok(Some(Credential {
            username: "<token>".into(),
            secret: token,
        }));
    }
    Ok(None)
}

/// How to reach the registry for this request: with its credential.
fn registry_options(req: &Request) -> Result<ClientOptions, BadRequest> {
    Ok(ClientOptions {
        credential: registry_auth(req.header("x-registry-auth"))?,
        ..ClientOptions::default()
    })
}

pub fn summary_json(s: &catalog::ImageSummary) -> Value {
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

/// `repo` and `tag` of a commit or an import as one name; none without a
/// `repo`.
fn new_name(req: &Request) -> Option<String> {
    match (
        req.param("repo").unwrap_or(""),
        req.param("tag").unwrap_or(""),
    ) {
        ("", _) => None,
        (repo, "") => Some(repo.to_string()),
        (repo, tag) => Some(format!("{repo}:{tag}")),
    }
}

/// `changes`: Dockerfile instructions, a parameter each or a line each.
fn changes(req: &Request) -> Vec<String> {
    req.params("changes")
        .iter()
        .flat_map(|c| c.lines())
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// `POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=`:
/// the container's changes as a new image, `201 {"Id"}`. A config in the
/// body is not applied: `changes` (Dockerfile instructions) are.
pub fn commit(engine: &Engine, conn: &mut Conn<Stream>, req: &Request) -> Handled {
    let config = match super::json_body(conn, req) {
        Ok(v) => v,
        Err(e) => return bad_request(&mut conn.stream, &e),
    };
    if config.as_object().is_some_and(|o| !o.is_empty()) {
        return error(
            &mut conn.stream,
            400,
            "a container config in a commit's body is not supported: give Dockerfile instructions in changes",
        );
    }
    let Some(container) = req.param("container").filter(|c| !c.is_empty()) else {
        return error(&mut conn.stream, 400, "container is required");
    };
    let reference = new_name(req);
    let creq = engine::changes::CommitRequest {
        changes: changes(req),
        comment: req.param("comment").unwrap_or("").to_string(),
        author: req.param("author").unwrap_or("").to_string(),
        reference,
        pause: req.flag("pause", true),
    };
    match engine::changes::commit(engine, container, creq) {
        Ok(done) => reply(&mut conn.stream, 201, &json!({ "Id": done.id })),
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

fn unix_seconds(rfc3339: &str) -> i64 {
    humantime::parse_rfc3339_weak(rfc3339)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64)
}

/// `GET /images/{name}/history`: newest step first; `Tags` on the rows
/// that are stored images.
pub fn history(engine: &Engine, conn: &mut Conn<Stream>, req: &Request, name: &str) -> Handled {
    let _ = conn.read_body(req, http::MAX_JSON_BODY);
    let rows = match engine::catalog::history(engine, name) {
        Ok(r) => r,
        Err(e) => return engine_error(&mut conn.stream, &e),
    };
    let out: Vec<Value> = rows
        .iter()
        .map(|r| {
            let tags: Option<Vec<String>> = r.id.as_deref().and_then(|id| {
                let s = engine::catalog::find(engine, id).ok()?;
                Some(s.tags.iter().map(|t| t.short()).collect())
            });
            json!({
                "Id": r.id.as_deref().unwrap_or("<missing>"),
                "Created": unix_seconds(&r.created),
                "CreatedBy": r.created_by,
                "Tags": tags.filter(|t| !t.is_empty()),
                "Size": r.size,
                "Comment": r.comment,
            })
        })
        .collect();
    reply(&mut conn.stream, 200, &Value::Array(out))
}

fn removed_json(r: &Removed) -> Value {
    match r {
        Removed::Untagged(t) => json!({ "Untagged": t }),
        Removed::Deleted(id) => json!({ "Deleted": id }),
    }
}

/// `DELETE /images/{name}?force=&noprune=`: what was untagged and deleted;
/// 409 for an image a container uses.
pub fn remove(engine: &Engine, conn: &mut Conn<Stream>, req: &Request, name: &str) -> Handled {
    let _ = conn.read_body(req, http::MAX_JSON_BODY);
    let force = req.flag("force", false);
    let prune = !req.flag("noprune", false);
    match engine::catalog::remove(engine, name, force, prune) {
        Ok(done) => reply(
            &mut conn.stream,
            200,
            &Value::Array(done.iter().map(removed_json).collect()),
        ),
        Err(e) => engine_error(&mut conn.stream, &e),
    }
}

/// `POST /images/prune?filters=`: `dangling=false` takes every image no
/// container uses.
pub fn prune(engine: &Engine, conn: &mut Conn<Stream>, req: &Request) -> Handled {
    let _ = conn.read_body(req, http::MAX_JSON_BODY);
    let pruned =
        super::networks::filters_of(req).and_then(|f| engine::catalog::prune(engine, false, &f));
    match pruned {
        Ok(p) => {
            let deleted: Vec<Value> = p.removed.iter().map(removed_json).collect();
            reply(
                &mut conn.stream,
                200,
                &json!({ "ImagesDeleted": deleted, "SpaceReclaimed": p.space }),
            )
        }
        Err(e) => engine_error(&mut conn.stream, &e),
    }
}

/// `POST /images/{name}/push?tag=`: the engine's push events as a stream
/// of Docker's records, started at the first one.
pub fn push(engine: &Engine, conn: &mut Conn<Stream>, req: &Request, name: &str) -> Handled {
    let _ = conn.read_body(req, http::MAX_JSON_BODY);
    let full = match req.param("tag").filter(|t| !t.is_empty()) {
        Some(t) => format!("{name}:{t}"),
        None => name.to_string(),
    };
    let destination = match Reference::parse(&full) {
        Ok(r) => r,
        Err(e) => return error(&mut conn.stream, 400, &e.to_string()),
    };
    let registry = match registry_options(req) {
        Ok(r) => r,
        Err(e) => return bad_request(&mut conn.stream, &e),
    };
    let preq = engine::images::PushRequest {
        image: full,
        destination,
        registry,
    };
    let mut sink = StreamSink::new(&mut conn.stream);
    match engine::images::push(engine, &preq, &mut sink) {
        Ok(_) => sink.finish(),
        Err(e) => sink.fail(&e),
    }
}

/// A whole answer whose body is a file, read from its start.
fn send_file(w: &mut Stream, content_type: &str, file: &mut std::fs::File) -> Handled {
    use std::io::{Seek, Write};
    let len = file.seek(std::io::SeekFrom::End(0))?;
    file.rewind()?;
    let mut head = String::from("HTTP/1.1 200 OK\r\n");
    for (k, v) in http::common_headers() {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Type: {content_type}\r\nContent-Length: {len}\r\n\r\n"
    ));
    w.write_all(head.as_bytes())?;
    std::io::copy(&mut std::io::Read::take(file, len), w)?;
    w.flush()?;
    Ok(Next::Continue)
}

/// A staging directory of the store for an archive on its way, removed
/// when dropped.
struct Staged<'a> {
    engine: &'a Engine,
    dir: std::path::PathBuf,
}

impl<'a> Staged<'a> {
    fn new(engine: &'a Engine) -> Result<Self, engine::Error> {
        let dir = engine.store.staging_dir("api")?;
        Ok(Staged { engine, dir })
    }
}

impl Drop for Staged<'_> {
    fn drop(&mut self) {
        let _ = crate::store::remove_tree(&self.dir, &self.engine.mapping);
    }
}

/// `GET /images/get?names=` and `GET /images/{name}/get`: the images as a
/// docker-archive, as `burrow save` writes it.
pub fn save(
    engine: &Engine,
    conn: &mut Conn<Stream>,
    req: &Request,
    name: Option<&str>,
) -> Handled {
    let _ = conn.read_body(req, http::MAX_JSON_BODY);
    let names: Vec<String> = match name {
        Some(n) => vec![n.to_string()],
        None => req
            .params("names")
            .into_iter()
            .map(str::to_string)
            .collect(),
    };
    for n in &names {
        if let Err(e) = engine::catalog::find(engine, n) {
            return engine_error(&mut conn.stream, &e);
        }
    }
    let written = Staged::new(engine).and_then(|staged| {
        let path = staged.dir.join("images.tar");
        engine::archives::save(
            engine,
            &names,
            SaveFormat::DockerArchive,
            &SaveTarget::File(path.clone()),
        )?;
        let file = std::fs::File::open(&path).map_err(|source| engine::Error::File {
            what: "opening",
            path: Some(path.clone()),
            source,
        })?;
        Ok((staged, file))
    });
    match written {
        Ok((_staged, mut file)) => send_file(&mut conn.stream, "application/x-tar", &mut file),
        Err(e) => engine_error(&mut conn.stream, &e),
    }
}

/// `POST /images/load?quiet=`: a docker-archive or OCI archive body, as
/// `burrow load` reads it; the answer is Docker's stream of
/// `{"stream":"Loaded image: x\n"}` records.
pub fn load(engine: &Engine, conn: &mut Conn<Stream>, req: &Request) -> Handled {
    let staged = match Staged::new(engine) {
        Ok(s) => s,
        Err(e) => {
            let _ = conn.read_body(req, http::MAX_JSON_BODY);
            return engine_error(&mut conn.stream, &e);
        }
    };
    let path = staged.dir.join("load.tar");
    let spooled = std::fs::File::create(&path).and_then(|mut f| {
        let mut body = conn
            .body(req)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
        std::io::copy(&mut body, &mut f)
    });
    if let Err(e) = spooled {
        return error(&mut conn.stream, 400, &format!("reading the archive: {e}"));
    }
    let report = match engine::archives::load(engine, &LoadSource::Path(path)) {
        Ok(r) => r,
        Err(e) => return engine_error(&mut conn.stream, &e),
    };
    drop(staged);
    let mut s = Chunked::start(&mut conn.stream, 200, "application/json")?;
    for img in &report.images {
        if img.tags.is_empty() {
            s.json(&json!({ "stream": format!("Loaded image ID: {}\n", img.id) }))?;
        }
        for t in &img.tags {
            s.json(&json!({ "stream": format!("Loaded image: {}\n", t.short()) }))?;
        }
    }
    s.finish()?;
    Ok(Next::Continue)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn registry_auth_forms() {
        let url = base64::engine::general_purpose::URL_SAFE;
        let h =
            url.encode(r#"{"username":"u","password":"p+/?","serveraddress":"localhost:5000"}"#);
        let c = registry_auth(Some(&h)).unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.secret.as_str()), ("u", "p+/?"));
        let auth = base64::engine::general_purpose::STANDARD.encode("a:b:c");
        let h = url.encode(format!(r#"{{"auth":"{auth}"}}"#));
        let c = registry_auth(Some(&h)).unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.secret.as_str()), ("a", "b:c"));
        assert!(registry_auth(Some(&url.encode("{}"))).unwrap().is_none());
        assert!(registry_auth(None).unwrap().is_none());
        assert!(registry_auth(Some("!!")).is_err());
    }

    #[test]
    fn references_from_the_query() {
        assert_eq!(
            reference_of("busybox", Some("1.36")).unwrap().short(),
            "busybox:1.36"
        );
        assert_eq!(
            reference_of("busybox", None).unwrap().short(),
            "busybox:latest"
        );
    }
}
