//! Tiny static Linux ELF executables laid out in code: one ELF header, one
//! `PT_LOAD` program header mapping the whole file read+execute, then
//! hand-assembled machine code and its data (elf(5), the System V gABI and
//! each architecture's psABI). Used for the built-in `hello-world` and the
//! exec trampoline of the sandbox: programs that must run in any root
//! filesystem, with no libc, linker or cross-compiler.

/// The architectures burrow assembles programs for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    /// The build's architecture; x86_64 stands in for the ones we have no
    /// machine code for.
    pub const fn native() -> Arch {
        if cfg!(target_arch = "aarch64") {
            Arch::Aarch64
        } else {
            Arch::X86_64
        }
    }

    pub const fn oci_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
        }
    }

    /// `e_machine`: EM_X86_64 (62) or EM_AARCH64 (183).
    pub const fn e_machine(self) -> u16 {
        match self {
            Arch::X86_64 => 62,
            Arch::Aarch64 => 183,
        }
    }

    /// `p_align`: the largest page size the kernel may use (aarch64 kernels
    /// can run with 64 KiB pages).
    const fn max_page(self) -> u64 {
        match self {
            Arch::X86_64 => 0x1000,
            Arch::Aarch64 => 0x1_0000,
        }
    }
}

/// Virtual address the file is mapped at: the traditional non-PIE base,
/// above `vm.mmap_min_addr` and aligned for 64 KiB pages.
pub const BASE: u64 = 0x40_0000;
pub const EHDR_SIZE: usize = 64;
pub const PHDR_SIZE: usize = 56;
/// Code starts right after the headers (a multiple of 4, as aarch64 needs).
pub const CODE_OFFSET: usize = EHDR_SIZE + PHDR_SIZE;

pub const ET_EXEC: u16 = 2;
pub const PT_LOAD: u32 = 1;
pub const PF_X: u32 = 1;
pub const PF_R: u32 = 4;

/// Lays out ELF header, program header and `body` (code, entered at its
/// first byte, followed by any data it reads) in one read+execute segment.
pub fn build(arch: Arch, body: &[u8]) -> Vec<u8> {
    let total = (CODE_OFFSET + body.len()) as u64;
    let entry = BASE + CODE_OFFSET as u64;
    let mut e = Vec::with_capacity(total as usize);

    // Elf64_Ehdr
    e.extend_from_slice(b"\x7fELF");
    e.push(2); // EI_CLASS: ELFCLASS64
    e.push(1); // EI_DATA: ELFDATA2LSB
    e.push(1); // EI_VERSION: EV_CURRENT
    e.push(0); // EI_OSABI: System V
    e.extend_from_slice(&[0; 8]); // EI_ABIVERSION + padding
    e.extend_from_slice(&ET_EXEC.to_le_bytes());
    e.extend_from_slice(&arch.e_machine().to_le_bytes());
    e.extend_from_slice(&1u32.to_le_bytes()); // e_version
    e.extend_from_slice(&entry.to_le_bytes()); // e_entry
    e.extend_from_slice(&(EHDR_SIZE as u64).to_le_bytes()); // e_phoff
    e.extend_from_slice(&0u64.to_le_bytes()); // e_shoff: no sections
    e.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    e.extend_from_slice(&(EHDR_SIZE as u16).to_le_bytes()); // e_ehsize
    e.extend_from_slice(&(PHDR_SIZE as u16).to_le_bytes()); // e_phentsize
    e.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
    e.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
    e.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
    e.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
    debug_assert_eq!(e.len(), EHDR_SIZE);

    // Elf64_Phdr: map the whole file, headers included, read + execute.
    e.extend_from_slice(&PT_LOAD.to_le_bytes());
    e.extend_from_slice(&(PF_R | PF_X).to_le_bytes());
    e.extend_from_slice(&0u64.to_le_bytes()); // p_offset
    e.extend_from_slice(&BASE.to_le_bytes()); // p_vaddr
    e.extend_from_slice(&BASE.to_le_bytes()); // p_paddr
    e.extend_from_slice(&total.to_le_bytes()); // p_filesz
    e.extend_from_slice(&total.to_le_bytes()); // p_memsz
    e.extend_from_slice(&arch.max_page().to_le_bytes()); // p_align
    debug_assert_eq!(e.len(), CODE_OFFSET);

    e.extend_from_slice(body);
    debug_assert_eq!(e.len() as u64, total);
    e
}
