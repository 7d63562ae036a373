//! `GET|HEAD|PUT /containers/{id}/archive?path=`, what `docker cp` calls:
//! a tar of a container path with its stat in `X-Docker-Container-Path-Stat`,
//! the stat alone, or a tar unpacked into a container directory, all by the
//! engine's copy (the same workers, and rules for hostile entries, as
//! `burrow cp`); and the container's tree and changes, `GET
//! /containers/{id}/export` (`docker export`) and `/changes` (`docker diff`).

use std::io::{Read, Seek, Write};

use base64::Engine as _;
use serde_json::json;

use super::http::{self, Conn, Request};
use super::server::Stream;
use super::{empty, engine_error, error, Handled, Next};
use crate::engine::copy::{self, PathStat};
use crate::engine::{self, Engine};

/// The header `docker cp` reads a path's stat from.
pub const STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

/// Go's `os.FileMode` bits for a Unix `st_mode`.
pub fn go_file_mode(mode: u32) -> u32 {
    const DIR: u32 = 1 << 31;
    const SYMLINK: u32 = 1 << 27;
    const DEVICE: u32 = 1 << 26;
    const NAMED_PIPE: u32 = 1 << 25;
    const SOCKET: u32 = 1 << 24;
    const SETUID: u32 = 1 << 23;
    const SETGID: u32 = 1 << 22;
    const CHAR_DEVICE: u32 = 1 << 21;
    const STICKY: u32 = 1 << 20;
    let mut m = mode & 0o777;
    m |= match mode & libc::S_IFMT {
        libc::S_IFDIR => DIR,
        libc::S_IFLNK => SYMLINK,
        libc::S_IFBLK => DEVICE,
        libc::S_IFCHR => DEVICE | CHAR_DEVICE,
        libc::S_IFIFO => NAMED_PIPE,
        libc::S_IFSOCK => SOCKET,
        _ => 0,
    };
    for (bit, go) in [
        (libc::S_ISUID, SETUID),
        (libc::S_ISGID, SETGID),
        (libc::S_ISVTX, STICKY),
    ] {
        if mode & bit != 0 {
            m |= go;
        }
    }
    m
}

/// Docker's `ContainerPathStat` as the header carries it: base64 JSON.
pub fn stat_header(st: &PathStat) -> String {
    let mtime = std::time::UNIX_EPOCH
        .checked_add(std::time::Duration::new(
            st.mtime_secs.max(0) as u64,
            st.mtime_nanos,
        ))
        .unwrap_or(std::time::UNIX_EPOCH);
    let v = json!({
        "name": st.name,
        "size": st.size,
        "mode": go_file_mode(st.mode),
        "mtime": humantime::format_rfc3339_nanos(mtime).to_string(),
        "linkTarget": st.link_target,
    });
    base64::engine::general_purpose::STANDARD.encode(v.to_string())
}

