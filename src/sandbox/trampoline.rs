//! The exec trampoline: a static program of a few dozen bytes, run from a
//! sealed memfd, that a process entering a container execs just before the
//! container's program, and that execs that program in turn.
//!
//! Why: at its final execve(2) the entering process is still burrow, so
//! `/proc/self/exe` there is burrow's binary, which the user may own (as
//! `cargo install` leaves it). A container program that is a script
//! starting `#!/proc/self/exe` makes the kernel run that binary again
//! inside the container, where the container can hold it through
//! `/proc/PID/exe` and write it once nothing runs it, so that the user's
//! next burrow command runs the container's code (runc's CVE-2019-5736).
//! Exec'd through the trampoline, `/proc/self/exe` of the process that
//! execs the container's program is the trampoline's memfd: sealed against
//! writes, and used by no one afterwards. runc copies its whole binary
//! into a memfd for this; the trampoline costs one small exec instead
//! (see the README's "Security model").
//!
//! Its calling convention: `argv[0]` is [`MAGIC`] (anything else, such as a
//! script naming the trampoline as its interpreter, exits 126 at once),
//! `argv[1]` the program's path, `argv[2..]` the program's own argv; the
//! environment is passed as is. On failure it exits 127 when the program
//! is missing (ENOENT) and 126 otherwise, Docker's codes.

use std::ffi::CString;
use std::fs::File;

use crate::util::elf::{self, Arch};

/// The trampoline's `argv[0]`.
pub const MAGIC: &str = "\u{1}B";

/// The program for this build's architecture; None where burrow has no
/// machine code for it (the process then execs the program directly).
pub fn program() -> Option<Vec<u8>> {
    if !cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        return None;
    }
    Some(build(Arch::native()))
}

fn build(arch: Arch) -> Vec<u8> {
    let code = match arch {
        Arch::X86_64 => X86_64.to_vec(),
        Arch::Aarch64 => AARCH64.iter().flat_map(|w| w.to_le_bytes()).collect(),
    };
    elf::build(arch, &code)
}

/// The argv that makes the trampoline exec `path` with `argv`.
pub fn argv(path: &CString, argv: &[CString]) -> Vec<CString> {
    let mut all = Vec::with_capacity(argv.len() + 2);
    all.push(CString::new(MAGIC).expect("no NUL in the magic"));
    all.push(path.clone());
    all.extend(argv.iter().cloned());
    all
}

/// Load the trampoline into a sealed memfd, opened to exec; None where the
/// architecture has none. After [`preload`], a copy of the descriptor
/// loaded then.
pub fn load() -> nix::Result<Option<File>> {
    if let Some(f) = LOADED.get() {
        return f
            .try_clone()
            .map(Some)
            .map_err(|e| nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EBADF)));
    }
    match program() {
        Some(code) => crate::linux::process::sealed_program("burrow-exec", &code).map(Some),
        None => Ok(None),
    }
}

/// The trampoline this process loaded once for every process it forks.
static LOADED: std::sync::OnceLock<File> = std::sync::OnceLock::new();

/// Load the trampoline once for this process (a joiner that forks a
/// process for each request): sealed, it can be shared by all of them. A
/// failure is left for `load` to report.
pub fn preload() {
    if let Ok(Some(f)) = load() {
        let _ = LOADED.set(f);
    }
}

/// x86_64 (System V syscall convention: number in rax, arguments in rdi,
/// rsi, rdx). At entry [rsp] is argc, then argv, NULL, envp.
#[rustfmt::skip]
const X86_64: [u8; 0x40] = [
    0x48, 0x8b, 0x44, 0x24, 0x08,       // mov rax, [rsp+8]          argv[0]
    0x66, 0x81, 0x38, 0x01, 0x42,       // cmp word [rax], 0x4201    "\x01B"
    0x75, 0x20,                         // jne fail
    0x80, 0x78, 0x02, 0x00,             // cmp byte [rax+2], 0
    0x75, 0x1a,                         // jne fail
    0x48, 0x8b, 0x7c, 0x24, 0x10,       // mov rdi, [rsp+16]         argv[1]: path
    0x48, 0x8d, 0x74, 0x24, 0x18,       // lea rsi, [rsp+24]         &argv[2]
    0x48, 0x8b, 0x0c, 0x24,             // mov rcx, [rsp]            argc
    0x48, 0x8d, 0x54, 0xcc, 0x10,       // lea rdx, [rsp+rcx*8+16]   envp
    0xb8, 0x3b, 0x00, 0x00, 0x00,       // mov eax, 59               execve
    0x0f, 0x05,                         // syscall
    // fail:
    0xbf, 0x7e, 0x00, 0x00, 0x00,       // mov edi, 126
    0x48, 0x83, 0xf8, 0xfe,             // cmp rax, -ENOENT
    0x75, 0x02,                         // jne 1f
    0xff, 0xc7,                         // inc edi                   127
    // 1:
    0xb8, 0xe7, 0x00, 0x00, 0x00,       // mov eax, 231              exit_group
    0x0f, 0x05,                         // syscall
];

