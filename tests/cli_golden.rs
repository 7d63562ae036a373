//! Golden tests of burrow's command line where no namespace is needed: the
//! `--help` of the top level and the most used verbs, the one-line errors
//! (exit 125) of input rejected before anything forks or reaches a registry,
//! and `ps` / `images` on an empty store.
//!
//! Each case is a `tests/cli/*.toml` file with the expected output beside it
//! in `*.stdout` / `*.stderr`, so a changed flag or message shows up in review
//! as a diff of plain text. Refresh them with
//! `TRYCMD=overwrite cargo test --test cli_golden`, then read the diff.
//!
//! Nothing here starts a container, so these tests run as any user, root
//! included, on any host: no subuid range, user namespaces or cgroup
//! delegation is needed.
//!
//! Every case sets `env.inherit = false` and `fs.sandbox = true`: the host's
//! environment (`BURROW_*`, `XDG_*`, `DOCKER_CONFIG`, `COLUMNS`, ...) must not
//! change what burrow prints, and each case gets its own empty temp dir as
//! its working directory, where the store and `HOME` below resolve.

use std::path::{Path, PathBuf};

/// trycmd compares only the streams that have a file: a case without its
/// `.stdout` or `.stderr` would pass whatever burrow printed there.
fn check_every_case_has_both_streams(dir: &Path) {
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(dir).expect("reading tests/cli") {
        let path = entry.expect("reading tests/cli").path();
        if path.extension().is_some_and(|e| e == "toml") {
            for ext in ["stdout", "stderr"] {
                if !path.with_extension(ext).exists() {
                    missing.push(path.with_extension(ext).display().to_string());
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "create these (empty) and run TRYCMD=overwrite to fill them: {missing:?}"
    );
}

#[test]
fn cli_golden() {
    check_every_case_has_both_streams(Path::new("tests/cli"));
    // Runtime state must not land in the host's /tmp/burrow-run-UID; burrow
    // keys it by the store's path, so one dir serves every case privately.
    let runtime = tempfile::tempdir().expect("temp dir for XDG_RUNTIME_DIR");
    let cases = trycmd::TestCases::new();
    cases
        .register_bin("burrow", PathBuf::from(env!("CARGO_BIN_EXE_burrow")))
        .default_bin_name("burrow")
        // Relative to the case's sandbox: burrow resolves a relative root
        // against its working directory. clap shows the value in help, hence
        // `[env: BURROW_ROOT=store]` in the `*-help.stdout` files.
        .env("BURROW_ROOT", "store")
        .env("HOME", "home")
        .env("XDG_RUNTIME_DIR", runtime.path().display().to_string())
        // A closed loopback port: should a case reach for a registry after
        // all, it fails at once instead of touching the network.
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("NO_PROXY", "localhost,127.0.0.1")
        .case("tests/cli/*.toml");
    cases.run();
}
