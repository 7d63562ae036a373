//! Test fixtures for layer archives: a destination beside an `outside`
//! directory that must never change, and well-formed archives built with
//! `tar::Builder`. Shared with the copy fallback's tests, which flatten
//! layers made by `apply_layer`.

use std::ffi::CStr;
use std::fs::{self, File};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tar::{Builder, EntryType, Header};

use super::{apply_layer, ApplyOptions, ApplyReport, IdPolicy, LayerError};
use crate::linux::fs::fgetxattr;
use crate::linux::mount::OPAQUE_XATTR;

pub(crate) const KEEP: ApplyOptions = ApplyOptions {
    ids: IdPolicy::Keep {
        max_uid: 65535,
        max_gid: 65535,
    },
};
pub(crate) const MTIME: u64 = 1_600_000_000;

/// A temp dir holding `dest` (the layer) and `outside` (must stay as seeded).
pub(crate) struct Env {
    pub(crate) tmp: tempfile::TempDir,
    pub(crate) dest: PathBuf,
    pub(crate) outside: PathBuf,
}

impl Env {
    pub(crate) fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("dest");
        let outside = tmp.path().join("outside");
        fs::create_dir(&dest).unwrap();
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("file"), b"secret").unwrap();
        fs::set_permissions(&outside, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(outside.join("file"), fs::Permissions::from_mode(0o644)).unwrap();
        Env { tmp, dest, outside }
    }

    pub(crate) fn out(&self) -> String {
        self.outside.to_str().unwrap().to_string()
    }

    pub(crate) fn apply(&self, tar: &[u8]) -> Result<ApplyReport, LayerError> {
        apply_layer(tar, &self.dest, &KEEP)
    }

    /// Nothing appeared, changed or got linked outside `dest`.
    pub(crate) fn assert_contained(&self) {
        // `layers/` holds the flatten tests' inputs.
        let mut top: Vec<_> = fs::read_dir(self.tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n != "layers")
            .collect();
        top.sort();
        assert_eq!(top, ["dest", "outside"], "something escaped next to dest");
        let inside: Vec<_> = fs::read_dir(&self.outside)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(inside, ["file"], "something was created in outside/");
        let f = self.outside.join("file");
        let md = fs::symlink_metadata(&f).unwrap();
        assert!(md.is_file());
        assert_eq!(md.nlink(), 1, "outside/file was hard-linked");
        assert_eq!(md.mode() & 0o7777, 0o644, "outside/file was chmod'ed");
        assert_eq!(fs::read(&f).unwrap(), b"secret");
        let omd = fs::symlink_metadata(&self.outside).unwrap();
        assert_eq!(omd.mode() & 0o7777, 0o755, "outside/ was chmod'ed");
        let mut buf = [0u8; 8];
        let dir = File::open(&self.outside).unwrap();
        assert_eq!(fgetxattr(&dir, OPAQUE_XATTR, &mut buf).unwrap(), None);
    }
}

pub(crate) fn header(kind: EntryType, size: u64, mode: u32) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(MTIME);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// Well-formed archives, through `tar::Builder`.
pub(crate) struct Tar(Builder<Vec<u8>>);

impl Tar {
    pub(crate) fn new() -> Self {
        Tar(Builder::new(Vec::new()))
    }
    pub(crate) fn entry(&mut self, path: &str, mut h: Header, data: &[u8]) -> &mut Self {
        self.0.append_data(&mut h, path, data).unwrap();
        self
    }
    pub(crate) fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
        self.entry(
            path,
            header(EntryType::Regular, data.len() as u64, 0o644),
            data,
        )
    }
    pub(crate) fn file_mode(&mut self, path: &str, data: &[u8], mode: u32) -> &mut Self {
        self.entry(
            path,
            header(EntryType::Regular, data.len() as u64, mode),
            data,
        )
    }
    pub(crate) fn owned(&mut self, path: &str, kind: EntryType, uid: u64, gid: u64) -> &mut Self {
        let mut h = header(kind, 0, if kind.is_dir() { 0o755 } else { 0o644 });
        h.set_uid(uid);
        h.set_gid(gid);
        if kind.is_symlink() {
            h.set_link_name("target").unwrap();
        }
        self.entry(path, h, b"")
    }
    pub(crate) fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
        self.entry(path, header(EntryType::Directory, 0, mode), b"")
    }
    pub(crate) fn link(&mut self, kind: EntryType, path: &str, target: &str) -> &mut Self {
        let mut h = header(kind, 0, 0o777);
        h.set_link_name(target).unwrap();
        self.entry(path, h, b"")
    }
    pub(crate) fn node(
        &mut self,
        path: &str,
        kind: EntryType,
        major: u32,
        minor: u32,
    ) -> &mut Self {
        let mut h = header(kind, 0, 0o666);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.entry(path, h, b"")
    }
    pub(crate) fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut data = Vec::new();
        for (k, v) in records {
            // "LEN key=value\n", LEN counting itself.
            let body = k.len() + v.len() + 3;
            let mut len = body + 1;
            while len != body + len.to_string().len() {
                len = body + len.to_string().len();
            }
            data.extend_from_slice(format!("{len} {k}=").as_bytes());
            data.extend_from_slice(v);
            data.push(b'\n');
        }
        let h = header(EntryType::XHeader, data.len() as u64, 0o644);
        self.entry("PaxHeaders/x", h, &data)
    }
    pub(crate) fn finish(&mut self) -> Vec<u8> {
        self.0.finish().unwrap();
        self.0.get_ref().clone()
    }
}

pub(crate) fn xattr(path: &Path, name: &CStr) -> Option<Vec<u8>> {
    let f = File::open(path).unwrap();
    let mut buf = [0u8; 256];
    fgetxattr(&f, name, &mut buf)
        .unwrap()
        .map(|n| buf[..n].to_vec())
}

pub(crate) fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}
