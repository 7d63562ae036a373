//! What Docker users type every day, as an unprivileged user with and
//! without a subuid range: `--format` templates on ps, images, inspect,
//! info and system df; rename (also of a running container); diff; system
//! df and prune; and exit 1 for objects that do not exist.

mod common;

use std::time::Duration;

use common::{stderr, users, wait_until};

#[test]
fn templates_rename_diff_df_and_prune() {
    for env in users("everyday") {
        env.import_busybox("busybox");
        env.ok(["tag", "busybox", "mine/box:1"]);
        let o = env.run([
            "run",
            "--name",
            "box",
            "busybox",
            "sh",
            "-c",
            "mkdir /newdir && echo hi > /newdir/f && echo x >> /etc/passwd && rm /bin/ls; exit 3",
        ]);
        assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));

        // ps: Docker's fields, functions, and table headers.
        assert_eq!(
            env.ok([
                "ps",
                "-a",
                "--format",
                "{{.Names}} {{.State}} {{upper .Image}}"
            ]),
            "box exited BUSYBOX\n"
        );
        let t = env.ok(["ps", "-a", "--format", r"table {{.Names}}\t{{.Status}}"]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2, "{t}");
        assert!(lines[0].starts_with("NAMES     STATUS"), "{t}");
        assert!(lines[1].starts_with("box       Exited (3)"), "{t}");
        let j: serde_json::Value =
            serde_json::from_str(env.ok(["ps", "-l", "--format", "json"]).trim()).unwrap();
        assert_eq!(j["Names"], "box");
        assert!(
            j["CreatedAt"].as_str().unwrap().ends_with("+0000 UTC"),
            "{j}"
        );
        let sized = env.ok(["ps", "-a", "-s"]);
        assert!(sized.lines().next().unwrap().ends_with("SIZE"), "{sized}");
        assert!(sized.contains("(virtual "), "{sized}");

        // inspect: any path into the JSON, json and len.
        assert_eq!(
            env.ok([
                "inspect",
                "-f",
                "{{.State.ExitCode}} {{json .Config.Cmd}} {{len .Id}} {{.Config.Image}}",
                "box"
            ]),
            "3 [\"sh\",\"-c\",\"mkdir /newdir && echo hi > /newdir/f && echo x >> /etc/passwd && rm /bin/ls; exit 3\"] 64 busybox\n"
        );
        assert_eq!(
            env.ok([
                "inspect",
                "--type",
                "image",
                "--format",
                "{{.RepoTags}}",
                "mine/box:1"
            ]),
            "[busybox:latest mine/box:1]\n"
        );

        // images: templates and filters.
        let names = env.ok(["images", "--format", "{{.Repository}}:{{.Tag}}"]);
        let mut names: Vec<&str> = names.lines().collect();
        names.sort();
        assert_eq!(names, ["busybox:latest", "mine/box:1"]);
        assert_eq!(
            env.ok([
                "images",
                "--filter",
                "reference=mine/*",
                "--format",
                "{{.Tag}}"
            ]),
            "1\n"
        );
        assert_eq!(env.ok(["images", "-q", "--filter", "dangling=true"]), "");

        // diff: A, C and D against the image, without the runtime's mount points.
        let diff = env.ok(["diff", "box"]);
        let diff: Vec<&str> = diff.lines().collect();
        for want in [
            "A /newdir",
            "A /newdir/f",
            "C /etc",
            "C /etc/passwd",
            "C /bin",
            "D /bin/ls",
        ] {
            assert!(diff.contains(&want), "{want} missing in {diff:?}");
        }
        assert!(
            !diff
                .iter()
                .any(|l| l.ends_with("/proc") || l.ends_with("/etc/hosts")),
            "{diff:?}"
        );

        // rename: the old name is free, the new one finds the container.
        env.ok(["rename", "box", "box2"]);
        assert_eq!(env.ok(["inspect", "-f", "{{.Name}}", "box2"]), "box2\n");
        let o = env.run(["inspect", "box"]);
        assert_eq!(o.status.code(), Some(1));
        assert_eq!(stderr(&o), "Error: No such object: box\n");
        env.ok(["create", "--name", "box", "busybox", "true"]);
        let o = env.run(["rename", "box", "box2"]);
        assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
        assert!(stderr(&o).contains("already in use"), "{}", stderr(&o));
        env.ok(["rm", "box"]);
        // A running container keeps its new name when it ends.
        env.ok(["run", "-d", "--name", "sleeper", "busybox", "sleep", "30"]);
        env.ok(["container", "rename", "sleeper", "dozer"]);
        env.ok(["stop", "-t", "0", "dozer"]);
        wait_until("dozer stopped", Duration::from_secs(10), || {
            env.ok([
                "ps",
                "-a",
                "--filter",
                "name=dozer",
                "--format",
                "{{.State}}",
            ]) == "exited\n"
        });

        // system df: images and containers counted, shared layers once.
        let df = env.ok([
            "system",
            "df",
            "--format",
            "{{.Type}} {{.TotalCount}} {{.Active}}",
        ]);
        assert_eq!(
            df,
            "Images 1 1\nContainers 2 0\nLocal Volumes 0 0\nBuild Cache 0 0\n"
        );
        let table = env.ok(["system", "df"]);
        assert!(table.starts_with("TYPE"), "{table}");
        assert!(env
            .ok(["system", "df", "-v"])
            .contains("Containers space usage:"));

        // Missing objects: exit 1 and Docker's words.
        for (args, what) in [
            (&["rm", "nope"][..], "container"),
            (&["stop", "nope"][..], "container"),
            (&["kill", "nope"][..], "container"),
            (&["rmi", "nope"][..], "image"),
        ] {
            let o = env.run(args);
            assert_eq!(o.status.code(), Some(1), "{args:?}");
            assert_eq!(stderr(&o), format!("Error: No such {what}: nope\n"));
        }

        // system prune -a: the stopped containers, then every unused image,
        // its layers and its blobs.
        let out = env.ok(["system", "prune", "-a", "-f"]);
        assert!(out.contains("Deleted Containers:"), "{out}");
        assert!(out.contains("Total reclaimed space:"), "{out}");
        assert_eq!(env.ok(["ps", "-aq"]), "");
        assert_eq!(env.ok(["images", "-q"]), "");
        assert_eq!(
            std::fs::read_dir(env.root.join("layers")).unwrap().count(),
            0
        );
    }
}

