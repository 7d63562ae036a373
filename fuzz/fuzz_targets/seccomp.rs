//! Seccomp profiles (Docker/podman JSON, OCI `LinuxSeccomp`): parsing and
//! compiling for this host never panics.
#![no_main]

use burrow::sandbox::seccomp::{Host, Profile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Profile::parse(data) {
        if let Ok(h) = Host::this(burrow::linux::caps::ALL) {
            let _ = p.compile(&h);
        }
    }
});
