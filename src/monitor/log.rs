//! Container logs in Docker's json-file format: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"2026-...Z"}`; stdout and stderr
//! stay distinct. Writing (monitor) and reading (`logs`) live here.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// Appends output to a log file, one entry per line of output.
pub struct Writer {
    file: File,
    /// Partial lines per stream (stdout, stderr), flushed at newline or end.
    partial: [Vec<u8>; 2],
}

impl Writer {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = File::options().create(true).append(true).open(path)?;
        Ok(Writer {
            file,
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Record `data` from stream 1 (stdout) or 2 (stderr).
    pub fn write(&mut self, stream: u8, data: &[u8]) -> std::io::Result<()> {
        let idx = usize::from(stream == 2);
        let mut buf = std::mem::take(&mut self.partial[idx]);
        buf.extend_from_slice(data);
        let mut start = 0;
        let mut out = Vec::new();
        while let Some(nl) = buf[start..].iter().position(|b| *b == b'\n') {
            let line = &buf[start..start + nl + 1];
            out.extend(encode(stream, line));
            start += nl + 1;
        }
        // Very long lines without a newline are cut, as Docker does at 16 KiB.
        if buf.len() - start > 16 * 1024 {
            out.extend(encode(stream, &buf[start..]));
            start = buf.len();
        }
        self.partial[idx] = buf[start..].to_vec();
        if !out.is_empty() {
            self.file.write_all(&out)?;
        }
        Ok(())
    }

    /// Write out unterminated lines (the container ended).
    pub fn flush(&mut self) -> std::io::Result<()> {
        for (idx, stream) in [(0usize, 1u8), (1, 2)] {
            let rest = std::mem::take(&mut self.partial[idx]);
            if !rest.is_empty() {
                self.file.write_all(&encode(stream, &rest))?;
            }
        }
        Ok(())
    }
}

fn encode(stream: u8, data: &[u8]) -> Vec<u8> {
    let e = Entry {
        log: String::from_utf8_lossy(data).into_owned(),
        stream: if stream == 2 { "stderr" } else { "stdout" }.into(),
        time: humantime::format_rfc3339_nanos(SystemTime::now()).to_string(),
    };
    let mut v = serde_json::to_vec(&e).expect("log entry serializes");
    v.push(b'\n');
    v
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

/// Read entries matching `q`, and the file offset reached (for following).
pub fn read(path: &Path, q: &Query) -> std::io::Result<(Vec<Entry>, u64)> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e),
    };
    let mut entries = Vec::new();
    let mut r = BufReader::new(&mut f);
    let mut line = String::new();
    let mut offset = 0u64;
    loop {
        line.clear();
        let n = r.read_line(&mut line)?;
        if n == 0 || !line.ends_with('\n') {
            break;
        }
        offset += n as u64;
        if let Ok(e) = serde_json::from_str::<Entry>(&line) {
            if matches(&e, q) {
                entries.push(e);
            }
        }
    }
    if let Some(t) = q.tail {
        let skip = entries.len().saturating_sub(t);
        entries.drain(..skip);
    }
    Ok((entries, offset))
}

/// Entries appended after `offset`; returns them and the new offset.
pub fn read_from(path: &Path, offset: u64, q: &Query) -> std::io::Result<(Vec<Entry>, u64)> {
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut r = BufReader::new(f);
    let mut out = Vec::new();
    let mut pos = offset;
    let mut line = String::new();
    loop {
        line.clear();
        let n = r.read_line(&mut line)?;
        // A line still being written (no newline yet) is read next time.
        if n == 0 || !line.ends_with('\n') {
            break;
        }
        pos += n as u64;
        if let Ok(e) = serde_json::from_str::<Entry>(&line) {
            if matches(&e, q) {
                out.push(e);
            }
        }
    }
    Ok((out, pos))
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

    #[test]
    fn lines_streams_tail_and_follow() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log");
        let mut w = Writer::open(&p).unwrap();
        w.write(1, b"one\ntw").unwrap();
        w.write(2, b"err\n").unwrap();
        w.write(1, b"o\nthree").unwrap();
        let (e, off) = read(&p, &Query::default()).unwrap();
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
        let (more, _) = read_from(&p, off, &Query::default()).unwrap();
        assert_eq!(more.len(), 1);
        assert_eq!(more[0].log, "three");
        let (tail, _) = read(
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
        assert!(read(&p, &future).unwrap().0.is_empty());
    }

    #[test]
    fn times_parse() {
        assert!(parse_time("2026-01-02T15:04:05Z").is_ok());
        assert!(parse_time("1700000000").is_ok());
        assert!(parse_time("10m").unwrap() < SystemTime::now());
        assert!(parse_time("yesterday-ish").is_err());
    }
}
