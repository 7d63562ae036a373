//! Tests of `apply_layer`: well-formed archives, hostile names and links,
//! whiteouts, broken streams and owner policy. Each asserts that nothing
//! outside the destination changed.

use std::fs;
use std::io::{self, Cursor};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use nix::unistd::Gid;
use tar::EntryType::{self, Directory, Fifo, Link, Regular, Symlink};

use super::entry::parse_pax_time;
use super::fixtures::{header, names, xattr, Env, Tar, KEEP, MTIME};
use super::{apply_layer, ApplyOptions, ApplyReport, IdPolicy, LayerError};
use crate::linux::mount::OPAQUE_XATTR;

const COLLAPSE: ApplyOptions = ApplyOptions {
    ids: IdPolicy::Collapse,
};

/// Hostile archives: raw headers, so names may hold `..` or start with `/`.
#[derive(Default)]
struct Raw(Vec<u8>);

impl Raw {
    fn entry(&mut self, name: &str, kind: EntryType, link: &str, data: &[u8]) -> &mut Self {
        let mut h = header(kind, data.len() as u64, 0o644);
        {
            let old = h.as_old_mut();
            old.name = [0; 100];
            old.name[..name.len()].copy_from_slice(name.as_bytes());
            old.linkname = [0; 100];
            old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_cksum();
        self.0.extend_from_slice(h.as_bytes());
        self.0.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.0.resize(self.0.len() + pad, 0);
        self
    }
    fn finish(&mut self) -> Vec<u8> {
        let mut v = self.0.clone();
        v.resize(v.len() + 1024, 0);
        v
    }
}

/// One raw entry: name, type, link target, data. `{out}` in a name or a
/// target stands for the path of `env`'s outside directory.
type RawEntry<'a> = (&'a str, EntryType, &'a str, &'a str);

/// The hostile archive of `entries`, aimed at `env`'s outside directory.
fn raw(env: &Env, entries: &[RawEntry]) -> Vec<u8> {
    let out = env.out();
    let mut raw = Raw::default();
    for (name, kind, link, data) in entries {
        let (name, link) = (name.replace("{out}", &out), link.replace("{out}", &out));
        raw.entry(&name, *kind, &link, data.as_bytes());
    }
    raw.finish()
}

/// A fresh destination, and what applying the hostile archive of
/// `entries` to it gave.
fn apply_raw(entries: &[RawEntry]) -> (Env, Result<ApplyReport, LayerError>) {
    let env = Env::new();
    let r = env.apply(&raw(&env, entries));
    (env, r)
}

fn unsafe_reason(r: Result<ApplyReport, LayerError>) -> String {
    match r {
        Err(LayerError::Unsafe { reason, .. }) => reason,
        other => panic!("expected LayerError::Unsafe, got {other:?}"),
    }
}

fn is_root() -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("SKIPPED: this test needs root (chown)");
    }
    root
}

// --- well-formed archives -------------------------------------------

