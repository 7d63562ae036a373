//! Container logs in Docker's json-file format: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"2026-...Z"}`; stdout and stderr
//! stay distinct. podman's `k8s-file` (the CRI format: `TIME STREAM F|P
//! TEXT`, F for a full line, P for part of one) is written on request and
//! read alike. Writing (the monitor, or a foreground `run` copying the
//! output) and reading (`logs`) live here, as do the logging flags
//! (`--log-driver json-file|k8s-file|none`, `--log-opt max-size=,max-file=`) and
//! Docker's rotation: once the file has reached `max-size`, `NAME.log.1`
//! moves to `.2` and so on, the file becomes `.1`, and a new one starts, so
//! at most `max-file` files exist (with one, the file starts over).

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::container::LogConfig;
use crate::container::LogError;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// `--log-driver` and `--log-opt`s as the record keeps them, checked.
pub fn config(driver: Option<&str>, opts: &[String]) -> Result<LogConfig, LogError> {
    let kind = driver.unwrap_or("json-file");
    if !matches!(kind, "json-file" | "k8s-file" | "none") {
        return Err(LogError::NoDriver(kind.to_string()));
    }
    if kind == "none" && !opts.is_empty() {
        return Err(LogError::OptsForNone(kind.to_string()));
    }
    let mut config = std::collections::BTreeMap::new();
    for o in opts {
        let (k, v) = o
            .split_once('=')
            .ok_or_else(|| LogError::NotKeyValue(o.clone()))?;
        config.insert(k.to_string(), v.to_string());
    }
    let cfg = LogConfig {
        kind: kind.to_string(),
        config,
    };
    Rotation::of(&cfg)?;
    Ok(cfg)
}

/// How entries are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Docker's: one JSON object per line.
    JsonFile,
    /// podman's and the CRI's: `TIME STREAM F|P TEXT`.
    K8sFile,
}

impl Format {
    /// None for the `none` driver.
    pub fn of(cfg: &LogConfig) -> Option<Format> {
        match cfg.kind.as_str() {
            "none" => None,
            "k8s-file" => Some(Format::K8sFile),
            _ => Some(Format::JsonFile),
        }
    }
}

/// When the log file rotates, and how many files are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// Rotate once the file holds this many bytes (None: never).
    pub max_size: Option<u64>,
    /// Files kept, the current one included.
    pub max_file: u32,
}

impl Rotation {
    pub fn of(cfg: &LogConfig) -> Result<Rotation, LogError> {
        let mut r = Rotation {
            max_size: None,
            max_file: 1,
        };
        for (k, v) in &cfg.config {
            match k.as_str() {
                "max-size" => {
                    let n = crate::container::cgroup::parse_size(v)
                        .map_err(|_| LogError::BadSize(v.clone()))?;
                    if n <= 0 {
                        return Err(LogError::BadSize(v.clone()));
                    }
                    r.max_size = Some(n as u64);
                }
                "max-file" => {
                    let n: i64 = v.parse().map_err(|_| LogError::BadFileNumber(v.clone()))?;
                    if n < 1 {
                        return Err(LogError::BadFileCount);
                    }
                    r.max_file =
                        u32::try_from(n).map_err(|_| LogError::BadFileNumber(v.clone()))?;
                }
                "compress" | "labels" | "labels-regex" | "env" | "env-regex" | "tag" => {
                    return Err(LogError::Unsupported(k.clone()))
                }
                _ => return Err(LogError::UnknownOpt(k.clone(), cfg.kind.clone())),
            }
        }
        Ok(r)
    }
}

/// The `n`th rotated file of `path` (`container.log.1`, ...).
fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// The longest entry: longer lines are split (Docker's 16 KiB).
const MAX_ENTRY: usize = 16 * 1024;

