//! Image commands as an unprivileged user: import (plain, gzip, zstd, stdin),
//! images/image ls, image inspect, tag, rmi, and the store's invariants.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{stderr, stdout, users, Env, Who};
use sha2::{Digest, Sha256};

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("bad JSON ({e}): {s}"))
}

#[test]
fn import_lists_with_docker_columns_and_id_is_config_hash() {
    for env in users("import_lists") {
        let id = env.import_busybox("busybox");
        assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");

        let out = env.ok(["images"]);
        let mut lines = out.lines();
        let header = lines.next().unwrap();
        let cols: Vec<&str> = header
            .split("   ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(cols, ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]);
        let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(&row[..3], ["busybox", "latest", &id[7..19]]);
        // busybox-static is a couple of megabytes.
        assert!(row.last().unwrap().ends_with("MB"), "{row:?}");

        // `image ls REPO` filters; -q prints ids; json is one object per line.
        assert!(env.ok(["image", "ls", "nothere"]).lines().count() == 1);
        assert_eq!(env.ok(["images", "-q"]).trim(), &id[7..19]);
        let j = json(
            env.ok(["images", "--format", "json"])
                .lines()
                .next()
                .unwrap(),
        );
        assert_eq!(j["Repository"], "busybox");

        // IMAGE ID is the sha256 of the stored config blob.
        let blob =
            std::fs::read(env.root.join("images").join(format!("{}.json", &id[7..]))).unwrap();
        assert_eq!(format!("sha256:{:x}", Sha256::digest(&blob)), id);

        let inspect = json(&env.ok(["image", "inspect", "busybox"]));
        let img = &inspect[0];
        assert_eq!(img["Id"], id.as_str());
        assert_eq!(img["RepoTags"][0], "busybox:latest");
        assert_eq!(img["Config"]["Cmd"][0], "sh");
        assert_eq!(img["RootFS"]["Type"], "layers");
        let layer = img["RootFS"]["Layers"][0].as_str().unwrap();
        let tar = std::fs::read(env.busybox_tar()).unwrap();
        assert_eq!(
            layer,
            format!("sha256:{:x}", Sha256::digest(&tar)),
            "diff id = sha256 of the tar"
        );
        assert_eq!(img["Size"].as_u64().unwrap(), tar.len() as u64);
    }
}

#[test]
fn compressed_and_stdin_imports_are_detected_by_magic() {
    let Some(env) =
        Env::new(Who::Range, "compressed").or_else(|| Env::new(Who::Single, "compressed"))
    else {
        return;
    };
    let plain_id = env.import_busybox("plain");
    for fmt in ["gz", "zst"] {
        // A misleading name: detection must not trust the suffix.
        let path = env.shared_dir().join(format!("busybox-{fmt}.data"));
        common::build_busybox(&path, fmt);
        let out = env.ok([
            "import",
            path.to_str().unwrap(),
            &format!("bb-{fmt}"),
            "--change",
            r#"CMD ["sh"]"#,
        ]);
        // Same layer content, same diff id, same config: the same image.
        let inspect = json(&env.ok(["image", "inspect", &format!("bb-{fmt}")]));
        let plain = json(&env.ok(["image", "inspect", "plain"]));
        assert_eq!(inspect[0]["RootFS"], plain[0]["RootFS"], "{fmt}");
        assert!(out.trim().starts_with("sha256:"));
    }
    // From stdin.
    let f = std::fs::File::open(env.busybox_tar()).unwrap();
    let o = env
        .cmd(["import", "-", "fromstdin"])
        .stdin(Stdio::from(f))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        json(&env.ok(["image", "inspect", "fromstdin"]))[0]["RootFS"],
        json(&env.ok(["image", "inspect", "plain"]))[0]["RootFS"]
    );
    assert!(!plain_id.is_empty());
    // One layer stored once, shared by all four images.
    assert_eq!(
        std::fs::read_dir(env.root.join("layers")).unwrap().count(),
        1
    );
}

