//! Events: what the operations journal (`store::events`), recorded by one
//! call per operation, and read back as Docker's event records, with
//! Docker's `since`/`until` and filters (type, event, container, image,
//! label, network, volume), replayed and then followed.

use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::filters::Filters;
use super::{Engine, Result};
use crate::container::ContainerRecord;
use crate::store::events::{self as journal, Entry, Journal};

/// Journal `action` on a container, with `extra` attributes.
pub fn container(engine: &Engine, rec: &ContainerRecord, action: &str, extra: &[(&str, String)]) {
    crate::container::events::record(&engine.store, rec, action, extra);
}

/// Journal `action` on an image: `id` is the image id, or the reference
/// for a pull; `name` the reference it concerns.
pub fn image(engine: &Engine, action: &str, id: &str, name: &str) {
    journal::append(
        &engine.store,
        &Entry::now("image", action, id).with("name", name),
    );
}

/// Journal `action` on a user network.
pub fn network(engine: &Engine, action: &str, id: &str, name: &str) {
    journal::append(
        &engine.store,
        &Entry::now("network", action, id)
            .with("name", name)
            .with("type", "bridge"),
    );
}

/// Journal `action` on a volume.
pub fn volume(engine: &Engine, action: &str, name: &str) {
    journal::append(
        &engine.store,
        &Entry::now("volume", action, name).with("driver", "local"),
    );
}

/// An entry as Docker's event record (API 1.41): with the legacy
/// `status`, `id` and `from` fields clients such as Compose 1.29 read.
pub fn docker_json(e: &Entry) -> Value {
    let attributes: Map<String, Value> = e
        .attributes
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let mut v = json!({
        "Type": e.kind,
        "Action": e.action,
        "Actor": { "ID": e.id, "Attributes": attributes },
        "scope": "local",
        "time": e.time_nano / 1_000_000_000,
        "timeNano": e.time_nano,
    });
    if e.kind == "container" || e.kind == "image" {
        v["status"] = e.action.clone().into();
        v["id"] = e.id.clone().into();
    }
    if e.kind == "container" {
        if let Some(image) = e.attributes.get("image") {
            v["from"] = image.clone().into();
        }
    }
    v
}

/// The filter keys `events` knows.
const KEYS: &[&str] = &[
    "type",
    "event",
    "container",
    "image",
    "label",
    "network",
    "volume",
    "scope",
];

/// Whether `e` passes `filters`, by Docker's rules: values of one key
/// are alternatives, keys must all match, labels must all match; a
/// container, network or volume is named by id (or id prefix) or name;
/// an image by id or reference, with or without its tag.
pub fn matches(filters: &Filters, e: &Entry) -> bool {
    let attr = |k: &str| e.attributes.get(k).map(String::as_str).unwrap_or("");
    // Docker's fuzzy match: the id or the name, or a prefix of either.
    let by_name = |key: &str| {
        filters.matches(key, |v| {
            [e.id.as_str(), attr("name")]
                .iter()
                .any(|n| !n.is_empty() && n.starts_with(v))
        })
    };
    let image_name = if e.kind == "image" {
        attr("name")
    } else {
        attr("image")
    };
    filters.matches("type", |v| v == e.kind)
        && filters.matches("event", |v| {
            v == e.action
                || (matches!(v, "health_status" | "exec_create" | "exec_start")
                    && e.action.starts_with(v))
        })
        && filters.matches("scope", |v| v == "local")
        && by_name("container")
        && by_name("network")
        && by_name("volume")
        && filters.matches("image", |v| {
            [e.id.as_str(), image_name]
                .iter()
                .any(|n| !n.is_empty() && (*n == v || strip_tag(n) == v))
        })
        && filters
            .values("label")
            .all(|want| match want.split_once('=') {
                Some((k, v)) => e.attributes.get(k).is_some_and(|x| x == v),
                None => e.attributes.contains_key(want),
            })
}

/// `busybox:1` → `busybox`; a digest or registry port is kept.
fn strip_tag(name: &str) -> &str {
    match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') && !repo.is_empty() => repo,
        _ => name,
    }
}

/// What `events` reads.
#[derive(Debug, Clone, Default)]
pub struct EventsRequest {
    /// Replay events from this time (else only new ones).
    pub since: Option<SystemTime>,
    /// End the stream once this time has passed.
    pub until: Option<SystemTime>,
    pub filters: Filters,
}

