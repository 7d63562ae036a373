//! Where the store and the runtime state live: `--root`, `BURROW_ROOT`,
//! `$XDG_DATA_HOME/burrow`, `~/.local/share/burrow`; runtime under
//! `$XDG_RUNTIME_DIR/burrow` or `/tmp/burrow-run-UID`.

use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorePaths {
    pub root: PathBuf,
    pub runtime: PathBuf,
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
        let runtime = match &env.xdg_runtime_dir {
            Some(d) if is_writable_dir(d) => d.join("burrow"),
            _ => PathBuf::from(format!("/tmp/burrow-run-{}", env.uid)),
        };
        // Runtime state belongs to one store: key it by the store's path so
        // two stores (tests, --root) never see each other's pid files.
        let runtime =
            runtime.join(&crate::store::sha256_hex(root.as_os_str().as_encoded_bytes())[..12]);
        Ok(StorePaths { root, runtime })
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

fn is_writable_dir(p: &std::path::Path) -> bool {
    nix::unistd::access(
        p,
        nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK,
    )
    .is_ok()
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
    }
}
