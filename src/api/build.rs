//! `POST /build`: a tar build context unpacked into a private staging
//! directory with the hardened layer extractor, built by the engine, and
//! the build's lines streamed back as Docker's JSON records.

use std::io::{self, Read};
use std::os::fd::AsFd;
use std::path::Path;

use serde_json::{json, Value};

use super::http::{Chunked, Conn, Request};
use super::server::Stream;
use super::{bad_request, error, BadRequest, Handled, Next};
use crate::build::BuildEvent;
use crate::engine::build::{BuildRequest, DockerfileSource};
use crate::engine::images::{json_error, json_messages};
use crate::engine::{self, Engine, Event, Sink};
use crate::image::layer::{apply_layer, ApplyOptions, IdPolicy};
use crate::linux::fs::openat_in_root;

/// The largest build context accepted, uncompressed.
pub const MAX_CONTEXT: u64 = 8 << 30;
/// Space left free on the store's filesystem while a context is unpacked.
const RESERVE: u64 = 256 << 20;
/// How often (in bytes read) free space is looked at again.
const SPACE_CHECK: u64 = 16 << 20;

/// Why a context was refused.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("the build context is larger than {} GiB", MAX_CONTEXT >> 30)]
    TooLarge,
    #[error("the build context would leave less than {} MiB free on the store's file system", RESERVE >> 20)]
    NoSpace,
    #[error("the build context is not a tar archive: {0}")]
    Compress(#[from] crate::image::compress::CompressError),
    #[error("unpacking the build context: {0}")]
    Layer(#[from] crate::image::layer::LayerError),
    #[error("Cannot locate specified Dockerfile: {0}")]
    NoDockerfile(String),
}

/// A reader that stops a stream at `MAX_CONTEXT` bytes, or when the disk
/// under `dir` is nearly full.
struct Bounded<'a, R> {
    inner: R,
    read: u64,
    next_check: u64,
    dir: &'a Path,
}

impl<R: Read> Read for Bounded<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > MAX_CONTEXT {
            return Err(io::Error::other(ContextError::TooLarge));
        }
        if self.read >= self.next_check {
            self.next_check = self.read + SPACE_CHECK;
            if let Ok(st) = nix::sys::statvfs::statvfs(self.dir) {
                if st.blocks_available() * st.fragment_size() < RESERVE {
                    return Err(io::Error::other(ContextError::NoSpace));
                }
            }
        }
        Ok(n)
    }
}

/// A tar stream completed to a whole block at its end: the docker CLI's
/// `build -f -` appends the Dockerfile as a last entry without the
/// padding after its data (Docker's daemon reads it anyway), which the
/// extractor would take for a stream cut inside an entry.
struct PadToBlock<R> {
    inner: R,
    read: u64,
    /// Zeros still to give once the stream ended.
    padding: Option<u64>,
}

impl<R: Read> Read for PadToBlock<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.padding.is_none() {
            let n = self.inner.read(buf)?;
            if n > 0 || buf.is_empty() {
                self.read += n as u64;
                return Ok(n);
            }
            self.padding = Some((512 - self.read % 512) % 512);
        }
        let left = self.padding.unwrap_or(0);
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        buf[..n].fill(0);
        self.padding = Some(left - n as u64);
        Ok(n)
    }
}

/// Unpack a build context (a tar, plain or compressed) into the empty
/// directory `dir`. The archive is hostile input: it goes through the
/// layer extractor, which refuses names that climb out, resolves every
/// path inside `dir` (a symlink in the archive cannot lead a later entry
/// outside), creates no device, and bounds entries and headers; files
/// belong to the caller. The reader is bounded in size and in the free
/// space it may take.
pub fn unpack_context(body: impl Read, dir: &Path) -> Result<(), ContextError> {
    let bounded = Bounded {
        inner: body,
        read: 0,
        next_check: 0,
        dir,
    };
    let (_, tar) = crate::image::compress::decoder(bounded)?;
    apply_layer(
        PadToBlock {
            inner: tar,
            read: 0,
            padding: None,
        },
        dir,
        &ApplyOptions {
            ids: IdPolicy::Collapse,
        },
    )?;
    Ok(())
}

