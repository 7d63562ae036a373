//! Hostile input end to end, as an unprivileged user: compression bombs
//! and an oversized PAX header through `import` (bounded by the disk, not
//! memory: the store sits on a small tmpfs), and a registry that serves
//! malformed, huge or lying manifests and configs (a small server in this
//! process, since a real registry refuses to serve them). Each gives one
//! clear line, a non-zero exit, and the store as it was.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use common::{loud, stderr, users};
use sha2::{Digest, Sha256};

fn sha(b: &[u8]) -> String {
    format!(
        "sha256:{}",
        Sha256::digest(b)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

/// The largest resident size of any child this process has waited for, in
/// KiB (burrow waits for its own helpers, so theirs count too).
fn children_max_rss_kib() -> i64 {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_CHILDREN).unwrap().max_rss()
}

/// A tar stream header for one regular file (or an extended header).
fn tar_header(name: &str, kind: tar::EntryType, size: u64) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_path(name).unwrap();
    h.set_mode(0o644);
    h.set_size(size);
    h.set_cksum();
    h.as_bytes().to_vec()
}

/// `head`, `zeros` zero bytes and the end-of-archive blocks, compressed by
/// `compressor` (the CLI, so the bomb costs the test no time or memory).
fn bomb(out: &Path, head: &[u8], zeros: u64, compressor: &str) {
    let mut child = Command::new(compressor)
        .args(["-1", "-c"])
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(out).unwrap())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(head).unwrap();
    let chunk = vec![0u8; 1 << 20];
    let mut left = zeros + 1024;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        stdin.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
    std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// Unmounts the tmpfs on drop.
#[test]
fn compression_and_header_bombs_are_bounded_by_the_disk_not_memory() {
    if !nix::unistd::Uid::effective().is_root() {
        loud("SKIPPED compression_and_header_bombs_are_bounded_by_the_disk_not_memory: mounting a small tmpfs needs root");
        return;
    }
    let Some(mut env) = common::Env::new(common::Who::Range, "bombs") else {
        return;
    };
    let scratch = env.user_dir("bombs");
    const GIB: u64 = 1 << 30;
    let file = tar_header("zeros", tar::EntryType::Regular, GIB);
    let gz = scratch.join("zeros.tar.gz");
    bomb(&gz, &file, GIB, "gzip");
    let zst = scratch.join("zeros.tar.zst");
    bomb(&zst, &file, GIB, "zstd");
    // A PAX header claiming half a GiB, which the tar crate would hold in
    // memory whole.
    let pax = tar_header("PaxHeaders/x", tar::EntryType::XHeader, GIB / 2);
    let paxgz = scratch.join("pax.tar.gz");
    bomb(&paxgz, &pax, GIB / 2, "gzip");

    let _mounted = env.store_on_tmpfs("64m");
    env.import_busybox("base");
    let before = common::listing(&env.root);
    for (archive, says) in [
        (&gz, "no space left on device"),
        (&zst, "no space left on device"),
        (&paxgz, "extended headers"),
    ] {
        let o = env.run(["import", archive.to_str().unwrap(), "bomb:1"]);
        let err = stderr(&o);
        eprintln!(
            "{}: {:?} {}",
            archive.display(),
            o.status.code(),
            err.trim()
        );
        assert_eq!(o.status.code(), Some(125), "{err}");
        assert!(err.to_lowercase().contains(says), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert_eq!(common::listing(&env.root), before, "the store is as before");
        env.check_passes(archive.to_str().unwrap());
    }
    let rss = children_max_rss_kib();
    eprintln!("largest child resident size: {rss} KiB");
    assert!(rss < 256 * 1024, "a bomb grew a process to {rss} KiB");
}

// ---------------------------------------------------------------------------
// A registry that lies.

type Routes = BTreeMap<String, (String, Vec<u8>)>;

/// Serve `routes` (path → content type, body) on loopback until the test
/// process ends; anything else is a 404.
fn serve(routes: Routes) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let routes = Arc::new(routes);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let routes = routes.clone();
            std::thread::spawn(move || answer(conn, &routes));
        }
    });
    port
}

