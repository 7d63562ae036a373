//! Dev-shell mounts as an unprivileged user: `-v` (rw and ro), `--mount`,
//! `--tmpfs`, `--read-only`, `--userns=keep-id`, clear errors, and mount
//! targets that an image's symlinks cannot redirect onto the host.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::{stderr, users};

fn snapshot(dir: &Path) -> String {
    let o = std::process::Command::new("find")
        .arg(dir)
        .args(["-printf", "%P %U %G %m %s\n"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn volumes_and_keep_id_give_a_working_dev_shell() {
    for env in users("volumes") {
        env.import_busybox("busybox");
        let proj = env.user_dir("proj");
        std::fs::write(proj.join("main.c"), "int main(){}\n").unwrap();
        env.share(&proj.join("main.c"));
        let v = format!("{}:/work", proj.display());
        let (uid, gid) = env.ids();

        // Root inside is the user outside: what it writes belongs to the user.
        let out = env.ok([
            "run",
            "--rm",
            "-v",
            &v,
            "-w",
            "/work",
            "busybox",
            "sh",
            "-c",
            "cat main.c; echo x > by-root",
        ]);
        assert_eq!(out, "int main(){}\n");
        assert_eq!(std::fs::metadata(proj.join("by-root")).unwrap().uid(), uid);

        // keep-id: the user's own ids inside, files still the user's outside,
        // and the image is not chowned for it (its layers are untouched).
        let layers = snapshot(&env.root.join("layers"));
        let out = env.ok([
            "run",
            "--rm",
            "--userns=keep-id",
            "-v",
            &v,
            "-w",
            "/work",
            "busybox",
            "sh",
            "-c",
            "id -u; id -g; echo y > by-me",
        ]);
        assert_eq!(out, format!("{uid}\n{gid}\n"));
        let m = std::fs::metadata(proj.join("by-me")).unwrap();
        assert_eq!((m.uid(), m.gid()), (uid, gid));
        assert_eq!(
            snapshot(&env.root.join("layers")),
            layers,
            "keep-id changed the image"
        );

        // :ro refuses writes; the host file is unchanged.
        let o = env.run([
            "run",
            "--rm",
            "-v",
            &format!("{v}:ro"),
            "busybox",
            "sh",
            "-c",
            "echo z > /work/main.c",
        ]);
        assert_ne!(o.status.code(), Some(0));
        assert_eq!(
            std::fs::read_to_string(proj.join("main.c")).unwrap(),
            "int main(){}\n"
        );

        // inspect lists the mounts, as Docker does.
        env.ok([
            "create",
            "--name",
            "shown",
            "-v",
            &format!("{v}:ro"),
            "busybox",
            "true",
        ]);
        let c =
            &serde_json::from_str::<serde_json::Value>(&env.ok(["inspect", "shown"])).unwrap()[0];
        assert_eq!(c["Mounts"][0]["Destination"], "/work", "{c}");
        assert_eq!(c["Mounts"][0]["RW"], false);
        assert!(c["LogPath"].as_str().unwrap().ends_with("container.log"));
        env.ok(["rm", "shown"]);

        // --mount: a single file, read-only.
        let file_mount = format!(
            "type=bind,source={},target=/etc/motd,readonly",
            proj.join("main.c").display()
        );
        assert_eq!(
            env.ok([
                "run",
                "--rm",
                "--mount",
                &file_mount,
                "busybox",
                "cat",
                "/etc/motd"
            ]),
            "int main(){}\n"
        );
    }
}

#[test]
fn read_only_root_with_tmpfs_scratch() {
    for env in users("readonly") {
        env.import_busybox("busybox");
        let out = env.ok(["run", "--rm", "--read-only", "--tmpfs", "/scratch:size=1m", "busybox", "sh", "-c",
            "touch /x 2>/dev/null && echo root-rw || echo root-ro; touch /scratch/y && echo tmp-rw; df -k /scratch | tail -1"]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "root-ro");
        assert_eq!(lines[1], "tmp-rw");
        assert!(
            lines[2].split_whitespace().nth(1) == Some("1024"),
            "1 MiB tmpfs: {}",
            lines[2]
        );
        let out = env.ok([
            "run",
            "--rm",
            "--mount",
            "type=tmpfs,target=/cache",
            "busybox",
            "sh",
            "-c",
            "touch /cache/a && echo ok",
        ]);
        assert_eq!(out, "ok\n");
    }
}

#[test]
fn bad_mounts_are_clear_errors() {
    let Some(env) = users("bad_mounts").into_iter().next() else {
        return;
    };
    env.import_busybox("busybox");
    for args in [
        vec!["-v", "rel/path:/x"],
        vec!["-v", "-bad-volume-name:/x"],
        vec!["-v", "/tmp:relative"],
        vec!["-v", "/tmp:/x:zz"],
        vec!["--mount", "type=bind,source=/no/such/dir,target=/x"],
        vec!["--mount", "type=nfs,source=v,target=/x"],
        vec!["--tmpfs", "/t:size=lots"],
        vec!["--userns", "auto"],
    ] {
        let mut full = vec!["run", "--rm"];
        full.extend(args.iter().copied());
        full.extend(["busybox", "true"]);
        let o = env.run(&full);
        assert_eq!(o.status.code(), Some(125), "{args:?}");
        assert_eq!(
            stderr(&o).trim().lines().count(),
            1,
            "{args:?}: {}",
            stderr(&o)
        );
    }
    assert_eq!(env.ok(["ps", "-aq"]), "", "nothing was created");
}

#[test]
fn image_symlinks_cannot_redirect_a_mount_onto_the_host() {
    for env in users("mount_escape") {
        // busybox plus `/evil -> <a host dir>`.
        let outside = env.user_dir("outside");
        let tarpath = env.home.join("evil.tar");
        let mut b = tar::Builder::new(std::fs::File::create(&tarpath).unwrap());
        let mut src = tar::Archive::new(std::fs::File::open(env.busybox_tar()).unwrap());
        for e in src.entries().unwrap() {
            let mut e = e.unwrap();
            let mut h = e.header().clone();
            let path = e.path().unwrap().into_owned();
            if h.entry_type().is_symlink() {
                let target = e.link_name().unwrap().unwrap().into_owned();
                b.append_link(&mut h, &path, &target).unwrap();
            } else {
                b.append_data(&mut h, &path, &mut e).unwrap();
            }
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        b.append_link(&mut h, "evil", &outside).unwrap();
        b.finish().unwrap();
        drop(b);
        env.share(&tarpath);
        env.ok([
            "import",
            tarpath.to_str().unwrap(),
            "evil",
            "--change",
            r#"CMD ["sh"]"#,
        ]);

        let src = env.user_dir("src");
        let out = env.ok([
            "run",
            "--rm",
            "-v",
            &format!("{}:/evil/mnt", src.display()),
            "--tmpfs",
            "/evil/t",
            "evil",
            "sh",
            "-c",
            "ls -d /evil/mnt /evil/t && echo inside",
        ]);
        assert!(out.ends_with("inside\n"), "{out}");
        assert!(
            std::fs::read_dir(&outside).unwrap().next().is_none(),
            "a mount target was created on the host"
        );
    }
}

#[test]
fn cp_moves_files_in_and_out_of_running_and_stopped_containers() {
    for env in users("cp") {
        env.import_busybox("busybox");
        let src = env.user_dir("cpsrc");
        std::fs::write(src.join("a.txt"), "alpha\n").unwrap();
        env.share(&src.join("a.txt"));
        let out = env.user_dir("cpout");

        // A created (never started) container: cp in, then it sees the file.
        // A directory copied to a missing path becomes that path (Docker).
        env.ok([
            "create",
            "--name",
            "later",
            "busybox",
            "cat",
            "/etc/a.txt",
            "/dir/a.txt",
        ]);
        env.ok(["cp", src.join("a.txt").to_str().unwrap(), "later:/etc/"]);
        env.ok(["cp", src.to_str().unwrap(), "later:/dir"]);
        let o = env.run(["start", "-a", "later"]);
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            "alpha\nalpha\n",
            "{}",
            stderr(&o)
        );

        // A running container: out to the host, into a directory and to a new name.
        env.ok([
            "run",
            "-d",
            "--name",
            "live",
            "busybox",
            "sh",
            "-c",
            "echo beta > /tmp/b.txt; sleep 60",
        ]);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while env
            .run(["exec", "live", "test", "-f", "/tmp/b.txt"])
            .status
            .code()
            != Some(0)
        {
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        env.ok(["cp", "live:/tmp/b.txt", out.to_str().unwrap()]);
        env.ok(["cp", "live:/etc/passwd", out.join("pw").to_str().unwrap()]);
        assert_eq!(
            std::fs::read_to_string(out.join("b.txt")).unwrap(),
            "beta\n"
        );
        assert!(std::fs::read_to_string(out.join("pw"))
            .unwrap()
            .starts_with("root:"));
        let (uid, _) = env.ids();
        assert_eq!(
            std::fs::metadata(out.join("b.txt")).unwrap().uid(),
            uid,
            "copied files belong to the user"
        );

        // The whole tree of a running container: its /proc and /sys come as
        // empty directories (the kernel's files, many unreadable, are not
        // the container's data), its device nodes as headers.
        let whole = out.join("whole");
        env.ok(["cp", "live:/", whole.to_str().unwrap()]);
        assert!(whole.join("etc/passwd").is_file());
        for pseudo in ["proc", "sys"] {
            let inside: Vec<_> = std::fs::read_dir(whole.join(pseudo)).unwrap().collect();
            assert!(inside.is_empty(), "/{pseudo} copied as an empty directory");
        }
        let o = env.cmd(["cp", "live:/dev", "-"]).output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let null = tar::Archive::new(&o.stdout[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap())
            .find(|e| e.path().unwrap().to_str() == Some("dev/null"))
            .map(|e| e.header().entry_type());
        assert_eq!(null, Some(tar::EntryType::Char), "dev/null as a device");

        // `-` is a tar stream: out on stdout, in from stdin into a directory.
        let o = env.cmd(["cp", "live:/tmp/b.txt", "-"]).output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let mut tar = tar::Archive::new(&o.stdout[..]);
        let names: Vec<String> = tar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["b.txt"], "cp live:/tmp/b.txt - writes a tar of it");
        let mut packed = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(6);
        h.set_mode(0o644);
        packed
            .append_data(&mut h, "from-stdin.txt", &b"gamma\n"[..])
            .unwrap();
        let packed = packed.into_inner().unwrap();
        let mut c = env.cmd(["cp", "-", "live:/tmp"]);
        c.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), &packed).unwrap();
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(
            env.ok(["exec", "live", "cat", "/tmp/from-stdin.txt"]),
            "gamma\n"
        );
        assert_eq!(
            env.run(["cp", "-", "live:/etc/passwd"]).status.code(),
            Some(125),
            "a tar stream unpacks into a directory only"
        );

        // Errors: unknown container, no container side, missing host path.
        assert_eq!(
            env.run(["cp", "ghost:/x", out.to_str().unwrap()])
                .status
                .code(),
            Some(125)
        );
        assert_eq!(env.run(["cp", "/a", "/b"]).status.code(), Some(125));
        assert_eq!(
            env.run(["cp", "/no/such/path", "live:/tmp"]).status.code(),
            Some(125)
        );
        env.ok(["rm", "-f", "live", "later"]);
    }
}