/// Read a file of the unpacked context, symlinks resolved inside it as
/// Docker resolves the Dockerfile's path: never a file outside.
pub fn read_in_context(dir: &Path, rel: &str) -> Result<String, ContextError> {
    let missing = || ContextError::NoDockerfile(rel.to_string());
    let root = crate::linux::fs::open_dir(dir).map_err(|_| missing())?;
    let fd = openat_in_root(
        root.as_fd(),
        rel.trim_start_matches('/'),
        nix::fcntl::OFlag::O_RDONLY,
    )
    .map_err(|_| missing())?;
    let mut f = std::fs::File::from(fd);
    if !f.metadata().is_ok_and(|m| m.is_file()) {
        return Err(missing());
    }
    let mut text = String::new();
    Read::by_ref(&mut f)
        .take(crate::api::http::MAX_JSON_BODY as u64)
        .read_to_string(&mut text)
        .map_err(|_| missing())?;
    Ok(text)
}

/// A `.dockerignore` that is a symlink would have the builder read
/// whatever it names: it is replaced by the file it names inside the
/// context, or removed.
fn settle_dockerignore(dir: &Path) {
    let p = dir.join(".dockerignore");
    if std::fs::symlink_metadata(&p).is_ok_and(|m| !m.is_file()) {
        let text = read_in_context(dir, ".dockerignore").ok();
        let _ = std::fs::remove_file(&p).or_else(|_| std::fs::remove_dir_all(&p));
        if let Some(t) = text {
            let _ = std::fs::write(&p, t);
        }
    }
}

/// A JSON object of strings (`buildargs`, `labels`) as `KEY=VALUE` items;
/// a null value (an argument the client leaves to the environment) is
/// left out.
fn key_values(name: &str, text: Option<&str>) -> Result<Vec<String>, BadRequest> {
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let v: Value = serde_json::from_str(text).map_err(|source| BadRequest::QueryJson {
        name: name.to_string(),
        text: text.to_string(),
        source,
    })?;
    let Value::Object(map) = v else {
        return Err(BadRequest::QueryNotObject {
            name: name.to_string(),
            text: text.to_string(),
        });
    };
    let mut out = Vec::new();
    for (k, v) in map {
        match v {
            Value::Null => {}
            Value::String(s) => out.push(format!("{k}={s}")),
            other => out.push(format!("{k}={other}")),
        }
    }
    Ok(out)
}

/// The request's query as a build request of `context` (the Dockerfile
/// is filled in once the context is unpacked).
pub fn request_of(req: &Request, context: &Path) -> Result<BuildRequest, BadRequest> {
    let mut b = BuildRequest::new(context);
    b.tags = req
        .params("t")
        .into_iter()
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    b.build_args = key_values("buildargs", req.param("buildargs"))?;
    b.labels = key_values("labels", req.param("labels"))?;
    b.target = req
        .param("target")
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    b.quiet = req.flag("q", false);
    b.no_cache = req.flag("nocache", false);
    b.pull = req.flag("pull", false);
    b.forward_output = true;
    if let Some(n) = req.param("networkmode").filter(|n| !n.is_empty()) {
        b.network = n.to_string();
    }
    Ok(b)
}

/// The build's events as Docker's records on the answer. Docker says
/// "Successfully tagged" after "Successfully built": the builder's tag
/// lines are held until the end. Once the client is gone nothing more is
/// written; the build still runs to its end.
struct Records<'a, 'w> {
    out: &'a mut Chunked<'w, Stream>,
    held: Vec<String>,
    quiet: bool,
    gone: bool,
}

impl Records<'_, '_> {
    fn send(&mut self, v: &Value) {
        if !self.gone && self.out.json(v).is_err() {
            self.gone = true;
        }
    }
}

impl Sink for Records<'_, '_> {
    fn event(&mut self, event: Event) {
        match &event {
            Event::Notice { .. } => {}
            Event::Build(BuildEvent::Step(line)) if line.starts_with("Successfully tagged ") => {
                // Docker names the tag as the client wrote it: `app:1`.
                let name = &line["Successfully tagged ".len()..];
                let short = crate::image::reference::Reference::parse(name)
                    .map_or_else(|_| name.to_string(), |r| r.short());
                self.held.push(format!("Successfully tagged {short}"))
            }
            Event::Build(BuildEvent::Built(id)) if self.quiet => {
                self.send(
                    &json!({ "aux": { "ID": format!("sha256:{}", crate::store::hex_of(id)) } }),
                );
                self.send(&json!({ "stream": format!("sha256:{}\n", crate::store::hex_of(id)) }));
            }
            Event::Build(BuildEvent::Built(_)) => {
                for v in json_messages(&event) {
                    self.send(&v);
                }
                for line in std::mem::take(&mut self.held) {
                    self.send(&json!({ "stream": format!("{line}\n") }));
                }
            }
            _ => {
                for v in json_messages(&event) {
                    self.send(&v);
                }
            }
        }
    }
}

