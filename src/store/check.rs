//! `system check` at the store level: what a finding is and how its repair
//! is applied, and the checks that need no image or container knowledge
//! (staging debris in tmp/, half-written or misnamed layer directories,
//! stray files among the blobs).

use std::fs;
use std::path::PathBuf;

use super::{pid_alive, remove_path, valid_digest, Result, Store};
use crate::linux::userns::IdMapping;

/// One thing wrong with the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// One line, naming the object and what is wrong with it.
    pub problem: String,
    /// What `--repair` does about it; None when only the user can decide
    /// (a corrupt record, a missing layer an image needs).
    pub fix: Option<Fix>,
}

/// A repair: always a removal of debris, never a guess at lost content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fix {
    /// Remove a file, link or directory tree (through the user namespace
    /// when it holds files of subordinate ids).
    Remove(PathBuf),
    /// Drop a tag from repositories.json.
    Untag(String),
}

impl Finding {
    pub fn debris(problem: String, path: PathBuf) -> Self {
        Finding {
            problem,
            fix: Some(Fix::Remove(path)),
        }
    }

    pub fn unfixable(problem: String) -> Self {
        Finding { problem, fix: None }
    }
}

/// Apply the repairs of `findings`; returns one line per thing removed.
/// Hold the exclusive lock.
pub fn repair(store: &Store, mapping: &IdMapping, findings: &[Finding]) -> Result<Vec<String>> {
    let mut done = Vec::new();
    let mut untag = Vec::new();
    for f in findings {
        match &f.fix {
            Some(Fix::Remove(p)) => {
                remove_path(p, mapping)?;
                done.push(format!("removed {}", p.display()));
            }
            Some(Fix::Untag(t)) => untag.push(t.clone()),
            None => {}
        }
    }
    if !untag.is_empty() {
        let mut repos = store.repositories()?;
        for t in untag {
            if repos.remove(&t).is_some() {
                done.push(format!("untagged {t}"));
            }
        }
        store.save_repositories(&repos)?;
    }
    Ok(done)
}

/// Store-level problems: staging left by dead processes, layer directories
/// that are incomplete or not named by a digest, stray blob files.
pub fn check(store: &Store) -> Result<Vec<Finding>> {
    let mut out = Vec::new();
    for p in store.abandoned_staging() {
        out.push(Finding::debris(
            format!("staging {} was left by a process that is gone", p.display()),
            p,
        ));
    }
    let layers = store.paths.root.join("layers");
    for e in read_dir(&layers)? {
        let id = format!("sha256:{}", e.file_name().to_string_lossy());
        let p = e.path();
        if !valid_digest(&id) {
            out.push(Finding::debris(
                format!("layers/ holds {}, which is not a layer", p.display()),
                p,
            ));
        } else if !store.has_layer(&id) || !p.join("fs").is_dir() {
            out.push(Finding::debris(
                format!("layer {id} is incomplete (no size or fs/)"),
                p,
            ));
        }
    }
    let blobs = store.paths.root.join("blobs").join("sha256");
    for e in read_dir(&blobs)? {
        let d = format!("sha256:{}", e.file_name().to_string_lossy());
        let p = e.path();
        if !valid_digest(&d) || !p.is_file() {
            out.push(Finding::debris(
                format!("blobs/ holds {}, which is not a blob", p.display()),
                p,
            ));
        }
    }
    // Temp files of the older in-place atomic write (`.NAME.tmp-PID`).
    for dir in [store.paths.root.clone(), store.paths.root.join("images")] {
        for e in read_dir(&dir)? {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = name
                .rsplit_once(".tmp-")
                .and_then(|(_, pid)| pid.parse::<u32>().ok());
            if name.starts_with('.') && pid.is_some_and(|p| !pid_alive(p)) {
                out.push(Finding::debris(
                    format!(
                        "{} is a temp file left by a killed write",
                        e.path().display()
                    ),
                    e.path(),
                ));
            }
        }
    }
    Ok(out)
}

/// The entries of `dir` (none when it does not exist).
pub fn read_dir(dir: &std::path::Path) -> Result<Vec<fs::DirEntry>> {
    match fs::read_dir(dir) {
        Ok(rd) => Ok(rd.filter_map(|e| e.ok()).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(super::io("listing", dir)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::temp_store;

    #[test]
    fn finds_and_repairs_store_debris() {
        let (_d, s) = temp_store();
        assert!(check(&s).unwrap().is_empty());
        // A staging dir of a pid that cannot exist, a layer without size,
        // a stray blob temp file.
        let stale = s.paths.root.join("tmp/import-4194305-abc");
        fs::create_dir_all(stale.join("fs")).unwrap();
        let half = s.layer_dir(&format!("sha256:{}", "a".repeat(64)));
        fs::create_dir_all(half.join("fs")).unwrap();
        fs::write(s.paths.root.join("blobs/sha256/.x.tmp-1"), b"").unwrap();
        let live = s.staging_dir("pull").unwrap();
        let found = check(&s).unwrap();
        assert_eq!(found.len(), 3, "{found:?}");
        let mapping = IdMapping::detect(std::path::Path::new("/etc")).single();
        let done = repair(&s, &mapping, &found).unwrap();
        assert_eq!(done.len(), 3);
        assert!(check(&s).unwrap().is_empty());
        assert!(live.exists(), "a live process's staging stays");
    }
}
