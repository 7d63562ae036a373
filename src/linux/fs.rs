//! Filesystem syscalls nix does not wrap (xattrs), used by layer extraction.
