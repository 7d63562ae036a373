//! Pull, push, login and logout against real registries on loopback
//! (Debian's `docker-registry`: plain, htpasswd Basic auth, and a Bearer
//! challenge with a token service beside it), as unprivileged users with and
//! without a subuid range. Fixture images are written as OCI layouts by this
//! test and copied into the registry with skopeo. A small in-process server
//! stands in only where a real registry cannot misbehave on cue (a blob that
//! stalls or is cut off mid-transfer).

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{have, loud, spawn, stderr, stdout, users, wait_until, Env};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn sha(b: &[u8]) -> String {
    let d = Sha256::digest(b);
    format!(
        "sha256:{}",
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// The registry binary and skopeo, or a loud reason to skip.
fn tools(test: &str) -> bool {
    for t in ["docker-registry", "skopeo"] {
        if !have(t) {
            loud(&format!(
                "SKIPPED {test}: {t} is not installed (apt-get install docker-registry skopeo)"
            ));
            return false;
        }
    }
    true
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A file in a world-readable dir the registry (root) and tests share.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("burrow-reg-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    let p = d.join(name);
    let _ = std::fs::remove_dir_all(&p);
    p
}

// ---------------------------------------------------------------------------
// Registries

enum Auth {
    None,
    Basic { htpasswd: PathBuf },
    Bearer { realm: String },
}

/// A `docker-registry` serving `storage` on a free loopback port; killed on drop.
struct Registry {
    child: Child,
    port: u16,
    _dir: PathBuf,
}

impl Registry {
    fn start(storage: &Path, auth: Auth) -> Registry {
        let port = free_port();
        let dir = scratch(&format!("registry-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let auth_yaml = match auth {
            Auth::None => String::new(),
            Auth::Basic { htpasswd } => format!(
                "auth:\n  htpasswd:\n    realm: burrow-test\n    path: {}\n",
                htpasswd.display()
            ),
            Auth::Bearer { realm } => {
                format!("auth:\n  silly:\n    realm: {realm}\n    service: burrow-test\n")
            }
        };
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth_yaml}",
                storage.display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("log")).unwrap())
            .spawn()
            .expect("starting docker-registry");
        let r = Registry {
            child,
            port,
            _dir: dir,
        };
        wait_until("registry listening", Duration::from_secs(20), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        r
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// Fixture images, as an OCI layout written here

fn tar_of(files: &[(&str, &[u8])], dirs: &[&str], whiteouts: &[&str]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for d in dirs {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_cksum();
        b.append_data(&mut h, d, &[][..]).unwrap();
    }
    for (name, data) in files
        .iter()
        .map(|(n, d)| (*n, *d))
        .chain(whiteouts.iter().map(|w| (*w, &b""[..])))
    {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

#[derive(Clone, Copy)]
enum Comp {
    Gzip,
    Zstd,
}

struct Layout {
    dir: PathBuf,
}

impl Layout {
    fn new(dir: PathBuf) -> Layout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Layout { dir }
    }

    fn blob(&self, bytes: &[u8]) -> (String, u64) {
        let d = sha(bytes);
        std::fs::write(self.dir.join("blobs/sha256").join(&d[7..]), bytes).unwrap();
        (d, bytes.len() as u64)
    }

    /// An image manifest: returns its descriptor (without platform).
    fn image(&self, arch: &str, layers: &[(Vec<u8>, Comp)], cmd: &[&str]) -> Value {
        let mut descs = Vec::new();
        let mut diff_ids = Vec::new();
        for (tar, comp) in layers {
            diff_ids.push(sha(tar));
            let (bytes, mt) = match comp {
                Comp::Gzip => (gzip(tar), "application/vnd.oci.image.layer.v1.tar+gzip"),
                Comp::Zstd => (
                    zstd::encode_all(&tar[..], 3).unwrap(),
                    "application/vnd.oci.image.layer.v1.tar+zstd",
                ),
            };
            let (d, s) = self.blob(&bytes);
            descs.push(json!({"mediaType": mt, "digest": d, "size": s}));
        }
        let config = json!({
            "architecture": arch, "os": "linux",
            "config": {"Cmd": cmd, "Env": ["PATH=/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": "burrow test fixture"}],
        });
        let (cd, cs) = self.blob(config.to_string().as_bytes());
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
            "layers": descs,
        });
        let (md, ms) = self.blob(manifest.to_string().as_bytes());
        json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms})
    }

    fn index_of(&self, entries: Vec<Value>) -> Value {
        let idx = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": entries,
        });
        let (d, s) = self.blob(idx.to_string().as_bytes());
        json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": d, "size": s})
    }

    fn write_index(&self, tagged: &[(&str, Value)]) {
        let entries: Vec<Value> = tagged
            .iter()
            .map(|(tag, d)| {
                let mut d = d.clone();
                d["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
                d
            })
            .collect();
        std::fs::write(
            self.dir.join("index.json"),
            json!({"schemaVersion": 2, "manifests": entries}).to_string(),
        )
        .unwrap();
    }
}

