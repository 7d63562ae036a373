//! `system check` for containers, and the reclaiming every burrow command
//! does of what a killed create, rm or rename left: a container directory
//! without its record, a name link whose container is gone (and whose
//! create is not in progress), a pid file or attach socket whose container
//! is gone. The full
//! check also reads every record: it must parse, name its own directory,
//! hold its name, and find every layer it was created on and every volume
//! it mounts.

use std::collections::BTreeSet;
use std::fs;

use super::names;
use super::record::{ContainerRecord, RECORD_FILE};
use super::CREATE_STAGING;
use crate::linux::userns::IdMapping;
use crate::store::check::{read_dir, Finding, Fix};
use crate::store::{self, Store, StoreError};

/// What the container side of the store looks like.
#[derive(Debug, Default)]
pub struct ContainerCheck {
    pub findings: Vec<Finding>,
    /// Every layer some container was created on.
    pub needed_layers: BTreeSet<String>,
}

/// Debris of killed creates, removals and renames (cheap: no record is
/// parsed, so every command can afford it).
pub fn leftovers(store: &Store) -> Result<Vec<Finding>, StoreError> {
    let mut out = Vec::new();
    let has_record = |id: &str| store.container_dir(id).join(RECORD_FILE).is_file();
    for e in read_dir(&store.containers_dir())? {
        let p = e.path();
        if !p.join(RECORD_FILE).is_file() {
            out.push(Finding::debris(
                format!(
                    "container directory {} has no record (an interrupted removal)",
                    p.display()
                ),
                p,
            ));
        }
    }
    for e in read_dir(&store.names_dir())? {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(id) = names::lookup(store, &name) else {
            out.push(Finding::debris(
                format!("names/{name} is not a name link"),
                e.path(),
            ));
            continue;
        };
        // Staging first: a create renames its directory into containers/
        // and only then is its staging gone.
        if has_record(&id) || store.live_staging(CREATE_STAGING, &id) || has_record(&id) {
            continue;
        }
        out.push(Finding::debris(
            format!("name {name} points at container {id}, which does not exist"),
            e.path(),
        ));
    }
    // Attach sockets are named by the short id, in the runtime dir itself
    // (beside other sockets, such as a user network's switch: not ours).
    let ids: Vec<String> = read_dir(&store.containers_dir())?
        .iter()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    for e in read_dir(&store.paths.runtime)? {
        let file = e.file_name().to_string_lossy().into_owned();
        let Some(short) = file.strip_suffix(".sock") else {
            continue;
        };
        if short.len() != 12 || !short.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        if !ids.iter().any(|id| id.starts_with(short)) {
            out.push(Finding::debris(
                format!("attach socket {file} belongs to no container"),
                e.path(),
            ));
        }
    }
    let pids = store.paths.runtime.join("containers");
    for e in read_dir(&pids)? {
        let file = e.file_name().to_string_lossy().into_owned();
        let (id, what) = if let Some(id) = file.strip_suffix(".pid") {
            (id, "pid file")
        } else if let Some(id) = file.strip_suffix(".monitor") {
            // A monitor takes its lock only once the record exists.
            (id, "monitor lock")
        } else if let Some(id) = file.strip_suffix(".exit") {
            // Left for a waiter of a removed container: read within moments.
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > std::time::Duration::from_secs(300));
            if !old {
                continue;
            }
            (id, "exit code file")
        } else {
            continue;
        };
        if !store.container_dir(id).exists() {
            out.push(Finding::debris(
                format!("{what} {file} belongs to no container"),
                e.path(),
            ));
        }
    }
    Ok(out)
}

