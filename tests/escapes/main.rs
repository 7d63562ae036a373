//! A hostile image against every way into a container, as the unprivileged
//! test users: each module carries out one way out the way it was exploited
//! against runc, bubblewrap or burrow itself, and asserts that nothing of
//! the test user's (a marker file in their home, their terminal, their
//! binary) was read, written or typed into.
//!
//! Attack programs are small static C files in `tests/probes/escapes/`,
//! compiled once per run and copied into an image with `cp` + `commit`.

#![allow(dead_code)]

#[path = "../common/mod.rs"]
mod common;

mod caps;
mod cgroupfs;
mod cp;
mod diff;
mod entry;
mod exe;
mod mounts;
mod output;
mod store;
mod tiocsti;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use common::Env;

/// The secret every attack tries to read: a 0600 file in the test user's
/// home, holding this text.
pub const SECRET: &str = "TOP-SECRET-burrow-escape-marker";

/// Write the test user's 0600 secret into `env`'s home; returns its path.
pub fn plant_secret(env: &Env) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = env.home.join("secret.txt");
    std::fs::write(&path, SECRET).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (uid, gid) = env.ids();
    nix::unistd::chown(
        &path,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
    )
    .unwrap();
    path
}

/// Compile `tests/probes/escapes/NAME.c` static into the harness's shared
/// directory, once per run. None (after saying so loudly) without a C
/// compiler and a static libc.
pub fn probe(env: &Env, name: &str) -> Option<PathBuf> {
    static BUILT: OnceLock<Mutex<std::collections::HashMap<String, Option<PathBuf>>>> =
        OnceLock::new();
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap();
    if let Some(p) = built.get(name) {
        return p.clone();
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/probes/escapes/{name}.c"));
    let out = env.shared_dir().join(format!("escape-{name}"));
    let result = if common::compile_static(&src, &out) {
        Some(out)
    } else {
        common::loud(&format!(
            "SKIPPED escape probe {name}: cannot compile {src:?} static (gcc and libc6-dev missing?)"
        ));
        None
    };
    built.insert(name.to_string(), result.clone());
    result
}

/// Make image `tag` from busybox plus `files` (host path, path in the
/// image), with `changes` (`--change` lines) applied at commit.
pub fn evil_image(env: &Env, tag: &str, files: &[(&Path, &str)], changes: &[&str]) {
    env.import_busybox("busybox");
    let src = format!("{tag}-src");
    env.ok(["create", "--name", &src, "busybox", "true"]);
    for (host, inside) in files {
        env.ok(["cp", host.to_str().unwrap(), &format!("{src}:{inside}")]);
    }
    let mut args = vec!["commit".to_string()];
    for c in changes {
        args.push("--change".into());
        args.push(c.to_string());
    }
    args.push(src.clone());
    args.push(tag.to_string());
    env.ok(&args);
    env.ok(["rm", &src]);
}