#[test]
fn extracts_files_dirs_links_fifos_with_metadata() {
    let env = Env::new();
    let big: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
    let tar = Tar::new()
        .dir("etc/", 0o750)
        .file("etc/hosts", b"127.0.0.1 localhost\n")
        .file_mode("bin/su", b"#!", 0o4755)
        .file("bin/big", &big)
        .link(EntryType::Symlink, "bin/sh", "busybox")
        .link(EntryType::Symlink, "abs", "/etc/hosts")
        .link(EntryType::Link, "etc/hosts.hard", "etc/hosts")
        .entry("run/fifo", header(EntryType::Fifo, 0, 0o640), b"")
        .dir("ro/", 0o555)
        .file("ro/inside", b"x")
        .file("usr/share/doc/implicit", b"")
        .finish();
    let report = env.apply(&tar).unwrap();
    assert_eq!(report.entries, 11);
    assert_eq!(report.tar_bytes, tar.len() as u64);
    assert!(report.notes.is_empty(), "{:?}", report.notes);

    let d = &env.dest;
    assert_eq!(
        fs::read(d.join("etc/hosts")).unwrap(),
        b"127.0.0.1 localhost\n"
    );
    assert_eq!(fs::read(d.join("bin/big")).unwrap(), big);
    let su = fs::metadata(d.join("bin/su")).unwrap();
    assert_eq!(su.mode() & 0o7777, 0o4755, "setuid bit kept");
    assert_eq!(su.mtime(), MTIME as i64);
    assert_eq!(
        fs::read_link(d.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert_eq!(
        fs::read_link(d.join("abs")).unwrap(),
        Path::new("/etc/hosts")
    );
    let hard = fs::metadata(d.join("etc/hosts.hard")).unwrap();
    assert_eq!(hard.ino(), fs::metadata(d.join("etc/hosts")).unwrap().ino());
    let fifo = fs::symlink_metadata(d.join("run/fifo")).unwrap();
    assert!(fifo.file_type().is_fifo());
    assert_eq!(fifo.mode() & 0o7777, 0o640);
    // Directory metadata is applied last, so children do not disturb it.
    let etc = fs::metadata(d.join("etc")).unwrap();
    assert_eq!(etc.mode() & 0o7777, 0o750);
    assert_eq!(etc.mtime(), MTIME as i64);
    let ro = fs::metadata(d.join("ro")).unwrap();
    assert_eq!(ro.mode() & 0o7777, 0o555);
    assert_eq!(fs::read(d.join("ro/inside")).unwrap(), b"x");
    let implicit = fs::metadata(d.join("usr/share/doc")).unwrap();
    assert_eq!(implicit.mode() & 0o7777, 0o755);
    env.assert_contained();
}

#[test]
fn long_names_pax_mtime_and_user_xattrs() {
    let env = Env::new();
    let long = format!("{}/{}", "d".repeat(120), "f".repeat(150));
    let tar = Tar::new()
        .file(&long, b"long")
        .pax(&[
            ("mtime", b"1600000000.5"),
            ("SCHILY.xattr.user.test", b"hello"),
            ("SCHILY.xattr.user.overlay.redirect", b"/elsewhere"),
            ("SCHILY.xattr.security.capability", b"\x01\x02"),
        ])
        .file("pax", b"p")
        .finish();
    let report = env.apply(&tar).unwrap();
    assert_eq!(fs::read(env.dest.join(&long)).unwrap(), b"long");
    let md = fs::metadata(env.dest.join("pax")).unwrap();
    assert_eq!((md.mtime(), md.mtime_nsec()), (MTIME as i64, 500_000_000));
    if report
        .notes
        .iter()
        .any(|n| n.contains("extended attribute"))
    {
        eprintln!("SKIPPED xattr check: filesystem lacks user xattrs");
    } else {
        let p = env.dest.join("pax");
        assert_eq!(xattr(&p, c"user.test").as_deref(), Some(&b"hello"[..]));
        assert_eq!(xattr(&p, c"user.overlay.redirect"), None);
    }
    env.assert_contained();
}

#[test]
fn pax_time_parsing() {
    let t = |s: &str| parse_pax_time(s.as_bytes()).map(|t| (t.tv_sec(), t.tv_nsec()));
    assert_eq!(t("12"), Some((12, 0)));
    assert_eq!(t("12.25"), Some((12, 250_000_000)));
    assert_eq!(t("12.1234567891"), Some((12, 123_456_789)));
    assert_eq!(t("-1.25"), Some((-2, 750_000_000)));
    assert_eq!(t("x"), None);
}

#[test]
fn later_entries_replace_earlier_ones() {
    let env = Env::new();
    let out = env.out();
    let tar = Tar::new()
        .file("a", b"file first")
        .dir("a/", 0o755)
        .file("a/f", b"in dir")
        .dir("b/", 0o755)
        .file("b/child", b"gone")
        .file("b", b"dir became file")
        .link(EntryType::Symlink, "c", &format!("{out}/file"))
        .file("c", b"not through the link")
        .file("d", b"old")
        .file("d", b"new")
        .finish();
    env.apply(&tar).unwrap();
    let d = &env.dest;
    assert_eq!(fs::read(d.join("a/f")).unwrap(), b"in dir");
    assert_eq!(fs::read(d.join("b")).unwrap(), b"dir became file");
    assert!(fs::symlink_metadata(d.join("c")).unwrap().is_file());
    assert_eq!(fs::read(d.join("c")).unwrap(), b"not through the link");
    assert_eq!(fs::read(d.join("d")).unwrap(), b"new");
    env.assert_contained();
}

#[test]
fn root_entry_sets_root_metadata() {
    let env = Env::new();
    let tar = Tar::new().dir("./", 0o711).file("./x", b"").finish();
    env.apply(&tar).unwrap();
    let md = fs::metadata(&env.dest).unwrap();
    assert_eq!(md.mode() & 0o7777, 0o711);
    assert_eq!(md.mtime(), MTIME as i64);
    assert!(env.dest.join("x").exists());
}

// --- hostile names ---------------------------------------------------

#[test]
fn dotdot_escape_is_rejected() {
    let (env, r) = apply_raw(&[("../escape", Regular, "", "pwned")]);
    assert!(unsafe_reason(r).contains(".."));
    env.assert_contained();
    assert!(names(&env.dest).is_empty());
}

#[test]
fn dotdot_in_the_middle_is_rejected() {
    for name in ["a/../../escape", "a/b/../../../outside/file"] {
        let (env, r) = apply_raw(&[(name, Regular, "", "pwned")]);
        unsafe_reason(r);
        env.assert_contained();
    }
}

#[test]
fn dotdot_that_stays_inside_is_normalised() {
    let (env, r) = apply_raw(&[("a/../b/./c", Regular, "", "ok")]);
    r.unwrap();
    assert_eq!(fs::read(env.dest.join("b/c")).unwrap(), b"ok");
    assert!(!env.dest.join("a").exists());
    env.assert_contained();
}

#[test]
fn absolute_paths_are_made_relative() {
    let (env, r) = apply_raw(&[
        ("/abs/path", Regular, "", "1"),
        ("{out}/file", Regular, "", "2"),
    ]);
    r.unwrap();
    assert_eq!(fs::read(env.dest.join("abs/path")).unwrap(), b"1");
    let inner = env
        .dest
        .join(env.out().trim_start_matches('/'))
        .join("file");
    assert_eq!(fs::read(inner).unwrap(), b"2");
    env.assert_contained();
}

#[test]
fn symlink_to_outside_then_file_through_it() {
    let through = |target| {
        apply_raw(&[
            ("evil", Symlink, target, ""),
            ("evil/pwned", Regular, "", "x"),
        ])
    };
    // An absolute target resolves to <dest><outside>, which does not exist;
    // a relative one climbing out is clamped at the root like `/..`.
    for target in ["{out}", "../outside"] {
        let (env, r) = through(target);
        assert!(matches!(r, Err(LayerError::Write { .. })));
        env.assert_contained();
    }
    let (env, r) = through("../../..");
    r.unwrap();
    assert_eq!(fs::read(env.dest.join("pwned")).unwrap(), b"x");
    env.assert_contained();
}

#[test]
fn symlink_to_outside_file_then_file_over_it() {
    let (env, r) = apply_raw(&[
        ("x", Symlink, "{out}/file", ""),
        ("x", Regular, "", "overwrite?"),
        ("y", Symlink, "{out}/file", ""),
        ("y", Fifo, "", ""),
    ]);
    r.unwrap();
    assert_eq!(fs::read(env.dest.join("x")).unwrap(), b"overwrite?");
    env.assert_contained();
}

#[test]
fn symlink_replacing_a_directory_then_file_through_it() {
    let (env, r) = apply_raw(&[
        ("d/", Directory, "", ""),
        ("d/before", Regular, "", "1"),
        ("d", Symlink, "{out}", ""),
        ("d/after", Regular, "", "2"),
    ]);
    assert!(matches!(r, Err(LayerError::Write { .. })));
    env.assert_contained();
}

#[test]
fn whiteout_and_opaque_through_symlink_stay_inside() {
    for (link, marker) in [("w", "w/.wh.file"), ("o", "o/.wh..wh..opq")] {
        let (env, r) = apply_raw(&[(link, Symlink, "{out}", ""), (marker, Regular, "", "")]);
        assert!(r.is_err());
        env.assert_contained();
    }
}

#[test]
fn hardlink_to_dotdot_outside_is_rejected() {
    let (env, r) = apply_raw(&[("h", Link, "../outside/file", "")]);
    assert!(unsafe_reason(r).starts_with("hard link target"));
    env.assert_contained();
    assert!(names(&env.dest).is_empty());
}

#[test]
fn hardlink_to_absolute_host_path_resolves_in_root() {
    let (env, r) = apply_raw(&[("h", Link, "{out}/file", "")]);
    assert!(matches!(r, Err(LayerError::Write { .. })));
    env.assert_contained();
    assert!(names(&env.dest).is_empty());

    // `/etc/passwd` names <dest>/etc/passwd, which the layer may provide.
    let (env, r) = apply_raw(&[("h", Link, "/etc/passwd", "")]);
    assert!(r.is_err());
    assert!(names(&env.dest).is_empty());
    let passwd = fs::metadata("/etc/passwd").unwrap();
    env.apply(&raw(
        &env,
        &[
            ("etc/passwd", Regular, "", "root:x:0:0::/:/bin/sh\n"),
            ("h", Link, "/etc/passwd", ""),
        ],
    ))
    .unwrap();
    let h = fs::metadata(env.dest.join("h")).unwrap();
    assert_ne!(h.ino(), passwd.ino());
    assert_eq!(
        h.ino(),
        fs::metadata(env.dest.join("etc/passwd")).unwrap().ino()
    );
    env.assert_contained();
}

#[test]
fn hardlink_through_symlinked_dir() {
    let through = |target| apply_raw(&[("ln", Symlink, target, ""), ("h", Link, "ln/file", "")]);
    let (env, r) = through("{out}");
    assert!(matches!(r, Err(LayerError::Write { .. })));
    env.assert_contained();

    let (env, r) = through("../../outside");
    assert!(r.is_err());
    env.assert_contained();

    // Inside the layer, a symlinked directory resolves like in the container.
    let (env, r) = apply_raw(&[
        ("real/file", Regular, "", "data"),
        ("ln", Symlink, "/real", ""),
        ("h", Link, "ln/file", ""),
    ]);
    r.unwrap();
    let h = fs::metadata(env.dest.join("h")).unwrap();
    assert_eq!(
        h.ino(),
        fs::metadata(env.dest.join("real/file")).unwrap().ino()
    );
    env.assert_contained();
}

#[test]
fn hardlink_to_symlink_links_the_symlink_itself() {
    let (env, r) = apply_raw(&[("s", Symlink, "{out}/file", ""), ("h", Link, "s", "")]);
    r.unwrap();
    let h = fs::symlink_metadata(env.dest.join("h")).unwrap();
    assert!(h.file_type().is_symlink());
    env.assert_contained();
}

// --- special entries ---------------------------------------------------

#[test]
fn device_nodes_are_skipped_with_one_note() {
    let env = Env::new();
    let tar = Tar::new()
        .node("dev/null", EntryType::Char, 1, 3)
        .node("dev/sda", EntryType::Block, 8, 0)
        .file("dev/keep", b"")
        .finish();
    let report = env.apply(&tar).unwrap();
    assert_eq!(report.notes, ["skipped 2 device node(s) (unprivileged)"]);
    assert_eq!(report.entries, 1);
    assert_eq!(names(&env.dest.join("dev")), ["keep"]);
}

#[test]
fn whiteouts_become_char_devices() {
    let env = Env::new();
    let tar = Tar::new()
        .dir("gone/", 0o755)
        .file("gone/inner", b"x")
        .file(".wh.gone", b"")
        .file("sub/.wh.name", b"")
        .finish();
    let report = env.apply(&tar).unwrap();
    assert!(report.notes.is_empty(), "{:?}", report.notes);
    for p in ["gone", "sub/name"] {
        let md = fs::symlink_metadata(env.dest.join(p)).unwrap();
        assert!(md.file_type().is_char_device(), "{p}");
        assert_eq!(md.rdev(), 0, "{p}");
    }
    assert!(!env.dest.join(".wh.gone").exists());
    assert_eq!(names(&env.dest.join("sub")), ["name"]);
    env.assert_contained();
}

#[test]
fn opaque_marker_sets_xattr() {
    let env = Env::new();
    let tar = Tar::new()
        .dir("d/", 0o755)
        .file("d/.wh..wh..opq", b"")
        .file("d/kept", b"")
        .file("implicit/.wh..wh..opq", b"")
        .file(".wh..wh.plnk", b"")
        .finish();
    env.apply(&tar).unwrap();
    for p in ["d", "implicit"] {
        assert_eq!(
            xattr(&env.dest.join(p), OPAQUE_XATTR).as_deref(),
            Some(&b"y"[..]),
            "{p}"
        );
    }
    assert_eq!(names(&env.dest.join("d")), ["kept"]);
    assert!(names(&env.dest.join("implicit")).is_empty());
    assert_eq!(names(&env.dest), ["d", "implicit"]);
}

#[test]
fn empty_numeric_fields_read_as_zero() {
    let env = Env::new();
    let mut h = header(EntryType::Regular, 1, 0o644);
    {
        let old = h.as_old_mut();
        old.name[..1].copy_from_slice(b"a");
        old.uid = [0; 8];
        old.gid = [b' '; 8];
        old.mtime = [0; 12];
    }
    h.set_cksum();
    let mut tar = h.as_bytes().to_vec();
    tar.push(b'x');
    tar.resize(2048, 0);
    env.apply(&tar).unwrap();
    assert_eq!(fs::metadata(env.dest.join("a")).unwrap().mtime(), 0);
    // A field holding junk is still an error.
    h.as_old_mut().uid = *b"zz\0\0\0\0\0\0";
    h.set_cksum();
    tar[..512].copy_from_slice(h.as_bytes());
    assert!(matches!(env.apply(&tar), Err(LayerError::Read(_))));
}

#[test]
fn invalid_whiteout_name_is_rejected() {
    let (env, r) = apply_raw(&[("a/.wh...", Regular, "", "")]);
    unsafe_reason(r);
    env.assert_contained();
}

// --- broken streams --------------------------------------------------

#[test]
fn truncated_inside_file_data_is_an_error() {
    let env = Env::new();
    let tar = Tar::new().file("a", &[7u8; 5000]).finish();
    let cut = &tar[..512 + 3000];
    match env.apply(cut) {
        Err(LayerError::Read(e)) => {
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
            assert!(e.to_string().contains("\"a\""), "{e}");
        }
        other => panic!("expected Read error, got {other:?}"),
    }
}

#[test]
fn truncated_inside_header_is_an_error() {
    let env = Env::new();
    let tar = Tar::new().file("a", b"x").file("b", b"y").finish();
    let cut = &tar[..1024 + 200];
    assert!(matches!(env.apply(cut), Err(LayerError::Read(_))));
    // Data complete but its padding missing: still inside the entry.
    let cut = &tar[..512 + 1];
    assert!(matches!(env.apply(cut), Err(LayerError::Read(_))));
}

#[test]
fn missing_end_of_archive_marker_is_accepted() {
    let env = Env::new();
    let tar = Tar::new().file("a", b"x").finish();
    let report = env.apply(&tar[..1024]).unwrap();
    assert_eq!(report.entries, 1);
    assert_eq!(report.tar_bytes, 1024);
}

#[test]
fn garbage_is_an_error() {
    let env = Env::new();
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 13) as u8).collect();
    assert!(matches!(env.apply(&garbage), Err(LayerError::Read(_))));
    assert!(matches!(env.apply(b"not a tar"), Err(LayerError::Read(_))));
    let mut bad_sum = Tar::new().file("a", b"x").finish();
    bad_sum[0] ^= 1;
    assert!(matches!(env.apply(&bad_sum), Err(LayerError::Read(_))));
    assert!(names(&env.dest).is_empty());
}

