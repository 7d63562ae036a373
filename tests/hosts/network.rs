//! Network helpers that cannot start: `/dev/net/tun` root-only or absent.

use crate::common::{self, host, stderr, stdout};

/// The README's first command, where pasta cannot open the tun device:
/// the container runs with loopback only and burrow says what it gave up.
#[test]
fn hello_world_runs_where_tun_is_root_only() {
    for env in common::users("hello_tun_root_only") {
        for (what, setup) in [("0600", host::TUN_ROOT_ONLY), ("absent", host::NO_TUN)] {
            let Some(mut c) = env.cmd_on_host("hello_tun_root_only", setup, ["run", "hello-world"])
            else {
                return;
            };
            let o = c.output().unwrap();
            assert!(
                o.status.success(),
                "[{:?}] tun {what}: {:?}\n{}",
                env.who,
                o.status.code(),
                stderr(&o)
            );
            assert!(stdout(&o).contains("Hello from burrow"), "{}", stdout(&o));
        }
    }
}
