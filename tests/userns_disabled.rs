//! When unprivileged user namespaces are off, burrow says so and how to turn
//! them on. As root this flips `user.max_user_namespaces` to 0 for a moment,
//! so it lives in a test binary of its own (cargo runs binaries one at a
//! time; nothing else is running then) and restores the value on every path.

mod common;

use common::{stderr, users};

struct Restore(String);

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = std::fs::write("/proc/sys/user/max_user_namespaces", &self.0);
    }
}

#[test]
fn disabled_user_namespaces_get_a_clear_fix() {
    if !nix::unistd::Uid::effective().is_root() {
        common::loud("SKIPPED disabled_user_namespaces_get_a_clear_fix: needs root to change user.max_user_namespaces");
        return;
    }
    let envs = users("userns_off");
    for env in &envs {
        env.import_busybox("busybox");
    }
    let old = std::fs::read_to_string("/proc/sys/user/max_user_namespaces").unwrap();
    if let Err(e) = std::fs::write("/proc/sys/user/max_user_namespaces", old.trim()) {
        // Root of a container or VM sandbox may not own the sysctl.
        common::loud(&format!(
            "SKIPPED disabled_user_namespaces_get_a_clear_fix: cannot change user.max_user_namespaces here ({e})"
        ));
        return;
    }
    let _restore = Restore(old);
    std::fs::write("/proc/sys/user/max_user_namespaces", "0").unwrap();
    for env in &envs {
        let o = env.run(["run", "--rm", "busybox", "true"]);
        assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains("user namespace"), "{err}");
        assert!(
            err.contains("sysctl user.max_user_namespaces="),
            "the fix is named: {err}"
        );
        let info = env.ok(["info"]);
        assert!(info.contains("DO NOT WORK"), "{info}");
    }
}
