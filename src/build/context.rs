//! What COPY and ADD read: the build context (a host directory filtered by
//! its `.dockerignore`) or an earlier stage's filesystem, the glob
//! expansion of their sources, and the tar stream of the files to copy with
//! the content hash the cache keys on.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// `.dockerignore` rules in order; the last one that matches decides.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Ignore {
    rules: Vec<(bool, Vec<String>)>,
}

impl Ignore {
    /// Read `dir/.dockerignore` (none: nothing is ignored).
    pub fn read(dir: &Path) -> io::Result<Self> {
        match std::fs::read_to_string(dir.join(".dockerignore")) {
            Ok(t) => Ok(Self::parse(&t)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e),
        }
    }

    pub fn parse(text: &str) -> Self {
        let mut rules = Vec::new();
        for l in text.lines() {
            let l = l.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let (keep, pat) = match l.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, l),
            };
            let parts = clean(pat);
            if !parts.is_empty() {
                rules.push((keep, parts));
            }
        }
        Ignore { rules }
    }

    /// Whether `rel` (components relative to the context) is left out: a
    /// rule matches a path or any directory above it.
    pub fn ignored(&self, rel: &[String]) -> bool {
        let mut out = false;
        for (keep, pat) in &self.rules {
            if (1..=rel.len()).any(|n| match_parts(pat, &rel[..n])) {
                out = !keep;
            }
        }
        out
    }
}

/// Path components of `p` with `.`, empty and leading `/` dropped and `..`
/// applied, never above the root (Docker's rule for sources: they cannot
/// leave the context).
pub fn clean(p: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(s) => out.push(s.to_string_lossy().into_owned()),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Match one path component against a pattern component: `*`, `?` and
/// `[...]` classes (with `!` or `^` negation and ranges), `\` escapes.
pub fn match_component(p: &str, t: &str) -> bool {
    fn m(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => (0..=t.len()).any(|i| m(&p[1..], &t[i..])),
            Some('?') => !t.is_empty() && m(&p[1..], &t[1..]),
            Some('[') => {
                let Some(end) = p.iter().skip(1).position(|c| *c == ']') else {
                    return t.first() == Some(&'[') && m(&p[1..], &t[1..]);
                };
                let Some(&c) = t.first() else { return false };
                let mut class = &p[1..end + 1];
                let negate = matches!(class.first(), Some('!' | '^'));
                if negate {
                    class = &class[1..];
                }
                let mut hit = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1] == '-' {
                        hit |= class[i] <= c && c <= class[i + 2];
                        i += 3;
                    } else {
                        hit |= class[i] == c;
                        i += 1;
                    }
                }
                hit != negate && m(&p[end + 2..], &t[1..])
            }
            Some('\\') if p.len() > 1 => t.first() == Some(&p[1]) && m(&p[2..], &t[1..]),
            Some(c) => t.first() == Some(c) && m(&p[1..], &t[1..]),
        }
    }
    let p: Vec<char> = p.chars().collect();
    let t: Vec<char> = t.chars().collect();
    m(&p, &t)
}

/// Match path components, `**` standing for any number of them.
pub fn match_parts(pat: &[String], path: &[String]) -> bool {
    match pat.first() {
        None => path.is_empty(),
        Some(p) if p == "**" => (0..=path.len()).any(|i| match_parts(&pat[1..], &path[i..])),
        Some(p) => {
            !path.is_empty() && match_component(p, &path[0]) && match_parts(&pat[1..], &path[1..])
        }
    }
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Where the copied files come from: a directory seen as `/` of the sources.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Source {
    pub root: PathBuf,
    /// The context's `.dockerignore` (none for a stage or an image).
    pub ignore: Ignore,
    /// What the sources are called in errors: `build context` or `stage X`.
    pub what: String,
}

/// Sources that cannot be copied.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("{pattern}: {link} is a symbolic link, which a source path may not go through")]
    ThroughLink { pattern: String, link: String },
    #[error("{pattern}: no such file or directory in the {what}")]
    Missing { pattern: String, what: String },
    #[error("{pattern}: no source files were specified (nothing in the {what} matches)")]
    NoMatch { pattern: String, what: String },
    #[error("reading the {what}: {source}")]
    Read { what: String, source: io::Error },
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("writing the copy archive: {0}")]
    Write(#[source] io::Error),
}