/// Appends output to a log file, one entry per line of output.
pub struct Writer {
    path: PathBuf,
    file: File,
    /// Bytes in the current file.
    size: u64,
    rotation: Rotation,
    format: Format,
    /// Entries not written yet (see `append`).
    pending: Vec<u8>,
    /// Partial lines per stream (stdout, stderr), flushed at newline or end.
    partial: [Vec<u8>; 2],
}

impl Writer {
    pub fn open(path: &Path, rotation: Rotation, format: Format) -> std::io::Result<Self> {
        let file = File::options().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Writer {
            path: path.to_path_buf(),
            file,
            size,
            rotation,
            format,
            pending: Vec::new(),
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Record `data` from stream 1 (stdout) or 2 (stderr). The lines of
    /// one chunk of output share its arrival time.
    pub fn write(&mut self, stream: u8, data: &[u8]) -> std::io::Result<()> {
        let idx = usize::from(stream == 2);
        let mut buf = std::mem::take(&mut self.partial[idx]);
        buf.extend_from_slice(data);
        let time = now();
        let mut start = 0;
        let mut result = Ok(());
        let mut entry = Vec::new();
        while let Some(nl) = buf[start..].iter().position(|b| *b == b'\n') {
            encode(
                self.format,
                &mut entry,
                stream,
                &buf[start..start + nl + 1],
                &time,
            );
            result = result.and(self.append(&entry));
            start += nl + 1;
        }
        // Very long lines are cut into entries of 16 KiB, as Docker does.
        while buf.len() - start >= MAX_ENTRY {
            encode(
                self.format,
                &mut entry,
                stream,
                &buf[start..start + MAX_ENTRY],
                &time,
            );
            result = result.and(self.append(&entry));
            start += MAX_ENTRY;
        }
        buf.drain(..start);
        self.partial[idx] = buf;
        result.and(self.write_pending())
    }

    /// One entry, after rotating if the file is full (Docker checks before
    /// each write, so a file may exceed max-size by one entry). Entries
    /// wait in `pending` until `write` ends or the file rotates: one write
    /// per chunk of output, not per line.
    fn append(&mut self, entry: &[u8]) -> std::io::Result<()> {
        if self.rotation.max_size.is_some_and(|m| self.size >= m) {
            self.write_pending()?;
            self.rotate()?;
        }
        self.pending.extend_from_slice(entry);
        self.size += entry.len() as u64;
        Ok(())
    }

    fn write_pending(&mut self) -> std::io::Result<()> {
        let r = self.file.write_all(&self.pending);
        self.pending.clear();
        r
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let keep = self.rotation.max_file;
        if keep >= 2 {
            for n in (1..keep - 1).rev() {
                let from = rotated(&self.path, n);
                if from.exists() {
                    std::fs::rename(&from, rotated(&self.path, n + 1))?;
                }
            }
            std::fs::rename(&self.path, rotated(&self.path, 1))?;
            self.file = File::options().create(true).append(true).open(&self.path)?;
        } else {
            // One file: it starts over (the same file, as Docker truncates).
            self.file.set_len(0)?;
        }
        self.size = 0;
        Ok(())
    }

    /// Write out unterminated lines (the container ended).
    pub fn flush(&mut self) -> std::io::Result<()> {
        for (idx, stream) in [(0usize, 1u8), (1, 2)] {
            let rest = std::mem::take(&mut self.partial[idx]);
            if !rest.is_empty() {
                let mut entry = Vec::new();
                encode(self.format, &mut entry, stream, &rest, &now());
                self.append(&entry)?;
            }
        }
        self.write_pending()
    }
}

/// The line reporting that the log of a run could not be written (said
/// once per run, at its exit: a full disk fails every write after the first).
pub fn write_failed(e: &std::io::Error) -> String {
    format!("writing the container's log: {e}; some of its output is missing from the log")
}

fn now() -> String {
    humantime::format_rfc3339_nanos(SystemTime::now()).to_string()
}

/// One line of the log into `out` (cleared first), written directly rather
/// than through an [`Entry`]: the log is written once per line of output.
fn encode(format: Format, out: &mut Vec<u8>, stream: u8, data: &[u8], time: &str) {
    out.clear();
    let name: &[u8] = if stream == 2 { b"stderr" } else { b"stdout" };
    if format == Format::K8sFile {
        let (text, tag): (&[u8], &[u8]) = match data.strip_suffix(b"\n") {
            Some(t) => (t, b"F"),
            None => (data, b"P"),
        };
        for part in [time.as_bytes(), b" ", name, b" ", tag, b" "] {
            out.extend_from_slice(part);
        }
        out.extend_from_slice(String::from_utf8_lossy(text).as_bytes());
        out.push(b'\n');
        return;
    }
    out.extend_from_slice(b"{\"log\":");
    let text = String::from_utf8_lossy(data);
    serde_json::to_writer(&mut *out, text.as_ref()).expect("a string serializes");
    out.extend_from_slice(if stream == 2 {
        b",\"stream\":\"stderr\",\"time\":\""
    } else {
        b",\"stream\":\"stdout\",\"time\":\""
    });
    out.extend_from_slice(time.as_bytes());
    out.extend_from_slice(b"\"}\n");
}

/// What `logs` should show.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Only the last N entries.
    pub tail: Option<usize>,
    /// Only entries at or after this time.
    pub since: Option<SystemTime>,
    /// Only entries before this time.
    pub until: Option<SystemTime>,
}

/// The log's files, oldest first: the rotated ones (highest number first),
/// then the current one.
fn files(path: &Path) -> Vec<PathBuf> {
    let mut n = 1;
    while rotated(path, n).exists() {
        n += 1;
    }
    let mut out: Vec<PathBuf> = (1..n).rev().map(|i| rotated(path, i)).collect();
    out.push(path.to_path_buf());
    out
}

/// Complete entries from `r` matching `q`; returns the bytes consumed.
fn read_entries(r: &mut impl BufRead, q: &Query, out: &mut Vec<Entry>) -> std::io::Result<u64> {
    let mut line = String::new();
    let mut consumed = 0u64;
    loop {
        line.clear();
        let n = r.read_line(&mut line)?;
        // A line still being written (no newline yet) is read next time.
        if n == 0 || !line.ends_with('\n') {
            break;
        }
        consumed += n as u64;
        if let Some(e) = parse(&line) {
            if matches(&e, q) {
                out.push(e);
            }
        }
    }
    Ok(consumed)
}

/// One line of either format (a k8s-file line never starts with `{`).
fn parse(line: &str) -> Option<Entry> {
    if line.starts_with('{') {
        return serde_json::from_str(line).ok();
    }
    let mut f = line.strip_suffix('\n')?.splitn(4, ' ');
    let (time, stream, tag) = (f.next()?, f.next()?, f.next()?);
    let text = f.next().unwrap_or("");
    Some(Entry {
        log: if tag == "F" {
            format!("{text}\n")
        } else {
            text.to_string()
        },
        stream: stream.to_string(),
        time: time.to_string(),
    })
}

/// A reader of a container's log: everything so far across the rotated
/// files, then what is appended (`logs -f`), following the current file
/// through rotations.
pub struct Reader {
    path: PathBuf,
    /// The current file as opened, and how far it has been read.
    file: Option<File>,
    offset: u64,
}

impl Reader {
    /// Read entries matching `q` from every file, oldest first.
    pub fn open(path: &Path, q: &Query) -> std::io::Result<(Reader, Vec<Entry>)> {
        let mut entries = Vec::new();
        let mut reader = Reader {
            path: path.to_path_buf(),
            file: None,
            offset: 0,
        };
        for p in files(path) {
            let mut f = match File::open(&p) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let n = read_entries(&mut BufReader::new(&mut f), q, &mut entries)?;
            if p == path {
                reader.file = Some(f);
                reader.offset = n;
            }
        }
        if let Some(t) = q.tail {
            let skip = entries.len().saturating_sub(t);
            entries.drain(..skip);
        }
        Ok((reader, entries))
    }