fn with_platform(mut d: Value, arch: &str, variant: Option<&str>) -> Value {
    d["platform"] = json!({"os": "linux", "architecture": arch});
    if let Some(v) = variant {
        d["platform"]["variant"] = json!(v);
    }
    d
}

struct Fixture {
    /// Registry storage with every fixture image pushed (read-only for tests).
    storage: PathBuf,
    /// The layer digest of `box:1`'s busybox layer (to corrupt on a copy).
    busybox_layer: String,
}

/// Images in a registry storage dir, made once per test run:
/// `box:1` (busybox, gzip), `multi:1` (index: arm/v7 first, then amd64,
/// then arm64), `zst:1` (zstd layers), `wh:1` (whiteouts and an opaque dir).
fn fixture(busybox_tar: &Path) -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let layout = Layout::new(scratch("layout"));
        let busybox = std::fs::read(busybox_tar).unwrap();
        let marker = |arch: &str| {
            tar_of(
                &[("etc/arch", format!("{arch}\n").as_bytes())],
                &["etc"],
                &[],
            )
        };
        let boxed = layout.image("amd64", &[(busybox.clone(), Comp::Gzip)], &["sh"]);
        let busybox_layer = {
            let m: Value = serde_json::from_slice(
                &std::fs::read(
                    layout
                        .dir
                        .join("blobs/sha256")
                        .join(&boxed["digest"].as_str().unwrap()[7..]),
                )
                .unwrap(),
            )
            .unwrap();
            m["layers"][0]["digest"].as_str().unwrap().to_string()
        };
        let amd = layout.image(
            "amd64",
            &[(busybox.clone(), Comp::Gzip), (marker("amd64"), Comp::Gzip)],
            &["cat", "/etc/arch"],
        );
        let arm7 = layout.image("arm", &[(marker("arm"), Comp::Gzip)], &["cat", "/etc/arch"]);
        let arm64 = layout.image(
            "arm64",
            &[(marker("arm64"), Comp::Gzip)],
            &["cat", "/etc/arch"],
        );
        let multi = layout.index_of(vec![
            with_platform(arm7, "arm", Some("v7")),
            with_platform(amd, "amd64", None),
            with_platform(arm64, "arm64", Some("v8")),
        ]);
        let zst = layout.image(
            "amd64",
            &[(busybox.clone(), Comp::Zstd), (marker("zstd"), Comp::Zstd)],
            &["cat", "/etc/arch"],
        );
        let wh_top = tar_of(
            &[("etc/opaque/new", b"new\n")],
            &["etc/opaque"],
            &["etc/.wh.passwd", "etc/opaque/.wh..wh..opq"],
        );
        let wh_base = tar_of(
            &[("etc/opaque/old", b"old\n"), ("etc/keep", b"keep\n")],
            &["etc/opaque"],
            &[],
        );
        let wh = layout.image(
            "amd64",
            &[
                (busybox, Comp::Gzip),
                (wh_base, Comp::Gzip),
                (wh_top, Comp::Gzip),
            ],
            &["sh"],
        );
        layout.write_index(&[
            ("box1", boxed),
            ("multi1", multi),
            ("zst1", zst),
            ("wh1", wh),
        ]);

        let storage = scratch("storage");
        std::fs::create_dir_all(&storage).unwrap();
        let reg = Registry::start(&storage, Auth::None);
        for (tag, dest) in [
            ("box1", "box:1"),
            ("multi1", "multi:1"),
            ("zst1", "zst:1"),
            ("wh1", "wh:1"),
        ] {
            let o = Command::new("skopeo")
                .args([
                    "copy",
                    "--quiet",
                    "--all",
                    "--preserve-digests",
                    "--dest-tls-verify=false",
                ])
                .arg(format!("oci:{}:{tag}", layout.dir.display()))
                .arg(format!("docker://{}/{dest}", reg.host()))
                .output()
                .unwrap();
            assert!(o.status.success(), "skopeo copy {tag}: {}", stderr(&o));
        }
        drop(reg);
        // The test users read nothing here, but the registry (root) does.
        Fixture {
            storage,
            busybox_layer,
        }
    })
}

/// A private copy of the fixture storage (for tests that push or corrupt).
fn storage_copy(f: &Fixture, name: &str) -> PathBuf {
    let dest = scratch(name);
    let st = Command::new("cp")
        .arg("-a")
        .arg(&f.storage)
        .arg(&dest)
        .status()
        .unwrap();
    assert!(st.success());
    dest
}

fn images(env: &Env) -> String {
    // Without the age columns: "n seconds ago" moves on between two calls.
    env.ok([
        "images",
        "--no-trunc",
        "--format",
        "{{.ID}} {{.Repository}}:{{.Tag}} {{.Digest}}",
    ])
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|r| r.count()).unwrap_or(0)
}

// ---------------------------------------------------------------------------
// Tests

