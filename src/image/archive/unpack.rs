//! The outer archive of `load`, laid out in a staging directory without
//! trusting it: only regular files and directories reach the disk, under
//! names checked to stay inside; symbolic and hard links are kept in a table
//! and resolved lexically when the loader asks for a name, so nothing in the
//! archive can point a read or a write outside it. An OCI layout directory
//! is read in place through the same interface.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use super::ArchiveError;
use crate::image::compress;

/// Most entries an outer archive may have (real ones have a handful per layer).
const MAX_ENTRIES: u64 = 200_000;
/// Space left free on the store's filesystem while unpacking, so a hostile
/// or oversized archive fails instead of filling the disk.
const RESERVE_BYTES: u64 = 64 << 20;
/// Longest chain of links followed for one name.
const MAX_HOPS: usize = 40;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Link {
    /// A symbolic link: its target, relative to the link's directory.
    Sym(String),
    /// A hard link: the entry it names, relative to the archive root.
    Hard(PathBuf),
}

/// An archive's files, on disk under `root`, with its links on the side.
#[derive(Debug)]
pub struct Tree {
    root: PathBuf,
    links: BTreeMap<PathBuf, Link>,
    /// True when the files are our staging copy (a verified file may be
    /// renamed into the store); false for a user's directory.
    owned: bool,
}

