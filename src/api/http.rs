//! HTTP/1.1 as the Docker Engine API uses it, on one connection: request
//! heads parsed with bounds, bodies by length or chunked, answers whole,
//! chunked streams flushed record by record, and connections taken over
//! (`101 UPGRADED`) for attach and exec.

use std::io::{self, Read, Write};

/// The longest request head (request line and headers) accepted.
pub const MAX_HEAD: usize = 64 * 1024;
/// The most headers one request may carry.
pub const MAX_HEADERS: usize = 100;
/// The largest body read into memory (JSON requests); archives and build
/// contexts are streamed instead.
pub const MAX_JSON_BODY: usize = 8 << 20;

/// Why a request could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("the client closed the connection")]
    Closed,
    #[error("request head larger than {MAX_HEAD} bytes")]
    HeadTooLarge,
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("request body larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// One request's head; the body is read from the connection after it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The path without the `/vX.Y` prefix and the query.
    pub path: String,
    /// The `X.Y` of a `/vX.Y` prefix.
    pub version: Option<String>,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    /// HTTP/1.0 closes after one answer unless told otherwise.
    pub http10: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter's value (the last one given).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated query parameter (`t=a&t=b`).
    pub fn params(&self, name: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A boolean parameter as Docker reads one: `1`, `true`, `True`
    /// and friends; absent or empty is `default`.
    pub fn flag(&self, name: &str, default: bool) -> bool {
        match self.param(name) {
            None | Some("") => default,
            Some(v) => !matches!(v, "0" | "false" | "False" | "FALSE" | "no"),
        }
    }

    pub fn keep_alive(&self) -> bool {
        match self.header("connection") {
            Some(c) if c.eq_ignore_ascii_case("close") => false,
            Some(c) if c.eq_ignore_ascii_case("keep-alive") => true,
            _ => !self.http10,
        }
    }

    fn chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"))
    }

    fn content_length(&self) -> Result<Option<u64>, HttpError> {
        match self.header("content-length") {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| HttpError::Malformed(format!("Content-Length {v:?}"))),
        }
    }

    /// Whether the client asked to take the connection over (attach,
    /// exec start).
    pub fn wants_upgrade(&self) -> bool {
        self.header("upgrade").is_some()
            && self
                .header("connection")
                .is_some_and(|c| c.to_ascii_lowercase().contains("upgrade"))
    }
}

/// A connection: what was read ahead of the current request's end stays
/// in `buf`.
pub struct Conn<S> {
    pub stream: S,
    buf: Vec<u8>,
}

