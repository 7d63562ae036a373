//! `system check` at the store level: what a finding is and how its repair
//! is applied, and the checks that need no image or container knowledge
//! (a store or runtime directory other users can enter, staging debris in
//! tmp/, half-written or misnamed layer directories, stray files among the
//! blobs).

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

/// A repair: a removal of debris or the closing of an open directory,
/// never a guess at lost content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fix {
    /// Remove a file, link or directory tree (through the user namespace
    /// when it holds files of subordinate ids).
    Remove(PathBuf),
    /// Drop a tag from repositories.json.
    Untag(String),
    /// chmod a directory 0700.
    MakePrivate(PathBuf),
}

impl Fix {
    /// What `--repair` does, for the report of a finding.
    pub fn describe(&self) -> &'static str {
        match self {
            Fix::Remove(_) | Fix::Untag(_) => "removes it",
            Fix::MakePrivate(_) => "makes it 0700",
        }
    }
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

/// Apply the repairs of `findings`; returns one line per thing removed or
/// closed. Hold the exclusive lock.
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
            Some(Fix::MakePrivate(p)) => {
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(p, fs::Permissions::from_mode(0o700))
                    .map_err(super::io("making private", p))?;
                done.push(format!("made {} private (0700)", p.display()));
            }
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

/// Store-level problems: a store or runtime directory other users can
/// enter, staging left by dead processes, layer directories that are
/// incomplete or not named by a digest, stray blob files.
pub fn check(store: &Store) -> Result<Vec<Finding>> {
    let mut out = open_dirs(store);
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

/// The store's private directories that group or others can enter (a
/// store made before burrow made them 0700, or opened by hand): another
/// local user could run a set-user-id file a container left in its upper
/// directory, as the store's owner.
fn open_dirs(store: &Store) -> Vec<Finding> {
    use std::os::unix::fs::PermissionsExt;
    let [root, base, runtime] = store.paths.private_dirs();
    let setuid = "they could run a set-user-id file a container left in it, as you";
    let state = "they could reach its pid files and sockets";
    [
        ("store", root, setuid),
        ("runtime directory", base, state),
        ("runtime directory", runtime, state),
    ]
    .into_iter()
    .filter_map(|(what, d, harm)| {
        let mode = fs::metadata(d).ok()?.permissions().mode() & 0o7777;
        (mode & 0o077 != 0).then(|| Finding {
            problem: format!(
                "{what} {} is open to other users (mode {mode:04o}): {harm}",
                d.display()
            ),
            fix: Some(Fix::MakePrivate(d.to_path_buf())),
        })
    })
    .collect()
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
        let found = check(&s).unwrap();
        assert!(found.is_empty(), "{found:?}");
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

    #[test]
    fn a_new_store_is_private_and_an_open_one_is_closed() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let paths = crate::store::StorePaths {
            root: d.path().join("a/b/root"),
            runtime: d.path().join("run/burrow/0123456789ab"),
            runtime_from: Default::default(),
        };
        let s = Store::open(paths.clone()).unwrap();
        let mode = |p: &std::path::Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        for p in [
            d.path().join("a"),
            d.path().join("a/b"),
            paths.root.clone(),
            d.path().join("run"),
            d.path().join("run/burrow"),
            paths.runtime.clone(),
        ] {
            assert_eq!(mode(&p), 0o700, "{}", p.display());
        }
        assert!(check(&s).unwrap().is_empty());
        for p in [&paths.root, &paths.runtime] {
            fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let found = check(&s).unwrap();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].problem.contains("(mode 0755)"), "{found:?}");
        assert_eq!(found[0].fix, Some(Fix::MakePrivate(paths.root.clone())));
        let mapping = IdMapping::detect(std::path::Path::new("/etc")).single();
        let done = repair(&s, &mapping, &found).unwrap();
        assert_eq!(done.len(), 2, "{done:?}");
        assert_eq!(mode(&paths.root), 0o700);
        assert_eq!(mode(&paths.runtime), 0o700);
        assert!(check(&s).unwrap().is_empty());
        // Every other command closes the runtime directories itself.
        let base = paths.runtime.parent().unwrap();
        for p in [base, &paths.runtime] {
            fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
        }
        s.close_runtime_dirs();
        assert_eq!((mode(base), mode(&paths.runtime)), (0o700, 0o700));
    }

    #[test]
    fn a_runtime_directory_of_someone_else_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().join("burrow-run-1000");
        std::os::unix::fs::symlink(d.path(), &base).unwrap();
        let paths = crate::store::StorePaths {
            root: d.path().join("root"),
            runtime: base.join("0123456789ab"),
            runtime_from: Default::default(),
        };
        let e = Store::open(paths).unwrap_err().to_string();
        assert!(e.contains("not a directory of yours"), "{e}");
        // Nothing was made through the link.
        assert!(!d.path().join("0123456789ab").exists());
        // Nor in a directory of ours that others may write to.
        use std::os::unix::fs::PermissionsExt;
        let open = d.path().join("burrow-run-1001");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        let paths = crate::store::StorePaths {
            root: d.path().join("root"),
            runtime: open.join("0123456789ab"),
            runtime_from: Default::default(),
        };
        let e = Store::open(paths).unwrap_err().to_string();
        assert!(e.contains("is writable by others (mode 0777)"), "{e}");
        assert!(!open.join("0123456789ab").exists());
    }
}
