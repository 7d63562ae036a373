//! The API's archive endpoints on a container path: what is there (its
//! stat), a tar of it, and a tar unpacked into it.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{open, AtFlags, OFlag};
use nix::sys::stat::{fstatat, Mode};

use super::stream::{archive_name, in_root, into, pack_as};
use super::{copy_failure, in_container, CopyError, Result};
use crate::container::ContainerRecord;
use crate::linux::fs::openat_in_root;
use crate::linux::userns::IdMapping;
use crate::sandbox::{Failure, Step};
use crate::store::Store;

/// What a container path is (Docker's `ContainerPathStat`, in Unix terms):
/// the path itself, a symlink not followed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PathStat {
    /// Its last component (`/` for the root).
    pub name: String,
    pub size: u64,
    /// `st_mode`: type and permission bits.
    pub mode: u32,
    pub mtime_secs: i64,
    pub mtime_nanos: u32,
    /// Where a symlink points, as stored.
    pub link_target: String,
}

impl PathStat {
    pub fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }
}

/// What the stat worker found.
#[derive(serde::Serialize, serde::Deserialize)]
enum StatAnswer {
    Found(PathStat),
    Missing,
}

/// An unlinked file in the store for what a worker writes or reads (an
/// archive, an answer): the worker may run in another mount namespace,
/// where only the descriptor reaches it.
pub fn scratch_file(store: &Store) -> Result<File> {
    let dir = store.root().join("tmp");
    let mode = Mode::from_bits_truncate(0o600);
    if let Ok(fd) = open(
        &dir,
        OFlag::O_TMPFILE | OFlag::O_RDWR | OFlag::O_CLOEXEC,
        mode,
    ) {
        return Ok(File::from(fd));
    }
    // A file system without O_TMPFILE: a fresh name, unlinked at once.
    let path = dir.join(format!(
        ".scratch-{}-{}",
        std::process::id(),
        crate::store::random_hex(6)
    ));
    let fd = open(
        &path,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR | OFlag::O_CLOEXEC,
        mode,
    )
    .map_err(|source| CopyError::ScratchOpen {
        path: path.clone(),
        source,
    })?;
    let _ = std::fs::remove_file(&path);
    Ok(File::from(fd))
}

/// Stat `path` (absolute) inside the container: None when nothing is there.
pub fn stat(
    store: &Store,
    rec: &ContainerRecord,
    mapping: &IdMapping,
    path: &str,
) -> Result<Option<PathStat>> {
    use std::io::{Read, Seek};
    let mut answer = scratch_file(store)?;
    let fd: OwnedFd = answer.try_clone().map_err(CopyError::Scratch)?.into();
    let p = PathBuf::from(path);
    let path_text = path.to_string();
    in_container(
        store,
        rec,
        mapping,
        fd,
        Box::new(move |fd| {
            let found = match std::fs::symlink_metadata(&p) {
                Ok(m) => {
                    use std::os::unix::fs::MetadataExt;
                    let link_target = if m.file_type().is_symlink() {
                        std::fs::read_link(&p)
                            .map(|t| t.to_string_lossy().into_owned())
                            .unwrap_or_default()
                    } else {
                        String::new()
                    };
                    StatAnswer::Found(PathStat {
                        name: if p == Path::new("/") {
                            "/".into()
                        } else {
                            archive_name(&path_text).to_string_lossy().into_owned()
                        },
                        size: m.size(),
                        mode: m.mode(),
                        mtime_secs: m.mtime(),
                        mtime_nanos: m.mtime_nsec().clamp(0, 999_999_999) as u32,
                        link_target,
                    })
                }
                Err(e)
                    if e.kind() == std::io::ErrorKind::NotFound
                        || e.raw_os_error() == Some(libc::ENOTDIR) =>
                {
                    StatAnswer::Missing
                }
                Err(e) => return Err(copy_failure(&e, &p)),
            };
            let text = serde_json::to_vec(&found).unwrap_or_default();
            std::io::Write::write_all(&mut File::from(fd), &text).map_err(|e| copy_failure(&e, &p))
        }),
    )?;
    answer.rewind().map_err(CopyError::Scratch)?;
    let mut text = Vec::new();
    answer.read_to_end(&mut text).map_err(CopyError::Scratch)?;
    match serde_json::from_slice(&text) {
        Ok(StatAnswer::Found(s)) => Ok(Some(s)),
        Ok(StatAnswer::Missing) => Ok(None),
        Err(source) => Err(CopyError::Stat {
            path: path.to_string(),
            source,
        }
        .into()),
    }
}

/// Write `path` (absolute) inside the container to `out` as a tar stream,
/// its top entry named after the path's last component (`docker cp`'s
/// archive).
pub fn archive(
    store: &Store,
    rec: &ContainerRecord,
    mapping: &IdMapping,
    path: &str,
    out: File,
) -> Result<()> {
    use std::io::Seek;
    let p = PathBuf::from(path);
    let name = archive_name(path);
    if name != Path::new(".") {
        return in_container(
            store,
            rec,
            mapping,
            out.into(),
            Box::new(move |fd| pack_as(&p, &name, fd)),
        );
    }
    // A directory's contents: Docker's client renames entries by replacing
    // their leading `.`, so every name must start with `./`, which the tar
    // writer would normalise away. The archive is written as usual, then
    // copied with the names spelled out.
    let mut plain = scratch_file(store)?;
    let writer = plain.try_clone().map_err(CopyError::Scratch)?;
    in_container(
        store,
        rec,
        mapping,
        writer.into(),
        Box::new(move |fd| pack_as(&p, &name, fd)),
    )?;
    plain.rewind().map_err(CopyError::Scratch)?;
    Ok(dot_prefixed(plain, out).map_err(CopyError::DotPrefixed)?)
}

