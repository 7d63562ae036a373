//! Layer extraction is a security boundary: crafted archives imported through
//! the real CLI, as an unprivileged user, must fail with one clear line, write
//! nothing outside the store, and leave the store as it was. Also: a killed
//! import leaves nothing visible, and its debris is cleaned by the next one.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{spawn, stderr, users, Env, Who};

/// A raw ustar header with any name (tar::Builder refuses `..` and absolute
/// paths, which is exactly what these tests need to write).
fn raw_entry(out: &mut Vec<u8>, name: &str, kind: u8, link: &str, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    {
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_entry_type(tar::EntryType::new(kind));
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    let pad = (512 - data.len() % 512) % 512;
    out.extend(std::iter::repeat_n(0u8, pad));
}

fn finish(mut out: Vec<u8>) -> Vec<u8> {
    out.extend(std::iter::repeat_n(0u8, 1024));
    out
}

/// Everything under `dir` with size and mode, to compare before and after.
fn snapshot(dir: &Path) -> String {
    let o = std::process::Command::new("find")
        .arg(dir)
        .args(["-printf", "%P %y %s %m\n"])
        .output()
        .unwrap();
    let mut lines: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    lines.join("\n")
}

#[test]
fn crafted_archives_are_rejected_without_writing_outside() {
    for env in users("hostile") {
        env.import_busybox("busybox");
        // A directory the user can write, next to the store: an escape
        // would land here.
        let outside = env.home.join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        let victim = outside.join("victim");
        std::fs::write(&victim, "original").unwrap();
        // Owned by the test user: an escape must be stopped by burrow, not
        // by file permissions.
        let m = std::fs::metadata(&env.home).unwrap();
        use std::os::unix::fs::MetadataExt;
        for p in [&outside, &victim] {
            nix::unistd::chown(
                p,
                Some(nix::unistd::Uid::from_raw(m.uid())),
                Some(nix::unistd::Gid::from_raw(m.gid())),
            )
            .unwrap();
        }
        let out = outside.to_str().unwrap().to_string();
        let rel_up = "../".repeat(12);

        let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
        let mut a = Vec::new();
        raw_entry(
            &mut a,
            &format!("{rel_up}{}/escaped", &out[1..]),
            b'0',
            "",
            b"pwned",
        );
        cases.push(("dotdot", finish(a)));

        let mut a = Vec::new();
        raw_entry(&mut a, "a/../../../escaped", b'0', "", b"pwned");
        cases.push(("inner dotdot", finish(a)));

        let mut a = Vec::new();
        raw_entry(&mut a, "evil", b'2', &out, b"");
        raw_entry(&mut a, "evil/escaped", b'0', "", b"pwned");
        cases.push(("symlink then write through it", finish(a)));

        let mut a = Vec::new();
        raw_entry(&mut a, "evil", b'2', &format!("{rel_up}{}", &out[1..]), b"");
        raw_entry(&mut a, "evil/escaped", b'0', "", b"pwned");
        cases.push(("relative symlink out", finish(a)));

        let mut a = Vec::new();
        raw_entry(&mut a, "link", b'1', victim.to_str().unwrap(), b"");
        cases.push(("hardlink to host file", finish(a)));

        let mut a = Vec::new();
        raw_entry(
            &mut a,
            "link",
            b'1',
            &format!("{rel_up}{}/victim", &out[1..]),
            b"",
        );
        cases.push(("hardlink up and out", finish(a)));

        let mut a = Vec::new();
        raw_entry(&mut a, "big", b'0', "", &vec![b'x'; 4096]);
        let truncated = a[..512 + 1000].to_vec();
        cases.push(("truncated", truncated));

        cases.push((
            "not a tar",
            b"this is not an archive at all, just text".repeat(20),
        ));
        cases.push(("xz", b"\xfd7zXZ\0\0\0rest".to_vec()));

        let before = snapshot(&env.root);
        for (what, bytes) in cases {
            let path = env.home.join("crafted.tar");
            std::fs::write(&path, &bytes).unwrap();
            env.share(&path);
            let o = env.run(["import", path.to_str().unwrap(), "crafted"]);
            let err = stderr(&o);
            // Paths that land inside the layer are harmless and may import;
            // everything else must fail with one line and exit 125.
            if o.status.success() {
                assert!(
                    matches!(
                        what,
                        "symlink then write through it" | "relative symlink out"
                    ),
                    "{what}: imported a hostile archive"
                );
                env.ok(["rmi", "crafted"]);
            } else {
                assert_eq!(o.status.code(), Some(125), "{what}: {err}");
                assert_eq!(err.trim().lines().count(), 1, "{what}: one line: {err}");
                assert!(err.starts_with("burrow: importing"), "{what}: {err}");
            }
            assert_eq!(
                std::fs::read_to_string(&victim).unwrap(),
                "original",
                "{what}"
            );
            let names: Vec<_> = std::fs::read_dir(&outside)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(names, ["victim"], "{what}: something was written outside");
            assert_eq!(snapshot(&env.root), before, "{what}: the store changed");
        }
    }
}

#[test]
fn a_killed_import_leaves_nothing_visible_and_is_cleaned_later() {
    let Some(env) = Env::new(Who::Range, "killed").or_else(|| Env::new(Who::Single, "killed"))
    else {
        return;
    };
    let before_images = env.ok(["images", "-q"]);
    // Feed half an archive through stdin, then kill burrow mid-extraction.
    let tar = std::fs::read(env.busybox_tar()).unwrap();
    let mut c = env.cmd(["import", "-", "half"]);
    c.stdin(Stdio::piped());
    let mut child = spawn(c);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&tar[..tar.len() / 2]).unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // Kill the whole process group: burrow and its extracting child.
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    drop(stdin);
    child.wait().unwrap();
    assert_eq!(env.ok(["images", "-q"]), before_images, "no image appeared");
    let layers = env.root.join("layers");
    assert_eq!(
        std::fs::read_dir(&layers).map(|d| d.count()).unwrap_or(0),
        0,
        "no layer appeared"
    );
    // The next import removes the abandoned staging dir (its pid is dead).
    env.import_busybox("busybox");
    let tmp: Vec<_> = std::fs::read_dir(env.root.join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(tmp.is_empty(), "staging debris left: {tmp:?}");
}

// ---- load and save ----

/// A root-only podman with a private store, so fixtures leak nowhere. Its
/// run root is short-named in /tmp (podman refuses one over 50 characters).
struct Podman {
    root: std::path::PathBuf,
    run: tempfile::TempDir,
}

impl Podman {
    fn new(dir: &Path) -> Podman {
        Podman {
            root: dir.join("podman-root"),
            run: tempfile::Builder::new()
                .prefix("bpr")
                .tempdir_in("/tmp")
                .unwrap(),
        }
    }

    fn cmd(&self) -> std::process::Command {
        let mut c = std::process::Command::new("podman");
        c.arg("--root")
            .arg(&self.root)
            .arg("--runroot")
            .arg(self.run.path())
            .args(["--storage-driver", "vfs"]);
        c
    }
}

fn sh_ok(mut c: std::process::Command) -> String {
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "{c:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// podman and skopeo are there, as root (they make the fixtures); else
/// the test says loudly why it does not run.
fn have_tools(test: &str) -> bool {
    if !nix::unistd::Uid::effective().is_root() {
        common::loud(&format!(
            "SKIPPED {test}: podman and skopeo make the fixtures as root; run the suite as root"
        ));
        return false;
    }
    for tool in ["podman", "skopeo"] {
        let found = std::process::Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            common::loud(&format!(
                "SKIPPED {test}: {tool} is not installed (apt-get install podman skopeo)"
            ));
            return false;
        }
    }
    true
}

/// Archives of the busybox image as other tools write them, readable by
/// the test users: (file or directory, the tags `load` must report).
fn fixtures(env: &Env, dir: &Path) -> Vec<(std::path::PathBuf, Vec<&'static str>)> {
    std::fs::create_dir_all(dir).unwrap();
    let bb = env.busybox_tar().to_str().unwrap().to_string();
    let podman = Podman::new(dir);
    let mut c = podman.cmd();
    c.args(["import", "--change", "CMD [\"sh\"]", &bb, "localhost/bb:1"]);
    sh_ok(c);
    let mut c = podman.cmd();
    c.args([
        "import",
        "--change",
        "CMD [\"true\"]",
        &bb,
        "localhost/bb2:1",
    ]);
    sh_ok(c);
    let p = |n: &str| dir.join(n);
    let s = |n: &str| p(n).to_str().unwrap().to_string();
    let mut c = podman.cmd();
    c.args(["save", "--format", "docker-archive", "-o", &s("docker.tar")])
        .arg("localhost/bb:1");
    sh_ok(c);
    let mut c = podman.cmd();
    c.args(["save", "--format", "oci-archive", "-o", &s("oci.tar")])
        .arg("localhost/bb:1");
    sh_ok(c);
    let mut c = podman.cmd();
    c.args([
        "save",
        "-m",
        "--format",
        "docker-archive",
        "-o",
        &s("multi.tar"),
    ])
    .args(["localhost/bb:1", "localhost/bb2:1"]);
    sh_ok(c);
    let mut c = std::process::Command::new("skopeo");
    c.args(["copy", "-q"])
        .arg(format!("docker-archive:{}", s("docker.tar")))
        .arg(format!("oci-archive:{}:localhost/sk:2", s("skopeo.tar")));
    sh_ok(c);
    let mut c = std::process::Command::new("skopeo");
    c.args(["copy", "-q"])
        .arg(format!("docker-archive:{}", s("docker.tar")))
        .arg(format!("oci:{}:localhost/dir:3", s("layout")));
    sh_ok(c);
    let mut c = std::process::Command::new("zstd");
    c.args(["-q", "-f", &s("oci.tar"), "-o", &s("oci.tar.zst")]);
    sh_ok(c);
    sh_ok({
        let mut c = std::process::Command::new("chmod");
        c.args(["-R", "a+rX", &s("layout")]);
        c
    });
    for f in [
        "docker.tar",
        "oci.tar",
        "multi.tar",
        "skopeo.tar",
        "oci.tar.zst",
    ] {
        env.share(&p(f));
    }
    vec![
        (p("docker.tar"), vec!["localhost/bb:1"]),
        (p("oci.tar"), vec!["localhost/bb:1"]),
        (p("multi.tar"), vec!["localhost/bb:1", "localhost/bb2:1"]),
        (p("skopeo.tar"), vec!["localhost/sk:2"]),
        (p("layout"), vec!["localhost/dir:3"]),
        (p("oci.tar.zst"), vec!["localhost/bb:1"]),
    ]
}

fn image_id(env: &Env, name: &str) -> String {
    let out = env.ok(["image", "inspect", name]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v[0]["Id"].as_str().unwrap().to_string()
}

#[test]
fn load_reads_what_podman_and_skopeo_write() {
    if !have_tools("load_reads_what_podman_and_skopeo_write") {
        return;
    }
    for env in users("load") {
        let dir = env.home.join("fixtures");
        for (path, tags) in fixtures(&env, &dir) {
            let what = path.file_name().unwrap().to_string_lossy().into_owned();
            let out = env.ok(["load", "-i", path.to_str().unwrap()]);
            let want: Vec<String> = tags.iter().map(|t| format!("Loaded image: {t}")).collect();
            assert_eq!(out.lines().collect::<Vec<_>>(), want, "{what}");
            for t in &tags {
                env.ok(["run", "--rm", t, "busybox", "true"]);
            }
            // Loading it again changes nothing and says the same.
            assert_eq!(
                env.ok(["load", "-i", path.to_str().unwrap()]),
                out,
                "{what}"
            );
            for t in &tags {
                env.ok(["rmi", "-f", t]);
            }
            assert_eq!(env.ok(["images", "-q"]), "", "{what}");
        }
        // Through stdin, compressed.
        let zst = std::fs::File::open(dir.join("oci.tar.zst")).unwrap();
        let o = env.cmd(["load"]).stdin(zst).output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(common::stdout(&o), "Loaded image: localhost/bb:1\n");
        env.ok(["run", "--rm", "localhost/bb:1", "busybox", "true"]);
    }
}

#[test]
fn save_is_read_by_skopeo_and_podman_and_loads_back_the_same() {
    if !have_tools("save_is_read_by_skopeo_and_podman_and_loads_back_the_same") {
        return;
    }
    for env in users("save") {
        env.import_busybox("busybox");
        env.ok(["tag", "busybox", "localhost/tools/bb:1.0"]);
        let id = image_id(&env, "busybox");
        let out = env.user_dir("out");
        let docker = out.join("docker.tar");
        let oci = out.join("oci.tar");
        env.ok(["save", "-o", docker.to_str().unwrap(), "busybox"]);
        env.ok([
            "image",
            "save",
            "--format",
            "oci-archive",
            "-o",
            oci.to_str().unwrap(),
            "busybox",
        ]);
        let both = out.join("both.tar");
        env.ok([
            "save",
            "-o",
            both.to_str().unwrap(),
            "busybox",
            "localhost/tools/bb:1.0",
        ]);
        let leftovers: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");

        for (transport, file) in [("docker-archive", &docker), ("oci-archive", &oci)] {
            let mut c = std::process::Command::new("skopeo");
            c.arg("inspect")
                .arg(format!("{transport}:{}", file.display()));
            let v: serde_json::Value = serde_json::from_str(&sh_ok(c)).unwrap();
            assert_eq!(v["Layers"].as_array().unwrap().len(), 1, "{transport}");
        }
        let podman = Podman::new(&env.home.join("podman"));
        for file in [&docker, &oci] {
            let mut c = podman.cmd();
            c.arg("load").arg("-i").arg(file);
            let said = sh_ok(c);
            assert!(said.contains("busybox:latest"), "podman load: {said}");
        }

        // A clean store gets the same image back, by either format, and
        // from stdout.
        let clean = Env::new(env.who, "save-clean").unwrap();
        for file in [&docker, &oci] {
            let said = clean.ok(["load", "-i", file.to_str().unwrap()]);
            assert_eq!(said, "Loaded image: busybox:latest\n");
            assert_eq!(image_id(&clean, "busybox"), id, "{}", file.display());
            clean.ok(["run", "--rm", "busybox", "busybox", "true"]);
            clean.ok(["rmi", "busybox"]);
        }
        let said = clean.ok(["load", "-i", both.to_str().unwrap()]);
        assert_eq!(
            said,
            "Loaded image: busybox:latest\nLoaded image: localhost/tools/bb:1.0\n"
        );
        let streamed = env.run(["save", "--format", "oci-archive", &id]);
        assert!(streamed.status.success(), "{}", stderr(&streamed));
        let piped = out.join("piped.tar");
        std::fs::write(&piped, &streamed.stdout).unwrap();
        env.share(&piped);
        let said = clean.ok(["load", "-i", piped.to_str().unwrap()]);
        assert_eq!(said, format!("Loaded image ID: {id}\n"));

        // Failures: one line, 125, no file left behind.
        let o = env.run(["save", "-o", out.join("x.tar").to_str().unwrap(), "nosuch"]);
        assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
        assert_eq!(stderr(&o).trim().lines().count(), 1, "{}", stderr(&o));
        let o = env.run(["save", "--format", "tgz", "busybox"]);
        assert_eq!(o.status.code(), Some(125));
        assert!(!out.join("x.tar").exists());
    }
}

/// sha256 as the store names things.
fn digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    let h = sha2::Sha256::digest(bytes);
    format!(
        "sha256:{}",
        h.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// A one-file layer and a config naming `diff_id` for it.
fn layer_and_config(diff_id: Option<&str>) -> (Vec<u8>, Vec<u8>) {
    let mut layer = Vec::new();
    raw_entry(&mut layer, "hello", b'0', "", b"hi\n");
    let layer = finish(layer);
    let diff = diff_id.map_or_else(|| digest(&layer), str::to_string);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{diff}"]}}}}"#
    );
    (layer, config.into_bytes())
}

fn docker_archive(layer_name: &str, layer: Option<&[u8]>, config: &[u8]) -> Vec<u8> {
    let mut a = Vec::new();
    let manifest =
        format!(r#"[{{"Config":"c.json","RepoTags":["crafted:1"],"Layers":["{layer_name}"]}}]"#);
    raw_entry(&mut a, "manifest.json", b'0', "", manifest.as_bytes());
    raw_entry(&mut a, "c.json", b'0', "", config);
    if let Some(l) = layer {
        raw_entry(&mut a, "l/layer.tar", b'0', "", l);
    }
    a
}

#[test]
fn hostile_image_archives_fail_and_leave_the_store_as_it_was() {
    for env in users("hostile-load") {
        let (layer, config) = layer_and_config(None);
        // The good archive loads: the crafted ones below differ in one thing.
        let good = env.home.join("good.tar");
        std::fs::write(
            &good,
            finish(docker_archive("l/layer.tar", Some(&layer), &config)),
        )
        .unwrap();
        env.share(&good);
        let fresh = Env::new(env.who, "hostile-load-good").unwrap();
        assert_eq!(
            fresh.ok(["load", "-i", good.to_str().unwrap()]),
            "Loaded image: crafted:1\n"
        );
        assert!(fresh.ok(["images"]).contains("crafted"));

        env.import_busybox("busybox");
        let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
        let mut a = docker_archive("l/layer.tar", Some(&layer), &config);
        raw_entry(&mut a, "../evil", b'0', "", b"pwned");
        cases.push(("dotdot entry", finish(a)));

        let mut a = docker_archive("l/layer.tar", Some(&layer), &config);
        raw_entry(&mut a, "/tmp/evil", b'0', "", b"pwned");
        cases.push(("absolute entry", finish(a)));

        let (_, wrong) = layer_and_config(Some(&digest(b"something else")));
        cases.push((
            "diff id mismatch",
            finish(docker_archive("l/layer.tar", Some(&layer), &wrong)),
        ));

        let mut a = docker_archive("x/layer.tar", None, &config);
        raw_entry(&mut a, "x/layer.tar", b'2', "/etc/passwd", b"");
        cases.push(("layer links out", finish(a)));

        let mut a = docker_archive("x/layer.tar", None, &config);
        raw_entry(&mut a, "x/layer.tar", b'2', "../../../etc/passwd", b"");
        cases.push(("layer links up", finish(a)));

        // OCI: a layer blob whose bytes do not match its digest.
        let mut a = Vec::new();
        let lie = digest(b"not the layer");
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{lie}","size":{}}}]}}"#,
            digest(&config),
            config.len(),
            layer.len()
        );
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"crafted:2"}}}}]}}"#,
            digest(manifest.as_bytes()),
            manifest.len()
        );
        let blob = |d: &str| format!("blobs/sha256/{}", &d[7..]);
        raw_entry(
            &mut a,
            "oci-layout",
            b'0',
            "",
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        );
        raw_entry(&mut a, "index.json", b'0', "", index.as_bytes());
        raw_entry(
            &mut a,
            &blob(&digest(manifest.as_bytes())),
            b'0',
            "",
            manifest.as_bytes(),
        );
        raw_entry(&mut a, &blob(&digest(&config)), b'0', "", &config);
        raw_entry(&mut a, &blob(&lie), b'0', "", &layer);
        cases.push(("OCI blob digest mismatch", finish(a)));

        cases.push(("not an archive", b"just some text, no tar here".repeat(30)));
        let mut a = Vec::new();
        raw_entry(&mut a, "something", b'0', "", b"else");
        cases.push(("no manifest", finish(a)));

        let before = snapshot(&env.root);
        // Without the CREATED column: its "n seconds ago" moves on.
        let list = || {
            env.ok([
                "images",
                "--no-trunc",
                "--format",
                "{{.ID}} {{.Repository}}:{{.Tag}}",
            ])
        };
        let images = list();
        for (what, bytes) in cases {
            let path = env.home.join("crafted.tar");
            std::fs::write(&path, &bytes).unwrap();
            env.share(&path);
            let o = env.run(["load", "-i", path.to_str().unwrap()]);
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(125), "{what}: {err}");
            assert_eq!(err.trim().lines().count(), 1, "{what}: one line: {err}");
            assert!(err.starts_with("burrow: loading"), "{what}: {err}");
            assert_eq!(snapshot(&env.root), before, "{what}: the store changed");
            assert_eq!(list(), images, "{what}");
            assert!(!env.home.join("evil").exists() && !Path::new("/tmp/evil").exists());
        }
    }
}