/// An archive entry's name as a clean relative path: `./` prefixes and `.`
/// dropped; absolute names and `..` refused. None for the root itself.
pub fn entry_name(raw: &str) -> Result<Option<PathBuf>, ArchiveError> {
    let unsafe_entry = |reason: &str| ArchiveError::UnsafeEntry {
        name: raw.to_string(),
        reason: reason.to_string(),
    };
    if raw.starts_with('/') {
        return Err(unsafe_entry("absolute name"));
    }
    let mut out = PathBuf::new();
    for c in Path::new(raw).components() {
        match c {
            Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir => return Err(unsafe_entry("name contains \"..\"")),
            Component::RootDir | Component::Prefix(_) => return Err(unsafe_entry("absolute name")),
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

impl Tree {
    /// Read a user's OCI layout directory where it is.
    pub fn in_place(dir: &Path) -> Tree {
        Tree {
            root: dir.to_path_buf(),
            links: BTreeMap::new(),
            owned: false,
        }
    }

    /// Unpack `reader` (plain, gzip or zstd tar) into the empty directory `root`.
    pub fn unpack<R: Read>(reader: R, root: &Path) -> Result<Tree, ArchiveError> {
        let (_, decoded) = compress::decoder(reader).map_err(ArchiveError::Compress)?;
        let mut archive = tar::Archive::new(decoded);
        let mut tree = Tree {
            root: root.to_path_buf(),
            links: BTreeMap::new(),
            owned: true,
        };
        let mut count = 0u64;
        for entry in archive.entries().map_err(ArchiveError::Read)? {
            let mut entry = entry.map_err(ArchiveError::Read)?;
            count += 1;
            if count > MAX_ENTRIES {
                return Err(ArchiveError::Limit {
                    what: format!("more than {MAX_ENTRIES} entries"),
                });
            }
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let kind = entry.header().entry_type();
            if kind.is_pax_global_extensions() {
                continue;
            }
            let Some(name) = entry_name(&raw)? else {
                continue;
            };
            tree.check_new(&raw, &name)?;
            let dest = root.join(&name);
            let write_err = |source| ArchiveError::Unpack {
                path: dest.clone(),
                source,
            };
            if kind.is_dir() {
                fs::create_dir_all(&dest).map_err(write_err)?;
            } else if kind.is_file() {
                if let Some(parent) = dest.parent() {
                    fs::create_dir_all(parent).map_err(write_err)?;
                }
                let size = entry.header().size().map_err(ArchiveError::Read)?;
                ensure_space(root, size)?;
                let mut f = File::create(&dest).map_err(write_err)?;
                io::copy(&mut entry, &mut f).map_err(ArchiveError::Read)?;
            } else if kind.is_symlink() || kind.is_hard_link() {
                let target = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let link = if kind.is_symlink() {
                    Link::Sym(target)
                } else {
                    let t = entry_name(&target)?.ok_or_else(|| ArchiveError::UnsafeEntry {
                        name: raw.clone(),
                        reason: "hard link to the archive root".into(),
                    })?;
                    Link::Hard(t)
                };
                tree.links.insert(name, link);
            } else {
                return Err(ArchiveError::UnsafeEntry {
                    name: raw,
                    reason: format!(
                        "a {kind:?} entry (image archives hold only files, directories and links)"
                    ),
                });
            }
        }
        Ok(tree)
    }

    /// A new entry may not sit below a link (its bytes would land in a
    /// directory the link shadows) nor replace a link.
    fn check_new(&self, raw: &str, name: &Path) -> Result<(), ArchiveError> {
        for a in name.ancestors() {
            if self.links.contains_key(a) {
                return Err(ArchiveError::UnsafeEntry {
                    name: raw.to_string(),
                    reason: if a == name {
                        "a second entry of the same name as a link".into()
                    } else {
                        format!("lies below the link {:?}", a.display().to_string())
                    },
                });
            }
        }
        if self.owned && fs::symlink_metadata(self.root.join(name)).is_ok() {
            let is_dir = fs::metadata(self.root.join(name)).is_ok_and(|m| m.is_dir());
            if !is_dir {
                return Err(ArchiveError::UnsafeEntry {
                    name: raw.to_string(),
                    reason: "a second entry of the same name".into(),
                });
            }
        }
        Ok(())
    }

    /// The archive name `name` with every link in it followed lexically,
    /// as a path relative to the archive root.
    pub fn resolve_name(&self, name: &str) -> Result<PathBuf, ArchiveError> {
        let bad = |reason: &str| ArchiveError::UnsafeEntry {
            name: name.to_string(),
            reason: reason.to_string(),
        };
        let mut pending: Vec<String> = Vec::new();
        push_components(&mut pending, name).map_err(&bad)?;
        let mut done = PathBuf::new();
        let mut hops = 0;
        while let Some(c) = pending.pop() {
            match c.as_str() {
                "." => {}
                ".." => {
                    if !done.pop() {
                        return Err(bad("a link leads out of the archive"));
                    }
                }
                _ => {
                    let candidate = done.join(&c);
                    match self.links.get(&candidate) {
                        None => done = candidate,
                        Some(link) => {
                            hops += 1;
                            if hops > MAX_HOPS {
                                return Err(bad("too many levels of links"));
                            }
                            match link {
                                // Relative to the link's directory: `done`.
                                Link::Sym(target) => {
                                    push_components(&mut pending, target).map_err(&bad)?
                                }
                                Link::Hard(target) => {
                                    done = PathBuf::new();
                                    push_components(&mut pending, &target.to_string_lossy())
                                        .map_err(&bad)?;
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(done)
    }

    /// Where the regular file named `name` is on disk.
    pub fn file(&self, name: &str) -> Result<PathBuf, ArchiveError> {
        let rel = self.resolve_name(name)?;
        let p = self.root.join(&rel);
        match fs::metadata(&p) {
            Ok(m) if m.is_file() => Ok(p),
            Ok(_) => Err(ArchiveError::Missing {
                name: name.to_string(),
                detail: "not a regular file".into(),
            }),
            Err(source) => Err(ArchiveError::Unreadable {
                name: name.to_string(),
                source,
            }),
        }
    }

    pub fn exists(&self, name: &str) -> bool {
        self.file(name).is_ok()
    }

    /// A small file's bytes (a manifest, an index, a config).
    pub fn read_small(&self, name: &str, limit: u64) -> Result<Vec<u8>, ArchiveError> {
        let p = self.file(name)?;
        let open_err = |source| ArchiveError::Open {
            path: p.clone(),
            source,
        };
        let f = File::open(&p).map_err(open_err)?;
        let mut bytes = Vec::new();
        f.take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(open_err)?;
        if bytes.len() as u64 > limit {
            return Err(ArchiveError::TooBig {
                name: name.to_string(),
                limit,
            });
        }
        Ok(bytes)
    }

    pub fn owned(&self) -> bool {
        self.owned
    }
}

/// Push the components of `path` onto `stack` so the first is popped first.
fn push_components(stack: &mut Vec<String>, path: &str) -> Result<(), &'static str> {
    if path.starts_with('/') {
        return Err("an absolute link target");
    }
    if path.is_empty() {
        return Err("an empty link target");
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    stack.extend(parts.into_iter().rev().map(str::to_string));
    Ok(())
}

/// Refuse to write `size` more bytes when that would leave the store's
/// filesystem with less than the reserve.
fn ensure_space(dir: &Path, size: u64) -> Result<(), ArchiveError> {
    let Ok(st) = nix::sys::statvfs::statvfs(dir) else {
        return Ok(());
    };
    let free = st.blocks_available() * st.fragment_size();
    if free < size.saturating_add(RESERVE_BYTES) {
        return Err(ArchiveError::Limit {
            what: format!(
                "an entry of {size} bytes would leave less than {} MiB free on {dir:?}",
                RESERVE_BYTES >> 20
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(links: &[(&str, Link)]) -> Tree {
        Tree {
            root: PathBuf::from("/nonexistent"),
            links: links
                .iter()
                .map(|(n, l)| (PathBuf::from(n), l.clone()))
                .collect(),
            owned: true,
        }
    }

    #[test]
    fn entry_names_stay_inside() {
        assert_eq!(
            entry_name("./a/./b.tar").unwrap(),
            Some(PathBuf::from("a/b.tar"))
        );
        assert_eq!(entry_name("./").unwrap(), None);
        assert!(entry_name("../evil").is_err());
        assert!(entry_name("a/../../evil").is_err());
        assert!(entry_name("a/../b").is_err());
        assert!(entry_name("/etc/passwd").is_err());
    }

    #[test]
    fn links_resolve_lexically_and_never_leave() {
        let t = tree(&[
            ("abc/layer.tar", Link::Sym("../def/layer.tar".into())),
            ("def", Link::Sym("real".into())),
            ("hard.tar", Link::Hard("real/x.tar".into())),
            ("loop", Link::Sym("loop".into())),
            ("out", Link::Sym("../../etc/passwd".into())),
            ("abs", Link::Sym("/etc/passwd".into())),
        ]);
        assert_eq!(
            t.resolve_name("abc/layer.tar").unwrap(),
            PathBuf::from("real/layer.tar")
        );
        assert_eq!(
            t.resolve_name("hard.tar").unwrap(),
            PathBuf::from("real/x.tar")
        );
        assert_eq!(
            t.resolve_name("plain/file").unwrap(),
            PathBuf::from("plain/file")
        );
        assert!(t.resolve_name("loop").is_err());
        assert!(t.resolve_name("out").is_err());
        assert!(t.resolve_name("abs").is_err());
        assert!(t.resolve_name("../x").is_err());
    }

    fn raw_tar(entries: &[(&str, u8, &str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, kind, link, data) in entries {
            let mut h = tar::Header::new_ustar();
            {
                let old = h.as_old_mut();
                old.name[..name.len()].copy_from_slice(name.as_bytes());
                old.linkname[..link.len()].copy_from_slice(link.as_bytes());
            }
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            h.set_entry_type(tar::EntryType::new(*kind));
            h.set_cksum();
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(data);
            out.extend(std::iter::repeat_n(0u8, (512 - data.len() % 512) % 512));
        }
        out.extend(std::iter::repeat_n(0u8, 1024));
        out
    }

    #[test]
    fn unpack_keeps_links_off_disk_and_refuses_escapes() {
        let d = tempfile::tempdir().unwrap();
        let ok = raw_tar(&[
            ("real/layer.tar", b'0', "", b"data"),
            ("id/layer.tar", b'2', "../real/layer.tar", b""),
        ]);
        let root = d.path().join("a");
        fs::create_dir(&root).unwrap();
        let t = Tree::unpack(&ok[..], &root).unwrap();
        assert_eq!(fs::read(t.file("id/layer.tar").unwrap()).unwrap(), b"data");
        assert!(
            fs::symlink_metadata(root.join("id/layer.tar")).is_err(),
            "links never reach the disk"
        );
        for bad in [
            raw_tar(&[("../evil", b'0', "", b"x")]),
            raw_tar(&[("/evil", b'0', "", b"x")]),
            raw_tar(&[("l", b'2', "/tmp", b""), ("l/evil", b'0', "", b"x")]),
            raw_tar(&[("dev", b'3', "", b"")]),
        ] {
            let root = d.path().join(format!("b{}", crate::store::random_hex(4)));
            fs::create_dir(&root).unwrap();
            assert!(Tree::unpack(&bad[..], &root).is_err());
        }
        assert!(!d.path().join("evil").exists());
    }
}