/// Copy a tar stream, each entry's name prefixed with `./` (the top
/// directory itself named `./`). Names too long for a header go in GNU
/// long-name entries, as the tar writer would put them.
fn dot_prefixed(input: impl std::io::Read, out: File) -> std::io::Result<()> {
    let mut archive = tar::Archive::new(input);
    let mut b = tar::Builder::new(std::io::BufWriter::new(out));
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry.path_bytes().into_owned();
        let name = name.strip_prefix(b"./").unwrap_or(&name);
        let mut full = b"./".to_vec();
        if name != b"." {
            full.extend_from_slice(name);
        }
        let link = entry.link_name_bytes().map(|l| l.into_owned());
        let mut header = entry.header().clone();
        if let Some(l) = &link {
            if l.len() > 100 {
                long_name(&mut b, tar::EntryType::GNULongLink, l)?;
            }
            set_field(&mut header.as_old_mut().linkname, l);
        }
        if full.len() > 100 {
            long_name(&mut b, tar::EntryType::GNULongName, &full)?;
        }
        set_field(&mut header.as_old_mut().name, &full);
        header.set_cksum();
        b.append(&header, &mut entry)?;
    }
    b.into_inner()?.into_inner().map_err(|e| e.into_error())?;
    Ok(())
}

/// A header name field: as much as fits, NUL-padded.
fn set_field(field: &mut [u8], value: &[u8]) {
    field.fill(0);
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// A GNU long-name (or long-link) entry for the entry after it.
fn long_name<W: std::io::Write>(
    b: &mut tar::Builder<W>,
    kind: tar::EntryType,
    value: &[u8],
) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    set_field(&mut h.as_old_mut().name, b"././@LongLink");
    h.set_mode(0o644);
    h.set_entry_type(kind);
    let mut data = value.to_vec();
    data.push(0);
    h.set_size(data.len() as u64);
    h.set_cksum();
    b.append(&h, data.as_slice())
}

/// Unpack the tar stream in `input` into the existing directory `dir`
/// (absolute) inside the container, every entry resolved inside it as
/// `cp` does. With `no_overwrite_dir_non_dir`, an entry that would put a
/// non-directory where a directory is, or the other way round, fails the
/// copy before anything is written.
pub fn extract(
    store: &Store,
    rec: &ContainerRecord,
    mapping: &IdMapping,
    dir: &str,
    input: File,
    no_overwrite_dir_non_dir: bool,
) -> Result<()> {
    let d = PathBuf::from(dir);
    in_container(
        store,
        rec,
        mapping,
        input.into(),
        Box::new(move |fd| {
            use std::io::Seek;
            let sys = |e: nix::Error, at: &Path| Failure::sys(Step::Copy, e, 1).at(at);
            let root = open(
                "/",
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| sys(e, Path::new("/")))?;
            let target = openat_in_root(
                root.as_fd(),
                in_root(&d),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY,
            )
            .map_err(|e| sys(e, &d))?;
            let mut reader = File::from(fd);
            if no_overwrite_dir_non_dir {
                check_kinds(&mut reader, target.as_fd(), &d)?;
                reader.rewind().map_err(|e| copy_failure(&e, &d))?;
            }
            into(reader, target, &d)
        }),
    )
}

/// Docker's `noOverwriteDirNonDir`: no entry of the stream may replace a
/// directory with something else, or something else with a directory.
fn check_kinds(
    reader: &mut File,
    dir: BorrowedFd<'_>,
    at: &Path,
) -> std::result::Result<(), Failure> {
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(|e| copy_failure(&e, at))?;
    for entry in entries {
        let entry = entry.map_err(|e| copy_failure(&e, at))?;
        let path = entry.path().map_err(|e| copy_failure(&e, at))?.into_owned();
        let rel: PathBuf = path
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect();
        if rel.as_os_str().is_empty() {
            continue;
        }
        let Ok(st) = fstatat(dir, &rel, AtFlags::AT_SYMLINK_NOFOLLOW) else {
            continue;
        };
        let existing_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
        let entry_dir = entry.header().entry_type().is_dir();
        if existing_dir != entry_dir {
            let detail = if existing_dir {
                "cannot overwrite a directory with a non-directory"
            } else {
                "cannot overwrite a non-directory with a directory"
            };
            return Err(Failure::new(Step::Copy, detail, 1).at(at.join(&rel)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directorys_contents_are_named_from_dot() {
        let d = tempfile::tempdir().unwrap();
        let long = "l".repeat(120);
        std::fs::create_dir_all(d.path().join("src/sub")).unwrap();
        std::fs::write(d.path().join("src/sub/y"), "y").unwrap();
        std::fs::write(d.path().join("src").join(&long), "z").unwrap();
        let plain = d.path().join("plain.tar");
        let mut b = tar::Builder::new(File::create(&plain).unwrap());
        b.append_dir_all(".", d.path().join("src")).unwrap();
        b.finish().unwrap();
        drop(b);
        let out = d.path().join("out.tar");
        dot_prefixed(File::open(&plain).unwrap(), File::create(&out).unwrap()).unwrap();
        let mut names: Vec<String> = tar::Archive::new(File::open(&out).unwrap())
            .entries()
            .unwrap()
            .map(|e| String::from_utf8(e.unwrap().path_bytes().into_owned()).unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["./", &format!("./{long}"), "./sub", "./sub/y"]);
    }
}