/// Files under a directory owned by one of the container's subordinate ids
/// (mode 700) cannot even be stat'ed by the user on the host; `ps -s` and
/// `system df` count them all the same.
#[test]
fn sizes_count_files_of_subordinate_ids() {
    let Some(env) = common::Env::new(common::Who::Range, "sizes-subuid") else {
        return;
    };
    env.import_busybox("busybox");
    env.ok([
        "run",
        "--name",
        "hidden",
        "-v",
        "vol:/vol",
        "busybox",
        "sh",
        "-c",
        "for d in /secret /vol/secret; do mkdir $d && head -c 300000 /dev/zero > $d/f && chown -R 100:100 $d && chmod 700 $d; done",
    ]);
    // The host user really cannot look inside.
    let id = env.ok(["inspect", "-f", "{{.Id}}", "hidden"]);
    let secret = env
        .root
        .join("containers")
        .join(id.trim())
        .join("upper/secret");
    let as_user = std::process::Command::new("setpriv")
        .args([
            "--reuid",
            &env.ids().0.to_string(),
            "--regid",
            &env.ids().1.to_string(),
            "--clear-groups",
            "stat",
        ])
        .arg(secret.join("f"))
        .output();
    if let Ok(o) = as_user {
        assert!(!o.status.success(), "stat should be refused");
    }
    let row = env.ok(["ps", "-a", "-s", "--format", "{{.Size}}"]);
    assert!(row.starts_with("300kB (virtual "), "{row}");
    let df = env.ok(["system", "df", "--format", "{{.Type}} {{.Size}}"]);
    assert!(df.contains("Containers 300kB"), "{df}");
    assert!(df.contains("Local Volumes 300kB"), "{df}");
}