/// aarch64 (number in x8, arguments in x0..x2, `svc #0`), one instruction
/// word each. At entry [sp] is argc, then argv, NULL, envp.
const AARCH64: [u32; 21] = [
    0xf940_07e0, // ldr  x0, [sp, #8]          argv[0]
    0x7940_0001, // ldrh w1, [x0]
    0x5288_4022, // mov  w2, #0x4201           "\x01B"
    0x6b02_003f, // cmp  w1, w2
    0x5400_0141, // b.ne fail
    0x3940_0801, // ldrb w1, [x0, #2]
    0x3500_0101, // cbnz w1, fail
    0xf940_0be0, // ldr  x0, [sp, #16]         argv[1]: path
    0x9100_63e1, // add  x1, sp, #24           &argv[2]
    0xf940_03e2, // ldr  x2, [sp]              argc
    0x8b22_6fe2, // add  x2, sp, x2, lsl #3
    0x9100_4042, // add  x2, x2, #16           envp
    0xd280_1ba8, // mov  x8, #221              execve
    0xd400_0001, // svc  #0
    // fail:
    0xaa00_03e1, // mov  x1, x0
    0xd280_0fc0, // mov  x0, #126
    0xb100_083f, // cmn  x1, #2                -ENOENT?
    0x5400_0041, // b.ne 1f
    0xd280_0fe0, // mov  x0, #127
    // 1:
    0xd280_0bc8, // mov  x8, #94               exit_group
    0xd400_0001, // svc  #0
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn both_architectures_assemble_to_a_static_program() {
        for arch in [Arch::X86_64, Arch::Aarch64] {
            let p = build(arch);
            assert_eq!(&p[..4], b"\x7fELF");
            assert_eq!(
                p.len(),
                elf::CODE_OFFSET + if arch == Arch::X86_64 { 0x40 } else { 84 }
            );
        }
    }

    /// Run the trampoline (from its sealed memfd) with `args` after argv[0].
    fn run(first: &str, args: &[&str]) -> std::process::Output {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let Some(file) = load().unwrap() else {
            panic!("no trampoline for this architecture");
        };
        // The child execs it through its descriptor, left open across fork
        // (the path /proc/self/fd/N names it in the child too).
        let path = format!("/proc/self/fd/{}", file.as_raw_fd());
        let out = std::process::Command::new(&path)
            .arg0(first)
            .args(args)
            .env_clear()
            .env("GREETING", "through the trampoline")
            .output()
            .unwrap();
        drop(file);
        out
    }

    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn it_execs_the_program_with_its_argv_and_environment() {
        let out = run(
            MAGIC,
            &["/bin/sh", "sh", "-c", "echo $0 $1 $GREETING", "zero", "one"],
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "zero one through the trampoline\n"
        );
        assert_eq!(out.status.code(), Some(0));
    }

    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn it_exits_with_dockers_codes_and_refuses_any_other_caller() {
        assert_eq!(run(MAGIC, &["/nonexistent", "x"]).status.code(), Some(127));
        assert_eq!(run(MAGIC, &["/etc/hostname", "x"]).status.code(), Some(126));
        // A script naming it as interpreter calls it with its own path.
        let o = run("/proc/self/exe", &["/bin/sh", "sh", "-c", "echo no"]);
        assert_eq!(o.status.code(), Some(126));
        assert!(o.stdout.is_empty() && o.status.signal().is_none());
    }
}
