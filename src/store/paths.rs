//! Where the store and the runtime state live: `--root`, `BURROW_ROOT`,
//! `$XDG_DATA_HOME/burrow`, `~/.local/share/burrow`; runtime under
//! `$XDG_RUNTIME_DIR/burrow` or `/tmp/burrow-run-UID`, and why.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorePaths {
    pub root: PathBuf,
    pub runtime: PathBuf,
    /// Why `runtime` is where it is.
    pub runtime_from: RuntimeFrom,
}

/// Where the runtime directory comes from. The base directory
/// specification wants `$XDG_RUNTIME_DIR` owned by the user, with access
/// for the user alone; one that is not (a login session's left behind
/// after `su`, a shared directory someone set) is passed over for the
/// private fallback in /tmp, as podman does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RuntimeFrom {
    /// `$XDG_RUNTIME_DIR`, usable.
    #[default]
    Session,
    /// `XDG_RUNTIME_DIR` is not set (su, sudo -u, cron, ssh without a
    /// login session, CI jobs).
    Unset,
    /// Set, but not a directory burrow can use.
    Unusable { dir: PathBuf, why: String },
}

impl RuntimeFrom {
    /// Why the fallback is used, in a few words; None for the session's.
    pub fn reason(&self) -> Option<String> {
        match self {
            RuntimeFrom::Session => None,
            RuntimeFrom::Unset => Some("XDG_RUNTIME_DIR unset".into()),
            RuntimeFrom::Unusable { dir, why } => {
                Some(format!("XDG_RUNTIME_DIR={} {why}", dir.display()))
            }
        }
    }
}

/// The environment the paths are derived from, passed in so tests need not
/// touch the process environment.
#[derive(Debug, Default, Clone)]
pub struct PathEnv {
    pub root_flag: Option<PathBuf>,
    pub burrow_root: Option<PathBuf>,
    pub xdg_data_home: Option<PathBuf>,
    pub home: Option<PathBuf>,
    pub xdg_runtime_dir: Option<PathBuf>,
    pub uid: u32,
}