impl EventsRequest {
    /// From the API's or the CLI's `since`, `until` (RFC 3339, Unix
    /// seconds, a duration before now) and filters.
    pub fn parse(since: Option<&str>, until: Option<&str>, filters: Filters) -> Result<Self> {
        let time = |s: Option<&str>| {
            s.filter(|s| !s.is_empty())
                .map(super::logs::parse_time)
                .transpose()
        };
        filters.check(KEYS)?;
        Ok(EventsRequest {
            since: time(since)?,
            until: time(until)?,
            filters,
        })
    }
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// One step of the events being read.
#[derive(Debug)]
pub enum Step {
    /// Records to send, oldest first.
    Events(Vec<Value>),
    /// Nothing new yet: ask again after a short wait.
    Idle,
    /// `until` has passed.
    End,
}

/// The journal being read for one client.
pub struct Events {
    journal: Journal,
    first: VecDeque<Entry>,
    since: u64,
    until: Option<u64>,
    filters: Filters,
}

/// Start reading: the recorded events since `since` (when given, or when
/// `until` is), then the new ones.
pub fn open(engine: &Engine, req: &EventsRequest) -> Events {
    let replay = req.since.is_some() || req.until.is_some();
    let (journal, first) = Journal::open(&engine.store, replay);
    Events {
        journal,
        first: first.into(),
        since: req.since.map_or(0, nanos),
        until: req.until.map(nanos),
        filters: req.filters.clone(),
    }
}

impl Events {
    pub fn step(&mut self) -> Step {
        let mut batch: Vec<Entry> = self.first.drain(..).collect();
        batch.extend(self.journal.more());
        let now = journal::now_nano();
        let out: Vec<Value> = batch
            .iter()
            .filter(|e| e.time_nano >= self.since)
            .filter(|e| self.until.is_none_or(|u| e.time_nano <= u))
            .filter(|e| matches(&self.filters, e))
            .map(docker_json)
            .collect();
        if !out.is_empty() {
            return Step::Events(out);
        }
        if self.until.is_some_and(|u| now > u) {
            return Step::End;
        }
        Step::Idle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn die() -> Entry {
        Entry::now("container", "die", "0123456789abcdef")
            .with("name", "web")
            .with("image", "busybox:1")
            .with("exitCode", "3")
            .with("com.docker.compose.project", "p")
    }

    #[test]
    fn records_have_dockers_shape() {
        let mut e = die();
        e.time_nano = 1_700_000_000_123_456_789;
        let v = docker_json(&e);
        assert_eq!(v["status"], "die");
        assert_eq!(v["id"], "0123456789abcdef");
        assert_eq!(v["from"], "busybox:1");
        assert_eq!(v["Type"], "container");
        assert_eq!(v["Action"], "die");
        assert_eq!(v["Actor"]["ID"], "0123456789abcdef");
        assert_eq!(v["Actor"]["Attributes"]["exitCode"], "3");
        assert_eq!(v["Actor"]["Attributes"]["com.docker.compose.project"], "p");
        assert_eq!(v["scope"], "local");
        assert_eq!(v["time"], 1_700_000_000u64);
        assert_eq!(v["timeNano"], 1_700_000_000_123_456_789u64);
        let n = docker_json(&Entry::now("network", "create", "abc").with("name", "n"));
        assert!(n.get("status").is_none() && n.get("from").is_none());
        let i = docker_json(&Entry::now("image", "pull", "busybox:latest"));
        assert_eq!(i["status"], "pull");
        assert!(i.get("from").is_none());
    }

    fn f(pairs: &[(&str, &str)]) -> Filters {
        Filters::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn filters_follow_dockers_rules() {
        let e = die();
        assert!(matches(&Filters::new(), &e));
        assert!(matches(&f(&[("type", "container")]), &e));
        assert!(!matches(&f(&[("type", "image")]), &e));
        assert!(matches(&f(&[("type", "image"), ("type", "container")]), &e));
        assert!(matches(&f(&[("event", "die")]), &e));
        assert!(!matches(&f(&[("event", "start")]), &e));
        assert!(matches(&f(&[("container", "web")]), &e));
        assert!(matches(&f(&[("container", "0123")]), &e));
        assert!(!matches(&f(&[("container", "db")]), &e));
        assert!(matches(&f(&[("image", "busybox")]), &e));
        assert!(matches(&f(&[("image", "busybox:1")]), &e));
        assert!(!matches(&f(&[("image", "alpine")]), &e));
        assert!(matches(
            &f(&[("label", "com.docker.compose.project=p")]),
            &e
        ));
        assert!(matches(&f(&[("label", "com.docker.compose.project")]), &e));
        assert!(!matches(
            &f(&[
                ("label", "com.docker.compose.project=p"),
                ("label", "other")
            ]),
            &e
        ));
        assert!(!matches(&f(&[("network", "n")]), &e));
        let net = Entry::now("network", "create", "abc").with("name", "n");
        assert!(matches(&f(&[("network", "n")]), &net));
        assert!(!matches(&f(&[("container", "web")]), &net));
        let exec = Entry::now("container", "exec_start: sh", "x");
        assert!(matches(&f(&[("event", "exec_start")]), &exec));
        let img = Entry::now("image", "tag", "sha256:aa").with("name", "app:1");
        assert!(matches(&f(&[("image", "app")]), &img));
        assert!(matches(&f(&[("image", "sha256:aa")]), &img));
    }

    #[test]
    fn requests_check_their_filters_and_times() {
        assert!(EventsRequest::parse(None, None, f(&[("bogus", "x")])).is_err());
        assert!(EventsRequest::parse(Some("yesterday"), None, Filters::new()).is_err());
        let r = EventsRequest::parse(Some("10m"), Some("1700000000"), Filters::new()).unwrap();
        assert!(r.since.is_some() && r.until.is_some());
    }

    #[test]
    fn reading_replays_since_and_ends_after_until() {
        let (_d, engine) = super::super::containers::tests::engine();
        let mut old = die();
        old.time_nano = 1;
        journal::append(&engine.store, &old);
        journal::append(&engine.store, &die());
        let req = EventsRequest {
            since: Some(SystemTime::now() - std::time::Duration::from_secs(60)),
            until: Some(SystemTime::now() + std::time::Duration::from_millis(50)),
            filters: Filters::new(),
        };
        let mut ev = open(&engine, &req);
        let Step::Events(got) = ev.step() else {
            panic!("no replay")
        };
        assert_eq!(got.len(), 1);
        std::thread::sleep(std::time::Duration::from_millis(60));
        assert!(matches!(ev.step(), Step::End));
    }
}