#[test]
fn pull_and_run_from_a_plain_registry() {
    if !tools("pull_and_run_from_a_plain_registry") {
        return;
    }
    for env in users("reg-plain") {
        let f = fixture(env.busybox_tar());
        let reg = Registry::start(&f.storage, Auth::None);
        let r = format!("{}/box:1", reg.host());
        let o = env.run(["pull", &r]);
        let out = stdout(&o);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(out.contains("1: Pulling from"), "{out}");
        assert!(out.contains("Pull complete"), "{out}");
        assert!(out.contains("Status: Downloaded newer image"), "{out}");
        assert!(
            out.trim_end().ends_with(&r),
            "last line names the image: {out}"
        );
        assert_eq!(
            env.ok(["run", "--rm", &r, "echo", "pulled"]).trim(),
            "pulled"
        );
        let again = env.ok(["pull", &r]);
        assert!(again.contains("Already exists"), "{again}");
        assert!(again.contains("Status: Image is up to date"), "{again}");
        // By digest: the same image, verified against the digest asked for.
        let inspect: Value = serde_json::from_str(&env.ok(["image", "inspect", &r])).unwrap();
        let repo_digest = inspect[0]["RepoDigests"][0].as_str().unwrap().to_string();
        assert!(
            repo_digest.starts_with(&format!("{}/box@sha256:", reg.host())),
            "{repo_digest}"
        );
        let id = inspect[0]["Id"].as_str().unwrap().to_string();
        env.ok(["pull", "-q", &repo_digest]);
        let by_digest: Value =
            serde_json::from_str(&env.ok(["image", "inspect", &repo_digest])).unwrap();
        assert_eq!(by_digest[0]["Id"], json!(id));
        // A tag that does not exist: one line, 125, nothing added.
        let before = images(&env);
        let o = env.run(["pull", &format!("{}/box:nope", reg.host())]);
        assert_eq!(o.status.code(), Some(125));
        let err = stderr(&o);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains("not found"), "{err}");
        assert_eq!(images(&env), before);
    }
}

