//! The built-in `hello-world` image: a tiny static program generated in code.
//!
//! `burrow run hello-world` must work on a machine with no registry, no
//! network and no image imported yet, so the image is made here: one layer
//! holding `/hello`, a static Linux ELF executable of a few hundred bytes.
//!
//! The executable is hand-assembled machine code, not compiled: an ELF64
//! header, one `PT_LOAD` program header mapping the whole file read+execute,
//! and code that calls `write(1, msg, len)` until the message is out and then
//! `exit_group(0)` (`exit_group(1)` if a write fails). No libc, no linker,
//! no cross-compiler target. The layout follows the System V gABI and the
//! psABI for each architecture (`man 5 elf`); syscall numbers are from the
//! kernel's `unistd` tables (`man 2 syscall` gives the calling conventions).
//!
//! Architecture: the program matches the architecture burrow is built for on
//! x86_64 and aarch64. On any other architecture burrow still builds, but the
//! image holds the x86_64 program, which such a host cannot run (`run` then
//! fails with "exec format error", as Docker's hello-world does on a platform
//! it has no variant for).

use tar::{Builder, EntryType, Header};

use crate::util::elf::Arch;
#[cfg(test)]
use crate::util::elf::{CODE_OFFSET, EHDR_SIZE, ET_EXEC, PF_R, PF_X, PHDR_SIZE, PT_LOAD};

/// What `/hello` prints: Docker's hello-world message, told about burrow.
pub const MESSAGE: &str = "
Hello from burrow!
This message shows that your installation appears to be working correctly.

To generate this message, burrow took the following steps:
 1. The burrow client looked for the \"hello-world\" image in your local store
    and, not finding it, used the copy built into the burrow binary.
 2. burrow created a new container from that image, without root: a user
    namespace maps your own user id to root inside it.
 3. burrow mounted the image read-only under a private copy-on-write layer,
    gave the container its own /proc, /dev, hostname and PID 1, and ran
    the program that produced this output.
 4. burrow streamed that output to your terminal.

To try something more ambitious, import a root filesystem and run a shell:
 $ rootfs-tools/busybox.sh busybox.tar
 $ burrow import busybox.tar busybox
 $ burrow run -it busybox sh

For more examples and ideas, see the README.

";

/// Path of the program inside the image (its `Cmd` is `["/hello"]`).
pub const PROGRAM: &str = "hello";

/// The OCI `architecture` of the program that [`elf`] returns.
pub const ARCHITECTURE: &str = Arch::native().oci_name();

/// The uncompressed tar of the image's single layer: `/hello`, mode 0755.
///
/// Deterministic: the same bytes on every call and every build for one
/// architecture (mtime 0, uid/gid 0, no user or group names), so the layer's
/// digest, and hence the image id, never changes.
pub fn layer_tar() -> Vec<u8> {
    let program = elf();
    let mut header = Header::new_ustar();
    header.set_entry_type(EntryType::Regular);
    header.set_mode(0o755);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(program.len() as u64);
    let mut builder = Builder::new(Vec::new());
    builder
        .append_data(&mut header, PROGRAM, program.as_slice())
        .expect("appending to an in-memory tar cannot fail");
    builder
        .into_inner()
        .expect("finishing an in-memory tar cannot fail")
}

/// The `/hello` executable: a static ELF for this build's architecture
/// (x86_64 on architectures other than x86_64 and aarch64).
pub fn elf() -> Vec<u8> {
    build_elf(Arch::native(), MESSAGE.as_bytes())
}

/// Lays out the program and its message as one static ELF segment.
fn build_elf(arch: Arch, msg: &[u8]) -> Vec<u8> {
    let mut body = code(arch, msg.len());
    body.extend_from_slice(msg);
    crate::util::elf::build(arch, &body)
}

/// Machine code that writes the `len` bytes placed right after it to
/// stdout and exits.
fn code(arch: Arch, len: usize) -> Vec<u8> {
    match arch {
        Arch::X86_64 => x86_64_code(len),
        Arch::Aarch64 => aarch64_code(len),
    }
}

/// A signed 8-bit jump displacement from `from` (the end of the jump) to `to`.
fn rel8(from: usize, to: usize) -> u8 {
    let d = to as isize - from as isize;
    i8::try_from(d).expect("short jump out of range") as u8
}

