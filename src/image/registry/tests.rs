//! Tests of the distribution client that need no registry: which hosts are loopback, where a redirect goes, and errors on one line.

use super::*;

#[test]
fn loopback_hosts() {
    for h in [
        "localhost",
        "localhost:5000",
        "127.0.0.1:5000",
        "127.9.9.9",
        "[::1]:5000",
    ] {
        assert!(is_loopback(h), "{h}");
    }
    for h in ["docker.io", "10.0.0.1:5000", "quay.io", "[2001:db8::1]:443"] {
        assert!(!is_loopback(h), "{h}");
    }
    assert_eq!(api_host("docker.io"), DOCKER_HUB_HOST);
    assert_eq!(api_host("ghcr.io"), "ghcr.io");
}

#[test]
fn locations() {
    let base = "http://127.0.0.1:5000/v2/a/blobs/uploads/";
    assert_eq!(
        resolve_location(base, "/v2/a/blobs/uploads/x?_state=1"),
        "http://127.0.0.1:5000/v2/a/blobs/uploads/x?_state=1"
    );
    assert_eq!(resolve_location(base, "https://cdn/x"), "https://cdn/x");
    assert_eq!(authority("https://h:1/p/q"), "https://h:1");
    assert_eq!(authority("https://h"), "https://h");
}

#[test]
fn registry_errors_become_one_line() {
    assert_eq!(
        error_message(
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#
        ),
        "MANIFEST_UNKNOWN: manifest unknown"
    );
    assert_eq!(error_message(b"<html>\n<body>"), "<html>");
}
