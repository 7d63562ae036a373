//! The init program `--init` runs as PID 1: a small static one found on the
//! host (catatonit, as podman uses; tini, as Docker ships it), which PID 1
//! execs from a descriptor opened before pivot_root, so the container sees
//! a fresh program with the container's environment, not a copy of the
//! process that set it up.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Names looked up in `PATH`, in order, then fixed places packages use.
const NAMES: [&str; 3] = ["catatonit", "tini-static", "docker-init"];
const PLACES: [&str; 2] = [
    "/usr/libexec/podman/catatonit",
    "/usr/libexec/docker/docker-init",
];

/// The first static init program in `path_var` or the usual places. A
/// dynamically linked one is skipped: its loader would be looked up in the
/// container's root, where it need not exist.
pub fn find(path_var: &str) -> Option<PathBuf> {
    std::env::split_paths(path_var)
        .flat_map(|d| NAMES.map(|n| d.join(n)))
        .chain(PLACES.map(PathBuf::from))
        .find(|p| is_static_elf(p))
}

/// The arguments that make `program` (one of [`NAMES`]) run `argv` as its
/// child: both catatonit and tini take the command after `--`.
pub fn command_line(program: &Path, argv: &[String]) -> Vec<String> {
    let mut args = vec![program.display().to_string(), "--".into()];
    args.extend(argv.iter().cloned());
    args
}

/// An executable 64-bit little-endian ELF file with no program interpreter
/// (`PT_INTERP`): one that runs in any root filesystem (elf(5)).
pub fn is_static_elf(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return false;
    }
    let mut head = Vec::new();
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    // The program headers of a static binary sit right after the ELF header.
    if f.take(4096).read_to_end(&mut head).is_err() {
        return false;
    }
    has_no_interpreter(&head)
}

/// [`is_static_elf`] on the first bytes of a file.
fn has_no_interpreter(head: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let u16_at = |o: usize| head.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o: usize| {
        head.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |o: usize| {
        head.get(o..o + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes)
    };
    // ELF magic, 64-bit, little-endian, ET_EXEC or ET_DYN.
    if head.get(..6) != Some(&[0x7f, b'E', b'L', b'F', 2, 1]) || !matches!(u16_at(16), Some(2 | 3))
    {
        return false;
    }
    let (Some(phoff), Some(entsize), Some(count)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    let Ok(phoff) = usize::try_from(phoff) else {
        return false;
    };
    if count == 0 || entsize < 4 {
        return false;
    }
    (0..usize::from(count))
        .all(|i| u32_at(phoff + i * usize::from(entsize)).is_some_and(|kind| kind != PT_INTERP))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 64-bit ELF header with `kinds` as its program headers' types.
    fn elf(kinds: &[u32]) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[..6].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1]);
        b[16..18].copy_from_slice(&2u16.to_le_bytes());
        b[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        b[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        b[0x38..0x3a].copy_from_slice(&(kinds.len() as u16).to_le_bytes());
        for k in kinds {
            let mut ph = vec![0u8; 56];
            ph[..4].copy_from_slice(&k.to_le_bytes());
            b.extend(ph);
        }
        b
    }

    #[test]
    fn a_program_interpreter_makes_a_binary_dynamic() {
        assert!(has_no_interpreter(&elf(&[1, 1, 4])));
        assert!(!has_no_interpreter(&elf(&[6, 3, 1])));
    }

    #[test]
    fn truncated_or_foreign_files_are_not_static_programs() {
        let full = elf(&[1, 1]);
        // Cut inside the second program header's type.
        assert!(!has_no_interpreter(&full[..64 + 56 + 2]));
        assert!(!has_no_interpreter(b"#!/bin/sh\n"));
        let mut class32 = full.clone();
        class32[4] = 1;
        assert!(!has_no_interpreter(&class32));
    }

    #[test]
    fn the_test_binary_itself_is_dynamic() {
        // cargo's test binaries link glibc dynamically.
        assert!(!is_static_elf(Path::new("/proc/self/exe")));
    }
}