#[test]
fn drains_reader_and_counts_every_byte() {
    let env = Env::new();
    let mut tar = Tar::new().file("a", b"x").finish();
    // Record padding and trailing junk after the end-of-archive blocks.
    tar.extend_from_slice(&[0u8; 8192]);
    tar.extend_from_slice(b"trailing junk");
    let mut cursor = Cursor::new(&tar);
    let report = apply_layer(&mut cursor, &env.dest, &KEEP).unwrap();
    assert_eq!(report.tar_bytes, tar.len() as u64);
    assert_eq!(cursor.position(), tar.len() as u64);
}

// --- ownership -------------------------------------------------------

#[test]
fn ownership_keep_and_clamp() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let tar = Tar::new()
        .owned("f", EntryType::Regular, 1000, 2000)
        .owned("d/", EntryType::Directory, 3, 4)
        .owned("s", EntryType::Symlink, 5, 6)
        .owned("big", EntryType::Regular, 70000, 100)
        .owned("huge", EntryType::Regular, 1 << 33, 1 << 40)
        .finish();
    let report = env.apply(&tar).unwrap();
    assert_eq!(
        report.notes,
        ["clamped 2 file owner(s) above uid/gid 65535 to 65535"]
    );
    let own = |p: &str| {
        let md = fs::symlink_metadata(env.dest.join(p)).unwrap();
        (md.uid(), md.gid())
    };
    assert_eq!(own("f"), (1000, 2000));
    assert_eq!(own("d"), (3, 4));
    assert_eq!(own("s"), (5, 6));
    assert_eq!(own("big"), (65535, 100));
    assert_eq!(own("huge"), (65535, 65535));
    // The symlink's target was not created or chowned.
    assert!(!env.dest.join("target").exists());
}

