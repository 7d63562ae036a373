//! COPY and ADD: the sources packed as one tar (from the context, an
//! earlier stage or an image; a local archive ADD unpacks) and placed on
//! the stage's filesystem.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::context::{self, Packed};
use super::dockerfile::{self, Instruction, InstructionError};
use super::execute::{Builder, Stage};
use super::{stage, StepError};
use crate::store;

impl Builder<'_> {
    pub(super) fn copy_step(
        &mut self,
        st: &mut Stage,
        ins: &Instruction,
        args: &str,
    ) -> Result<(), StepError> {
        let kw = ins.keyword.as_str();
        let mut parts = match dockerfile::exec_form(args) {
            Some(v) => v,
            None => dockerfile::words(args, self.escape).map_err(InstructionError::from)?,
        };
        if parts.len() < 2 {
            return Err(StepError::CopyArgs(kw.to_string()));
        }
        let dest_arg = parts.pop().unwrap_or_default();
        let dest = st.in_workdir(&dest_arg);
        let dir_dest = dest.ends_with('/') || dest_arg == "." || dest_arg.ends_with("/.");
        let dest = format!("/{}", context::clean(&dest).join("/"));
        let vars = st.vars();
        let flag = |name: &str| -> Result<Option<String>, StepError> {
            ins.flag(name)
                .map(|v| dockerfile::substitute(v, &vars, self.escape))
                .transpose()
                .map_err(StepError::from)
        };
        let chmod = match flag("chmod")? {
            None => None,
            Some(m) => Some(
                u32::from_str_radix(&m, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| StepError::Chmod(m.clone()))?,
            ),
        };
        let chown = flag("chown")?;
        let from = flag("from")?;
        if kw == "ADD" {
            if let Some(url) = parts.iter().find(|p| p.contains("://")) {
                return Err(StepError::Remote(url.clone()));
            }
        }
        let staging = self.store.staging("build-copy", self.mapping)?;
        let tar_path = staging.join("copy.tar");
        let create = || std::fs::File::create(&tar_path).map_err(io_at(&tar_path));
        // ADD of one local archive unpacks it into the destination.
        if kw == "ADD" && parts.len() == 1 {
            if let Some(hash) = self.add_archive(&parts[0], &tar_path)? {
                let plan = stage::Plan {
                    mkdir: Vec::new(),
                    mkdir_owner: None,
                    tar: Some(tar_path.clone()),
                    place: Some(stage::Place::Into(dest.clone())),
                    chown: None,
                    entries: Vec::new(),
                };
                let created_by = format!("/bin/sh -c #(nop) ADD file:{hash} in {dest} ");
                return self.fs_step_keyed(st, &format!("ADD {dest}"), &hash, plan, created_by);
            }
        }
        let packed: Packed = match &from {
            None => {
                let mut sources = Vec::new();
                for p in &parts {
                    sources.extend(context::expand(&self.source, p)?);
                }
                context::pack(&self.source, &sources, chmod, create()?)?
            }
            Some(f) => {
                let image = self.image_of(f)?;
                let what = format!("image of --from={f}");
                stage::pack_from_image(
                    self.store,
                    self.mapping,
                    &image,
                    &what,
                    &parts,
                    chmod,
                    create()?,
                )?
            }
        };
        let place = if packed.single_file && !dir_dest {
            stage::Place::Auto {
                path: dest.clone(),
                name: packed.entries.first().cloned().unwrap_or_default(),
            }
        } else if packed.sources > 1 && !dir_dest {
            return Err(StepError::ManySources(kw.to_string()));
        } else {
            stage::Place::Into(dest.clone())
        };
        let kind = if packed.single_file { "file" } else { "dir" };
        let created_by = format!("/bin/sh -c #(nop) {kw} {kind}:{} in {dest} ", packed.hash);
        let plan = stage::Plan {
            mkdir: Vec::new(),
            mkdir_owner: None,
            tar: Some(tar_path.clone()),
            place: Some(place),
            chown,
            entries: packed.entries.clone(),
        };
        let what = format!("{kw} {dest_arg} {dest} {:?} {:?}", plan.chown, plan.place);
        let content = format!("{}:{}", packed.hash, packed.single_file);
        self.fs_step_keyed(st, &what, &content, plan, created_by)
    }

    /// When `src` (in the context) is a tar archive, plain or compressed,
    /// write its tar to `out` and return the tar's hash.
    fn add_archive(&self, src: &str, out: &Path) -> Result<Option<String>, StepError> {
        let rel = context::clean(src);
        if rel.iter().any(|p| p.contains(['*', '?', '['])) {
            return Ok(None);
        }
        // The same checks as any source (ignored, missing, through a link).
        context::expand(&self.source, src)?;
        let path = self.source.root.join(rel.iter().collect::<PathBuf>());
        if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            return Ok(None);
        }
        let err = io_at(&path);
        let mut head = Vec::new();
        std::fs::File::open(&path)
            .map_err(err)?
            .take(512)
            .read_to_end(&mut head)
            .map_err(err)?;
        if crate::image::compress::detect(&head).is_err() {
            return Ok(None);
        }
        let f = std::fs::File::open(&path).map_err(err)?;
        let (_, mut r) = crate::image::compress::decoder(f)?;
        let mut w = HashWrite {
            inner: std::fs::File::create(out).map_err(err)?,
            hasher: <sha2::Sha256 as sha2::Digest>::new(),
        };
        std::io::copy(&mut r, &mut w).map_err(err)?;
        Ok(Some(store::hex(&sha2::Digest::finalize(w.hasher))))
    }
}

struct HashWrite<W> {
    inner: W,
    hasher: sha2::Sha256,
}

impl<W: Write> Write for HashWrite<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        sha2::Digest::update(&mut self.hasher, &buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// An I/O error on `path`, the path kept.
fn io_at(path: &Path) -> impl Fn(std::io::Error) -> StepError + Copy + '_ {
    move |source| StepError::Io {
        path: path.to_path_buf(),
        source,
    }
}
