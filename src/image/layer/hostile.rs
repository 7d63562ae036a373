//! The hostile-archive corpus beyond names and links: a directory replaced
//! by a file and back, duplicate entries, names past the kernel's limits,
//! oversized PAX and GNU long-name headers, sparse files, a tar bomb of
//! more than [`MAX_ENTRIES`] entries. Each ends in a clear error or a
//! documented outcome, with nothing outside the destination touched; the
//! bombs are generated lazily, so the test holds none of them in memory.

use std::fs;
use std::io::{self, Read};
use std::time::{Duration, Instant};

use tar::EntryType;

use super::fixtures::{header, Env, Tar};
use super::{apply_layer, ApplyOptions, IdPolicy, LayerError, MAX_ENTRIES, MAX_EXTENDED_HEADERS};

const COLLAPSE: ApplyOptions = ApplyOptions {
    ids: IdPolicy::Collapse,
};

/// One header block for `name` (≤ 100 bytes) with a checksum.
fn block(name: &[u8], kind: EntryType, size: u64) -> [u8; 512] {
    let mut h = header(kind, size, 0o644);
    {
        let old = h.as_old_mut();
        old.name = [0; 100];
        old.name[..name.len()].copy_from_slice(name);
    }
    h.set_cksum();
    *h.as_bytes()
}

/// A stream made of `head`, then `zeros` zero bytes, then `tail`, read
/// without ever holding the zeros.
struct Lazy {
    head: io::Cursor<Vec<u8>>,
    zeros: io::Take<io::Repeat>,
    tail: io::Cursor<Vec<u8>>,
}

impl Read for Lazy {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.head.read(buf)?;
        if n > 0 {
            return Ok(n);
        }
        let n = self.zeros.read(buf)?;
        if n > 0 {
            return Ok(n);
        }
        self.tail.read(buf)
    }
}

#[test]
fn a_directory_replaced_by_a_file_and_back() {
    let env = Env::new();
    let tar = Tar::new()
        .dir("d/", 0o755)
        .file("d/old", b"first life")
        .file("d", b"now a file")
        .dir("d/", 0o700)
        .file("d/new", b"second life")
        .finish();
    env.apply(&tar).unwrap();
    let d = env.dest.join("d");
    assert!(d.is_dir());
    assert_eq!(fs::read(d.join("new")).unwrap(), b"second life");
    assert!(
        !d.join("old").exists(),
        "the first directory's content is gone"
    );
    env.assert_contained();
}

#[test]
fn duplicate_entries_the_last_one_wins() {
    let env = Env::new();
    let out = env.out();
    let tar = Tar::new()
        .file("f", b"one")
        .file("f", b"two")
        .link(EntryType::Symlink, "l", "f")
        .link(EntryType::Symlink, "l", &format!("{out}/file"))
        .link(EntryType::Link, "h", "f")
        .file("h", b"no longer a link")
        .dir("d/", 0o755)
        .dir("d/", 0o755)
        .finish();
    let r = env.apply(&tar).unwrap();
    assert_eq!(r.entries, 8);
    assert_eq!(fs::read(env.dest.join("f")).unwrap(), b"two");
    assert_eq!(
        fs::read_link(env.dest.join("l")).unwrap().to_str().unwrap(),
        format!("{out}/file"),
        "a symlink is stored verbatim (followed only inside the root)"
    );
    assert_eq!(fs::read(env.dest.join("h")).unwrap(), b"no longer a link");
    assert_eq!(fs::read(env.dest.join("f")).unwrap(), b"two", "f untouched");
    env.assert_contained();
}

#[test]
fn names_past_the_kernels_limits_are_clear_errors() {
    // A component longer than NAME_MAX (255).
    let env = Env::new();
    let long = "n".repeat(300);
    let tar = Tar::new().file(&long, b"x").finish();
    let e = env.apply(&tar).unwrap_err().to_string();
    assert!(e.contains("too long"), "{e}");
    env.assert_contained();
    // A path longer than PATH_MAX in short components, through a PAX path.
    let env = Env::new();
    let deep = vec!["d"; 3000].join("/");
    let tar = Tar::new()
        .pax(&[("path", deep.as_bytes())])
        .file("placeholder", b"x")
        .finish();
    match env.apply(&tar) {
        // Created one component at a time, it fits: a documented outcome.
        Ok(_) => assert!(env.dest.join("d/d/d").is_dir()),
        Err(e) => assert!(e.to_string().contains("too long"), "{e}"),
    }
    env.assert_contained();
    // A long name well within the limits, in a GNU long-name header.
    let env = Env::new();
    let ok = format!("{}/{}", "a".repeat(200), "b".repeat(200));
    let tar = Tar::new().file(&ok, b"fine").finish();
    env.apply(&tar).unwrap();
    assert_eq!(fs::read(env.dest.join(&ok)).unwrap(), b"fine");
}