    /// Entries appended since the last read. When the file was rotated,
    /// the rest of the old one comes first, then the new one from its
    /// start; when it started over, it is read from its start.
    pub fn more(&mut self, q: &Query) -> std::io::Result<Vec<Entry>> {
        let mut out = Vec::new();
        loop {
            if let Some(f) = &mut self.file {
                if f.metadata()?.len() < self.offset {
                    self.offset = 0;
                }
                f.seek(SeekFrom::Start(self.offset))?;
                self.offset += read_entries(&mut BufReader::new(&mut *f), q, &mut out)?;
            }
            let now = match std::fs::metadata(&self.path) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
                Err(e) => return Err(e),
            };
            let same = match &self.file {
                Some(f) => {
                    let m = f.metadata()?;
                    (m.dev(), m.ino()) == (now.dev(), now.ino())
                }
                None => false,
            };
            if same {
                return Ok(out);
            }
            self.file = Some(File::open(&self.path)?);
            self.offset = 0;
        }
    }
}

/// Read entries matching `q` (every file, oldest first).
pub fn read(path: &Path, q: &Query) -> std::io::Result<Vec<Entry>> {
    Ok(Reader::open(path, q)?.1)
}

fn matches(e: &Entry, q: &Query) -> bool {
    if q.since.is_none() && q.until.is_none() {
        return true;
    }
    let Ok(t) = humantime::parse_rfc3339_weak(&e.time) else {
        return true;
    };
    q.since.is_none_or(|s| t >= s) && q.until.is_none_or(|u| t < u)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid time {0:?}: use RFC 3339 (2026-01-02T15:04:05Z), a Unix timestamp, or a duration like 10m")]
pub struct BadTime(pub String);

/// `--since`/`--until`: RFC 3339, a Unix timestamp, or a duration ago (`10m`).
pub fn parse_time(s: &str) -> Result<SystemTime, BadTime> {
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return Ok(t);
    }
    if let Ok(secs) = s.parse::<f64>() {
        return Ok(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs_f64(secs));
    }
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(SystemTime::now() - d);
    }
    Err(BadTime(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_ROTATION: Rotation = Rotation {
        max_size: None,
        max_file: 1,
    };

    #[test]
    fn lines_streams_tail_and_follow() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log");
        let mut w = Writer::open(&p, NO_ROTATION, Format::JsonFile).unwrap();
        w.write(1, b"one\ntw").unwrap();
        w.write(2, b"err\n").unwrap();
        w.write(1, b"o\nthree").unwrap();
        let (mut r, e) = Reader::open(&p, &Query::default()).unwrap();
        let logs: Vec<(&str, &str)> = e
            .iter()
            .map(|e| (e.stream.as_str(), e.log.as_str()))
            .collect();
        assert_eq!(
            logs,
            [
                ("stdout", "one\n"),
                ("stderr", "err\n"),
                ("stdout", "two\n")
            ]
        );
        w.flush().unwrap();
        let more = r.more(&Query::default()).unwrap();
        assert_eq!(more.len(), 1);
        assert_eq!(more[0].log, "three");
        let tail = read(
            &p,
            &Query {
                tail: Some(2),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(tail[0].log, "two\n");
        let future = Query {
            since: Some(SystemTime::now() + std::time::Duration::from_secs(60)),
            ..Default::default()
        };
        assert!(read(&p, &future).unwrap().is_empty());
    }

    fn logs(p: &Path) -> Vec<String> {
        read(p, &Query::default())
            .unwrap()
            .into_iter()
            .map(|e| e.log)
            .collect()
    }

    #[test]
    fn rotation_keeps_max_file_files_in_order() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("container.log");
        let rotation = Rotation {
            max_size: Some(1),
            max_file: 3,
        };
        let mut w = Writer::open(&p, rotation, Format::JsonFile).unwrap();
        let (mut follower, _) = Reader::open(&p, &Query::default()).unwrap();
        let mut followed = Vec::new();
        for i in 0..6 {
            w.write(1, format!("{i}\n").as_bytes()).unwrap();
            followed.extend(follower.more(&Query::default()).unwrap());
        }
        // One entry per file: the last three survive, oldest first.
        assert_eq!(logs(&p), ["3\n", "4\n", "5\n"]);
        assert!(rotated(&p, 2).exists() && !rotated(&p, 3).exists());
        let followed: Vec<String> = followed.into_iter().map(|e| e.log).collect();
        assert_eq!(followed, ["0\n", "1\n", "2\n", "3\n", "4\n", "5\n"]);

        // One file: it starts over once full; a follower starts over too.
        let p1 = d.path().join("one.log");
        let mut w = Writer::open(
            &p1,
            Rotation {
                max_size: Some(40),
                max_file: 1,
            },
            Format::JsonFile,
        )
        .unwrap();
        let (mut follower, _) = Reader::open(&p1, &Query::default()).unwrap();
        w.write(1, b"first line, long enough to fill it\n").unwrap();
        assert_eq!(follower.more(&Query::default()).unwrap().len(), 1);
        w.write(1, b"second\n").unwrap();
        assert_eq!(logs(&p1), ["second\n"]);
        let again = follower.more(&Query::default()).unwrap();
        assert_eq!(again[0].log, "second\n");
    }

    #[test]
    fn k8s_file_lines_read_back() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ctr.log");
        let mut w = Writer::open(&p, NO_ROTATION, Format::K8sFile).unwrap();
        w.write(1, b"one\ntwo ").unwrap();
        w.write(2, b"err\n").unwrap();
        w.flush().unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].ends_with(" stdout F one"), "{text}");
        assert!(lines[1].ends_with(" stderr F err"), "{text}");
        assert!(lines[2].ends_with(" stdout P two "), "{text}");
        assert!(
            lines[0].starts_with("20") && lines[0].contains('T'),
            "{text}"
        );
        let e = read(&p, &Query::default()).unwrap();
        let got: Vec<(&str, &str)> = e
            .iter()
            .map(|e| (e.stream.as_str(), e.log.as_str()))
            .collect();
        assert_eq!(
            got,
            [("stdout", "one\n"), ("stderr", "err\n"), ("stdout", "two ")]
        );
        // --since works on its times too.
        let future = Query {
            since: Some(SystemTime::now() + std::time::Duration::from_secs(60)),
            ..Default::default()
        };
        assert!(read(&p, &future).unwrap().is_empty());
    }

    #[test]
    fn flags_as_docker_checks_them() {
        let c = config(None, &["max-size=1k".into(), "max-file=3".into()]).unwrap();
        assert_eq!(c.kind, "json-file");
        assert_eq!(
            Rotation::of(&c).unwrap(),
            Rotation {
                max_size: Some(1024),
                max_file: 3
            }
        );
        assert!(!config(Some("none"), &[]).unwrap().keeps_output());
        let err = |d: Option<&str>, o: &[&str]| {
            let o: Vec<String> = o.iter().map(|s| s.to_string()).collect();
            config(d, &o).unwrap_err().to_string()
        };
        assert_eq!(
            err(Some("syslogx"), &[]),
            "logger: no log driver named 'syslogx' is registered"
        );
        assert_eq!(
            err(Some("none"), &["max-size=1m"]),
            "invalid logging opts for driver none"
        );
        assert_eq!(
            err(None, &["colour=red"]),
            "unknown log opt 'colour' for json-file log driver"
        );
        assert_eq!(err(None, &["max-file=0"]), "max-file cannot be less than 1");
        assert!(err(None, &["max-size=lots"]).contains("max-size"));
    }

    #[test]
    fn times_parse() {
        assert!(parse_time("2026-01-02T15:04:05Z").is_ok());
        assert!(parse_time("1700000000").is_ok());
        assert!(parse_time("10m").unwrap() < SystemTime::now());
        assert!(parse_time("yesterday-ish").is_err());
    }
}