fn head(status: u16, extra: &[(&str, String)]) -> String {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", http::reason(status));
    for (k, v) in http::common_headers()
        .iter()
        .map(|(k, v)| (*k, v))
        .chain(extra.iter().map(|(k, v)| (*k, v)))
    {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out
}

/// Route by method.
pub fn archive(engine: &Engine, conn: &mut Conn<Stream>, req: &Request, id: &str) -> Handled {
    let Some(path) = req.param("path").map(str::to_string) else {
        let _ = conn.read_body(req, http::MAX_JSON_BODY);
        return error(&mut conn.stream, 400, "path is required");
    };
    match req.method.as_str() {
        "PUT" => put(engine, conn, req, id, &path),
        method => {
            let _ = conn.read_body(req, http::MAX_JSON_BODY);
            get(engine, conn, id, &path, method == "HEAD")
        }
    }
}

/// HEAD: the stat alone; GET: the stat and a tar of the path.
fn get(engine: &Engine, conn: &mut Conn<Stream>, id: &str, path: &str, head_only: bool) -> Handled {
    let w = &mut conn.stream;
    if head_only {
        return match copy::stat(engine, id, path) {
            Ok(st) => {
                let h = head(
                    200,
                    &[
                        (STAT_HEADER, stat_header(&st)),
                        ("Content-Length", "0".into()),
                    ],
                );
                w.write_all(h.as_bytes())?;
                w.flush()?;
                Ok(Next::Continue)
            }
            Err(e) => {
                http::respond(w, super::status_of(&e), Some("application/json"), b"", true)?;
                Ok(Next::Continue)
            }
        };
    }
    let out = copy::scratch_file(engine).and_then(|f| {
        let writer = f.try_clone().map_err(scratch_clone)?;
        let st = copy::archive(engine, id, path, writer)?;
        Ok((st, f))
    });
    let (st, file) = match out {
        Ok(x) => x,
        Err(e) => return engine_error(w, &e),
    };
    send_tar(w, file, Some(stat_header(&st)))
}

/// An unlinked scratch file that could not be opened a second time.
fn scratch_clone(source: std::io::Error) -> engine::Error {
    engine::Error::File {
        what: "duplicating the scratch file",
        path: None,
        source,
    }
}

/// A tar spooled in `file` as a 200 answer with its length.
fn send_tar(w: &mut Stream, mut file: std::fs::File, stat: Option<String>) -> Handled {
    let len = file.seek(std::io::SeekFrom::End(0))?;
    file.rewind()?;
    let mut headers = vec![
        ("Content-Type", "application/x-tar".to_string()),
        ("Content-Length", len.to_string()),
    ];
    if let Some(stat) = stat {
        headers.push((STAT_HEADER, stat));
    }
    w.write_all(head(200, &headers).as_bytes())?;
    std::io::copy(&mut (&mut file).take(len), w)?;
    w.flush()?;
    Ok(Next::Continue)
}

/// `GET /containers/{id}/export`: the container's whole tree as a tar.
pub fn export(engine: &Engine, conn: &mut Conn<Stream>, id: &str) -> Handled {
    let id = id.trim_start_matches('/');
    let out = copy::scratch_file(engine).and_then(|f| {
        let writer = f.try_clone().map_err(scratch_clone)?;
        engine::changes::export(engine, id, writer)?;
        Ok(f)
    });
    match out {
        Ok(file) => send_tar(&mut conn.stream, file, None),
        Err(e) => engine_error(&mut conn.stream, &e),
    }
}

/// `GET /containers/{id}/changes`: `[{"Path", "Kind"}]`, Kind 0 changed,
/// 1 added, 2 deleted.
pub fn changes(engine: &Engine, conn: &mut Conn<Stream>, id: &str) -> Handled {
    match engine::changes::diff(engine, id.trim_start_matches('/')) {
        Ok(list) => {
            let out: Vec<_> = list
                .iter()
                .map(|c| json!({"Path": c.path, "Kind": engine::changes::kind_number(c.kind)}))
                .collect();
            super::reply(&mut conn.stream, 200, &serde_json::Value::Array(out))
        }
        Err(e) => engine_error(&mut conn.stream, &e),
    }
}

/// PUT: unpack the tar body into the directory `path`.
fn put(engine: &Engine, conn: &mut Conn<Stream>, req: &Request, id: &str, path: &str) -> Handled {
    let mut file = match copy::scratch_file(engine) {
        Ok(f) => f,
        Err(e) => {
            let _ = conn.read_body(req, http::MAX_JSON_BODY);
            return engine_error(&mut conn.stream, &e);
        }
    };
    let spooled = match conn.body(req) {
        Ok(mut body) => std::io::copy(&mut body, &mut file).map(|_| ()),
        Err(e) => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            e.to_string(),
        )),
    };
    if let Err(e) = spooled.and_then(|()| file.rewind()) {
        return error(&mut conn.stream, 400, &format!("reading the archive: {e}"));
    }
    let no_overwrite = req.flag("noOverwriteDirNonDir", false);
    match copy::extract(engine, id, path, file, no_overwrite) {
        Ok(()) => empty(&mut conn.stream, 200),
        Err(e) => engine_error(&mut conn.stream, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_as_go_has_them() {
        assert_eq!(go_file_mode(libc::S_IFDIR | 0o755), (1 << 31) | 0o755);
        assert_eq!(go_file_mode(libc::S_IFREG | 0o644), 0o644);
        assert_eq!(go_file_mode(libc::S_IFLNK | 0o777), (1 << 27) | 0o777);
        assert_eq!(
            go_file_mode(libc::S_IFREG | libc::S_ISUID | 0o755),
            (1 << 23) | 0o755
        );
    }

    #[test]
    fn stat_header_is_base64_json() {
        let st = PathStat {
            name: "hosts".into(),
            size: 12,
            mode: libc::S_IFREG | 0o644,
            mtime_secs: 1,
            mtime_nanos: 5,
            link_target: String::new(),
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(stat_header(&st))
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(v["name"], "hosts");
        assert_eq!(v["size"], 12);
        assert_eq!(v["mode"], 0o644);
        assert_eq!(v["mtime"], "1970-01-01T00:00:01.000000005Z");
        assert_eq!(v["linkTarget"], "");
    }
}
