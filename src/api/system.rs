//! `/_ping`, `/version` and `/info`: what clients read first.

use serde_json::json;

use super::http::{self, Conn, Request};
use super::server::Stream;
use super::{reply, Handled, Next, API_VERSION, MIN_API_VERSION};
use crate::engine::Engine;

/// `GET|HEAD /_ping`: the headers clients negotiate with. `Builder-Version:
/// 1` makes the docker CLI use the classic `/build`.
pub fn ping(conn: &mut Conn<Stream>, req: &Request) -> Handled {
    let _ = conn.read_body(req, http::MAX_JSON_BODY);
    let body = b"OK";
    let head_only = req.method == "HEAD";
    let mut out = String::from("HTTP/1.1 200 OK\r\n");
    for (k, v) in http::common_headers() {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("Builder-Version: 1\r\nCache-Control: no-cache, no-store, must-revalidate\r\nPragma: no-cache\r\nContent-Type: text/plain; charset=utf-8\r\n");
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = out.into_bytes();
    if !head_only {
        bytes.extend_from_slice(body);
    }
    use std::io::Write;
    conn.stream.write_all(&bytes)?;
    Ok(Next::Continue)
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        other => other,
    }
}

fn kernel() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `GET /version`: docker-py needs `ApiVersion`; Testcontainers looks at
/// `Platform.Name` and `Components` to tell engines apart.
pub fn version(conn: &mut Conn<Stream>) -> Handled {
    let v = env!("CARGO_PKG_VERSION");
    reply(
        &mut conn.stream,
        200,
        &json!({
            "Platform": {"Name": "burrow"},
            "Components": [{
                "Name": "Engine",
                "Version": v,
                "Details": {
                    "ApiVersion": API_VERSION,
                    "MinAPIVersion": MIN_API_VERSION,
                    "Os": "linux",
                    "Arch": arch(),
                    "KernelVersion": kernel(),
                }
            }],
            "Version": v,
            "ApiVersion": API_VERSION,
            "MinAPIVersion": MIN_API_VERSION,
            "GitCommit": option_env!("BURROW_GIT_COMMIT").unwrap_or(""),
            "GoVersion": "",
            "Os": "linux",
            "Arch": arch(),
            "KernelVersion": kernel(),
            "BuildTime": "",
        }),
    )
}

/// `GET /info`: counts and the host, in Docker's field names (compose
/// reads `Swarm.LocalNodeState`).
pub fn info(engine: &Engine, conn: &mut Conn<Stream>) -> Handled {
    let i = match crate::engine::system::info(engine) {
        Ok(i) => i,
        Err(e) => return super::engine_error(&mut conn.stream, &e),
    };
    reply(
        &mut conn.stream,
        200,
        &json!({
            "ID": "",
            "Containers": i.containers,
            "ContainersRunning": i.containers_running,
            "ContainersPaused": i.containers_paused,
            "ContainersStopped": i.containers_stopped,
            "Images": i.images,
            "Driver": i.driver,
            "DockerRootDir": i.docker_root_dir,
            "OSType": i.os_type,
            "OperatingSystem": os_name(),
            "Architecture": i.architecture,
            "KernelVersion": i.kernel_version,
            "NCPU": i.ncpu,
            "MemTotal": mem_total(),
            "Name": i.name,
            "ServerVersion": i.server_version,
            "CgroupVersion": "2",
            "SecurityOptions": ["name=seccomp,profile=default", "name=rootless"],
            "Swarm": {"LocalNodeState": "inactive", "NodeID": "", "ControlAvailable": false},
            "Runtimes": {"burrow": {"path": "burrow"}},
            "DefaultRuntime": "burrow",
            "LoggingDriver": "json-file",
            "Labels": [],
            "Debug": false,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {"IndexConfigs": {}, "InsecureRegistryCIDRs": ["127.0.0.0/8"]},
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "none"], "Log": ["json-file", "k8s-file", "none"]},
        }),
    )
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".into())
}

fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
        })
        .map_or(0, |k| k * 1024)
}
