//! `--userns=keep-id`: the caller has a passwd and group entry inside (as
//! podman writes them), so `whoami`, `id` and `HOME` know them; the
//! image's own entries stay, and an image without /etc/passwd works.

use std::process::Command;

use crate::common::{self, stderr, stdout, Env};

/// The test user's name, group name and home as the host's passwd and
/// group files have them.
fn host_entry(env: &Env) -> (String, String, String) {
    let (uid, gid) = env.ids();
    let getent = |db: &str, key: u32| -> Vec<String> {
        let o = Command::new("getent")
            .args([db, &key.to_string()])
            .output()
            .unwrap();
        stdout(&o).trim().split(':').map(str::to_string).collect()
    };
    let pw = getent("passwd", uid);
    let gr = getent("group", gid);
    (pw[0].clone(), gr[0].clone(), pw[5].clone())
}

fn run(env: &Env, args: &[&str]) -> String {
    let o = env.run(args);
    assert!(
        o.status.success(),
        "[{:?}] {args:?}: {:?}\n{}",
        env.who,
        o.status.code(),
        stderr(&o)
    );
    stdout(&o)
}

#[test]
fn keep_id_gives_the_caller_a_name_a_group_and_a_home() {
    for env in common::users("keep_id_passwd") {
        let who = env.who;
        let (uid, gid) = env.ids();
        let (name, group, home) = host_entry(&env);
        let image = env.import_busybox("kid:latest");
        let script = "whoami; id; echo $HOME; cat /etc/passwd; cat /etc/group";
        let keep = ["run", "--rm", "--network", "none", "--userns=keep-id"];

        // No home mounted: podman's rule, the working directory is the home.
        let mut args = keep.to_vec();
        args.extend([image.as_str(), "sh", "-c", script]);
        let out = run(&env, &args);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], name, "[{who:?}] {out}");
        assert!(
            lines[1].starts_with(&format!("uid={uid}({name}) gid={gid}({group})")),
            "[{who:?}] {out}"
        );
        assert_eq!(lines[2], "/", "[{who:?}] {out}");
        // The image's entries are kept, the caller's appended.
        assert!(
            lines.contains(&"root:x:0:0:root:/root:/bin/sh"),
            "[{who:?}] {out}"
        );
        assert!(
            lines.contains(&format!("{name}:*:{uid}:{gid}::/:/bin/sh").as_str()),
            "[{who:?}] {out}"
        );
        assert!(
            lines.contains(&format!("{group}:x:{gid}:{name}").as_str()),
            "[{who:?}] {out}"
        );
        let mut args = keep.to_vec();
        args.extend(["-w", "/tmp", image.as_str(), "sh", "-c", "echo $HOME"]);
        assert_eq!(run(&env, &args).trim(), "/tmp", "[{who:?}]");

        // The host's home mounted: that is the home, and a usable one.
        let host_home = env.user_dir("host-home");
        let bind = format!("{}:{home}", host_home.display());
        let mut args = keep.to_vec();
        args.extend([
            "-v",
            bind.as_str(),
            image.as_str(),
            "sh",
            "-c",
            "echo $HOME; cd && touch made-at-home && grep ^$(whoami): /etc/passwd",
        ]);
        let out = run(&env, &args);
        assert_eq!(
            out,
            format!("{home}\n{name}:*:{uid}:{gid}::{home}:/bin/sh\n"),
            "[{who:?}]"
        );
        assert!(host_home.join("made-at-home").exists(), "[{who:?}]");

        // exec into a detached keep-id container knows the name too.
        let mut args = vec!["run", "-d", "--network", "none", "--userns=keep-id"];
        args.extend([image.as_str(), "sleep", "300"]);
        let id = run(&env, &args).trim().to_string();
        let whoami = env.run(["exec", &id, "whoami"]);
        let _ = env.run(["rm", "-f", &id]);
        assert_eq!(
            stdout(&whoami).trim(),
            name,
            "[{who:?}] {}",
            stderr(&whoami)
        );

        // Without keep-id nothing changes: the image's files as they are.
        let out = run(
            &env,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                &image,
                "cat",
                "/etc/passwd",
            ],
        );
        assert!(!out.contains(&name), "[{who:?}] {out}");
    }
}

/// An image whose top layer deleted /etc/passwd and /etc/group (whiteouts
/// over the base layer's files): the caller's entries are all there is.
#[test]
fn keep_id_works_in_an_image_without_etc_passwd() {
    for env in common::users("keep_id_no_passwd") {
        let who = env.who;
        let (uid, gid) = env.ids();
        let (name, group, _) = host_entry(&env);
        env.import_busybox("kid-base:latest");
        let ctx = env.user_dir("ctx");
        std::fs::write(
            ctx.join("Containerfile"),
            "FROM kid-base\nRUN rm /etc/passwd /etc/group\n",
        )
        .unwrap();
        env.share(&ctx.join("Containerfile"));
        run(
            &env,
            &[
                "build",
                "--network",
                "none",
                "-q",
                "-t",
                "kid-nopasswd",
                ctx.to_str().unwrap(),
            ],
        );
        let out = run(
            &env,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "--userns=keep-id",
                "kid-nopasswd",
                "sh",
                "-c",
                "whoami; cat /etc/passwd /etc/group",
            ],
        );
        assert_eq!(
            out,
            format!("{name}\n{name}:*:{uid}:{gid}::/:/bin/sh\n{group}:x:{gid}:{name}\n"),
            "[{who:?}]"
        );
    }
}
