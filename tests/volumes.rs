//! Volumes, labels, `top` and `--env-file` as unprivileged users: named
//! volumes created, seeded from the image (owners and modes kept), shared
//! between runs and refused removal while in use; anonymous volumes from an
//! image's VOLUME, removed by `rm -v` and `--rm`, pruned; `system df`.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::{stderr, stdout, users, wait_until, Who};

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

/// The busybox image as `withvol`, its config declaring `VOLUME path`.
fn import_with_volume(env: &common::Env, path: &str) {
    env.ok([
        "import",
        env.busybox_tar().to_str().unwrap(),
        "withvol",
        "--change",
        r#"CMD ["sh"]"#,
        "--change",
        &format!("VOLUME {path}"),
    ]);
}

#[test]
fn named_volumes_are_seeded_shared_and_kept_while_in_use() {
    for env in users("named-volumes") {
        env.import_busybox("busybox");
        // An image with content at /srv/app: a file and a 0750 directory
        // owned by uid 1000 where a range is mapped.
        let chown = if env.who == Who::Range {
            "chown -R 1000:1000 /srv/app"
        } else {
            "true"
        };
        env.ok([
            "run",
            "--name",
            "src",
            "busybox",
            "sh",
            "-c",
            &format!(
                "mkdir -p /srv/app && echo seed > /srv/app/f && chmod 750 /srv/app && {chown}"
            ),
        ]);
        env.ok(["commit", "src", "seeded"]);
        env.ok(["rm", "src"]);

        assert_eq!(
            env.ok(["volume", "create", "--label", "team=web", "data"]),
            "data\n"
        );
        assert_eq!(
            env.ok(["volume", "ls"]),
            "DRIVER    VOLUME NAME\nlocal     data\n"
        );
        let v = &json(&env.ok(["volume", "inspect", "data"]))[0];
        assert_eq!(v["Name"], "data");
        assert_eq!(v["Driver"], "local");
        assert_eq!(v["Scope"], "local");
        assert_eq!(v["Labels"]["team"], "web");
        let mountpoint = v["Mountpoint"].as_str().unwrap().to_string();
        assert!(mountpoint.ends_with("/volumes/data/_data"), "{mountpoint}");
        assert!(!v["CreatedAt"].as_str().unwrap().is_empty());

        // First mount of the empty volume: the image's /srv/app is copied in.
        let owner = if env.who == Who::Range {
            "1000 1000"
        } else {
            "0 0"
        };
        assert_eq!(
            env.ok([
                "run",
                "--rm",
                "-v",
                "data:/srv/app",
                "seeded",
                "sh",
                "-c",
                "cat /srv/app/f; stat -c '%u %g %a' /srv/app; echo more > /srv/app/g",
            ]),
            format!("seed\n{owner} 750\n")
        );
        let f = Path::new(&mountpoint).join("f");
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "seed\n");
        if env.who == Who::Range {
            assert_eq!(std::fs::metadata(&f).unwrap().uid(), env.host_uid_of(1000));
        }
        // Kept across containers, and not seeded again once it has content.
        assert_eq!(
            env.ok(["run", "--rm", "-v", "data:/d", "busybox", "cat", "/d/g", "/d/f"]),
            "more\nseed\n"
        );
        // A fresh volume is writable by the container's root and by a
        // keep-id user (and what the latter writes is the caller's outside).
        // (root under keep-id needs a range: without one only the caller's
        // own id exists inside.)
        let keep_id_root: &[&str] = if env.who == Who::Range {
            &["--userns=keep-id", "-u", "0"]
        } else {
            &["--userns=keep-id"]
        };
        for user in [&["--userns=keep-id"][..], keep_id_root, &[]] {
            let mut args = vec!["run", "--rm"];
            args.extend(user);
            args.extend(["-v", "fresh:/d", "busybox", "sh", "-c", "echo w >> /d/w"]);
            env.ok(args);
        }
        let w = env.root.join("volumes/fresh/_data/w");
        assert_eq!(std::fs::read_to_string(&w).unwrap(), "w\nw\nw\n");
        assert_eq!(std::fs::metadata(&w).unwrap().uid(), env.ids().0);

        // A volume named in run that does not exist is created; readonly holds.
        let o = env.run([
            "run",
            "--rm",
            "--mount",
            "type=volume,source=made,target=/m,readonly",
            "busybox",
            "sh",
            "-c",
            "touch /m/x",
        ]);
        assert_ne!(o.status.code(), Some(0));
        assert_eq!(env.ok(["volume", "ls", "-q"]), "data\nfresh\nmade\n");

        // In use by a container (even a stopped one): refused, as in Docker.
        env.ok([
            "create", "--name", "user", "-v", "data:/d", "busybox", "true",
        ]);
        let c = &json(&env.ok(["inspect", "user"]))[0];
        let m = &c["Mounts"][0];
        assert_eq!(m["Type"], "volume", "{c}");
        assert_eq!(m["Name"], "data");
        assert_eq!(m["Source"], mountpoint.as_str());
        assert_eq!(m["Destination"], "/d");
        let o = env.run(["volume", "rm", "data"]);
        assert_eq!(o.status.code(), Some(125));
        assert!(
            stderr(&o).contains("remove data: volume is in use - ["),
            "{}",
            stderr(&o)
        );
        assert_eq!(
            env.ok([
                "volume",
                "ls",
                "-f",
                "dangling=true",
                "--format",
                "{{.Name}}"
            ]),
            "fresh\nmade\n"
        );
        let df = env.ok([
            "system",
            "df",
            "--format",
            "{{.Type}} {{.TotalCount}} {{.Active}}",
        ]);
        assert!(df.contains("Local Volumes 3 1\n"), "{df}");
        env.ok(["rm", "user"]);
        assert_eq!(
            env.ok(["volume", "rm", "data", "fresh", "made"]),
            "data\nfresh\nmade\n"
        );
        let o = env.run(["volume", "inspect", "data"]);
        assert_eq!(o.status.code(), Some(1));
        assert_eq!(stderr(&o), "Error: No such volume: data\n");
        assert_eq!(env.run(["volume", "rm", "data"]).status.code(), Some(1));
        env.ok(["volume", "rm", "-f", "data"]);
        assert_eq!(env.ok(["volume", "ls", "-q"]), "");
    }
}