impl<S: Read + Write> Conn<S> {
    pub fn new(stream: S) -> Self {
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Bytes read past the last request (a client that writes stdin right
    /// after an attach request).
    pub fn take_buffered(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    /// Read the next request head. `Closed` when the client ended the
    /// connection between requests.
    pub fn read_head(&mut self) -> Result<Request, HttpError> {
        loop {
            if let Some(end) = find_head_end(&self.buf) {
                let head: Vec<u8> = self.buf.drain(..end).collect();
                return parse_head(&head);
            }
            if self.buf.len() > MAX_HEAD {
                return Err(HttpError::HeadTooLarge);
            }
            let mut chunk = [0u8; 8192];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return if self.buf.is_empty() {
                    Err(HttpError::Closed)
                } else {
                    Err(HttpError::Malformed("truncated request head".into()))
                };
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The request's body as a reader (by length, chunked, or none).
    pub fn body<'a>(&'a mut self, req: &Request) -> Result<Body<'a, S>, HttpError> {
        let mode = if req.chunked() {
            Mode::Chunked {
                left: 0,
                done: false,
            }
        } else {
            Mode::Length(req.content_length()?.unwrap_or(0))
        };
        Ok(Body { conn: self, mode })
    }

    /// The whole body, at most `limit` bytes.
    pub fn read_body(&mut self, req: &Request, limit: usize) -> Result<Vec<u8>, HttpError> {
        let mut body = self.body(req)?;
        let mut out = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let n = body.read(&mut chunk)?;
            if n == 0 {
                return Ok(out);
            }
            if out.len() + n > limit {
                return Err(HttpError::BodyTooLarge(limit));
            }
            out.extend_from_slice(&chunk[..n]);
        }
    }

    /// Read from the buffer first, then the stream.
    fn fill(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if !self.buf.is_empty() {
            let n = out.len().min(self.buf.len());
            out[..n].copy_from_slice(&self.buf[..n]);
            self.buf.drain(..n);
            return Ok(n);
        }
        self.stream.read(out)
    }

    fn read_line(&mut self) -> io::Result<Vec<u8>> {
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        loop {
            if self.fill(&mut b)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "truncated chunked body",
                ));
            }
            line.push(b[0]);
            if line.ends_with(b"\r\n") {
                line.truncate(line.len() - 2);
                return Ok(line);
            }
            if line.len() > 4096 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "chunk size line too long",
                ));
            }
        }
    }
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Parse a request head (the bytes up to and including the blank line).
pub fn parse_head(head: &[u8]) -> Result<Request, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(HttpError::Malformed("incomplete request head".into()))
        }
        Err(e) => return Err(HttpError::Malformed(e.to_string())),
    }
    let method = req.method.unwrap_or_default().to_string();
    let target = req.path.unwrap_or_default();
    if !target.starts_with('/') {
        return Err(HttpError::Malformed(format!(
            "request target {target:?} is not a path"
        )));
    }
    let (raw_path, raw_query) = target.split_once('?').unwrap_or((target, ""));
    let path = percent_decode(raw_path)
        .ok_or_else(|| HttpError::Malformed("bad percent-encoding in the path".into()))?;
    let (version, path) = split_version(&path);
    let mut query = Vec::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = form_decode(k)
            .ok_or_else(|| HttpError::Malformed("bad percent-encoding in the query".into()))?;
        let v = form_decode(v)
            .ok_or_else(|| HttpError::Malformed("bad percent-encoding in the query".into()))?;
        query.push((k, v));
    }
    let mut hs = Vec::new();
    for h in req.headers.iter() {
        let value = std::str::from_utf8(h.value)
            .map_err(|_| HttpError::Malformed(format!("header {} is not UTF-8", h.name)))?;
        hs.push((h.name.to_string(), value.trim().to_string()));
    }
    Ok(Request {
        method,
        path,
        version,
        query,
        headers: hs,
        http10: req.version == Some(0),
    })
}

/// `/v1.41/containers/json` → (`1.41`, `/containers/json`).
fn split_version(path: &str) -> (Option<String>, String) {
    if let Some(rest) = path.strip_prefix("/v") {
        let (v, tail) = rest.split_once('/').unwrap_or((rest, ""));
        if !v.is_empty() && v.starts_with(|c: char| c.is_ascii_digit()) && v.contains('.') {
            return (Some(v.to_string()), format!("/{tail}"));
        }
    }
    (None, path.to_string())
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A query component: `+` is a space, as Go's `url.ParseQuery` reads it.
fn form_decode(s: &str) -> Option<String> {
    percent_decode(&s.replace('+', " "))
}

enum Mode {
    Length(u64),
    Chunked { left: u64, done: bool },
}

/// A request body being read.
pub struct Body<'a, S> {
    conn: &'a mut Conn<S>,
    mode: Mode,
}

impl<S: Read + Write> Read for Body<'_, S> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        match &mut self.mode {
            Mode::Length(0) => Ok(0),
            Mode::Length(left) => {
                let want = out.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                let n = self.conn.fill(&mut out[..want])?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the body ended before its Content-Length",
                    ));
                }
                *left -= n as u64;
                Ok(n)
            }
            Mode::Chunked { done: true, .. } => Ok(0),
            Mode::Chunked { left, done } => {
                if *left == 0 {
                    let line = self.conn.read_line()?;
                    let line = String::from_utf8_lossy(&line);
                    let size = line.split(';').next().unwrap_or("").trim();
                    let size = u64::from_str_radix(size, 16).map_err(|_| {
                        io::Error::new(io::ErrorKind::InvalidData, "bad chunk size")
                    })?;
                    if size == 0 {
                        // Trailers, then the blank line.
                        while !self.conn.read_line()?.is_empty() {}
                        *done = true;
                        return Ok(0);
                    }
                    *left = size;
                }
                let want = out.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                let n = self.conn.fill(&mut out[..want])?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "truncated chunk",
                    ));
                }
                *left -= n as u64;
                if *left == 0 {
                    let crlf = self.conn.read_line()?;
                    if !crlf.is_empty() {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "chunk not followed by CRLF",
                        ));
                    }
                }
                Ok(n)
            }
        }
    }
}

