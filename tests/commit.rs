//! Images from containers as an unprivileged user: commit (additions,
//! deletions, opaque directories, --change, history), export → import, and
//! the store's garbage collection (rmi deletes blobs, image prune).

mod common;

use std::os::unix::fs::FileTypeExt;
use std::process::Stdio;

use common::{stderr, users, Env, Who};

/// Adds a file, deletes an image file, replaces a directory's content.
const CHANGES: &str = "echo added > /added && rm /etc/group && rm -rf /usr/bin && mkdir /usr/bin && echo only > /usr/bin/only";
/// Shows the three changes.
const CHECK: &str = "cat /added; test -e /etc/group && echo group-present || echo group-gone; ls /usr/bin; test -e /etc/passwd && echo passwd";
const EXPECTED: &str = "added\ngroup-gone\nonly\npasswd\n";

fn blob_count(env: &Env) -> usize {
    std::fs::read_dir(env.root.join("blobs/sha256"))
        .unwrap()
        .count()
}

fn image_ids(env: &Env) -> Vec<String> {
    env.ok(["images", "-q", "--no-trunc"])
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn commit_keeps_additions_deletions_and_opaque_dirs() {
    for env in users("commit_changes") {
        let base = env.import_busybox("busybox");
        env.ok(["run", "--name", "changed", "busybox", "sh", "-c", CHANGES]);
        let blobs_before = blob_count(&env);
        let id = env.ok([
            "commit",
            "-m",
            "my changes",
            "-a",
            "Jane",
            "changed",
            "committed:1",
        ]);
        let id = id.trim();
        assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
        assert_eq!(
            env.ok(["run", "--rm", "committed:1", "sh", "-c", CHECK]),
            EXPECTED,
            "[{:?}]",
            env.who
        );

        // The stored layer is the overlay form of the blob; the runtime's
        // mount-point placeholders are not part of it.
        let inspect: serde_json::Value =
            serde_json::from_str(&env.ok(["image", "inspect", "committed:1"])).unwrap();
        let layers = inspect[0]["RootFS"]["Layers"].as_array().unwrap();
        assert_eq!(layers.len(), 2);
        let top = layers[1].as_str().unwrap();
        let fs = env.root.join("layers").join(&top[7..]).join("fs");
        assert_eq!(std::fs::read(fs.join("added")).unwrap(), b"added\n");
        assert!(std::fs::symlink_metadata(fs.join("etc/group"))
            .unwrap()
            .file_type()
            .is_char_device());
        for placeholder in ["etc/hosts", "etc/hostname", "etc/resolv.conf"] {
            assert!(!fs.join(placeholder).exists(), "{placeholder} left out");
        }

        // --change edits the config; the layer is the same.
        env.ok([
            "container",
            "commit",
            "-c",
            r#"CMD ["cat","/added"]"#,
            "changed",
            "withcmd",
        ]);
        assert_eq!(env.ok(["run", "--rm", "withcmd"]), "added\n");

        // History: newest first, the commit's entry on top with its comment,
        // the base image's entry below it with the base image's id.
        let hist = env.ok(["image", "history", "--no-trunc", "committed:1"]);
        let mut lines = hist.lines();
        let header = lines.next().unwrap();
        assert!(
            header.starts_with("IMAGE") && header.contains("CREATED BY"),
            "{hist}"
        );
        let top = lines.next().unwrap();
        assert!(top.starts_with(id), "{hist}");
        assert!(
            top.contains("my changes") && top.contains("sh -c echo added"),
            "{hist}"
        );
        assert!(lines.next().unwrap().starts_with(&base), "{hist}");
        let j: serde_json::Value = serde_json::from_str(
            env.ok(["history", "--format", "json", "committed:1"])
                .lines()
                .next()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(j["Comment"], "my changes");
        assert_eq!(env.ok(["history", "-q", "busybox"]).trim(), &base[7..19]);

        // rmi deletes the blobs no other image names: the two images share
        // the new layer's blob, each has its own manifest.
        assert_eq!(blob_count(&env), blobs_before + 3);
        env.ok(["rmi", "committed:1"]);
        assert_eq!(blob_count(&env), blobs_before + 2);
        env.ok(["rmi", "withcmd"]);
        assert_eq!(
            blob_count(&env),
            blobs_before,
            "layer blob and manifests gone"
        );
        assert_eq!(
            std::fs::read_dir(env.root.join("layers")).unwrap().count(),
            1,
            "only the base layer is left"
        );
    }
}

#[test]
fn owners_survive_commit_in_the_subuid_range() {
    let Some(env) = Env::new(Who::Range, "commit_owners") else {
        return;
    };
    env.import_busybox("busybox");
    env.ok([
        "run",
        "--name",
        "owned",
        "busybox",
        "sh",
        "-c",
        "mkdir /data && echo x > /data/f && chown -R 1000:1001 /data && chmod 0600 /data/f",
    ]);
    env.ok(["commit", "owned", "owned-img"]);
    assert_eq!(
        env.ok([
            "run",
            "--rm",
            "owned-img",
            "stat",
            "-c",
            "%u:%g %a",
            "/data",
            "/data/f"
        ]),
        "1000:1001 755\n1000:1001 600\n"
    );
}

#[test]
fn a_running_container_is_committed_paused_and_keeps_running() {
    for env in users("commit_running") {
        env.import_busybox("busybox");
        env.ok([
            "run",
            "-d",
            "--name",
            "live",
            "busybox",
            "sh",
            "-c",
            "echo live > /live; sleep 60",
        ]);
        common::wait_until(
            "the container wrote its file",
            std::time::Duration::from_secs(10),
            || env.run(["exec", "live", "cat", "/live"]).status.success(),
        );
        env.ok(["commit", "live", "live-img"]);
        let state: serde_json::Value =
            serde_json::from_str(&env.ok(["container", "inspect", "live"])).unwrap();
        assert_eq!(
            state[0]["State"]["Status"], "running",
            "unpaused after the commit"
        );
        assert_eq!(
            env.ok(["run", "--rm", "live-img", "cat", "/live"]),
            "live\n"
        );
        env.ok(["rm", "-f", "live"]);
    }
}

#[test]
fn export_then_import_gives_the_same_files() {
    for env in users("export") {
        env.import_busybox("busybox");
        env.ok(["run", "--name", "changed", "busybox", "sh", "-c", CHANGES]);
        let dir = env.user_dir("out");
        let tar = dir.join("changed.tar");
        env.ok(["export", "-o", tar.to_str().unwrap(), "changed"]);
        assert!(
            std::fs::read_dir(&dir).unwrap().count() == 1,
            "no temp file left beside the archive"
        );
        env.ok([
            "import",
            tar.to_str().unwrap(),
            "flat",
            "--change",
            r#"CMD ["sh"]"#,
        ]);
        assert_eq!(env.ok(["run", "--rm", "flat", "sh", "-c", CHECK]), EXPECTED);

        // To stdout, the same bytes.
        let piped = dir.join("piped.tar");
        let f = std::fs::File::create(&piped).unwrap();
        let o = env
            .cmd(["container", "export", "changed"])
            .stdout(Stdio::from(f))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(std::fs::read(&piped).unwrap(), std::fs::read(&tar).unwrap());
    }
}

#[test]
fn image_prune_removes_dangling_then_unused_images_and_their_blobs() {
    for env in users("image_prune") {
        let base = env.import_busybox("busybox");
        let blobs_base = blob_count(&env);
        env.ok(["run", "--name", "changed", "busybox", "sh", "-c", CHANGES]);
        let dangling = env.ok(["commit", "changed"]).trim().to_string();
        let tagged = env.ok(["commit", "-m", "kept until -a", "changed", "unused:1"]);
        let tagged = tagged.trim().to_string();
        assert_eq!(image_ids(&env).len(), 3);

        let out = env.ok(["image", "prune", "-f"]);
        assert!(out.starts_with("Deleted Images:\n"), "{out}");
        assert!(out.contains(&format!("deleted: {dangling}")), "{out}");
        assert!(out.contains("Total reclaimed space: "), "{out}");
        let ids = image_ids(&env);
        assert!(!ids.contains(&dangling) && ids.contains(&tagged), "{ids:?}");

        let out = env.ok(["image", "prune", "-a", "-f"]);
        assert!(out.contains("untagged: unused:1"), "{out}");
        assert!(out.contains(&format!("deleted: {tagged}")), "{out}");
        // busybox stays: the container uses it.
        assert_eq!(image_ids(&env), [base]);
        assert_eq!(blob_count(&env), blobs_base);
        assert!(env
            .ok(["run", "--rm", "busybox", "cat", "/etc/group"])
            .contains("root"));

        // Nothing left to do.
        assert_eq!(
            env.ok(["image", "prune", "-f"]),
            "Total reclaimed space: 0B\n"
        );
    }
}

#[test]
fn commit_of_an_unknown_container_or_bad_change_fails_clearly() {
    for env in users("commit_errors") {
        env.import_busybox("busybox");
        // A missing container is Docker's exit 1, as for the other verbs.
        let o = env.run(["commit", "nosuch"]);
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains("No such container"), "{}", stderr(&o));
        env.ok(["create", "--name", "fresh", "busybox"]);
        let o = env.run(["commit", "-c", "RUN echo", "fresh"]);
        assert!(!o.status.success());
        assert!(
            stderr(&o).contains("unsupported instruction RUN"),
            "{}",
            stderr(&o)
        );
        // A container that never ran commits to an empty layer on top.
        env.ok(["commit", "fresh", "same"]);
        assert!(env
            .ok(["run", "--rm", "same", "cat", "/etc/group"])
            .contains("root"));
    }
}

#[test]
fn export_refuses_to_write_to_a_terminal() {
    if !common::have_tmux("export_refuses_to_write_to_a_terminal") {
        return;
    }
    let Some(env) = users("export_tty").into_iter().next() else {
        return;
    };
    env.import_busybox("busybox");
    env.ok(["create", "--name", "c", "busybox"]);
    // Keep the pane open after burrow ends, so its message can be read.
    let line = format!(
        "{}; echo exit=$?; sleep 30",
        common::shell_line(&env, "export c")
    );
    let t = common::Term::start_shell(&env, "export", &line, 120, 10);
    common::wait_until("burrow ended", std::time::Duration::from_secs(10), || {
        t.screen().contains("exit=")
    });
    let screen = t.screen();
    assert!(
        screen.contains("cowardly refusing to save to a terminal") && screen.contains("exit=125"),
        "{screen}"
    );
}
