//! Tests of the tree packer: each kind of upper dir and entry, and what it refuses.

use super::*;
use std::os::unix::fs::PermissionsExt;

fn entries(tar: &[u8]) -> Vec<(String, tar::EntryType, Xattrs)> {
    let mut a = tar::Archive::new(tar);
    let mut out = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let typ = e.header().entry_type();
        let mut xattrs = Vec::new();
        if let Some(exts) = e.pax_extensions().unwrap() {
            for x in exts {
                let x = x.unwrap();
                xattrs.push((x.key().unwrap().to_string(), x.value_bytes().to_vec()));
            }
        }
        out.push((name, typ, xattrs));
    }
    out
}

fn names(entries: &[(String, tar::EntryType, Xattrs)]) -> Vec<&str> {
    entries.iter().map(|(n, _, _)| n.as_str()).collect()
}

/// A temp dir holding `paths`: a name ending in `/` is a directory,
/// any other a file with that content; parents are made as needed.
fn tree(paths: &[(&str, &[u8])]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (name, content) in paths {
        let p = d.path().join(name);
        if name.ends_with('/') {
            std::fs::create_dir_all(&p).unwrap();
        } else {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, content).unwrap();
        }
    }
    d
}

/// `root`, read as an overlay upper dir, holds what no layer can say.
fn assert_unrepresentable_upper(root: &Path) {
    let err = write_tree(root, TreeKind::OverlayUpper, Vec::new()).unwrap_err();
    assert!(matches!(err, PackError::Unrepresentable { .. }), "{err}");
}

#[test]
fn a_copys_changes_are_its_listed_paths_and_whiteouts() {
    let d = tree(&[
        ("a/sub/", b""),
        ("a/x", b"x"),
        ("a/same", b"s"),
        ("b", b"b"),
    ]);
    let root = d.path();
    let changes = vec![
        (PathBuf::from("a"), Kind::Changed),
        (PathBuf::from("a/gone"), Kind::Deleted),
        (PathBuf::from("a/x"), Kind::Added),
    ];
    let (_, tar) = write_changes(root, &changes, &[], Vec::new()).unwrap();
    assert_eq!(names(&entries(&tar)), ["a", "a/x", "a/.wh.gone"]);
}

fn set_xattr(p: &Path, name: &CStr, value: &[u8]) -> io::Result<()> {
    let f = File::open(p)?;
    crate::linux::fs::fsetxattr(&f, name, value)
}

#[test]
fn pax_record_lengths_count_themselves() {
    // The second is around the 9 → 10 digit boundary, where the length
    // grows by one digit.
    for (name, value) in [("user.a", b"xyz".to_vec()), ("user.b", vec![b'v'; 80])] {
        let r = pax_records(&[(name.into(), value)]);
        let s = String::from_utf8(r.clone()).unwrap();
        let (len, _) = s.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), r.len());
    }
}

#[test]
fn plain_tree_keeps_links_modes_and_order() {
    let d = tree(&[("b/file", b"data")]);
    let root = d.path();
    std::fs::hard_link(root.join("b/file"), root.join("a-link")).unwrap();
    std::os::unix::fs::symlink("b/file", root.join("sym")).unwrap();
    std::fs::set_permissions(root.join("b/file"), std::fs::Permissions::from_mode(0o640)).unwrap();
    let (report, tar) = write_tree(root, TreeKind::Plain, Vec::new()).unwrap();
    assert_eq!(report.entries, 4);
    let e = entries(&tar);
    assert_eq!(names(&e), ["a-link", "b", "b/file", "sym"]);
    // The first name seen carries the data; the second is a hard link.
    assert_eq!(e[0].1, tar::EntryType::Regular);
    assert_eq!(e[2].1, tar::EntryType::Link);
    assert_eq!(e[3].1, tar::EntryType::Symlink);
    let mut a = tar::Archive::new(&tar[..]);
    let first = a.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(first.header().mode().unwrap(), 0o640);
    assert_eq!(first.header().size().unwrap(), 4);
}