/// The sources of one COPY/ADD, expanded: components relative to the root.
pub fn expand(src: &Source, pattern: &str) -> Result<Vec<Vec<String>>, ContextError> {
    let parts = clean(pattern);
    if !parts.iter().any(|p| has_glob(p)) {
        // A symlink on the way could lead out of the root (a context's
        // `link -> /home/me` would copy the user's files into the image).
        for n in 1..parts.len() {
            let dir = src.root.join(parts[..n].iter().collect::<PathBuf>());
            if std::fs::symlink_metadata(&dir).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(ContextError::ThroughLink {
                    pattern: pattern.to_string(),
                    link: parts[..n].join("/"),
                });
            }
        }
        let p = src.root.join(parts.iter().collect::<PathBuf>());
        if std::fs::symlink_metadata(&p).is_err()
            || (!parts.is_empty() && src.ignore.ignored(&parts))
        {
            return Err(ContextError::Missing {
                pattern: pattern.to_string(),
                what: src.what.clone(),
            });
        }
        return Ok(vec![parts]);
    }
    let mut out = Vec::new();
    walk(&src.root, &mut Vec::new(), &mut |rel, _| {
        if rel.len() <= parts.len() && match_parts(&parts[..rel.len()], rel) {
            if rel.len() == parts.len() {
                if !src.ignore.ignored(rel) {
                    out.push(rel.to_vec());
                }
                return false;
            }
            return true;
        }
        false
    })
    .map_err(|source| ContextError::Read {
        what: src.what.clone(),
        source,
    })?;
    out.sort();
    if out.is_empty() {
        return Err(ContextError::NoMatch {
            pattern: pattern.to_string(),
            what: src.what.clone(),
        });
    }
    Ok(out)
}

/// Walk `root/rel` depth first in name order; `f` says whether to descend
/// into a directory.
fn walk(
    root: &Path,
    rel: &mut Vec<String>,
    f: &mut dyn FnMut(&[String], &std::fs::Metadata) -> bool,
) -> io::Result<()> {
    let dir = root.join(rel.iter().collect::<PathBuf>());
    let mut names: Vec<String> = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<io::Result<_>>()?;
    names.sort();
    for n in names {
        rel.push(n);
        let meta = std::fs::symlink_metadata(root.join(rel.iter().collect::<PathBuf>()))?;
        if f(rel, &meta) && meta.is_dir() {
            walk(root, rel, f)?;
        }
        rel.pop();
    }
    Ok(())
}

/// A packed COPY: the tar's entries and the hash of what they hold.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Packed {
    /// sha256 over every entry's name, type, mode, link target and content
    /// (not its time or owner: touching a file keeps the cache).
    pub hash: String,
    /// Top-level names of the tar (what `--chown` applies to, with all below).
    pub entries: Vec<String>,
    /// Whether the one source is a regular file (or link): it may be renamed
    /// to the destination.
    pub single_file: bool,
    /// How many sources the patterns expanded to.
    pub sources: usize,
}

/// Write the tar of `sources` (each expanded from `src`) into `out`: a
/// directory source contributes its contents, anything else itself under
/// its own name. Entries are owned by root; `chmod` replaces every mode.
pub fn pack(
    src: &Source,
    sources: &[Vec<String>],
    chmod: Option<u32>,
    out: File,
) -> Result<Packed, ContextError> {
    let mut b = tar::Builder::new(io::BufWriter::new(out));
    b.mode(tar::HeaderMode::Complete);
    let mut hasher = Sha256::new();
    let mut entries = Vec::new();
    let err = |p: &Path, source: io::Error| ContextError::Io {
        path: p.to_path_buf(),
        source,
    };
    for rel in sources {
        let path = src.root.join(rel.iter().collect::<PathBuf>());
        let meta = std::fs::symlink_metadata(&path).map_err(|e| err(&path, e))?;
        if meta.is_dir() {
            let mut failed = None;
            let mut cur = rel.clone();
            walk(&src.root, &mut cur, &mut |r, m| {
                if failed.is_some() || src.ignore.ignored(r) {
                    return false;
                }
                let name: PathBuf = r[rel.len()..].iter().collect();
                let p = src.root.join(r.iter().collect::<PathBuf>());
                if r.len() == rel.len() + 1 {
                    entries.push(name.to_string_lossy().into_owned());
                }
                if let Err(e) = append(&mut b, &mut hasher, &p, &name, m, chmod) {
                    failed = Some(err(&p, e));
                }
                true
            })
            .map_err(|e| err(&path, e))?;
            if let Some(f) = failed {
                return Err(f);
            }
        } else {
            let name = PathBuf::from(rel.last().cloned().unwrap_or_default());
            entries.push(name.to_string_lossy().into_owned());
            append(&mut b, &mut hasher, &path, &name, &meta, chmod).map_err(|e| err(&path, e))?;
        }
    }
    let single_file = sources.len() == 1
        && std::fs::symlink_metadata(src.root.join(sources[0].iter().collect::<PathBuf>()))
            .is_ok_and(|m| !m.is_dir());
    b.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(ContextError::Write)?;
    Ok(Packed {
        hash: crate::store::hex(&hasher.finalize()),
        entries,
        single_file,
        sources: sources.len(),
    })
}

