//! Waiting for something the kernel or another process does on its own
//! time (a cgroup frozen, a process moved or gone), by asking again.

use std::time::{Duration, Instant};

/// Call `f` until it gives a value or `timeout` has passed (it is always
/// called at least once, and once more at the deadline). The first waits
/// are short, a millisecond doubling up to `every`: most of what burrow
/// waits for (a killed process gone, a pid file removed) happens within a
/// few milliseconds, and a full step each time was most of an `rm -f`.
pub fn until<T>(timeout: Duration, every: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    let mut wait = every.min(Duration::from_millis(1));
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(wait);
        wait = (wait * 2).min(every);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gives_the_first_value_or_none_at_the_deadline() {
        let mut n = 0;
        let got = until(Duration::from_secs(5), Duration::ZERO, || {
            n += 1;
            (n == 3).then_some(n)
        });
        assert_eq!(got, Some(3));
        let mut calls = 0;
        let got: Option<()> = until(Duration::from_millis(20), Duration::from_millis(5), || {
            calls += 1;
            None
        });
        assert_eq!(got, None);
        assert!(calls >= 2, "{calls}");
    }
}