#[test]
fn ownership_keep_preserves_setuid_after_chown() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    let mut h = header(EntryType::Regular, 2, 0o6755);
    h.set_uid(1000);
    h.set_gid(1000);
    let tar = Tar::new().entry("su", h, b"#!").finish();
    env.apply(&tar).unwrap();
    let md = fs::metadata(env.dest.join("su")).unwrap();
    assert_eq!(
        (md.uid(), md.gid(), md.mode() & 0o7777),
        (1000, 1000, 0o6755)
    );
}

#[test]
fn ownership_keep_under_setgid_dir_is_exact() {
    if !is_root() {
        return;
    }
    let env = Env::new();
    // New files in a setgid directory take its group: the chown is needed.
    nix::unistd::chown(&env.dest, None, Some(Gid::from_raw(1234))).unwrap();
    fs::set_permissions(&env.dest, fs::Permissions::from_mode(0o2755)).unwrap();
    let me = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    let tar = Tar::new()
        .owned("f", EntryType::Regular, me.0.into(), me.1.into())
        .owned("d/", EntryType::Directory, me.0.into(), me.1.into())
        .owned("s", EntryType::Symlink, me.0.into(), me.1.into())
        .finish();
    env.apply(&tar).unwrap();
    for p in ["f", "d", "s"] {
        let md = fs::symlink_metadata(env.dest.join(p)).unwrap();
        assert_eq!((md.uid(), md.gid()), me, "{p}");
    }
}

#[test]
fn ownership_collapse() {
    let me = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    let env = Env::new();
    let tar = Tar::new()
        .owned("f", EntryType::Regular, 1000, 1000)
        .owned("s", EntryType::Symlink, 0, 5)
        .finish();
    let report = apply_layer(&tar[..], &env.dest, &COLLAPSE).unwrap();
    assert_eq!(
        report.notes,
        ["no subuid/subgid range: all files in the layer belong to you"]
    );
    let md = fs::symlink_metadata(env.dest.join("f")).unwrap();
    assert_eq!((md.uid(), md.gid()), me);

    let env = Env::new();
    let tar = Tar::new().owned("f", EntryType::Regular, 0, 0).finish();
    let report = apply_layer(&tar[..], &env.dest, &COLLAPSE).unwrap();
    assert!(report.notes.is_empty(), "{:?}", report.notes);
}