impl PathEnv {
    pub fn from_process(root_flag: Option<PathBuf>) -> Self {
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        PathEnv {
            root_flag,
            burrow_root: var("BURROW_ROOT"),
            xdg_data_home: var("XDG_DATA_HOME"),
            home: var("HOME"),
            xdg_runtime_dir: var("XDG_RUNTIME_DIR"),
            uid: nix::unistd::Uid::current().as_raw(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("cannot find a place for the store: set HOME, XDG_DATA_HOME or --root")]
    NoPlace,
    #[error("current directory: {0}")]
    Cwd(#[source] std::io::Error),
}

impl StorePaths {
    pub fn resolve(env: &PathEnv) -> Result<Self, PathError> {
        let root = env
            .root_flag
            .clone()
            .or_else(|| env.burrow_root.clone())
            .or_else(|| env.xdg_data_home.as_ref().map(|d| d.join("burrow")))
            .or_else(|| env.home.as_ref().map(|h| h.join(".local/share/burrow")))
            .ok_or(PathError::NoPlace)?;
        let root = if root.is_relative() {
            std::env::current_dir().map_err(PathError::Cwd)?.join(root)
        } else {
            root
        };
        // A usable XDG_RUNTIME_DIR is ours and writable; otherwise (su, cron,
        // CI jobs) fall back to a per-uid directory in /tmp.
        let runtime_from = match &env.xdg_runtime_dir {
            None => RuntimeFrom::Unset,
            Some(d) => match unusable(d, env.uid) {
                None => RuntimeFrom::Session,
                Some(why) => RuntimeFrom::Unusable {
                    dir: d.clone(),
                    why,
                },
            },
        };
        let runtime = match (&runtime_from, &env.xdg_runtime_dir) {
            (RuntimeFrom::Session, Some(d)) => d.join("burrow"),
            _ => fallback_base(env.uid),
        };
        // Runtime state belongs to one store: key it by the store's path so
        // two stores (tests, --root) never see each other's pid files.
        let runtime =
            runtime.join(&crate::store::sha256_hex(root.as_os_str().as_encoded_bytes())[..12]);
        Ok(StorePaths {
            root,
            runtime,
            runtime_from,
        })
    }

    /// The per-user directory that holds the runtime directories of all of
    /// the user's stores (`$XDG_RUNTIME_DIR/burrow`, `/tmp/burrow-run-UID`).
    pub fn runtime_base(&self) -> &std::path::Path {
        self.runtime.parent().unwrap_or(&self.runtime)
    }

    /// The directories no other user may enter, created 0700 and checked
    /// by `system check`: the store's root (a container's root is the
    /// user, so its upper directory can hold set-user-id files of the
    /// user's), the runtime directory (pid files, sockets) and the
    /// per-user one above it.
    pub fn private_dirs(&self) -> [&std::path::Path; 3] {
        [&self.root, self.runtime_base(), &self.runtime]
    }
}

/// The runtime directory's base when there is no usable session one.
pub fn fallback_base(uid: u32) -> PathBuf {
    PathBuf::from(format!("/tmp/burrow-run-{uid}"))
}

/// Why `dir` cannot be the user's runtime directory, or None when it can:
/// a directory (a symlink to one is the session's own business), owned by
/// `uid`, that we can write to.
fn unusable(dir: &Path, uid: u32) -> Option<String> {
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some("does not exist".into()),
        Err(e) => return Some(format!("cannot be used ({e})")),
    };
    if !meta.is_dir() {
        return Some("is not a directory".into());
    }
    if meta.uid() != uid {
        return Some(format!("is not yours (owner uid {})", meta.uid()));
    }
    let access = nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK;
    if nix::unistd::access(dir, access).is_err() {
        return Some("is not writable".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence() {
        let mut env = PathEnv {
            home: Some("/home/u".into()),
            uid: 1000,
            ..Default::default()
        };
        assert_eq!(
            StorePaths::resolve(&env).unwrap().root,
            PathBuf::from("/home/u/.local/share/burrow")
        );
        env.xdg_data_home = Some("/data".into());
        assert_eq!(
            StorePaths::resolve(&env).unwrap().root,
            PathBuf::from("/data/burrow")
        );
        env.burrow_root = Some("/env".into());
        assert_eq!(
            StorePaths::resolve(&env).unwrap().root,
            PathBuf::from("/env")
        );
        env.root_flag = Some("/flag".into());
        let p = StorePaths::resolve(&env).unwrap();
        assert_eq!(p.root, PathBuf::from("/flag"));
        assert!(p.runtime.starts_with("/tmp/burrow-run-1000"));
        assert_eq!(
            p.runtime_base(),
            std::path::Path::new("/tmp/burrow-run-1000")
        );
        assert_eq!(p.private_dirs()[0], std::path::Path::new("/flag"));
        assert!(StorePaths::resolve(&PathEnv::default()).is_err());
        assert_eq!(p.runtime_from, RuntimeFrom::Unset);
        assert_eq!(
            p.runtime_from.reason().as_deref(),
            Some("XDG_RUNTIME_DIR unset")
        );
    }

    #[test]
    fn an_unusable_xdg_runtime_dir_falls_back_and_says_why() {
        use std::os::unix::fs::MetadataExt;
        let d = tempfile::tempdir().unwrap();
        let me = std::fs::metadata(d.path()).unwrap().uid();
        let env = |dir: PathBuf, uid: u32| PathEnv {
            home: Some("/home/u".into()),
            xdg_runtime_dir: Some(dir),
            uid,
            ..Default::default()
        };
        let ours = StorePaths::resolve(&env(d.path().into(), me)).unwrap();
        assert_eq!(ours.runtime_from, RuntimeFrom::Session);
        assert_eq!(ours.runtime_base(), d.path().join("burrow"));
        let file = d.path().join("f");
        std::fs::write(&file, "").unwrap();
        for (dir, uid, why) in [
            (d.path().to_path_buf(), me + 1, "is not yours (owner uid"),
            (d.path().join("missing"), me, "does not exist"),
            (file, me, "is not a directory"),
        ] {
            let p = StorePaths::resolve(&env(dir.clone(), uid)).unwrap();
            assert_eq!(p.runtime_base(), fallback_base(uid), "{dir:?}");
            let reason = p.runtime_from.reason().unwrap();
            assert!(
                reason.starts_with(&format!("XDG_RUNTIME_DIR={} {why}", dir.display())),
                "{reason}"
            );
        }
    }
}