/// Remove what [`leftovers`] finds. Run by every command, before it looks
/// at containers; a name link is removed only while it still points at the
/// gone container (a new create may have claimed the name since).
pub fn reclaim(store: &Store, mapping: &IdMapping) {
    let Ok(found) = leftovers(store) else {
        return;
    };
    for f in found {
        let Some(Fix::Remove(p)) = f.fix else {
            continue;
        };
        tracing::debug!("reclaiming: {}", f.problem);
        if p.starts_with(store.containers_dir()) {
            // Out of containers/ in one step, then deleted.
            let trash = store.staging_path("rm", &store::random_hex(6));
            if fs::rename(&p, &trash).is_ok() {
                let _ = store::remove_tree(&trash, mapping);
            }
        } else {
            let _ = fs::remove_file(&p);
        }
    }
}

/// The full container check: leftovers, then every record.
pub fn check(store: &Store) -> Result<ContainerCheck, StoreError> {
    let mut out = ContainerCheck {
        findings: leftovers(store)?,
        ..Default::default()
    };
    for e in read_dir(&store.containers_dir())? {
        let dir_id = e.file_name().to_string_lossy().into_owned();
        if !e.path().join(RECORD_FILE).is_file() {
            continue;
        }
        let rec = match ContainerRecord::load(store, &dir_id) {
            Ok(r) => r,
            Err(err) => {
                out.findings
                    .push(Finding::unfixable(format!("container {dir_id}: {err}")));
                continue;
            }
        };
        let short = &dir_id[..dir_id.len().min(12)];
        if rec.id != dir_id {
            out.findings.push(Finding::unfixable(format!(
                "container directory {dir_id} holds the record of {}",
                rec.id
            )));
        }
        for l in &rec.layers {
            out.needed_layers.insert(l.clone());
            if !store::valid_digest(l) || !store.has_layer(l) {
                out.findings.push(Finding::unfixable(format!(
                    "container {short} ({}): layer {l} is missing",
                    rec.name
                )));
            }
        }
        for v in super::volumes::names_of(&rec) {
            if !super::volumes::data_dir(store, v).is_dir() {
                out.findings.push(Finding::unfixable(format!(
                    "container {short} ({}): volume {v} is missing",
                    rec.name
                )));
            }
        }
        if names::lookup(store, &rec.name).as_deref() != Some(dir_id.as_str()) {
            out.findings.push(Finding::unfixable(format!(
                "container {short}: its name {} is not reserved for it",
                rec.name
            )));
        }
    }
    // A name link left by an interrupted rename: the container holds
    // another name.
    for e in read_dir(&store.names_dir())? {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(id) = names::lookup(store, &name) else {
            continue;
        };
        if let Ok(rec) = ContainerRecord::load(store, &id) {
            if rec.name != name {
                out.findings.push(Finding::debris(
                    format!(
                        "name {name} points at container {id}, which is named {}",
                        rec.name
                    ),
                    e.path(),
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_of_killed_creates_and_removals_are_found() {
        let (_d, s) = store::temp_store();
        let id = "a".repeat(64);
        // A create in progress (our own live pid): its name is not debris.
        let staging = s.staging_dir_for(CREATE_STAGING, &id).unwrap();
        names::reserve(&s, "busy", &id).unwrap();
        assert!(leftovers(&s).unwrap().is_empty());
        // Its creator gone: the staging is store debris, the name ours.
        fs::remove_dir(&staging).unwrap();
        // A half-removed container directory and an orphan pid file.
        fs::create_dir_all(s.container_dir("b").join("upper")).unwrap();
        fs::write(s.pid_file("c"), "1 1\n").unwrap();
        fs::write(s.monitor_lock_file("d"), "").unwrap();
        fs::write(s.paths.runtime.join("cccccccccccc.sock"), "").unwrap();
        // A user network's switch socket is not an attach socket.
        fs::write(s.paths.runtime.join("net-0123456789ab.sock"), "").unwrap();
        let found = leftovers(&s).unwrap();
        assert_eq!(found.len(), 5, "{found:?}");
        let mapping = IdMapping::detect(std::path::Path::new("/etc")).single();
        reclaim(&s, &mapping);
        assert!(leftovers(&s).unwrap().is_empty());
        assert!(s.paths.runtime.join("net-0123456789ab.sock").exists());
        assert!(names::lookup(&s, "busy").is_none());
    }
}
