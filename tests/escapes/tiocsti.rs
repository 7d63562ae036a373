//! Terminal injection through ioctl (bubblewrap's CVE-2017-5226, with
//! Flatpak's CVE-2019-10063 high-bits trap): the seccomp filter refuses
//! TIOCSTI and TIOCLINUX on any terminal, even one the container made its
//! own controlling terminal, under the default profile and a profile file.

use std::collections::BTreeMap;

use super::common::{self, Env};
use super::{evil_image, probe};

/// The probe's "NAME VALUE" lines from one run of the image with `opts`.
fn attack(env: &Env, opts: &[&str]) -> BTreeMap<String, i32> {
    let mut args = vec!["run", "--rm"];
    args.extend(opts);
    args.extend(["tiocsti", "/tiocsti"]);
    let out = env.run(&args);
    let text = common::stdout(&out);
    assert!(
        out.status.success() && !text.contains("SETUP"),
        "[{:?}] the probe could not set up its terminal: {text}{}",
        env.who,
        common::stderr(&out)
    );
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

fn legacy_tiocsti() -> bool {
    std::fs::read_to_string("/proc/sys/dev/tty/legacy_tiocsti").map_or(true, |v| v.trim() == "1")
}

#[test]
fn tiocsti_and_tioclinux_are_refused_in_the_containers_own_terminal() {
    for env in common::users("tiocsti") {
        let Some(bin) = probe(&env, "tiocsti") else {
            return;
        };
        evil_image(&env, "tiocsti", &[(&bin, "/tiocsti")], &[]);
        // The attack works without a filter: the probe sees injection.
        let open = attack(&env, &["--security-opt", "seccomp=unconfined"]);
        if legacy_tiocsti() {
            assert_eq!(open["TIOCSTI"], 0, "[{:?}] unconfined: {open:?}", env.who);
            assert_eq!(open["QUEUED"], 3, "[{:?}] unconfined: {open:?}", env.who);
        } else {
            common::loud(
                "NOTE tiocsti: dev.tty.legacy_tiocsti is 0 here, so the kernel refuses TIOCSTI itself; only the filter's answer (EPERM) is checked",
            );
        }
        // A profile file that allows every call still gets the refusal.
        let allow_all = env.home.join("allow-all.json");
        std::fs::write(&allow_all, r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#).unwrap();
        env.share(&allow_all);
        let file = format!("seccomp={}", allow_all.display());
        for (what, opts) in [
            ("the default profile", vec![]),
            (
                "a profile file allowing everything",
                vec!["--security-opt", &file],
            ),
        ] {
            let got = attack(&env, &opts);
            for name in [
                "TIOCSTI",
                "TIOCSTI_HIGH",
                "TIOCSTI_HIGH1",
                "TIOCLINUX",
                "TIOCLINUX_HIGH",
            ] {
                assert_eq!(
                    got.get(name),
                    Some(&libc::EPERM),
                    "[{:?}] {name} under {what}: {got:?}",
                    env.who
                );
            }
            assert_eq!(
                got.get("QUEUED"),
                Some(&0),
                "[{:?}] bytes were typed into the terminal under {what}: {got:?}",
                env.who
            );
        }
    }
}