fn answer(mut conn: TcpStream, routes: &Routes) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
            break;
        }
    }
    let (status, ctype, body) = match routes.get(&path) {
        Some((t, b)) => ("200 OK", t.as_str(), &b[..]),
        None if path == "/v2/" => ("200 OK", "application/json", &b"{}"[..]),
        None => ("404 Not Found", "application/json", &b"{}"[..]),
    };
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(body);
}

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn manifest_of(config: &[u8], layers: &[(String, u64)]) -> Vec<u8> {
    let layers: Vec<serde_json::Value> = layers
        .iter()
        .map(|(d, s)| {
            serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": d, "size": s})
        })
        .collect();
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha(config), "size": config.len()},
        "layers": layers,
    })
    .to_string()
    .into_bytes()
}

#[test]
fn a_registry_that_serves_malformed_huge_or_lying_documents() {
    let good_config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    let mut routes = Routes::new();
    let mut put = |repo: &str, reference: &str, body: Vec<u8>| {
        routes.insert(
            format!("/v2/{repo}/manifests/{reference}"),
            (MANIFEST.to_string(), body),
        );
    };
    // Manifests: not JSON; 5 MiB (the limit is 4); valid, but not what
    // the digest asked for names.
    put(
        "malformed",
        "1",
        br#"{"schemaVersion": 2, "layers": "#.to_vec(),
    );
    let mut huge = manifest_of(&good_config, &[]);
    huge.truncate(huge.len() - 1);
    huge.extend(std::iter::repeat_n(b' ', 5 << 20));
    huge.push(b'}');
    put("huge", "1", huge);
    let real = manifest_of(&good_config, &[]);
    let other = sha(b"something else");
    put("lying", &other, real.clone());
    // Configs: bytes that do not hash to the digest the manifest names; 9
    // MiB (the limit is 8); not JSON; layer counts that disagree.
    let blob = |routes: &mut Routes, repo: &str, digest: &str, body: Vec<u8>| {
        routes.insert(
            format!("/v2/{repo}/blobs/{digest}"),
            ("application/octet-stream".to_string(), body),
        );
    };
    let mut cases: Vec<(&str, &str)> = vec![
        ("malformed", "malformed"),
        ("huge", "larger than"),
        ("lying", "digest"),
    ];
    let configs: Vec<(&str, Vec<u8>, Vec<u8>, &str)> = vec![
        (
            "badconfig",
            good_config.clone(),
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["x"]}}"#
                .to_vec(),
            "digest",
        ),
        (
            "hugeconfig",
            {
                let mut c = good_config.clone();
                c.truncate(c.len() - 1);
                c.extend(std::iter::repeat_n(b' ', 9 << 20));
                c.push(b'}');
                c
            },
            Vec::new(),
            "larger than",
        ),
        ("notjson", b"not json at all".to_vec(), Vec::new(), "config"),
        (
            "counts",
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
                .to_vec(),
            Vec::new(),
            "layers",
        ),
    ];
    for (repo, config, served, says) in &configs {
        // "counts" names one layer the config does not list.
        let layers = if *repo == "counts" {
            vec![(sha(b"layer"), 5)]
        } else {
            Vec::new()
        };
        let m = manifest_of(config, &layers);
        routes.insert(format!("/v2/{repo}/manifests/1"), (MANIFEST.to_string(), m));
        let body = if served.is_empty() {
            config.clone()
        } else {
            served.clone()
        };
        blob(&mut routes, repo, &sha(config), body);
        cases.push((repo, says));
    }
    let port = serve(routes);
    for env in users("lying-registry") {
        env.import_busybox("base");
        let before = common::listing(&env.root);
        for (repo, says) in &cases {
            let reference = if *repo == "lying" {
                format!("127.0.0.1:{port}/{repo}@{other}")
            } else {
                format!("127.0.0.1:{port}/{repo}:1")
            };
            let o = env.run(["pull", "-q", &reference]);
            let err = stderr(&o);
            eprintln!("{repo}: {}", err.trim());
            assert_eq!(o.status.code(), Some(125), "{repo}: {err}");
            assert!(err.to_lowercase().contains(says), "{repo}: {err}");
            assert_eq!(err.trim().lines().count(), 1, "{repo}: one line: {err}");
            assert_eq!(
                common::listing(&env.root),
                before,
                "{repo}: the store is as before"
            );
        }
        env.check_passes("after the lying registry");
    }
}
