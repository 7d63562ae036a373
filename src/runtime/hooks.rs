//! The bundle's hooks, run by `create`, `start` and `delete`.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Run one hook with the state on stdin (runtime-spec config.md, Hooks).
/// Without `env` the hook inherits ours, as runc's do.
pub(super) fn run_hook(
    kind: &str,
    h: &oci_spec::runtime::Hook,
    state: &serde_json::Value,
) -> Result<()> {
    let args = h.args().clone().unwrap_or_default();
    let mut c = std::process::Command::new(h.path());
    if let Some(a0) = args.first() {
        c.arg0(a0);
    }
    c.args(args.iter().skip(1));
    if let Some(env) = h.env() {
        c.env_clear();
        for kv in env {
            if let Some((k, v)) = kv.split_once('=') {
                c.env(k, v);
            }
        }
    }
    c.stdin(std::process::Stdio::piped());
    let mut child = c
        .spawn()
        .with_context(|| format!("running {kind} hook {}", h.path().display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin closes it: EPIPE, ignored
        // (SIGPIPE is ignored in the runtime for this).
        let _ = stdin.write_all(state.to_string().as_bytes());
    }
    let deadline = h
        .timeout()
        .map(|t| Instant::now() + Duration::from_secs(t.max(1) as u64));
    loop {
        if let Some(st) = child.try_wait()? {
            if st.success() {
                return Ok(());
            }
            match st.code() {
                Some(n) => bail!(
                    "{kind} hook failed with exit code {n}: {}",
                    h.path().display()
                ),
                None => bail!("{kind} hook failed ({st}): {}", h.path().display()),
            }
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{kind} hook timed out: {}", h.path().display());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