#[test]
fn a_fuse_overlayfs_upper_keeps_its_wh_files_and_drops_its_bookkeeping() {
    let d = tree(&[
        ("bin/.wh.cat", b""),
        ("usr/.wh..wh..opq", b""),
        ("usr/x", b"x"),
    ]);
    let root = d.path();
    let xattrs = set_xattr(&root.join("usr"), c"user.fuseoverlayfs.opaque", b"y").is_ok();
    let (_, tar) = write_tree(root, TreeKind::FuseOverlayUpper, Vec::new()).unwrap();
    let e = entries(&tar);
    let mut sorted = names(&e);
    sorted.sort();
    assert_eq!(
        sorted,
        ["bin", "bin/.wh.cat", "usr", "usr/.wh..wh..opq", "usr/x"]
    );
    if xattrs {
        let usr = e.iter().find(|(n, _, _)| n == "usr").unwrap();
        assert!(usr.2.is_empty(), "bookkeeping dropped: {:?}", usr.2);
    }
    // The kernel's format has no such files: an error there.
    assert_unrepresentable_upper(root);
}

#[test]
fn upper_dir_whiteouts_and_opaque_dirs_become_wh_entries() {
    let d = tree(&[("etc/added", b"new"), ("opq/only", b"x")]);
    let root = d.path();
    let whiteout = nix::sys::stat::mknod(
        &root.join("etc/gone"),
        nix::sys::stat::SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o600),
        0,
    );
    if let Err(e) = whiteout {
        eprintln!("SKIPPED whiteout mapping: cannot create a 0/0 char device here ({e})");
        return;
    }
    match set_xattr(&root.join("opq"), c"user.overlay.opaque", b"y") {
        Ok(()) => {}
        Err(e) => {
            eprintln!("SKIPPED opaque mapping: no user xattrs on this filesystem ({e})");
            return;
        }
    }
    set_xattr(&root.join("etc/added"), c"user.kept", b"v").unwrap();
    set_xattr(&root.join("etc"), c"user.overlay.impure", b"y").unwrap();
    let (_, tar) = write_tree(root, TreeKind::OverlayUpper, Vec::new()).unwrap();
    let e = entries(&tar);
    assert_eq!(
        names(&e),
        [
            "etc",
            "etc/added",
            "etc/.wh.gone",
            "opq",
            "opq/.wh..wh..opq",
            "opq/only"
        ]
    );
    assert_eq!(e[2].1, tar::EntryType::Regular);
    assert!(
        e[0].2.is_empty(),
        "overlay bookkeeping dropped: {:?}",
        e[0].2
    );
    assert!(
        e[3].2.is_empty(),
        "the opaque xattr becomes the marker only"
    );
    assert_eq!(
        e[1].2,
        [("SCHILY.xattr.user.kept".to_string(), b"v".to_vec())]
    );

    // The same tree read as a plain tree keeps the device as it is.
    let (_, tar) = write_tree(root, TreeKind::Plain, Vec::new()).unwrap();
    let e = entries(&tar);
    assert!(e
        .iter()
        .any(|(n, t, _)| n == "etc/gone" && *t == tar::EntryType::Char));

    // A redirect cannot be expressed in a layer: an error, not a guess.
    set_xattr(&root.join("opq"), c"user.overlay.redirect", b"/x").unwrap();
    assert_unrepresentable_upper(root);
}

#[test]
fn empty_placeholders_are_left_out_and_anything_else_kept() {
    let d = tree(&[
        ("etc/hosts", b""),
        ("etc/hostname", b"kept: not empty"),
        ("proc/", b""),
    ]);
    let root = d.path();
    let skip: Vec<PathBuf> = ["etc/hosts", "etc/hostname", "proc"]
        .iter()
        .map(PathBuf::from)
        .collect();
    let (_, tar) = write_tree_skipping(root, TreeKind::Plain, &skip, Vec::new()).unwrap();
    assert_eq!(names(&entries(&tar)), ["etc", "etc/hostname"]);
}

#[test]
fn a_real_wh_name_in_an_upper_dir_is_refused() {
    let d = tree(&[(".wh.trick", b"")]);
    assert_unrepresentable_upper(d.path());
    let (report, _) = write_tree(d.path(), TreeKind::Plain, Vec::new()).unwrap();
    assert_eq!(report.notes.len(), 1);
}