#[test]
fn anonymous_volumes_come_from_the_image_and_go_with_rm_v() {
    for env in users("anon-volumes") {
        import_with_volume(&env, "/cache");
        env.ok(["create", "--name", "a1", "withvol"]);
        let c = &json(&env.ok(["inspect", "a1"]))[0];
        let name = c["Mounts"][0]["Name"].as_str().unwrap().to_string();
        assert_eq!(c["Mounts"][0]["Type"], "volume");
        assert_eq!(c["Mounts"][0]["Destination"], "/cache");
        assert_eq!(name.len(), 64, "{c}");
        assert_eq!(env.ok(["volume", "ls", "-q"]), format!("{name}\n"));
        let v = &json(&env.ok(["volume", "inspect", &name]))[0];
        assert_eq!(v["Labels"]["com.docker.volume.anonymous"], "");
        env.ok(["rm", "-v", "a1"]);
        assert_eq!(env.ok(["volume", "ls", "-q"]), "");

        // --rm removes them; a mount over the path replaces the anonymous one.
        env.ok(["run", "--rm", "withvol", "sh", "-c", "echo x > /cache/x"]);
        assert_eq!(env.ok(["volume", "ls", "-q"]), "");
        // Also under a monitor (-d): the monitor removes them at the end.
        env.ok([
            "run",
            "-d",
            "--rm",
            "withvol",
            "sh",
            "-c",
            "echo x > /cache/x",
        ]);
        wait_until(
            "the detached --rm container and its volume gone",
            std::time::Duration::from_secs(10),
            || env.ok(["ps", "-aq"]).is_empty() && env.ok(["volume", "ls", "-q"]).is_empty(),
        );
        env.ok(["run", "--rm", "-v", "named:/cache", "withvol", "true"]);
        assert_eq!(env.ok(["volume", "ls", "-q"]), "named\n");

        // Plain rm keeps it; prune removes unused anonymous ones only.
        env.ok(["run", "--name", "k", "withvol", "true"]);
        env.ok(["rm", "k"]);
        let left = env.ok([
            "volume",
            "ls",
            "-q",
            "-f",
            "label=com.docker.volume.anonymous",
        ]);
        assert_eq!(left.lines().count(), 1, "{left}");
        assert_eq!(
            env.ok(["volume", "prune", "-f"]),
            format!("Deleted Volumes:\n{left}\nTotal reclaimed space: 0B\n")
        );
        assert_eq!(env.ok(["volume", "ls", "-q"]), "named\n");
        let out = env.ok(["system", "prune", "-a", "-f", "--volumes"]);
        assert!(out.contains("Deleted Volumes:\nnamed\n"), "{out}");
        assert_eq!(env.ok(["volume", "ls", "-q"]), "");
    }
}

#[test]
fn failed_creates_leave_no_volumes_and_nocopy_skips_seeding() {
    for env in users("nocopy") {
        import_with_volume(&env, "/etc");
        // The name is taken: the create fails after the image's anonymous
        // volume and -v's were made; none of them is left.
        env.ok(["create", "--name", "taken", "withvol"]);
        let before = env.ok(["volume", "ls", "-q"]);
        assert_eq!(before.lines().count(), 1, "{before}");
        let o = env.run(["create", "--name", "taken", "-v", "/more", "withvol"]);
        assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
        assert!(stderr(&o).contains("is already in use"), "{}", stderr(&o));
        assert_eq!(env.ok(["volume", "ls", "-q"]), before);
        env.ok(["rm", "-v", "taken"]);

        // Seeded by default (the image's /etc), not with nocopy.
        let seeded = env.ok(["run", "--rm", "-v", "full:/etc", "withvol", "ls", "/etc"]);
        assert!(seeded.contains("passwd"), "{seeded}");
        let o = env.ok([
            "run",
            "--rm",
            "-v",
            "bare:/etc:nocopy",
            "withvol",
            "ls",
            "-A",
            "/etc",
        ]);
        assert_eq!(o, "");
        let o = env.ok([
            "run",
            "--rm",
            "--mount",
            "type=volume,src=bare2,dst=/etc,volume-nocopy",
            "withvol",
            "ls",
            "-A",
            "/etc",
        ]);
        assert_eq!(o, "");
        env.ok(["volume", "rm", "full", "bare", "bare2"]);
    }
}