/// Append one file (not a directory's contents) and hash it.
fn append<W: Write>(
    b: &mut tar::Builder<W>,
    hasher: &mut Sha256,
    path: &Path,
    name: &Path,
    meta: &std::fs::Metadata,
    chmod: Option<u32>,
) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
    h.set_uid(0);
    h.set_gid(0);
    let mode = chmod.unwrap_or(meta.permissions().mode() & 0o7777);
    h.set_mode(mode);
    hasher.update(name.as_os_str().as_encoded_bytes());
    hasher.update([0]);
    hasher.update(format!("{:o}:{}", mode, meta.mode() & 0o170000).as_bytes());
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = std::fs::read_link(path)?;
        hasher.update(target.as_os_str().as_encoded_bytes());
        h.set_size(0);
        b.append_link(&mut h, name, &target)
    } else if ft.is_file() {
        let mut f = File::open(path)?;
        let mut tee = HashRead {
            inner: &mut f,
            hasher,
        };
        b.append_data(&mut h, name, &mut tee)
    } else if ft.is_dir() {
        h.set_size(0);
        b.append_data(&mut h, name, io::empty())
    } else {
        Err(io::Error::other(
            "only files, directories and symbolic links can be copied",
        ))
    }
}

struct HashRead<'a, R> {
    inner: R,
    hasher: &'a mut Sha256,
}

impl<R: Read> Read for HashRead<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<String> {
        clean(s)
    }

    #[test]
    fn globs() {
        assert!(match_component("*.txt", "a.txt"));
        assert!(!match_component("*.txt", "a.txt.bak"));
        assert!(match_component("f?le[0-9]", "file7"));
        assert!(!match_component("[!a]x", "ax"));
        assert!(match_parts(&p("**/*.o"), &p("a/b/c.o")));
        assert!(match_parts(&p("**/*.o"), &p("c.o")));
        assert!(!match_parts(&p("src/*.rs"), &p("src/a/b.rs")));
        assert_eq!(clean("/../a/./b/../c/"), ["a", "c"]);
    }

    #[test]
    fn dockerignore_rules() {
        let ig = Ignore::parse("# comment\n*.log\nbuild\n!build/keep\n**/secret\n");
        assert!(ig.ignored(&p("x.log")));
        assert!(!ig.ignored(&p("sub/x.log")));
        assert!(ig.ignored(&p("build/out")));
        assert!(!ig.ignored(&p("build/keep")));
        assert!(ig.ignored(&p("a/b/secret")));
        assert!(!ig.ignored(&p("main.c")));
    }

    #[test]
    fn expand_and_pack_hash_content_not_time() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("src/sub")).unwrap();
        std::fs::write(root.join("src/a.txt"), "a").unwrap();
        std::fs::write(root.join("src/b.txt"), "b").unwrap();
        std::fs::write(root.join("src/sub/c.txt"), "c").unwrap();
        std::fs::write(root.join("src/x.log"), "x").unwrap();
        std::fs::write(root.join(".dockerignore"), "**/*.log\n").unwrap();
        let src = Source {
            root: root.to_path_buf(),
            ignore: Ignore::read(root).unwrap(),
            what: "build context".into(),
        };
        assert_eq!(
            expand(&src, "src/*.txt").unwrap(),
            [p("src/a.txt"), p("src/b.txt")]
        );
        assert!(expand(&src, "src/*.none").is_err());
        assert!(expand(&src, "src/x.log").is_err());
        assert!(expand(&src, "missing").is_err());
        std::os::unix::fs::symlink("/etc", root.join("out")).unwrap();
        let e = expand(&src, "out/passwd").unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert!(expand(&src, "o*/passwd").is_err());
        assert_eq!(expand(&src, "out").unwrap(), [p("out")]);
        let hash = |srcs: &[Vec<String>]| {
            let f = tempfile::tempfile().unwrap();
            pack(&src, srcs, None, f).unwrap()
        };
        let one = hash(&[p("src")]);
        assert_eq!(one.entries, ["a.txt", "b.txt", "sub"]);
        assert!(!one.single_file);
        // Same content, new time: same hash; new content: another.
        std::fs::write(root.join("src/a.txt"), "a").unwrap();
        assert_eq!(hash(&[p("src")]).hash, one.hash);
        std::fs::write(root.join("src/sub/c.txt"), "C").unwrap();
        assert_ne!(hash(&[p("src")]).hash, one.hash);
        let f = hash(&[p("src/a.txt")]);
        assert!(f.single_file);
        assert_eq!(f.entries, ["a.txt"]);
    }
}
