//! A real distribution image: a Debian minbase rootfs built by
//! rootfs-tools/debian.sh (mmdebstrap, from Debian's mirror), imported and
//! run as an unprivileged user. Thousands of files, several owners, apt's
//! own users: what the busybox image cannot show.

mod common;

use common::{stderr, users, Who};

#[test]
fn a_debian_minbase_image_imports_and_runs() {
    let Some(tar) = common::debian_tar("a_debian_minbase_image_imports_and_runs") else {
        return;
    };
    let envs = users("debian");
    for env in &envs {
        let o = env.run([
            "import",
            tar.to_str().unwrap(),
            "debian",
            "--change",
            r#"CMD ["bash"]"#,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let su = match env.who {
            // With a range, apt's own user exists and root can become it.
            Who::Range => "su -s /bin/sh _apt -c 'id -u'",
            Who::Single => "echo no-range",
        };
        let script = format!(
            "cat /etc/debian_version; id -un; stat -c %U /var/cache/apt/archives/partial; {su}"
        );
        let out = env.ok(["run", "--rm", "debian", "bash", "-c", &script]);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("12."), "bookworm: {out}");
        assert_eq!(lines[1], "root");
        match env.who {
            Who::Range => {
                assert_eq!(lines[2], "_apt", "apt's directory keeps its owner: {out}");
                assert_eq!(lines[3], "42", "{out}");
            }
            // Without a range, everything collapsed to root (said at import).
            Who::Single => assert_eq!(lines[2], "root", "{out}"),
        }
        // The dev shell the README promises.
        let work = env.user_dir("work");
        let (u, _) = env.ids();
        let v = format!("{}:/work", work.display());
        let out = env.ok([
            "run",
            "--rm",
            "--userns=keep-id",
            "-v",
            &v,
            "-w",
            "/work",
            "debian",
            "bash",
            "-c",
            "touch made && id -u",
        ]);
        assert_eq!(out.trim(), u.to_string());
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(work.join("made")).unwrap().uid(), u);
    }
}