/// x86_64, System V syscall convention: number in rax, arguments in rdi,
/// rsi, rdx; `syscall` returns in rax (negative errno on failure) and
/// clobbers rcx and r11.
fn x86_64_code(len: usize) -> Vec<u8> {
    const SYS_WRITE: u8 = 1;
    const SYS_EXIT_GROUP: u8 = 231;
    let len = u32::try_from(len).expect("message too long");
    let mut c = Vec::new();
    c.extend_from_slice(&[0x48, 0x8d, 0x35, 0, 0, 0, 0]); // lea rsi, [rip + msg]
    let lea_end = c.len();
    c.push(0xba); // mov edx, len
    c.extend_from_slice(&len.to_le_bytes());
    let again = c.len();
    c.extend_from_slice(&[0xb8, SYS_WRITE, 0, 0, 0]); // again: mov eax, SYS_write
    c.extend_from_slice(&[0xbf, 1, 0, 0, 0]); // mov edi, 1 (stdout)
    c.extend_from_slice(&[0x0f, 0x05]); // syscall
    c.extend_from_slice(&[0x48, 0x85, 0xc0]); // test rax, rax
    c.extend_from_slice(&[0x7e, 0]); // jle done (error, or nothing written)
    let jle_end = c.len();
    c.extend_from_slice(&[0x48, 0x01, 0xc6]); // add rsi, rax
    c.extend_from_slice(&[0x29, 0xc2]); // sub edx, eax
    c.extend_from_slice(&[0x75, rel8(c.len() + 2, again)]); // jnz again
    let done = c.len();
    c[jle_end - 1] = rel8(jle_end, done);
    c.extend_from_slice(&[0x31, 0xff]); // done: xor edi, edi
    c.extend_from_slice(&[0x85, 0xd2]); // test edx, edx
    c.extend_from_slice(&[0x40, 0x0f, 0x95, 0xc7]); // setnz dil (1 if bytes remain)
    c.extend_from_slice(&[0xb8, SYS_EXIT_GROUP, 0, 0, 0]); // mov eax, SYS_exit_group
    c.extend_from_slice(&[0x0f, 0x05]); // syscall
    let msg = c.len();
    let disp = u32::try_from(msg - lea_end).expect("code is small");
    c[lea_end - 4..lea_end].copy_from_slice(&disp.to_le_bytes());
    c
}