#[test]
fn an_oci_index_loads_the_host_platform_and_skips_the_rest() {
    let Some(env) = users("index").into_iter().next() else {
        return;
    };
    let (host, other) = match std::env::consts::ARCH {
        "aarch64" => ("arm64", "amd64"),
        _ => ("amd64", "arm64"),
    };
    let (layer, config) = layer_and_config(None);
    let oci_manifest = |config: &[u8], layer: &str, size: usize| {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer}","size":{size}}}]}}"#,
            digest(config),
            config.len()
        )
    };
    let manifest = oci_manifest(&config, &digest(&layer), layer.len());
    // The other platform's manifest is not in the archive at all (as in a
    // `docker save` of a pulled multi-platform image): it must not be read.
    let missing = digest(b"the other platform");
    let entry = |media: &str, d: &str, size: usize, arch: Option<&str>, name: Option<&str>| {
        let mut e = serde_json::json!({"mediaType": media, "digest": d, "size": size});
        if let Some(a) = arch {
            e["platform"] = serde_json::json!({"os": "linux", "architecture": a});
        }
        if let Some(n) = name {
            e["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": n});
        }
        e
    };
    const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    const INDEX: &str = "application/vnd.oci.image.index.v1+json";
    let nested = serde_json::json!({
        "schemaVersion": 2, "mediaType": INDEX,
        "manifests": [
            entry(MANIFEST, &missing, 100, Some(other), None),
            entry(MANIFEST, &digest(manifest.as_bytes()), manifest.len(), Some(host), None),
        ]
    })
    .to_string();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [
            entry(INDEX, &digest(nested.as_bytes()), nested.len(), None, Some("localhost/multi:1")),
            entry(MANIFEST, &missing, 100, Some(other), Some("localhost/other:1")),
        ]
    })
    .to_string();
    let blob = |d: &str| format!("blobs/sha256/{}", &d[7..]);
    let mut a = Vec::new();
    raw_entry(
        &mut a,
        "oci-layout",
        b'0',
        "",
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    );
    raw_entry(&mut a, "index.json", b'0', "", index.as_bytes());
    for bytes in [nested.as_bytes(), manifest.as_bytes(), &config, &layer] {
        raw_entry(&mut a, &blob(&digest(bytes)), b'0', "", bytes);
    }
    let path = env.home.join("multi.tar");
    std::fs::write(&path, finish(a)).unwrap();
    env.share(&path);
    assert_eq!(
        env.ok(["load", "-i", path.to_str().unwrap()]),
        "Loaded image: localhost/multi:1\n"
    );
    // Kept verbatim: saving it again gives the same manifest back.
    let out = env.run(["save", "--format", "oci-archive", "localhost/multi:1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut ar = tar::Archive::new(&out.stdout[..]);
    let names: Vec<String> = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.contains(&blob(&digest(manifest.as_bytes()))),
        "{names:?}"
    );
}
