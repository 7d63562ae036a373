//! `logs`: a container's stored output, read once or followed until the
//! container stops.

use std::time::SystemTime;

use super::{Engine, Error, Result};
use crate::container::{self, ContainerRecord, Status, LOG_FILE};
use crate::monitor::log::{self, Entry, Query, Reader};

/// What to read.
#[derive(Debug, Clone, Default)]
pub struct LogsRequest {
    /// The last N lines; all when `None`.
    pub tail: Option<usize>,
    pub since: Option<SystemTime>,
    pub until: Option<SystemTime>,
    pub follow: bool,
}

/// `--tail`/`tail=`: a number, or `all`.
pub fn parse_tail(s: &str) -> Result<Option<usize>> {
    match s {
        "all" | "" => Ok(None),
        n => n
            .parse::<usize>()
            .map(Some)
            .map_err(|_| Error::invalid(format!("invalid --tail {n:?}: a number or \"all\""))),
    }
}

/// `--since`/`--until`: RFC 3339, Unix seconds, or a duration before now.
pub fn parse_time(s: &str) -> Result<SystemTime> {
    log::parse_time(s).map_err(Error::invalid)
}

/// One step of a log being read.
pub enum Step {
    /// Entries to show.
    Entries(Vec<Entry>),
    /// Nothing new yet: ask again after a short wait.
    Idle,
    /// Everything was read (and, when following, the container stopped).
    End,
}

/// A container's log being read.
pub struct Logs {
    reader: Reader,
    first: Option<Vec<Entry>>,
    query: Query,
    follow: bool,
    id: String,
    done: bool,
}

impl Logs {
    /// The container's record at the time the log was opened.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The next step; with `follow`, `Idle` while the container runs.
    pub fn step(&mut self, engine: &Engine) -> std::io::Result<Step> {
        if let Some(first) = self.first.take() {
            return Ok(Step::Entries(first));
        }
        if self.done || !self.follow {
            return Ok(Step::End);
        }
        let rec = container::find(&engine.store, &self.id).ok();
        // Up, or between two runs of a restart policy.
        let up = rec
            .as_ref()
            .is_some_and(|r| r.is_up(&engine.store) || r.is_restarting(&engine.store));
        // PID 1 gone, but its monitor still draining its output: the exit
        // is recorded only after the log has everything, so until then
        // more may come.
        let draining = rec.as_ref().is_some_and(|r| {
            matches!(r.state.status, Status::Running | Status::Paused)
                && r.monitor_alive(&engine.store)
        });
        let more = self.reader.more(&self.query)?;
        if !up && !draining {
            // One last read: the monitor flushes the log before it records
            // the exit.
            self.done = true;
            let mut more = more;
            more.extend(self.reader.more(&self.query)?);
            return Ok(if more.is_empty() {
                Step::End
            } else {
                Step::Entries(more)
            });
        }
        Ok(if more.is_empty() {
            Step::Idle
        } else {
            Step::Entries(more)
        })
    }
}

/// Open `rec`'s log as `req` asks.
pub fn open(engine: &Engine, rec: &ContainerRecord, req: &LogsRequest) -> Result<Logs> {
    if !rec.host_config.log_config.keeps_output() {
        return Err(Error::not_found(
            "configured logging driver does not support reading",
        ));
    }
    let query = Query {
        tail: req.tail,
        since: req.since,
        until: req.until,
    };
    let path = engine.store.container_dir(&rec.id).join(LOG_FILE);
    let (reader, entries) = Reader::open(&path, &query).map_err(|source| Error::File {
        what: "reading the log",
        path: Some(path.clone()),
        source,
    })?;
    Ok(Logs {
        reader,
        first: Some(entries),
        query: Query {
            tail: None,
            ..query
        },
        follow: req.follow,
        id: rec.id.clone(),
        done: false,
    })
}
