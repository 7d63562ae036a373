//! `diff` and `ps -s` walk a running container's upper dir from the host:
//! a container that keeps swapping one of its directories for a symlink
//! to a host path must never make them list or measure the host's files.

use crate::common::{self, Env};
use crate::{evil_image, plant_secret, probe};

/// Start the racer: /d (a directory of 300 files) and /l (a symlink to the
/// test user's home on the host) swapped with RENAME_EXCHANGE nonstop.
fn start_racer(env: &Env) -> bool {
    let Some(swap) = probe(env, "swapdir") else {
        return false;
    };
    evil_image(env, "racer", &[(&swap, "/swapdir")], &[]);
    let script = format!(
        "mkdir /d && for i in $(seq 1 300); do echo x > /d/f$i; done && ln -s {} /l && exec /swapdir /d /l",
        env.home.display()
    );
    env.ok([
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "racer",
        "racer",
        "sh",
        "-c",
        &script,
    ]);
    true
}

/// Removes the racer however the test ends: its swapper spins a core.
struct Racer<'a>(&'a Env);

impl Drop for Racer<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(["rm", "-f", "racer"]);
    }
}

#[test]
fn diff_and_ps_size_never_read_the_host_through_a_swapped_directory() {
    for env in common::users("esc-diff") {
        plant_secret(&env);
        // A sparse 4 GiB file: counted by a walk that strays into the home,
        // it shows in `ps -s` as gigabytes.
        let big = env.home.join("big-host-file");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(4 << 30)
            .unwrap();
        let racer = Racer(&env);
        if !start_racer(&env) {
            return;
        }
        // Let the container make /d and start swapping.
        common::wait_until("the racer's /d", std::time::Duration::from_secs(10), || {
            common::stdout(&env.run(["diff", "racer"])).contains("/d/f300")
        });
        let (mut leaks, mut failed) = (Vec::new(), Vec::new());
        for _ in 0..150 {
            let diff = env.run(["diff", "racer"]);
            let out = format!("{}{}", common::stdout(&diff), common::stderr(&diff));
            if out.contains("secret.txt") || out.contains("big-host-file") {
                leaks.push(format!("diff: {out}"));
            }
            if !diff.status.success() {
                failed.push(format!("diff: {out}"));
            }
            let ps = env.run(["ps", "-a", "-s", "--format", "{{.Names}} {{.Size}}"]);
            let out = format!("{}{}", common::stdout(&ps), common::stderr(&ps));
            if out.contains("GB") {
                leaks.push(format!("ps -s: {out}"));
            }
        }
        drop(racer);
        assert!(
            leaks.is_empty(),
            "[{:?}] {} of 300 walks saw the host through the container's swapped /d; first:\n{}",
            env.who,
            leaks.len(),
            leaks[0]
        );
        // Entries vanishing or turning into symlinks mid-walk are passed
        // over, so the race makes no `diff` fail either.
        assert!(
            failed.is_empty(),
            "[{:?}] {} of 150 diffs failed during the race; first:\n{}",
            env.who,
            failed.len(),
            failed[0]
        );
    }
}