#[test]
fn labels_filter_and_show() {
    for env in users("labels") {
        env.ok([
            "import",
            env.busybox_tar().to_str().unwrap(),
            "labelled",
            "--change",
            "LABEL tier=base owner=img",
        ]);
        let f = env.home.join("labels");
        std::fs::write(&f, "# from a file\nowner=file\nflag\n").unwrap();
        env.share(&f);
        env.ok([
            "create",
            "--name",
            "l1",
            "--label-file",
            f.to_str().unwrap(),
            "-l",
            "app=web",
            "labelled",
            "true",
        ]);
        env.ok(["create", "--name", "l2", "labelled", "true"]);
        assert_eq!(
            env.ok(["inspect", "-f", "{{json .Config.Labels}}", "l1"]),
            r#"{"app":"web","flag":"","owner":"file","tier":"base"}"#.to_string() + "\n"
        );
        let names = |filters: &[&str]| {
            let mut args = vec!["ps", "-a", "--format", "{{.Names}}"];
            for f in filters {
                args.extend(["--filter", f]);
            }
            env.ok(args)
        };
        assert_eq!(names(&["label=app=web"]), "l1\n");
        assert_eq!(names(&["label=tier", "label=flag"]), "l1\n");
        assert_eq!(names(&["label=tier"]), "l2\nl1\n");
        assert_eq!(names(&["label=app=db"]), "");
        assert!(env
            .ok(["ps", "-a", "--filter", "name=l1", "--format", "{{.Labels}}"])
            .contains("app=web"));
    }
}

#[test]
fn top_lists_the_containers_processes() {
    for env in users("top") {
        env.import_busybox("busybox");
        env.ok([
            "run",
            "-d",
            "--name",
            "t",
            "busybox",
            "sh",
            "-c",
            "sleep 300",
        ]);
        let id = env.ok(["inspect", "-f", "{{.Id}}", "t"]).trim().to_string();
        wait_until("sleep shows", std::time::Duration::from_secs(10), || {
            stdout(&env.run(["top", "t"])).contains("sleep 300")
        });
        let out = env.ok(["top", "t"]);
        let mut lines = out.lines();
        let head: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(
            head,
            ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
        );
        // sh and sleep (sh may exec sleep itself): only the container's.
        let rows: Vec<&str> = lines.collect();
        assert!(!rows.is_empty() && rows.len() <= 2, "{out}");
        assert!(
            rows.iter()
                .all(|r| r.contains("sleep 300") || r.contains("sh -c")),
            "{out}"
        );
        let out = env.ok(["top", "t", "-o", "pid,comm"]);
        assert!(out.starts_with("PID"), "{out}");
        assert!(out.contains("sleep"), "{out}");
        env.ok(["kill", "t"]);
        env.ok(["wait", "t"]);
        let o = env.run(["top", "t"]);
        assert_eq!(o.status.code(), Some(1));
        assert!(
            stderr(&o).contains(&format!("container {id} is not running")),
            "{}",
            stderr(&o)
        );
        assert_eq!(env.run(["top", "nosuch"]).status.code(), Some(1));
        env.ok(["rm", "t"]);
    }
}

#[test]
fn env_files_follow_dockers_rules() {
    for env in users("env-file") {
        env.import_busybox("busybox");
        let f = env.home.join("app.env");
        std::fs::write(&f, "# settings\nA=\"quoted\"\n  B=two words \nPATH\n\nC=\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = env.ok([
            "run",
            "--rm",
            "--env-file",
            f.to_str().unwrap(),
            "busybox",
            "sh",
            "-c",
            "echo \"[$A][$B][$C][${C+set}]\"; echo $PATH",
        ]);
        assert_eq!(
            out,
            "[\"quoted\"][two words ][][set]\n/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin\n"
        );
        std::fs::write(&f, "OK=1\nBAD KEY=2\n").unwrap();
        let o = env.run([
            "run",
            "--rm",
            "--env-file",
            f.to_str().unwrap(),
            "busybox",
            "true",
        ]);
        assert_eq!(o.status.code(), Some(125));
        assert!(
            stderr(&o).contains(&format!("{}:2:", f.display())),
            "{}",
            stderr(&o)
        );
        assert_eq!(env.ok(["ps", "-aq"]), "", "nothing was created");
    }
}