#[test]
fn run_pulls_a_missing_image_and_honours_pull_policy() {
    if !tools("run_pulls_a_missing_image_and_honours_pull_policy") {
        return;
    }
    for env in users("reg-run") {
        let f = fixture(env.busybox_tar());
        let reg = Registry::start(&f.storage, Auth::None);
        let r = format!("{}/box:1", reg.host());
        let o = env.run(["run", "--pull=never", "--rm", &r, "true"]);
        assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
        assert!(stderr(&o).contains("--pull=never"), "{}", stderr(&o));
        let o = env.run(["run", "--rm", &r, "echo", "ran"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(stdout(&o).trim(), "ran");
        let err = stderr(&o);
        assert!(
            err.starts_with(&format!("Unable to find image '{r}' locally")),
            "{err}"
        );
        assert!(
            err.contains("Pull complete"),
            "pull progress goes to stderr: {err}"
        );
        // The second run uses the local copy.
        let o = env.run(["run", "--rm", &r, "true"]);
        assert!(!stderr(&o).contains("Unable to find"), "{}", stderr(&o));
        // --pull=always asks the registry again.
        let o = env.run(["run", "--pull=always", "--rm", &r, "true"]);
        assert!(stderr(&o).contains("Image is up to date"), "{}", stderr(&o));
        // Docker Hub through the proxy the harness sets (a closed loopback
        // port): the proxy is used, and fails at once.
        let o = env.run(["pull", "alpine"]);
        assert_eq!(o.status.code(), Some(125));
        assert!(
            stderr(&o).contains("cannot reach registry docker.io"),
            "{}",
            stderr(&o)
        );
        // With the registry gone, a missing image is one clear line.
        drop(reg);
        let o = env.run(["run", "--rm", "127.0.0.1:1/none:1", "true"]);
        assert_eq!(o.status.code(), Some(125));
        let err = stderr(&o);
        assert!(err.contains("cannot reach registry 127.0.0.1:1"), "{err}");
    }
}

#[test]
fn index_resolves_to_the_host_platform_or_the_one_asked() {
    if !tools("index_resolves_to_the_host_platform_or_the_one_asked") {
        return;
    }
    if std::env::consts::ARCH != "x86_64" {
        loud("SKIPPED index_resolves_to_the_host_platform_or_the_one_asked: the fixture's runnable entry is amd64");
        return;
    }
    for env in users("reg-index") {
        let f = fixture(env.busybox_tar());
        let reg = Registry::start(&f.storage, Auth::None);
        let r = format!("{}/multi:1", reg.host());
        assert_eq!(env.ok(["run", "--rm", &r]).trim(), "amd64");
        let arm = format!("{}/multi:1", reg.host());
        env.ok(["rmi", &arm]);
        env.ok(["pull", "-q", "--platform", "linux/arm64", &arm]);
        let i: Value = serde_json::from_str(&env.ok(["image", "inspect", &arm])).unwrap();
        assert_eq!(i[0]["Architecture"], json!("arm64"));
        let o = env.run(["pull", "--platform", "linux/s390x", &r]);
        assert_eq!(o.status.code(), Some(125));
        assert!(
            stderr(&o).contains("no image for platform linux/s390x"),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn zstd_layers_and_whiteouts() {
    if !tools("zstd_layers_and_whiteouts") {
        return;
    }
    for env in users("reg-layers") {
        let f = fixture(env.busybox_tar());
        let reg = Registry::start(&f.storage, Auth::None);
        assert_eq!(
            env.ok(["run", "--rm", &format!("{}/zst:1", reg.host())])
                .trim(),
            "zstd"
        );
        let wh = format!("{}/wh:1", reg.host());
        let out = env.ok([
            "run",
            "--rm",
            &wh,
            "sh",
            "-c",
            "test -e /etc/passwd && echo passwd-still-there; ls /etc/opaque; cat /etc/keep",
        ]);
        assert_eq!(
            out, "new\nkeep\n",
            "whiteout deleted passwd, opaque dir hid old"
        );
    }
}

/// One layer shared by two images is stored once.
#[test]
fn shared_layers_are_fetched_once() {
    if !tools("shared_layers_are_fetched_once") {
        return;
    }
    for env in users("reg-shared") {
        let f = fixture(env.busybox_tar());
        let reg = Registry::start(&f.storage, Auth::None);
        env.ok(["pull", &format!("{}/box:1", reg.host())]);
        let out = env.ok(["pull", &format!("{}/wh:1", reg.host())]);
        assert!(
            out.contains("Already exists"),
            "busybox layer reused: {out}"
        );
        assert_eq!(
            count_files(&env.root.join("layers")),
            3,
            "busybox + two wh layers"
        );
    }
}

fn htpasswd(user: &str, pass: &str) -> PathBuf {
    let p = scratch("htpasswd");
    let o = Command::new("htpasswd")
        .args(["-Bbn", user, pass])
        .output()
        .expect("htpasswd (apache2-utils)");
    assert!(o.status.success());
    std::fs::write(&p, o.stdout).unwrap();
    p
}

#[test]
fn basic_auth_login_pull_logout() {
    if !tools("basic_auth_login_pull_logout") {
        return;
    }
    if !have("htpasswd") {
        loud("SKIPPED basic_auth_login_pull_logout: htpasswd is not installed (apt-get install apache2-utils)");
        return;
    }
    for env in users("reg-basic") {
        let f = fixture(env.busybox_tar());
        let reg = Registry::start(
            &f.storage,
            Auth::Basic {
                htpasswd: htpasswd("alice", "s3cret"),
            },
        );
        let r = format!("{}/box:1", reg.host());
        let o = env.run(["pull", &r]);
        assert_eq!(o.status.code(), Some(125));
        assert!(
            stderr(&o).contains(&format!("burrow login {}", reg.host())),
            "{}",
            stderr(&o)
        );
        let config = env.home.join(".docker/config.json");
        let o = env.run(["login", "-u", "alice", "-p", "wrong", &reg.host()]);
        assert_eq!(o.status.code(), Some(125), "{}", stdout(&o));
        assert!(!config.exists(), "a refused login saves nothing");
        let mut c = env.cmd(["login", "-u", "alice", "--password-stdin", &reg.host()]);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        child.stdin.take().unwrap().write_all(b"s3cret\n").unwrap();
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(stdout(&o).contains("Login Succeeded"));
        let meta = std::fs::metadata(&config).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let saved: Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
        assert!(saved["auths"][reg.host()]["auth"].is_string(), "{saved}");
        assert_eq!(
            env.ok(["run", "--rm", &r, "echo", "authed"]).trim(),
            "authed"
        );
        env.ok(["logout", &reg.host()]);
        let saved: Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
        assert!(saved["auths"].get(reg.host()).is_none(), "{saved}");
        env.ok(["rmi", &r]);
        assert_eq!(env.run(["pull", &r]).status.code(), Some(125));

        // With a credsStore helper, the secret goes to the helper, not the file.
        let bin = env.user_dir("bin");
        let kept = env.home.join("helper-kept.json");
        let helper = bin.join("docker-credential-fake");
        std::fs::write(
            &helper,
            format!(
                "#!/bin/sh\ncase \"$1\" in\n store) cat > {k} ;;\n get) cat > /dev/null; [ -s {k} ] && cat {k} || {{ echo 'credentials not found' >&2; exit 1; }} ;;\n erase) rm -f {k} ;;\nesac\n",
                k = kept.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(&config, r#"{"credsStore":"fake"}"#).unwrap();
        env.share(&config);
        let path = format!("{}:/usr/bin:/bin:/usr/sbin:/sbin", bin.display());
        let with_helper = |args: &[&str]| env.cmd(args).env("PATH", &path).output().unwrap();
        let o = with_helper(&["login", "-u", "alice", "-p", "s3cret", &reg.host()]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let kept_text = std::fs::read_to_string(&kept).unwrap();
        assert!(
            kept_text.contains("s3cret") && kept_text.contains(&reg.host()),
            "{kept_text}"
        );
        assert_eq!(
            std::fs::read_to_string(&config).unwrap(),
            r#"{"credsStore":"fake"}"#
        );
        let o = with_helper(&["pull", "-q", &r]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let o = with_helper(&["logout", &reg.host()]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(!kept.exists(), "logout erased it from the helper");
    }
}

/// A tiny HTTP/1.1 server on a free loopback port: one thread per
/// connection, one request per connection, `handler` writes the answer.
fn serve(
    handler: impl Fn(&mut TcpStream, &str, &BTreeMap<String, String>) + Send + Sync + 'static,
) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handler = Arc::new(handler);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let handler = handler.clone();
            std::thread::spawn(move || {
                if let Some((path, headers)) = read_request(&mut conn) {
                    handler(&mut conn, &path, &headers);
                }
            });
        }
    });
    port
}

fn reply(conn: &mut TcpStream, status: &str, extra: &[(&str, &str)], body: &[u8]) {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(body);
}

/// A token service for a Bearer challenge: hands out a token for any
/// request and records the scopes it was asked for.
struct TokenService {
    port: u16,
    scopes: Arc<Mutex<Vec<String>>>,
}

impl TokenService {
    fn start() -> TokenService {
        let scopes = Arc::new(Mutex::new(Vec::new()));
        let seen = scopes.clone();
        let port = serve(move |conn, path, _| {
            let query = path.split_once('?').map_or("", |(_, q)| q);
            for kv in query.split('&') {
                if let Some(v) = kv.strip_prefix("scope=") {
                    seen.lock().unwrap().push(unescape(v));
                }
            }
            let body = br#"{"token":"burrow-test-token","expires_in":300}"#;
            reply(
                conn,
                "200 OK",
                &[("Content-Type", "application/json")],
                body,
            );
        });
        TokenService { port, scopes }
    }
}

fn unescape(s: &str) -> String {
    let mut out = Vec::new();
    let mut rest = s.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        let hex = tail.get(..2).and_then(|h| std::str::from_utf8(h).ok());
        match (b, hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                rest = &tail[2..];
            }
            _ => {
                out.push(b);
                rest = tail;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// Read one request head: (path, headers).
fn read_request(conn: &mut TcpStream) -> Option<(String, BTreeMap<String, String>)> {
    let mut r = BufReader::new(conn.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    Some((path, headers))
}

#[test]
fn bearer_token_dance_pull_and_push() {
    if !tools("bearer_token_dance_pull_and_push") {
        return;
    }
    for env in users("reg-bearer") {
        let f = fixture(env.busybox_tar());
        let tokens = TokenService::start();
        let storage = storage_copy(f, &format!("bearer-{:?}", env.who));
        let reg = Registry::start(
            &storage,
            Auth::Bearer {
                realm: format!("http://127.0.0.1:{}/token", tokens.port),
            },
        );
        let r = format!("{}/box:1", reg.host());
        assert_eq!(env.ok(["run", "--rm", &r, "echo", "token"]).trim(), "token");
        let asked = tokens.scopes.lock().unwrap().clone();
        assert!(
            asked.contains(&"repository:box:pull".to_string()),
            "{asked:?}"
        );
        let dest = format!("{}/copied/box:2", reg.host());
        env.ok(["tag", &r, &dest]);
        env.ok(["push", &dest]);
        let asked = tokens.scopes.lock().unwrap().clone();
        assert!(
            asked.contains(&"repository:copied/box:pull,push".to_string()),
            "{asked:?}"
        );
    }
}

#[test]
fn push_then_pull_gives_the_same_image() {
    if !tools("push_then_pull_gives_the_same_image") {
        return;
    }
    for env in users("reg-push") {
        let f = fixture(env.busybox_tar());
        let storage = storage_copy(f, &format!("push-{:?}", env.who));
        let reg = Registry::start(&storage, Auth::None);
        // An imported image, pushed and pulled back into a clean store.
        let id = env.import_busybox("localbox");
        let dest = format!("{}/mine/localbox:1", reg.host());
        env.ok(["tag", "localbox", &dest]);
        let out = env.ok(["push", &dest]);
        assert!(out.contains("Pushed"), "{out}");
        assert!(out.contains("1: digest: sha256:"), "{out}");
        let o = Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--raw"])
            .arg(format!("docker://{dest}"))
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "skopeo reads the pushed manifest: {}",
            stderr(&o)
        );
        let clean = Env::new(env.who, &format!("reg-push-clean-{:?}", env.who)).unwrap();
        clean.ok(["pull", "-q", &dest]);
        let i: Value = serde_json::from_str(&clean.ok(["image", "inspect", &dest])).unwrap();
        assert_eq!(i[0]["Id"], json!(id), "same image id after a round trip");
        assert_eq!(
            clean.ok(["run", "--rm", &dest, "echo", "round"]).trim(),
            "round"
        );
        // A pulled image pushed elsewhere gives the same manifest digest.
        let src = format!("{}/box:1", reg.host());
        clean.ok(["pull", "-q", &src]);
        let i: Value = serde_json::from_str(&clean.ok(["image", "inspect", &src])).unwrap();
        let pulled_digest = i[0]["RepoDigests"][0]
            .as_str()
            .unwrap()
            .split('@')
            .nth(1)
            .unwrap()
            .to_string();
        let again = format!("{}/again/box:1", reg.host());
        clean.ok(["tag", &src, &again]);
        let out = clean.ok(["push", &again]);
        assert!(
            out.contains("Mounted from box") || out.contains("Layer already exists"),
            "{out}"
        );
        assert!(
            out.contains(&format!("1: digest: {pulled_digest}")),
            "{out}"
        );
    }
}

/// GET a URL from the loopback registry with curl.
fn http_get(url: &str) -> Vec<u8> {
    let o = Command::new("curl").args(["-sfL", url]).output().unwrap();
    assert!(o.status.success(), "curl {url}: {}", stderr(&o));
    o.stdout
}

/// The layer lines of push output: `<id>: Pushed` and the like.
fn layer_lines(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| {
            l.ends_with(": Pushed")
                || l.ends_with(": Layer already exists")
                || l.contains(": Mounted from ")
        })
        .collect()
}

/// An imported image's layer is kept as the plain tar it came as; push
/// sends it gzip-compressed, as Docker and podman do (the config's diff id
/// stays the tar's), and says per layer what the registry got: `Pushed`,
/// then `Layer already exists` when pushed again, and `Mounted from REPO`
/// into another repository. The config blob is not a layer line.
#[test]
fn push_gzips_a_plain_layer_and_says_what_each_layer_took() {
    if !tools("push_gzips_a_plain_layer_and_says_what_each_layer_took") {
        return;
    }
    if !have("curl") {
        loud(
            "SKIPPED push_gzips_a_plain_layer_and_says_what_each_layer_took: curl is not installed",
        );
        return;
    }
    for env in users("reg-push-gzip") {
        let storage = scratch(&format!("push-gzip-{:?}", env.who));
        std::fs::create_dir_all(&storage).unwrap();
        let reg = Registry::start(&storage, Auth::None);
        let tar = std::fs::read(env.busybox_tar()).unwrap();
        let id = env.import_busybox("gzbox");
        let first = format!("{}/first/gzbox:1", reg.host());
        env.ok(["tag", "gzbox", &first]);
        let out = env.ok(["push", &first]);
        assert_eq!(layer_lines(&out).len(), 1, "one layer line:\n{out}");
        assert!(layer_lines(&out)[0].ends_with(": Pushed"), "{out}");
        assert!(
            !out.contains(&id[7..19]),
            "the config blob is not listed as a layer:\n{out}"
        );

        let base = format!("http://{}/v2/first/gzbox", reg.host());
        let o = Command::new("curl")
            .args([
                "-sf",
                "-H",
                "Accept: application/vnd.oci.image.manifest.v1+json",
            ])
            .arg(format!("{base}/manifests/1"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let m: Value = serde_json::from_slice(&o.stdout).unwrap();
        let layer = &m["layers"][0];
        assert_eq!(
            layer["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip",
            "{m}"
        );
        let digest = layer["digest"].as_str().unwrap();
        let blob = http_get(&format!("{base}/blobs/{digest}"));
        assert_eq!(sha(&blob), digest);
        assert_eq!(layer["size"].as_u64().unwrap(), blob.len() as u64);
        assert!(
            blob.len() < tar.len(),
            "gzip {} bytes, tar {}",
            blob.len(),
            tar.len()
        );
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&blob[..]), &mut plain)
            .unwrap();
        assert!(plain == tar, "the blob decompresses to the imported tar");
        let config: Value = serde_json::from_slice(&http_get(&format!(
            "{base}/blobs/{}",
            m["config"]["digest"].as_str().unwrap()
        )))
        .unwrap();
        assert_eq!(config["rootfs"]["diff_ids"][0], json!(sha(&tar)));
        assert_eq!(m["config"]["digest"], json!(id));

        // Again: the registry has it.
        let out = env.ok(["push", &first]);
        let lines = layer_lines(&out);
        assert_eq!(lines.len(), 1, "{out}");
        assert!(lines[0].ends_with(": Layer already exists"), "{out}");

        // Another repository of the same registry: mounted, not sent.
        let second = format!("{}/second/gzbox:1", reg.host());
        env.ok(["tag", "gzbox", &second]);
        let out = env.ok(["push", &second]);
        let lines = layer_lines(&out);
        assert_eq!(lines.len(), 1, "{out}");
        assert!(lines[0].ends_with(": Mounted from first/gzbox"), "{out}");

        // Pulled back into a clean store, it runs.
        let clean = Env::new(env.who, &format!("reg-push-gzip-clean-{:?}", env.who)).unwrap();
        clean.ok(["pull", "-q", &second]);
        assert_eq!(
            clean
                .ok(["run", "--rm", "--network", "none", &second, "echo", "gz"])
                .trim(),
            "gz"
        );
    }
}

#[test]
fn corrupt_blob_leaves_the_store_as_it_was() {
    if !tools("corrupt_blob_leaves_the_store_as_it_was") {
        return;
    }
    for env in users("reg-corrupt") {
        let f = fixture(env.busybox_tar());
        let storage = storage_copy(f, &format!("corrupt-{:?}", env.who));
        let hex = &f.busybox_layer[7..];
        let data = storage.join(format!(
            "docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ));
        let mut bytes = std::fs::read(&data).unwrap();
        let n = bytes.len();
        bytes[n / 2] ^= 0xff;
        std::fs::write(&data, bytes).unwrap();
        let reg = Registry::start(&storage, Auth::None);
        env.ok(["images"]);
        let before = images(&env);
        let o = env.run(["pull", &format!("{}/box:1", reg.host())]);
        assert_eq!(o.status.code(), Some(125));
        let err = stderr(&o);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(
            err.contains("digest mismatch")
                || err.contains("reading layer archive")
                || err.contains("corrupt"),
            "{err}"
        );
        assert_eq!(images(&env), before);
        assert_eq!(count_files(&env.root.join("layers")), 0);
        assert_eq!(count_files(&env.root.join("blobs/sha256")), 0);
        assert_eq!(count_files(&env.root.join("tmp")), 0, "staging removed");
    }
}

/// What a stalled blob transfer does next.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Next {
    Stall,
    Cut,
    Finish,
}

/// Serves one image from memory, as repository `stall`: its big blob stalls
/// after half the bytes until the test says to cut the connection or to
/// send the rest.
struct StallServer {
    port: u16,
    next: Arc<Mutex<Next>>,
}

impl StallServer {
    fn start(
        blobs: impl Fn(&str) -> Option<Vec<u8>> + Send + Sync + 'static,
        tag_manifest: String,
    ) -> StallServer {
        let next = Arc::new(Mutex::new(Next::Stall));
        let state = next.clone();
        let port = serve(move |conn, path, _| {
            if path == "/v2/" {
                return reply(conn, "200 OK", &[], b"{}");
            }
            if let Some(rest) = path.strip_prefix("/v2/stall/manifests/") {
                let d = if rest == "1" {
                    tag_manifest.as_str()
                } else {
                    rest
                };
                return match blobs(d) {
                    Some(b) => reply(
                        conn,
                        "200 OK",
                        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
                        &b,
                    ),
                    None => reply(conn, "404 Not Found", &[], b""),
                };
            }
            let Some(b) = path.strip_prefix("/v2/stall/blobs/").and_then(&blobs) else {
                return reply(conn, "404 Not Found", &[], b"");
            };
            if b.len() < 4096 {
                return reply(conn, "200 OK", &[], &b);
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                b.len()
            );
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(&b[..b.len() / 2]);
            let deadline = Instant::now() + Duration::from_secs(60);
            while *state.lock().unwrap() == Next::Stall && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if *state.lock().unwrap() == Next::Finish {
                let _ = conn.write_all(&b[b.len() / 2..]);
            }
            // Otherwise the connection drops: the registry "dies".
        });
        StallServer { port, next }
    }
}

/// The fixture registry's storage as a blob lookup, and `box:1`'s manifest digest.
fn fixture_blobs(
    f: &Fixture,
) -> (
    impl Fn(&str) -> Option<Vec<u8>> + Send + Sync + 'static,
    String,
) {
    let root = f.storage.join("docker/registry/v2");
    let link = root.join("repositories/box/_manifests/tags/1/current/link");
    let manifest_digest = std::fs::read_to_string(link).unwrap().trim().to_string();
    let lookup = move |d: &str| {
        let hex = d.strip_prefix("sha256:")?;
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        std::fs::read(root.join(format!("blobs/sha256/{}/{hex}/data", &hex[..2]))).ok()
    };
    (lookup, manifest_digest)
}

fn stall_server(f: &Fixture) -> StallServer {
    let (lookup, manifest) = fixture_blobs(f);
    StallServer::start(lookup, manifest)
}

/// A registry that wants a Bearer token and sends blobs to a "CDN" on
/// another port: the token must not travel there.
#[test]
fn redirects_to_blob_storage_carry_no_authorization() {
    if !tools("redirects_to_blob_storage_carry_no_authorization") {
        return;
    }
    for env in users("reg-redirect") {
        let f = fixture(env.busybox_tar());
        let tokens = TokenService::start();
        let (lookup, manifest) = fixture_blobs(f);
        let lookup = Arc::new(lookup);
        let cdn_seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
        let seen = cdn_seen.clone();
        let cdn_lookup = lookup.clone();
        let cdn = serve(move |conn, path, headers| {
            seen.lock()
                .unwrap()
                .push(headers.get("authorization").cloned());
            match path.strip_prefix("/blob/").and_then(|d| cdn_lookup(d)) {
                Some(b) => reply(conn, "200 OK", &[], &b),
                None => reply(conn, "404 Not Found", &[], b""),
            }
        });
        let realm = format!("http://127.0.0.1:{}/token", tokens.port);
        let reg = serve(move |conn, path, headers| {
            let challenge = format!(r#"Bearer realm="{realm}",service="burrow-test""#);
            if headers.get("authorization").map(String::as_str) != Some("Bearer burrow-test-token")
            {
                return reply(
                    conn,
                    "401 Unauthorized",
                    &[("WWW-Authenticate", &challenge)],
                    b"",
                );
            }
            if path == "/v2/" {
                return reply(conn, "200 OK", &[], b"{}");
            }
            if let Some(rest) = path.strip_prefix("/v2/cdn/manifests/") {
                let d = if rest == "1" { manifest.as_str() } else { rest };
                return match lookup(d) {
                    Some(b) => reply(
                        conn,
                        "200 OK",
                        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
                        &b,
                    ),
                    None => reply(conn, "404 Not Found", &[], b""),
                };
            }
            match path.strip_prefix("/v2/cdn/blobs/") {
                Some(d) => {
                    let to = format!("http://127.0.0.1:{cdn}/blob/{d}");
                    reply(conn, "307 Temporary Redirect", &[("Location", &to)], b"");
                }
                None => reply(conn, "404 Not Found", &[], b""),
            }
        });
        let r = format!("127.0.0.1:{reg}/cdn:1");
        assert_eq!(
            env.ok(["run", "--rm", &r, "echo", "via-cdn"]).trim(),
            "via-cdn"
        );
        let seen = cdn_seen.lock().unwrap().clone();
        assert!(
            seen.len() >= 2,
            "config and layer came from the CDN: {seen:?}"
        );
        assert!(
            seen.iter().all(Option::is_none),
            "no Authorization sent to the CDN: {seen:?}"
        );
        assert!(tokens
            .scopes
            .lock()
            .unwrap()
            .contains(&"repository:cdn:pull".to_string()));
    }
}

#[test]
fn a_registry_that_dies_or_a_killed_pull_leaves_nothing() {
    if !tools("a_registry_that_dies_or_a_killed_pull_leaves_nothing") {
        return;
    }
    for env in users("reg-killed") {
        let f = fixture(env.busybox_tar());
        env.ok(["images"]);
        let before = images(&env);
        let server = stall_server(f);
        let r = format!("127.0.0.1:{}/stall:1", server.port);
        // The registry cuts the connection mid-blob.
        let child = spawn(env.cmd(["pull", &r]));
        let tmp = env.root.join("tmp");
        wait_until("a pull staging dir", Duration::from_secs(20), || {
            count_files(&tmp) > 0
        });
        std::thread::sleep(Duration::from_millis(300));
        *server.next.lock().unwrap() = Next::Cut;
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
        assert_eq!(stderr(&o).trim().lines().count(), 1, "{}", stderr(&o));
        assert_eq!(images(&env), before);
        assert_eq!(count_files(&tmp), 0);
        *server.next.lock().unwrap() = Next::Stall;

        // burrow killed mid-pull: nothing listed, debris reclaimed next time.
        let mut child = spawn(env.cmd(["pull", &r]));
        wait_until("a pull staging dir", Duration::from_secs(20), || {
            count_files(&tmp) > 0
        });
        std::thread::sleep(Duration::from_millis(300));
        // The whole process group: burrow and its user-namespace child.
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = child.wait();
        *server.next.lock().unwrap() = Next::Cut;
        assert!(
            count_files(&tmp) > 0,
            "the killed pull left its staging dir"
        );
        assert_eq!(images(&env), before, "and nothing is listed");
        assert_eq!(count_files(&tmp), 0, "the next command reclaimed it");
        assert_eq!(count_files(&env.root.join("blobs/sha256")), 0);
        assert_eq!(count_files(&env.root.join("layers")), 0);
    }
}

#[test]
fn pull_shows_a_bar_per_layer_on_a_terminal() {
    let test = "pull_shows_a_bar_per_layer_on_a_terminal";
    if !tools(test) || !common::have_tmux(test) {
        return;
    }
    let Some(env) = Env::new(common::Who::Range, "reg-bars")
        .or_else(|| Env::new(common::Who::Single, "reg-bars"))
    else {
        return;
    };
    let f = fixture(env.busybox_tar());
    let server = stall_server(f);
    let r = format!("127.0.0.1:{}/stall:1", server.port);
    let t = common::Term::start(&env, "bars", &format!("pull {r}"), 120, 12);
    let short = &f.busybox_layer[7..19];
    wait_until(
        "a progress bar for the stalled layer",
        Duration::from_secs(20),
        || {
            let s = t.screen();
            s.contains(short) && s.contains("Downloading") && s.contains("iB/")
        },
    );
    *server.next.lock().unwrap() = Next::Finish;
    wait_until("the pull to end", Duration::from_secs(30), || {
        env.home.join("bars-exit").exists()
    });
    assert_eq!(t.exit_code(), "0");
    assert!(env.ok(["images"]).contains("stall"));
}
