//! Volumes: listing (with Docker's filters), inspecting, creating,
//! removing the ones no container uses, and pruning.

use std::collections::BTreeMap;

use super::filters::Filters;
use super::{Engine, Error, Result};
use crate::container::{self, volumes, volumes::Volume, volumes::VolumeError};

impl From<VolumeError> for Error {
    fn from(e: VolumeError) -> Self {
        match e {
            VolumeError::NoSuch(_) => Error::not_found(e),
            VolumeError::BadName(_) => Error::invalid(e),
            VolumeError::InUse { .. } => Error::conflict(e),
            VolumeError::Store(s) => s.into(),
            e => Error::Container(e.into()),
        }
    }
}

/// The filters `list` knows.
const LIST_FILTERS: &[&str] = &["dangling", "name", "label", "label!", "driver"];

/// One listed volume, and how many containers use it.
#[derive(Debug, Clone)]
pub struct VolumeEntry {
    pub volume: Volume,
    /// The ids of the containers (any state) that mount it.
    pub users: Vec<String>,
}

/// The volumes the filters select, by name.
pub fn list(engine: &Engine, filters: &Filters) -> Result<Vec<VolumeEntry>> {
    filters.check(LIST_FILTERS)?;
    let dangling = filters.boolean("dangling")?;
    let containers = container::list(&engine.store)?;
    Ok(volumes::list(&engine.store)?
        .into_iter()
        .map(|v| VolumeEntry {
            users: volumes::users(&containers, &v.name),
            volume: v,
        })
        .filter(|e| {
            let v = &e.volume;
            let labels = v.labels.clone().unwrap_or_default();
            dangling.is_none_or(|d| d == e.users.is_empty())
                && filters.matches("name", |x| v.name.contains(x))
                && filters.matches("driver", |x| x == v.driver)
                && filters.labels_match(&labels)
        })
        .collect())
}

/// What a volume's data takes.
pub fn size(engine: &Engine, name: &str) -> u64 {
    volumes::size(&engine.store, &engine.mapping, name)
}

/// Docker's `volume inspect` object.
pub fn inspect(engine: &Engine, name: &str) -> Result<serde_json::Value> {
    Ok(serde_json::to_value(volumes::get(&engine.store, name)?)?)
}

/// A volume as a front end asks for it.
#[derive(Debug, Clone, Default)]
pub struct VolumeRequest {
    /// A random 64-hex name when not given.
    pub name: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Only `local` (the default when not given).
    pub driver: Option<String>,
    /// Driver options: none are known.
    pub options: BTreeMap<String, String>,
}

/// Create a volume after checking every field, unless it exists (Docker
/// answers with the existing one).
pub fn create(engine: &Engine, req: &VolumeRequest) -> Result<Volume> {
    let driver = req.driver.as_deref().unwrap_or("local");
    if driver != "local" {
        return Err(Error::invalid(format!(
            "volume driver {driver:?} is not supported (local)"
        )));
    }
    if let Some(n) = &req.name {
        volumes::validate_name(n)?;
    }
    if let Some(k) = req.labels.keys().find(|k| k.is_empty()) {
        return Err(Error::invalid(format!("invalid label {k:?}: no key")));
    }
    if let Some(k) = req.options.keys().next() {
        return Err(Error::invalid(format!(
            "volume option {k:?} is not supported"
        )));
    }
    let existed = req
        .name
        .as_deref()
        .is_some_and(|n| volumes::get(&engine.store, n).is_ok());
    let name = volumes::create(&engine.store, req.name.as_deref(), &req.labels)?;
    if !existed {
        super::events::volume(engine, "create", &name);
    }
    Ok(volumes::get(&engine.store, &name)?)
}

/// Remove a volume no container uses (in use is a conflict). With
/// `force`, one that does not exist is already removed. Returns whether
/// there was one to remove.
pub fn remove(engine: &Engine, name: &str, force: bool) -> Result<bool> {
    let containers = container::list(&engine.store)?;
    match volumes::remove(&engine.store, &engine.mapping, &containers, name) {
        Ok(()) => {
            super::events::volume(engine, "destroy", name);
            Ok(true)
        }
        Err(VolumeError::NoSuch(_)) if force => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Remove the volumes no container uses: anonymous ones, or with `all`
/// named ones too (Docker's `volume prune` since API 1.42; the filter
/// `all=true` says the same), of those `label` and `label!` select;
/// returns their names and the bytes they took.
pub fn prune(engine: &Engine, all: bool, filters: &Filters) -> Result<(Vec<String>, u64)> {
    filters.check(&["label", "label!", "all"])?;
    let all = all || filters.boolean("all")? == Some(true);
    let containers = container::list(&engine.store)?;
    let (mut names, mut freed) = (Vec::new(), 0);
    for v in volumes::list(&engine.store)? {
        if !(all || v.is_anonymous()) || !volumes::users(&containers, &v.name).is_empty() {
            continue;
        }
        if !filters.labels_match(&v.labels.clone().unwrap_or_default()) {
            continue;
        }
        let size = volumes::size(&engine.store, &engine.mapping, &v.name);
        volumes::remove(&engine.store, &engine.mapping, &containers, &v.name).map_err(
            |source| Error::RemoveVolume {
                name: v.name.clone(),
                source,
            },
        )?;
        super::events::volume(engine, "destroy", &v.name);
        names.push(v.name);
        freed += size;
    }
    Ok((names, freed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::containers::tests::engine;

    #[test]
    fn create_remove_and_prune() {
        let (_d, e) = engine();
        let bad = VolumeRequest {
            driver: Some("nfs".into()),
            ..Default::default()
        };
        assert!(matches!(create(&e, &bad), Err(Error::Invalid(_))));
        let named = VolumeRequest {
            name: Some("data".into()),
            labels: BTreeMap::from([("team".to_string(), "web".to_string())]),
            ..Default::default()
        };
        assert_eq!(create(&e, &named).unwrap().name, "data");
        // A container's anonymous volume: a random name and Docker's label.
        let anonymous = VolumeRequest {
            labels: BTreeMap::from([(volumes::ANONYMOUS_LABEL.to_string(), String::new())]),
            ..Default::default()
        };
        let anonymous = create(&e, &anonymous).unwrap().name;
        assert_eq!(anonymous.len(), 64);
        let labelled = Filters::from_flags(&["label=team=web".into()]).unwrap();
        let names: Vec<String> = list(&e, &labelled)
            .unwrap()
            .into_iter()
            .map(|v| v.volume.name)
            .collect();
        assert_eq!(names, ["data"]);
        assert!(matches!(remove(&e, "gone", false), Err(Error::NotFound(_))));
        assert!(!remove(&e, "gone", true).unwrap());
        assert_eq!(inspect(&e, "data").unwrap()["Name"], "data");
        // Only anonymous volumes without `all`.
        let (pruned, _) = prune(&e, false, &Filters::new()).unwrap();
        assert_eq!(pruned, [anonymous]);
        let (pruned, _) = prune(&e, true, &Filters::new()).unwrap();
        assert_eq!(pruned, ["data"]);
    }
}