#[test]
fn oversized_extended_headers_are_refused_without_reading_them_into_memory() {
    for kind in [EntryType::XHeader, EntryType::GNULongName] {
        let env = Env::new();
        // Claims 4 GiB of header: refused after MAX_EXTENDED_HEADERS.
        let size = 4u64 << 30;
        let stream = Lazy {
            head: io::Cursor::new(block(b"././@LongLink", kind, size).to_vec()),
            zeros: io::repeat(0).take(size),
            tail: io::Cursor::new(Vec::new()),
        };
        let t = Instant::now();
        let e = apply_layer(stream, &env.dest, &COLLAPSE).unwrap_err();
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "refused early: {:?}",
            t.elapsed()
        );
        assert!(
            e.to_string()
                .contains(&format!("exceed {} KiB", MAX_EXTENDED_HEADERS >> 10)),
            "{kind:?}: {e}"
        );
        env.assert_contained();
    }
    // A large file after ordinary headers is no extended header: the
    // budget covers only the search for the next entry.
    let env = Env::new();
    let big = vec![7u8; (MAX_EXTENDED_HEADERS as usize) * 3];
    let tar = Tar::new()
        .pax(&[("SCHILY.xattr.user.k", b"v")])
        .file("big", &big)
        .file("after", b"x")
        .finish();
    env.apply(&tar).unwrap();
    assert_eq!(
        fs::metadata(env.dest.join("big")).unwrap().len(),
        big.len() as u64
    );
}

/// A GNU sparse header: `real` bytes in all, holding `data` at `offset`.
fn sparse(name: &str, real: u64, offset: u64, data: &[u8]) -> Vec<u8> {
    let mut h = header(EntryType::GNUSparse, data.len() as u64, 0o644);
    {
        let g = h.as_gnu_mut().unwrap();
        let octal = |v: u64| {
            let s = format!("{v:011o}\0");
            let mut f = [0u8; 12];
            f.copy_from_slice(s.as_bytes());
            f
        };
        g.name[..name.len()].copy_from_slice(name.as_bytes());
        g.sparse[0].offset = octal(offset);
        g.sparse[0].numbytes = octal(data.len() as u64);
        g.realsize = octal(real);
    }
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.resize(out.len() + 1024, 0);
    out
}

#[test]
fn sparse_files_are_written_out_in_full() {
    // Documented outcome: holes become zeros on disk, so a sparse archive
    // costs its full size, like a compression bomb: bounded by the disk.
    let env = Env::new();
    let tar = sparse("s", 1 << 20, (1 << 20) - 4, b"tail");
    apply_layer(&tar[..], &env.dest, &COLLAPSE).unwrap();
    let got = fs::read(env.dest.join("s")).unwrap();
    assert_eq!(got.len(), 1 << 20);
    assert!(got[..(1 << 20) - 4].iter().all(|b| *b == 0));
    assert_eq!(&got[(1 << 20) - 4..], b"tail");
    env.assert_contained();
    // A region past the file's real size is an error.
    let env = Env::new();
    let bad = sparse("s", 8, 4096, b"past the end");
    assert!(matches!(
        apply_layer(&bad[..], &env.dest, &COLLAPSE),
        Err(LayerError::Read(_))
    ));
    env.assert_contained();
}

/// `n` entries of one device node (skipped, so the cost is the parsing),
/// made as they are read.
struct Bomb {
    left: u64,
    block: [u8; 512],
    at: usize,
}

impl Read for Bomb {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at == 512 {
            if self.left == 0 {
                return Ok(0);
            }
            self.left -= 1;
            self.at = 0;
        }
        let n = buf.len().min(512 - self.at);
        buf[..n].copy_from_slice(&self.block[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[test]
fn a_tar_bomb_stops_at_the_entry_limit() {
    let env = Env::new();
    let bomb = Bomb {
        left: MAX_ENTRIES + 10,
        block: block(b"dev", EntryType::Char, 0),
        at: 512,
    };
    let t = Instant::now();
    let e = apply_layer(bomb, &env.dest, &COLLAPSE).unwrap_err();
    eprintln!("tar bomb refused after {:?}", t.elapsed());
    assert!(matches!(e, LayerError::TooManyEntries(MAX_ENTRIES)), "{e}");
    assert!(e.to_string().contains("tar bomb"), "{e}");
    env.assert_contained();
}