/// The reason phrase of a status code.
pub fn reason(status: u16) -> &'static str {
    match status {
        101 => "UPGRADED",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// The headers every answer carries.
pub fn common_headers() -> Vec<(&'static str, String)> {
    vec![
        ("Api-Version", super::API_VERSION.to_string()),
        ("Docker-Experimental", "false".into()),
        ("Ostype", "linux".into()),
        (
            "Server",
            format!("Burrow/{} (linux)", env!("CARGO_PKG_VERSION")),
        ),
    ]
}

fn head(status: u16, headers: &[(&str, String)]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (k, v) in common_headers()
        .iter()
        .map(|(k, v)| (*k, v))
        .chain(headers.iter().map(|(k, v)| (*k, v)))
    {
        out.push_str(k);
        out.push_str(": ");
        out.push_str(v);
        out.push_str("\r\n");
    }
    out.into_bytes()
}

thread_local! {
    /// The request being answered is a HEAD: answers carry no body.
    static HEAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Say whether the request being answered is a HEAD (RFC 9110 9.3.2: its
/// answers have headers only, whatever their status).
pub fn answering_head(yes: bool) {
    HEAD.with(|h| h.set(yes));
}

/// A whole answer.
pub fn respond<W: Write>(
    w: &mut W,
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
    head_only: bool,
) -> io::Result<()> {
    let mut hs = vec![("Content-Length", body.len().to_string())];
    if let Some(ct) = content_type {
        hs.push(("Content-Type", ct.to_string()));
    }
    let mut out = head(status, &hs);
    out.extend_from_slice(b"\r\n");
    if !head_only && !HEAD.with(|h| h.get()) {
        out.extend_from_slice(body);
    }
    w.write_all(&out)?;
    w.flush()
}

/// A chunked answer written piece by piece, each flushed at once: streams
/// of JSON records (pull progress, events, logs, stats) and `/wait`, whose
/// head must reach the client before the container ends.
pub struct Chunked<'a, W: Write> {
    w: &'a mut W,
}

impl<'a, W: Write> Chunked<'a, W> {
    pub fn start(w: &'a mut W, status: u16, content_type: &str) -> io::Result<Self> {
        let mut out = head(
            status,
            &[
                ("Content-Type", content_type.to_string()),
                ("Transfer-Encoding", "chunked".into()),
            ],
        );
        out.extend_from_slice(b"\r\n");
        w.write_all(&out)?;
        w.flush()?;
        Ok(Chunked { w })
    }

    /// The connection under the stream.
    pub fn inner(&self) -> &W {
        self.w
    }

    pub fn send(&mut self, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let mut out = format!("{:x}\r\n", data.len()).into_bytes();
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
        self.w.write_all(&out)?;
        self.w.flush()
    }

    /// One JSON record and a newline.
    pub fn json(&mut self, v: &serde_json::Value) -> io::Result<()> {
        let mut line = serde_json::to_vec(v).unwrap_or_default();
        line.push(b'\n');
        self.send(&line)
    }

    pub fn finish(self) -> io::Result<()> {
        self.w.write_all(b"0\r\n\r\n")?;
        self.w.flush()
    }
}

/// Take the connection over for a raw stream: `101 UPGRADED` when the
/// client asked to upgrade (the docker CLI fails without it), else `200`.
pub fn hijack<W: Write>(w: &mut W, upgrade: bool, content_type: &str) -> io::Result<()> {
    let mut hs = vec![("Content-Type", content_type.to_string())];
    let status = if upgrade {
        hs.push(("Connection", "Upgrade".into()));
        hs.push(("Upgrade", "tcp".into()));
        101
    } else {
        200
    };
    let mut out = head(status, &hs);
    out.extend_from_slice(b"\r\n");
    w.write_all(&out)?;
    w.flush()
}

/// Wait (at most `patience`) until the client has read everything sent on
/// `sock`. A client that reads a taken-over connection's head through a
/// buffered reader and the stream after it from the raw socket (docker-py)
/// loses stream bytes that arrive before it has read the head, in the same
/// read: the stream must not start until the head is taken.
pub fn await_read(sock: std::os::fd::BorrowedFd<'_>, patience: std::time::Duration) {
    let deadline = std::time::Instant::now() + patience;
    while crate::linux::net::unread_by_peer(sock).is_ok_and(|n| n > 0)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// A connection that reads `input` and throws its answers away: the
/// request reader driven without a socket (the fuzz target, the tests).
struct Replay {
    input: io::Cursor<Vec<u8>>,
}

impl Read for Replay {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        self.input.read(b)
    }
}

impl Write for Replay {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Read every request `bytes` holds, as a worker would on one connection,
/// until the input ends or a request is refused; how many were read.
pub fn read_all(bytes: &[u8]) -> usize {
    let mut conn = Conn::new(Replay {
        input: io::Cursor::new(bytes.to_vec()),
    });
    let mut n = 0;
    while let Ok(req) = conn.read_head() {
        let _ = req.keep_alive();
        let _ = req.wants_upgrade();
        if conn.read_body(&req, MAX_JSON_BODY).is_err() {
            break;
        }
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_bytes_are_read_or_refused() {
        // A cheap stand-in for the fuzz target in every test run: mutated
        // valid requests, from a fixed seed.
        let base = b"POST /v1.41/containers/create?name=x HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{}{}\r\n0\r\n\r\nGET /_ping HTTP/1.1\r\nContent-Length: 2\r\n\r\nok";
        assert_eq!(read_all(base), 2);
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let mut v = base.to_vec();
            for _ in 0..4 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = (seed as usize) % v.len();
                v[at] = (seed >> 32) as u8;
            }
            seed ^= seed << 13;
            v.truncate((seed as usize) % (v.len() + 1));
            let _ = read_all(&v);
        }
    }

    struct Pipe {
        input: io::Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Read for Pipe {
        fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
            self.input.read(b)
        }
    }

    impl Write for Pipe {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.output.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn conn(bytes: &[u8]) -> Conn<Pipe> {
        Conn::new(Pipe {
            input: io::Cursor::new(bytes.to_vec()),
            output: Vec::new(),
        })
    }

    #[test]
    fn versioned_paths_and_queries() {
        let mut c =
            conn(b"POST /v1.41/containers/create?name=web%201&x=a+b HTTP/1.1\r\nHost: d\r\n\r\n");
        let r = c.read_head().unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/containers/create");
        assert_eq!(r.version.as_deref(), Some("1.41"));
        assert_eq!(r.param("name"), Some("web 1"));
        assert_eq!(r.param("x"), Some("a b"));
        let r = parse_head(b"GET /_ping HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!((r.path.as_str(), r.version), ("/_ping", None));
        // A volume named v1 is not a version.
        let r = parse_head(b"GET /volumes/v1 HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(r.path, "/volumes/v1");
    }

    #[test]
    fn bodies_by_length_and_chunked() {
        let mut c =
            conn(b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\n\r\n");
        let r = c.read_head().unwrap();
        assert_eq!(c.read_body(&r, 100).unwrap(), b"hello");
        assert_eq!(c.read_head().unwrap().path, "/b");
        let mut c = conn(
            b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        );
        let r = c.read_head().unwrap();
        assert_eq!(c.read_body(&r, 100).unwrap(), b"abcde");
        assert!(matches!(c.read_head(), Err(HttpError::Closed)));
    }

    #[test]
    fn hostile_requests_are_refused() {
        let mut c = conn(b"POST /a HTTP/1.1\r\nContent-Length: 50\r\n\r\nshort");
        let r = c.read_head().unwrap();
        assert!(c.read_body(&r, 100).is_err());
        let mut c = conn(b"POST /a HTTP/1.1\r\nContent-Length: 500\r\n\r\n");
        let r = c.read_head().unwrap();
        assert!(matches!(
            c.read_body(&r, 100),
            Err(HttpError::BodyTooLarge(100)) | Err(HttpError::Io(_))
        ));
        assert!(parse_head(b"GET http://x/ HTTP/1.1\r\n\r\n").is_err());
        assert!(parse_head(b"GET /%zz HTTP/1.1\r\n\r\n").is_err());
        assert!(parse_head(b"\x00\x01 / HTTP/1.1\r\n\r\n").is_err());
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', MAX_HEAD + 10));
        let mut c = conn(&big);
        assert!(matches!(c.read_head(), Err(HttpError::HeadTooLarge)));
        let mut c = conn(b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
        let r = c.read_head().unwrap();
        assert!(c.read_body(&r, 100).is_err());
    }

    #[test]
    fn chunked_answers_are_framed() {
        let mut out = Vec::new();
        let mut s = Chunked::start(&mut out, 200, "application/json").unwrap();
        s.json(&serde_json::json!({"a": 1})).unwrap();
        s.finish().unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("Transfer-Encoding: chunked\r\n"), "{text}");
        assert!(
            text.ends_with("\r\n\r\n8\r\n{\"a\":1}\n\r\n0\r\n\r\n"),
            "{text}"
        );
    }
}