/// aarch64, Linux syscall convention: number in x8, arguments in x0..x2,
/// `svc #0` returns in x0 (negative errno on failure). Instructions are
/// little-endian 32-bit words; branch and `adr` offsets count from the
/// instruction itself.
fn aarch64_code(len: usize) -> Vec<u8> {
    const SYS_WRITE: u32 = 64;
    const SYS_EXIT_GROUP: u32 = 94;
    let len = u16::try_from(len).expect("message too long for one movz");
    let movz_x = |rd: u32, imm: u32| 0xd280_0000 | (imm << 5) | rd;
    let svc0 = 0xd400_0001;
    // b.cond with a placeholder offset; `branch` fills in imm19.
    let b_cond = |cond: u32| 0x5400_0000 | cond;
    let (cond_ne, cond_le) = (0x1, 0xd);
    let branch = |insn: u32, from: usize, to: usize| {
        let words = (to as i64 - from as i64) / 4;
        insn | (((words as u32) & 0x7_ffff) << 5)
    };

    let mut w: Vec<u32> = Vec::new();
    w.push(0x1000_0001); // adr x1, msg (offset patched below)
    w.push(movz_x(2, u32::from(len))); // mov x2, len
    let again = w.len();
    w.push(movz_x(0, 1)); // again: mov x0, 1 (stdout)
    w.push(movz_x(8, SYS_WRITE)); // mov x8, SYS_write
    w.push(svc0); // svc #0
    w.push(0xf100_001f); // cmp x0, #0
    let ble = w.len();
    w.push(b_cond(cond_le)); // b.le done (error, or nothing written)
    w.push(0x8b00_0021); // add x1, x1, x0
    w.push(0xeb00_0042); // subs x2, x2, x0
    let bne = w.len();
    w.push(branch(b_cond(cond_ne), bne * 4, again * 4)); // b.ne again
    let done = w.len();
    w[ble] = branch(w[ble], ble * 4, done * 4);
    w.push(0xf100_005f); // done: cmp x2, #0
    w.push(0x1a9f_07e0); // cset w0, ne (1 if bytes remain)
    w.push(movz_x(8, SYS_EXIT_GROUP)); // mov x8, SYS_exit_group
    w.push(svc0); // svc #0
    let msg = (w.len() * 4) as u32; // adr is at offset 0
    w[0] |= ((msg & 0x3) << 29) | (((msg >> 2) & 0x7_ffff) << 5);
    w.iter().flat_map(|i| i.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], off: usize) -> u16 {
        u16::from_le_bytes(b[off..off + 2].try_into().unwrap())
    }
    fn u32_at(b: &[u8], off: usize) -> u32 {
        u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
    }
    fn u64_at(b: &[u8], off: usize) -> u64 {
        u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
    }

    fn check_header(e: &[u8], machine: u16) {
        assert_eq!(&e[..4], b"\x7fELF", "magic");
        assert_eq!(e[4], 2, "ELFCLASS64");
        assert_eq!(e[5], 1, "little-endian");
        assert_eq!(e[6], 1, "EV_CURRENT");
        assert_eq!(u16_at(e, 16), ET_EXEC, "e_type");
        assert_eq!(u16_at(e, 18), machine, "e_machine");
        assert_eq!(u32_at(e, 20), 1, "e_version");
        assert_eq!(u64_at(e, 32), EHDR_SIZE as u64, "e_phoff");
        assert_eq!(u16_at(e, 52), EHDR_SIZE as u16, "e_ehsize");
        assert_eq!(u16_at(e, 54), PHDR_SIZE as u16, "e_phentsize");
        assert_eq!(u16_at(e, 56), 1, "e_phnum");

        let ph = EHDR_SIZE;
        assert_eq!(u32_at(e, ph), PT_LOAD, "p_type");
        assert_eq!(u32_at(e, ph + 4), PF_R | PF_X, "p_flags");
        let offset = u64_at(e, ph + 8);
        let vaddr = u64_at(e, ph + 16);
        let filesz = u64_at(e, ph + 32);
        let memsz = u64_at(e, ph + 40);
        let align = u64_at(e, ph + 48);
        assert_eq!(offset, 0);
        assert_eq!(filesz, e.len() as u64, "the segment covers the file");
        assert!(memsz >= filesz);
        assert!(align.is_power_of_two() && vaddr % align == offset % align);

        let entry = u64_at(e, 24);
        assert!(
            entry >= vaddr + CODE_OFFSET as u64 && entry < vaddr + filesz,
            "entry {entry:#x} inside the code of the loaded segment"
        );
        assert!(e.ends_with(MESSAGE.as_bytes()));
    }

    #[test]
    fn elf_header_is_valid_for_this_build() {
        check_header(&elf(), Arch::native().e_machine());
        assert_eq!(
            ARCHITECTURE,
            if cfg!(target_arch = "aarch64") {
                "arm64"
            } else {
                "amd64"
            }
        );
    }

    #[test]
    fn elf_header_is_valid_for_every_arch() {
        check_header(&build_elf(Arch::X86_64, MESSAGE.as_bytes()), 62);
        check_header(&build_elf(Arch::Aarch64, MESSAGE.as_bytes()), 183);
        // aarch64 instructions must be 4-byte aligned in memory.
        assert_eq!(CODE_OFFSET % 4, 0);
    }

    #[test]
    fn x86_64_code_is_what_was_hand_assembled() {
        // Checked against `objdump -D -b binary -m i386:x86-64`.
        let c = x86_64_code(0x1234);
        assert_eq!(&c[..7], &[0x48, 0x8d, 0x35, 0x2c, 0, 0, 0]); // lea rsi,[rip+0x2c]
        assert_eq!(&c[7..12], &[0xba, 0x34, 0x12, 0, 0]);
        assert_eq!(&c[27..29], &[0x7e, 7]); // jle done
        assert_eq!(&c[34..36], &[0x75, 0xe8]); // jnz again (-24)
        assert_eq!(c.len(), 51);
    }

    #[test]
    fn aarch64_code_is_what_was_hand_assembled() {
        // Checked against `aarch64-linux-gnu-objdump -D -b binary -m aarch64`;
        // the whole ELF was run under `qemu-aarch64-static` (exit 0, the
        // message; exit 1 with stdout on /dev/full).
        let c = aarch64_code(0x1234);
        let word = |i: usize| u32::from_le_bytes(c[i * 4..i * 4 + 4].try_into().unwrap());
        assert_eq!(c.len(), 14 * 4);
        assert_eq!(word(0), 0x1000_01c1); // adr x1, #56
        assert_eq!(word(1), 0xd282_4682); // mov x2, #0x1234
        assert_eq!(word(6), 0x5400_008d); // b.le +16
        assert_eq!(word(9), 0x54ff_ff21); // b.ne -28
    }

    #[test]
    fn tar_holds_exactly_hello_mode_0755() {
        let tar = layer_tar();
        assert_eq!(tar, layer_tar(), "deterministic");
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let h = entry.header();
            assert_eq!(h.entry_type(), EntryType::Regular);
            assert_eq!(h.mode().unwrap(), 0o755);
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
            assert_eq!(h.mtime().unwrap(), 0);
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let mut body = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut body).unwrap();
            assert_eq!(body, elf());
            seen.push(path);
        }
        assert_eq!(seen, ["hello"]);
    }

    /// Writes the program to a fresh file and runs it with `stdout`.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    fn run_hello(stdout: fn() -> std::process::Stdio) -> std::process::Output {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(PROGRAM);
        std::fs::write(&path, elf()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        // Another test thread forking at the moment we held the file open
        // for writing makes exec fail with ETXTBSY until that child execs:
        // retry briefly (see rust-lang/rust#114554).
        for _ in 0..50 {
            let out = std::process::Command::new(&path).stdout(stdout()).output();
            match out {
                Ok(out) => return out,
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => panic!("exec {}: {e}", path.display()),
            }
        }
        panic!("exec {}: text file busy", path.display());
    }

    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn hello_runs_and_prints_the_message() {
        let out = run_hello(std::process::Stdio::piped);
        assert_eq!(String::from_utf8_lossy(&out.stdout), MESSAGE);
        assert!(out.stderr.is_empty());
        assert_eq!(out.status.code(), Some(0));
    }

    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn hello_exits_1_when_stdout_fails() {
        // Writes to /dev/full fail with ENOSPC.
        let out = run_hello(|| {
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap()
                .into()
        });
        assert_eq!(out.status.code(), Some(1));
    }
}
