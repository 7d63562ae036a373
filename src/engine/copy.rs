//! Files between the host and a container: `cp` from path to path, and the
//! pieces the Docker API's archive endpoints are made of (what a container
//! path is, a tar of it, a tar unpacked into it).

use std::fs::File;

use super::{Engine, Error, Result};
use crate::container::{self, copy, ContainerRecord};

pub use crate::container::copy::{Direction, PathStat};

/// Copy between a host path and a container path, as `docker cp` does.
pub fn copy(engine: &Engine, key: &str, dir: &Direction) -> Result<()> {
    let rec = container::find(&engine.store, key)?;
    copy::copy(&engine.store, &rec, &engine.mapping, dir)?;
    Ok(())
}

/// A container path as the API takes it: relative to the root, a trailing
/// `/` or `/.` kept (they say "the directory's contents").
pub fn container_path(path: &str) -> Result<String> {
    if path.is_empty() {
        return Err(Error::invalid("a container path is required"));
    }
    if path.contains('\0') {
        return Err(Error::invalid(format!("invalid container path {path:?}")));
    }
    Ok(if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    })
}

fn found(engine: &Engine, key: &str) -> Result<ContainerRecord> {
    super::containers::find(engine, key.trim_start_matches('/'))
}

/// Docker's words for a container path with nothing there.
fn missing(path: &str, key: &str) -> Error {
    Error::not_found(format!("Could not find the file {path} in container {key}"))
}

/// What is at `path` in the container (a symlink itself, not followed).
pub fn stat(engine: &Engine, key: &str, path: &str) -> Result<PathStat> {
    let path = container_path(path)?;
    let rec = found(engine, key)?;
    copy::stat(&engine.store, &rec, &engine.mapping, &path)?.ok_or_else(|| missing(&path, key))
}

/// What is at `path`, and a tar of it written to `out` (its top entry named
/// after the path's last component).
pub fn archive(engine: &Engine, key: &str, path: &str, out: File) -> Result<PathStat> {
    let path = container_path(path)?;
    let rec = found(engine, key)?;
    let st = copy::stat(&engine.store, &rec, &engine.mapping, &path)?
        .ok_or_else(|| missing(&path, key))?;
    copy::archive(&engine.store, &rec, &engine.mapping, &path, out)?;
    Ok(st)
}

/// Unpack the tar stream in `input` (read from its start) into the
/// directory `dir` of the container; hostile entries are kept inside it
/// as `cp` keeps them. `no_overwrite_dir_non_dir` is Docker's
/// `noOverwriteDirNonDir`.
pub fn extract(
    engine: &Engine,
    key: &str,
    dir: &str,
    input: File,
    no_overwrite_dir_non_dir: bool,
) -> Result<()> {
    let dir = container_path(dir)?;
    let rec = found(engine, key)?;
    let st = copy::stat(&engine.store, &rec, &engine.mapping, &dir)?
        .ok_or_else(|| missing(&dir, key))?;
    if !st.is_dir() {
        return Err(Error::invalid(format!(
            "extraction point {dir} is not a directory"
        )));
    }
    copy::extract(
        &engine.store,
        &rec,
        &engine.mapping,
        &dir,
        input,
        no_overwrite_dir_non_dir,
    )?;
    Ok(())
}

/// An unlinked file in the store, for an archive on its way in or out.
pub fn scratch_file(engine: &Engine) -> Result<File> {
    Ok(copy::scratch_file(&engine.store)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths_are_absolute() {
        assert_eq!(container_path("etc/hosts").unwrap(), "/etc/hosts");
        assert_eq!(container_path("/data/.").unwrap(), "/data/.");
        assert!(matches!(container_path(""), Err(Error::Invalid(_))));
    }
}
