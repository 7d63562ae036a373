//! Layer extraction is a security boundary: crafted archives imported through
//! the real CLI, as an unprivileged user, must fail with one clear line, write
//! nothing outside the store, and leave the store as it was. Also: a killed
//! import leaves nothing visible, and its debris is cleaned by the next one.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{spawn, stderr, users, Env, Who};

/// A raw ustar header with any name (tar::Builder refuses `..` and absolute
/// paths, which is exactly what these tests need to write).
fn raw_entry(out: &mut Vec<u8>, name: &str, kind: u8, link: &str, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    {
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_entry_type(tar::EntryType::new(kind));
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    let pad = (512 - data.len() % 512) % 512;
    out.extend(std::iter::repeat_n(0u8, pad));
}

fn finish(mut out: Vec<u8>) -> Vec<u8> {
    out.extend(std::iter::repeat_n(0u8, 1024));
    out
}

/// Everything under `dir` with size and mode, to compare before and after.
fn snapshot(dir: &Path) -> String {
    let o = std::process::Command::new("find")
        .arg(dir)
        .args(["-printf", "%P %y %s %m\n"])
        .output()
        .unwrap();
    let mut lines: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    lines.join("\n")
}

#[test]
fn crafted_archives_are_rejected_without_writing_outside() {
    for env in users("hostile") {
        env.import_busybox("busybox");
        // A directory the user can write, next to the store: an escape
        // would land here.
        let outside = env.home.join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        let victim = outside.join("victim");
        std::fs::write(&victim, "original").unwrap();
        // Owned by the test user: an escape must be stopped by burrow, not
        // by file permissions.
        let m = std::fs::metadata(&env.home).unwrap();
        use std::os::unix::fs::MetadataExt;
        for p in [&outside, &victim] {
            nix::unistd::chown(
                p,
                Some(nix::unistd::Uid::from_raw(m.uid())),
                Some(nix::unistd::Gid::from_raw(m.gid())),
            )
            .unwrap();
        }
        let out = outside.to_str().unwrap().to_string();
        let rel_up = "../".repeat(12);

        let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
        let mut a = Vec::new();
        raw_entry(
            &mut a,
            &format!("{rel_up}{}/escaped", &out[1..]),
            b'0',
            "",
            b"pwned",
        );
        cases.push(("dotdot", finish(a)));

        let mut a = Vec::new();
        raw_entry(&mut a, "a/../../../escaped", b'0', "", b"pwned");
        cases.push(("inner dotdot", finish(a)));

        let mut a = Vec::new();
        raw_entry(&mut a, "evil", b'2', &out, b"");
        raw_entry(&mut a, "evil/escaped", b'0', "", b"pwned");
        cases.push(("symlink then write through it", finish(a)));

        let mut a = Vec::new();
        raw_entry(&mut a, "evil", b'2', &format!("{rel_up}{}", &out[1..]), b"");
        raw_entry(&mut a, "evil/escaped", b'0', "", b"pwned");
        cases.push(("relative symlink out", finish(a)));

        let mut a = Vec::new();
        raw_entry(&mut a, "link", b'1', victim.to_str().unwrap(), b"");
        cases.push(("hardlink to host file", finish(a)));

        let mut a = Vec::new();
        raw_entry(
            &mut a,
            "link",
            b'1',
            &format!("{rel_up}{}/victim", &out[1..]),
            b"",
        );
        cases.push(("hardlink up and out", finish(a)));

        let mut a = Vec::new();
        raw_entry(&mut a, "big", b'0', "", &vec![b'x'; 4096]);
        let truncated = a[..512 + 1000].to_vec();
        cases.push(("truncated", truncated));

        cases.push((
            "not a tar",
            b"this is not an archive at all, just text".repeat(20),
        ));
        cases.push(("xz", b"\xfd7zXZ\0\0\0rest".to_vec()));

        let before = snapshot(&env.root);
        for (what, bytes) in cases {
            let path = env.home.join("crafted.tar");
            std::fs::write(&path, &bytes).unwrap();
            env.share(&path);
            let o = env.run(["import", path.to_str().unwrap(), "crafted"]);
            let err = stderr(&o);
            // Paths that land inside the layer are harmless and may import;
            // everything else must fail with one line and exit 125.
            if o.status.success() {
                assert!(
                    matches!(
                        what,
                        "symlink then write through it" | "relative symlink out"
                    ),
                    "{what}: imported a hostile archive"
                );
                env.ok(["rmi", "crafted"]);
            } else {
                assert_eq!(o.status.code(), Some(125), "{what}: {err}");
                assert_eq!(err.trim().lines().count(), 1, "{what}: one line: {err}");
                assert!(err.starts_with("burrow: importing"), "{what}: {err}");
            }
            assert_eq!(
                std::fs::read_to_string(&victim).unwrap(),
                "original",
                "{what}"
            );
            let names: Vec<_> = std::fs::read_dir(&outside)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(names, ["victim"], "{what}: something was written outside");
            assert_eq!(snapshot(&env.root), before, "{what}: the store changed");
        }
    }
}

#[test]
fn a_killed_import_leaves_nothing_visible_and_is_cleaned_later() {
    let Some(env) = Env::new(Who::Range, "killed").or_else(|| Env::new(Who::Single, "killed"))
    else {
        return;
    };
    let before_images = env.ok(["images", "-q"]);
    // Feed half an archive through stdin, then kill burrow mid-extraction.
    let tar = std::fs::read(env.busybox_tar()).unwrap();
    let mut c = env.cmd(["import", "-", "half"]);
    c.stdin(Stdio::piped());
    let mut child = spawn(c);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&tar[..tar.len() / 2]).unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // Kill the whole process group: burrow and its extracting child.
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    drop(stdin);
    child.wait().unwrap();
    assert_eq!(env.ok(["images", "-q"]), before_images, "no image appeared");
    let layers = env.root.join("layers");
    assert_eq!(
        std::fs::read_dir(&layers).map(|d| d.count()).unwrap_or(0),
        0,
        "no layer appeared"
    );
    // The next import removes the abandoned staging dir (its pid is dead).
    env.import_busybox("busybox");
    let tmp: Vec<_> = std::fs::read_dir(env.root.join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(tmp.is_empty(), "staging debris left: {tmp:?}");
}