#[test]
fn change_lines_set_metadata_and_bad_ones_are_rejected_before_reading() {
    let Some(env) = Env::new(Who::Single, "changes").or_else(|| Env::new(Who::Range, "changes"))
    else {
        return;
    };
    let tar = env.busybox_tar().to_str().unwrap().to_string();
    env.ok([
        "import",
        &tar,
        "localhost:5000/team/app:v1",
        "--change",
        "ENTRYPOINT [\"/bin/sh\", \"-c\"]",
        "--change",
        "CMD echo hi",
        "--change",
        "ENV A=1 B=\"two words\"",
        "--change",
        "WORKDIR /srv",
        "--change",
        "USER nobody",
        "--change",
        "LABEL org.example=yes",
        "--change",
        "EXPOSE 8080",
        "--change",
        "STOPSIGNAL SIGINT",
    ]);
    let c = &json(&env.ok(["image", "inspect", "localhost:5000/team/app:v1"]))[0]["Config"];
    assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    assert_eq!(c["Cmd"], serde_json::json!(["/bin/sh", "-c", "echo hi"]));
    assert_eq!(c["Env"], serde_json::json!(["A=1", "B=two words"]));
    assert_eq!(c["WorkingDir"], "/srv");
    assert_eq!(c["User"], "nobody");
    assert_eq!(c["Labels"]["org.example"], "yes");
    assert_eq!(c["ExposedPorts"], serde_json::json!({"8080/tcp": {}}));
    assert_eq!(c["StopSignal"], "SIGINT");
    let images = env.ok(["images"]);
    assert!(images.contains("localhost:5000/team/app   v1"), "{images}");

    let before = std::fs::read_dir(env.root.join("layers")).unwrap().count();
    let o = env.run(["import", &tar, "bad", "--change", "RUN rm -rf /"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("unsupported instruction RUN"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        stderr(&o).trim().lines().count(),
        1,
        "one line: {}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read_dir(env.root.join("layers")).unwrap().count(),
        before
    );
}

#[test]
fn references_normalise_and_invalid_ones_exit_125() {
    let Some(env) = Env::new(Who::Single, "refs").or_else(|| Env::new(Who::Range, "refs")) else {
        return;
    };
    let id = env.import_busybox("busybox");
    // Every spelling of the same reference finds the same image.
    for name in [
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox",
        "docker.io/library/busybox:latest",
        &id[7..19],
        &id,
    ] {
        assert_eq!(
            json(&env.ok(["image", "inspect", name]))[0]["Id"],
            id.as_str(),
            "{name}"
        );
    }
    for bad in ["Busybox", "busybox:", "a//b", "-x"] {
        // Looking one up finds nothing, as in Docker: exit 1 (`-x` is a
        // flag clap refuses: 125).
        let o = env.run(["image", "inspect", bad]);
        if bad == "-x" {
            assert_eq!(o.status.code(), Some(125), "{bad}");
        } else {
            assert_eq!(o.status.code(), Some(1), "{bad}");
            assert_eq!(stderr(&o), format!("Error: No such image: {bad}\n"));
        }
        let o = env.run(["tag", "busybox", bad]);
        assert_eq!(o.status.code(), Some(125), "tag to {bad}");
    }
}

#[test]
fn tag_and_rmi_follow_docker_rules() {
    let Some(env) = Env::new(Who::Range, "rmi").or_else(|| Env::new(Who::Single, "rmi")) else {
        return;
    };
    let id = env.import_busybox("busybox");
    env.ok(["tag", "busybox", "mine/box:1"]);
    let imgs = env.ok(["images"]);
    assert!(
        imgs.contains("mine/box") && imgs.contains("busybox"),
        "{imgs}"
    );
    // Removing one of two tags only untags.
    let out = env.ok(["rmi", "mine/box:1"]);
    assert_eq!(out.trim(), "Untagged: mine/box:1");
    // A container using the image blocks rmi without -f.
    env.ok(["run", "--name", "user", "busybox", "true"]);
    let o = env.run(["rmi", "busybox"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("container"), "{}", stderr(&o));
    // -f removes the image but keeps the layer the container still needs.
    let out = env.ok(["rmi", "-f", "busybox"]);
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    assert_eq!(env.ok(["images", "-q"]).trim(), "");
    assert_eq!(
        std::fs::read_dir(env.root.join("layers")).unwrap().count(),
        1,
        "layer kept for the container"
    );
    let o = env.run(["run", "--rm", &id[7..19], "true"]);
    assert_eq!(
        o.status.code(),
        Some(125),
        "the image is gone: {}",
        stderr(&o)
    );
    assert!(stdout(&o).is_empty());
}

#[test]
fn import_shows_progress_on_a_terminal_and_nothing_through_a_pipe() {
    let Some(env) = Env::new(Who::Single, "progress").or_else(|| Env::new(Who::Range, "progress"))
    else {
        return;
    };
    // A 16 MB layer: big enough to deserve a progress bar.
    let big = env.home.join("big.tar");
    {
        let mut b = tar::Builder::new(std::fs::File::create(&big).unwrap());
        let mut data = vec![0u8; 16 << 20];
        let mut x: u32 = 12345;
        for byte in data.iter_mut() {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            *byte = (x >> 24) as u8;
        }
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "blob", &data[..]).unwrap();
        b.finish().unwrap();
    }
    env.share(&big);

    // Not a terminal: quiet.
    let o = env.run(["import", big.to_str().unwrap(), "quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o), "", "no progress output when stderr is a pipe");

    // A terminal: the bar shows while the archive streams in (held up half
    // way so the test can see it).
    if !common::have_tmux("import_shows_progress_on_a_terminal_and_nothing_through_a_pipe") {
        return;
    }
    let half = 8 << 20;
    let feed = format!(
        "(head -c {half} {b}; sleep 3; tail -c +{} {b}) | {}",
        half + 1,
        common::shell_line(&env, "import - loud"),
        b = big.display()
    );
    let t = common::Term::start_shell(&env, "progress", &feed, 100, 10);
    common::wait_until("a progress display", Duration::from_secs(10), || {
        t.screen().contains("importing")
    });
    assert_eq!(t.exit_code(), "0", "{}", t.screen());
    assert!(env.ok(["images"]).contains("loud"));
}

/// "2.13MB" (Docker's decimal units, as `system df` prints them) in bytes.
fn bytes_of(human: &str) -> f64 {
    let split = human
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or_else(|| panic!("no unit in {human:?}"));
    let (n, unit) = human.split_at(split);
    let n: f64 = n.parse().unwrap_or_else(|_| panic!("bad size {human:?}"));
    let scale = match unit {
        "B" => 1.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        _ => panic!("unit of {human:?}"),
    };
    n * scale
}

/// `system df` accounts for everything the store keeps: the extracted
/// layers and, beside them, the layer archives kept for `push` and `save`
/// (as imported), the manifests and the configs. Its total agrees with
/// `du` of the store.
#[test]
fn system_df_counts_every_byte_the_store_keeps() {
    for env in users("df-total") {
        env.import_busybox("busybox");
        // A container with a file of its own, and a volume.
        env.ok([
            "run",
            "--name",
            "writer",
            "--network",
            "none",
            "-v",
            "data:/data",
            "busybox",
            "sh",
            "-c",
            "head -c 500000 /dev/zero > /big; head -c 200000 /dev/zero > /data/f",
        ]);
        let df = env.ok(["system", "df", "--format", "{{.Type}}\t{{.Size}}"]);
        let total: f64 = df
            .lines()
            .map(|l| bytes_of(l.split('\t').nth(1).unwrap()))
            .sum();
        // du as root: overlayfs leaves its work directory mode 000 to the
        // user on the host, and a container's files may belong to
        // subordinate ids; every byte under the store is the user's all
        // the same.
        let du = std::process::Command::new("du")
            .arg("-sb")
            .arg(&env.root)
            .output()
            .unwrap();
        assert!(du.status.success(), "du: {}", stderr(&du));
        let du: f64 = stdout(&du)
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        // du also counts directories and small bookkeeping files; the
        // layer's size is its tar's. A few percent covers both.
        assert!(
            (total - du).abs() <= du * 0.06,
            "system df says {total} bytes in all, du says {du}:\n{df}"
        );
        // -v agrees with the summary: one image, its size is the row's.
        let images_row = df
            .lines()
            .find_map(|l| l.strip_prefix("Images\t"))
            .unwrap()
            .to_string();
        let verbose = env.ok(["system", "df", "-v"]);
        let row = verbose
            .lines()
            .find(|l| l.starts_with("busybox "))
            .unwrap_or_else(|| panic!("{verbose}"));
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert!(
            cols.contains(&images_row.as_str()),
            "df -v's busybox row {row:?} vs the Images row {images_row}"
        );
    }
}