/// `POST /build`.
pub fn build(engine: &Engine, conn: &mut Conn<Stream>, req: &Request) -> Handled {
    if let Some(ct) = req.header("content-type").filter(|c| !c.is_empty()) {
        let base = ct.split(';').next().unwrap_or("").trim();
        if !base.eq_ignore_ascii_case("application/x-tar")
            && !base.eq_ignore_ascii_case("application/tar")
        {
            let _ = conn.read_body(req, super::http::MAX_JSON_BODY);
            return error(
                &mut conn.stream,
                400,
                &format!("Content-Type {ct:?} is not supported: send the build context as application/x-tar"),
            );
        }
    }
    if req.param("remote").is_some_and(|r| !r.is_empty()) {
        let _ = conn.read_body(req, super::http::MAX_JSON_BODY);
        return error(
            &mut conn.stream,
            400,
            "remote build contexts are not supported: send the context as a tar",
        );
    }
    let staging = match engine.store.staging("build-context", &engine.mapping) {
        Ok(s) => s,
        Err(e) => return error(&mut conn.stream, 500, &e.to_string()),
    };
    let mut breq = match request_of(req, &staging) {
        Ok(b) => b,
        Err(e) => {
            let _ = conn.read_body(req, super::http::MAX_JSON_BODY);
            return bad_request(&mut conn.stream, &e);
        }
    };
    let unpacked = match conn.body(req) {
        Ok(mut body) => {
            let r = unpack_context(&mut body, &staging);
            // What the decoder left unread (padding after the archive),
            // so the next request starts where it should.
            let _ = io::copy(&mut body, &mut io::sink());
            r
        }
        Err(e) => return error(&mut conn.stream, 400, &e.to_string()),
    };
    if let Err(e) = unpacked {
        // The rest of a refused body is not read: the connection ends.
        error(&mut conn.stream, 400, &e.to_string())?;
        return Ok(Next::Close);
    }
    settle_dockerignore(&staging);
    let dockerfile = req
        .param("dockerfile")
        .filter(|d| !d.is_empty())
        .unwrap_or("Dockerfile");
    match read_in_context(&staging, dockerfile) {
        Ok(text) => breq.dockerfile = DockerfileSource::Text(text),
        Err(e) => return error(&mut conn.stream, 400, &e.to_string()),
    }
    let mut out = Chunked::start(&mut conn.stream, 200, "application/json")?;
    let mut sink = Records {
        out: &mut out,
        held: Vec::new(),
        quiet: breq.quiet,
        gone: false,
    };
    if let Err(e) = engine::build::build(engine, &breq, &mut sink) {
        let m = crate::util::message::one_line_of(&e);
        sink.send(&json_error(&m));
    }
    let gone = sink.gone;
    drop(staging);
    if gone {
        return Ok(Next::Close);
    }
    out.finish()?;
    Ok(Next::Continue)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar of raw entries: (name, type, link target, data).
    fn tar_of(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, link, data) in entries {
            let mut h = tar::Header::new_gnu();
            {
                let raw = h.as_gnu_mut().unwrap();
                raw.name[..name.len()].copy_from_slice(name.as_bytes());
            }
            h.set_entry_type(*kind);
            h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
            h.set_size(data.len() as u64);
            if !link.is_empty() {
                h.set_link_name(link).unwrap();
            }
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    /// An empty directory `name` under `top`.
    fn fresh(top: &tempfile::TempDir, name: &str) -> std::path::PathBuf {
        let dir = top.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        dir
    }

    fn outside_untouched(parent: &Path) -> bool {
        std::fs::read_dir(parent).unwrap().count() == 1
    }

    #[test]
    fn a_plain_context_unpacks() {
        let top = tempfile::tempdir().unwrap();
        let dir = fresh(&top, "ctx");
        let t = tar_of(&[
            ("Dockerfile", tar::EntryType::Regular, "", b"FROM scratch\n"),
            ("src/", tar::EntryType::Directory, "", b""),
            ("src/a", tar::EntryType::Regular, "", b"a"),
            ("link", tar::EntryType::Symlink, "src/a", b""),
        ]);
        unpack_context(&t[..], &dir).unwrap();
        assert_eq!(
            read_in_context(&dir, "Dockerfile").unwrap(),
            "FROM scratch\n"
        );
        assert_eq!(std::fs::read(dir.join("src/a")).unwrap(), b"a");
        assert!(std::fs::symlink_metadata(dir.join("link"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(read_in_context(&dir, "link").unwrap(), "a");
    }

    #[test]
    fn hostile_contexts_stay_inside() {
        let top = tempfile::tempdir().unwrap();
        let dir = fresh(&top, "ctx");
        let climb = tar_of(&[("../evil", tar::EntryType::Regular, "", b"x")]);
        assert!(unpack_context(&climb[..], &dir).is_err());
        let deep = tar_of(&[("a/../../evil", tar::EntryType::Regular, "", b"x")]);
        assert!(unpack_context(&deep[..], &dir).is_err());
        assert!(outside_untouched(top.path()));

        // An absolute name lands inside, as in Docker.
        let dir2 = fresh(&top, "ctx2");
        let abs = tar_of(&[("/abs", tar::EntryType::Regular, "", b"x")]);
        unpack_context(&abs[..], &dir2).unwrap();
        assert!(dir2.join("abs").is_file());

        // A symlink out of the context, then a file through it: the file
        // is written inside.
        let out = fresh(&top, "out");
        let dir3 = fresh(&top, "ctx3");
        let through = tar_of(&[
            ("l", tar::EntryType::Symlink, out.to_str().unwrap(), b""),
            ("l/f", tar::EntryType::Regular, "", b"x"),
            ("up", tar::EntryType::Symlink, "../../..", b""),
            ("up/g", tar::EntryType::Regular, "", b"x"),
        ]);
        let _ = unpack_context(&through[..], &dir3);
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
        assert!(!top.path().join("g").exists());
        // The Dockerfile's path is resolved inside too.
        assert!(read_in_context(&dir3, "up/../../etc/passwd").is_err());
        let with_link = tar_of(&[("Dockerfile", tar::EntryType::Symlink, "/etc/passwd", b"")]);
        let dir4 = fresh(&top, "ctx4");
        unpack_context(&with_link[..], &dir4).unwrap();
        assert!(read_in_context(&dir4, "Dockerfile").is_err());

        // Devices are not made.
        let dir5 = fresh(&top, "ctx5");
        let dev = tar_of(&[("null", tar::EntryType::Char, "", b"")]);
        let _ = unpack_context(&dev[..], &dir5);
        assert!(!dir5.join("null").exists());
        // Not a tar.
        let dir6 = fresh(&top, "ctx6");
        assert!(unpack_context(&b"FROM scratch\n"[..], &dir6).is_err());
    }

    #[test]
    fn a_last_entry_without_its_padding_is_read() {
        let top = tempfile::tempdir().unwrap();
        let dir = fresh(&top, "ctx");
        let mut t = tar_of(&[("a", tar::EntryType::Regular, "", b"x")]);
        // Header, then one byte of data: as the docker CLI sends `-f -`.
        t.truncate(513);
        unpack_context(&t[..], &dir).unwrap();
        assert_eq!(std::fs::read(dir.join("a")).unwrap(), b"x");
    }

    #[test]
    fn a_symlinked_dockerignore_is_settled_inside() {
        let top = tempfile::tempdir().unwrap();
        let dir = fresh(&top, "ctx");
        let t = tar_of(&[
            ("ignore", tar::EntryType::Regular, "", b"x\n"),
            (".dockerignore", tar::EntryType::Symlink, "/ignore", b""),
        ]);
        unpack_context(&t[..], &dir).unwrap();
        settle_dockerignore(&dir);
        let m = std::fs::symlink_metadata(dir.join(".dockerignore")).unwrap();
        assert!(m.is_file());
        assert_eq!(std::fs::read(dir.join(".dockerignore")).unwrap(), b"x\n");
    }

    #[test]
    fn query_parameters_make_the_request() {
        let r = super::super::http::parse_head(
            b"POST /build?t=a:1&t=b&buildargs=%7B%22X%22%3A%221%22%2C%22Y%22%3Anull%7D&labels=%7B%22l%22%3A%22v%22%7D&q=1&nocache=1&networkmode=default&target=s HTTP/1.1\r\n\r\n",
        )
        .unwrap();
        let b = request_of(&r, Path::new("/ctx")).unwrap();
        assert_eq!(b.tags, ["a:1", "b"]);
        assert_eq!(b.build_args, ["X=1"]);
        assert_eq!(b.labels, ["l=v"]);
        assert!(b.quiet && b.no_cache && !b.pull);
        assert_eq!(b.network, "default");
        assert_eq!(b.target.as_deref(), Some("s"));
        let bad =
            super::super::http::parse_head(b"POST /build?buildargs=x HTTP/1.1\r\n\r\n").unwrap();
        assert!(request_of(&bad, Path::new("/ctx")).is_err());
    }
}
