//! CVE-2022-29162: a container's processes start with empty inheritable and
//! ambient capability sets, so a program with inheritable file capabilities
//! run by a non-root user in the container gains nothing.

use crate::common::{self, Who};
use crate::{evil_image, probe};

const EMPTY: &str = "0000000000000000";

/// The CapInh and CapAmb lines of a process in `args`' container.
fn inh_amb(env: &common::Env, args: &[&str]) -> String {
    let mut full = args.to_vec();
    full.extend(["grep", "-E", "^Cap(Inh|Amb)", "/proc/self/status"]);
    env.ok(&full)
}

fn assert_empty(what: &str, lines: &str) {
    assert!(
        lines.contains(&format!("CapInh:\t{EMPTY}"))
            && lines.contains(&format!("CapAmb:\t{EMPTY}")),
        "{what}: inheritable or ambient capabilities are not empty:\n{lines}"
    );
}

#[test]
fn inheritable_file_capabilities_give_a_non_root_user_nothing() {
    for env in common::users("esc-capinh") {
        let Some(p) = probe(&env, "capinh") else {
            return;
        };
        evil_image(&env, "capinh", &[(&p, "/capinh"), (&p, "/capfile")], &[]);
        let range = env.who == Who::Range;
        let who = format!("{:?}", env.who);

        assert_empty(
            &format!("run as root [{who}]"),
            &inh_amb(&env, &["run", "--rm", "--network", "none", "capinh"]),
        );
        if range {
            assert_empty(
                &format!("run -u 1000 [{who}]"),
                &inh_amb(
                    &env,
                    &["run", "--rm", "--network", "none", "-u", "1000", "capinh"],
                ),
            );
        }

        // The attack: container root gives /capfile inheritable file caps
        // (layers carry no xattrs, so this happens in the running
        // container), then a non-root user execs it, once through `su`-like
        // setuid from a root process and once entering as that user.
        env.ok([
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            "capbox",
            "capinh",
            "sleep",
            "1000",
        ]);
        assert_empty(
            &format!("exec as root [{who}]"),
            &inh_amb(&env, &["exec", "capbox"]),
        );
        let set = env.run(["exec", "capbox", "/capinh", "set", "/capfile"]);
        if !set.status.success() {
            common::loud(&format!(
                "SKIPPED CVE-2022-29162 file-caps attack [{who}]: container root cannot set security.capability here: {}",
                common::stderr(&set)
            ));
            env.ok(["rm", "-f", "capbox"]);
            continue;
        }
        if range {
            assert_empty(
                &format!("exec -u 1000 [{who}]"),
                &inh_amb(&env, &["exec", "-u", "1000", "capbox"]),
            );
            let dropped = env.ok(["exec", "capbox", "/capinh", "drop", "1000", "/capfile"]);
            assert!(
                dropped.contains(&format!("caps uid 1000 prm {EMPTY} eff {EMPTY}")),
                "root dropping to 1000 then exec of an inheritable-caps file gained caps [{who}]:\n{dropped}"
            );
            let entered = env.ok(["exec", "-u", "1000", "capbox", "/capfile", "report"]);
            assert!(
                entered.contains(&format!("caps uid 1000 prm {EMPTY} eff {EMPTY}")),
                "exec -u 1000 of an inheritable-caps file gained caps [{who}]:\n{entered}"
            );
        }
        env.ok(["rm", "-f", "capbox"]);
    }
}
