//! Build script: the git commit and build date that `burrow version` shows,
//! when they can be known at build time.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let o = Command::new("git").args(args).output().ok()?;
    let s = String::from_utf8(o.stdout).ok()?.trim().to_string();
    (o.status.success() && !s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=BURROW_GIT_COMMIT");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-changed=build.rs");
    // A packager may say which commit it built (a source tarball has no
    // .git); otherwise ask git, and build again when HEAD moves.
    let commit = std::env::var("BURROW_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]));
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let mut watched = vec!["HEAD".to_string()];
    watched.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for what in watched {
        if let Some(p) = git(&["rev-parse", "--git-path", &what]) {
            println!(
                "cargo:rerun-if-changed={}",
                Path::new(&dir).join(p).display()
            );
        }
    }
    if let Some(c) = commit {
        println!("cargo:rustc-env=BURROW_GIT_COMMIT={c}");
    }
    // The build date, reproducibly: SOURCE_DATE_EPOCH, else the commit's.
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .or_else(|| git(&["log", "-1", "--format=%ct"]));
    if let Some(e) = epoch.filter(|e| e.parse::<u64>().is_ok()) {
        println!("cargo:rustc-env=BURROW_BUILD_EPOCH={e}");
    }
}
