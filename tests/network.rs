//! Networking as the unprivileged users: the seeds' colour app published
//! with `-p`, taken and freed ports, `--network none|private|host` against a
//! server on the host's loopback, outbound access through slirp4netns and
//! pasta to a server in a network namespace the test creates, UDP
//! publishing, and the built-in forwarder with neither helper installed.
//! Traffic stays on loopback and in namespaces the test makes.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{loud, shell_line, stderr, stdout, users, wait_until, Env};

/// A TCP port nobody listens on right now (the kernel's pick).
fn free_port() -> u16 {
    TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET / on 127.0.0.1:port, retried while the app starts.
fn fetch(port: u16) -> String {
    fetch_at(SocketAddr::from(([127, 0, 0, 1], port)))
}

/// GET / on `addr`, retried while the app starts.
fn fetch_at(addr: SocketAddr) -> String {
    let port = addr.port();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = (|| -> std::io::Result<String> {
            let mut s = TcpStream::connect(addr)?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
            let mut body = String::new();
            s.read_to_string(&mut body)?;
            Ok(body)
        })();
        match got {
            Ok(b) if b.contains("200 OK") => return b,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            other => panic!("no page on port {port}: {other:?}"),
        }
    }
}

/// The colour app's image, built once per test binary with rootfs-tools.
fn colour_tar(env: &Env) -> PathBuf {
    let tar = env.shared_dir().join("colour.tar");
    if !tar.exists() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("rootfs-tools/colour.sh");
        let part = env
            .shared_dir()
            .join(format!("colour.tar.{:?}", std::thread::current().id()));
        let st = Command::new("bash")
            .arg(&script)
            .arg(&part)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "rootfs-tools/colour.sh failed");
        env.share(&part);
        std::fs::rename(&part, &tar).unwrap();
    }
    tar
}

fn import_colour(env: &Env) {
    env.ok([
        "import",
        colour_tar(env).to_str().unwrap(),
        "colour",
        "--change",
        "EXPOSE 3000",
        "--change",
        r#"CMD ["/app/serve"]"#,
    ]);
}

#[test]
fn the_colour_app_is_published_and_taken_and_freed_ports_behave() {
    for env in users("colour") {
        import_colour(&env);
        let (p1, p2) = (free_port(), free_port());
        env.ok([
            "run",
            "-d",
            "--name",
            "red",
            "-p",
            &format!("{p1}:3000"),
            "colour",
        ]);
        env.ok([
            "run",
            "-d",
            "--name",
            "blue",
            "-p",
            &format!("{p2}:3000"),
            "-e",
            "COLOR=blue",
            "colour",
        ]);
        let page = fetch(p1);
        assert!(page.contains("background-color: white"), "{page}");
        let page = fetch(p2);
        assert!(page.contains("background-color: blue"), "{page}");

        // ps, port and inspect say where.
        let ps = env.ok(["ps"]);
        assert!(ps.contains(&format!("0.0.0.0:{p1}->3000/tcp")), "{ps}");
        // Published on every address: IPv4 and, where the host has it,
        // IPv6 (as Docker does).
        let ipv6 = std::fs::read_to_string("/proc/net/if_inet6")
            .is_ok_and(|t| t.lines().any(|l| l.ends_with(" lo")));
        let mut want = format!("3000/tcp -> 0.0.0.0:{p2}");
        if ipv6 {
            want.push_str(&format!("\n3000/tcp -> [::]:{p2}"));
            let page = fetch_at(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, p2)));
            assert!(page.contains("background-color: blue"), "{page}");
        } else {
            loud("IPv6 publishing not checked: this host has no IPv6 loopback");
        }
        assert_eq!(env.ok(["port", "blue"]).trim(), want);
        let v: serde_json::Value = serde_json::from_str(&env.ok(["inspect", "red"])).unwrap();
        assert_eq!(
            v[0]["NetworkSettings"]["Ports"]["3000/tcp"][0]["HostPort"],
            p1.to_string()
        );
        assert_eq!(
            v[0]["HostConfig"]["PortBindings"]["3000/tcp"][0]["HostPort"],
            p1.to_string()
        );
        assert_eq!(v[0]["HostConfig"]["NetworkMode"], "private");

        // A taken port fails before the container starts, naming it.
        let o = env.run(["run", "-d", "-p", &format!("{p1}:3000"), "colour"]);
        assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
        assert!(stderr(&o).contains(&p1.to_string()), "{}", stderr(&o));

        // -P: the exposed port on a free host port.
        env.ok(["run", "-d", "--name", "all", "-P", "colour"]);
        let shown = env.ok(["port", "all", "3000"]);
        let port: u16 = shown.trim().rsplit(':').next().unwrap().parse().unwrap();
        assert!(fetch(port).contains("background-color: white"));

        // rm -f frees the port at once.
        env.ok(["rm", "-f", "red", "blue", "all"]);
        TcpListener::bind(("0.0.0.0", p1)).expect("rm -f frees the published port");
        if ipv6 {
            TcpListener::bind(("::", p1)).expect("rm -f frees the published IPv6 port");
        }

        // Below net.ipv4.ip_unprivileged_port_start: an error naming it.
        let start: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        if start > 1 {
            let o = env.run([
                "run",
                "--rm",
                "-p",
                &format!("{}:3000", start - 1),
                "colour",
            ]);
            assert_eq!(o.status.code(), Some(125));
            assert!(
                stderr(&o).contains("ip_unprivileged_port_start"),
                "{}",
                stderr(&o)
            );
        }
    }
}

/// Whether a container in `mode` reaches a server on the host's 127.0.0.1.
/// `nc -e true` exits once connected: the test never accepts, and a plain
/// `nc` would wait for the server forever.
fn reaches_host_loopback(env: &Env, mode: &str) -> bool {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let o = env.run([
        "run",
        "--rm",
        "--network",
        mode,
        "busybox",
        "sh",
        "-c",
        &format!("nc 127.0.0.1 {port} -e true && echo reached"),
    ]);
    stdout(&o).contains("reached")
}

#[test]
fn only_the_host_network_reaches_the_hosts_loopback() {
    for env in users("netmodes") {
        env.import_busybox("busybox");
        assert!(!reaches_host_loopback(&env, "none"));
        assert!(!reaches_host_loopback(&env, "private"));
        assert!(reaches_host_loopback(&env, "host"));
        // none: loopback only, up.
        let links = env.ok([
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "ip",
            "-o",
            "link",
        ]);
        assert_eq!(links.lines().count(), 1, "{links}");
        assert!(links.contains("lo:") && links.contains("UP"), "{links}");
        // A private namespace mounts its own sysfs, read-only.
        let o = env.ok([
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "grep ' /sys ' /proc/mounts",
        ]);
        assert!(o.starts_with("sysfs /sys sysfs ro"), "{o}");
        // --hostname, --add-host and --dns land in the /etc files.
        let o = env.ok([
            "run",
            "--rm",
            "--network",
            "none",
            "--hostname",
            "web1",
            "--add-host",
            "db:10.9.8.7",
            "--dns",
            "10.9.8.53",
            "busybox",
            "sh",
            "-c",
            "hostname; cat /etc/hosts /etc/resolv.conf",
        ]);
        assert!(o.starts_with("web1\n"), "{o}");
        assert!(o.contains("10.9.8.7\tdb"), "{o}");
        assert!(o.contains("nameserver 10.9.8.53"), "{o}");
        // exec joins the container's network namespace.
        env.ok([
            "run",
            "-d",
            "--name",
            "n1",
            "--network",
            "none",
            "busybox",
            "sleep",
            "30",
        ]);
        let links = env.ok(["exec", "n1", "ip", "-o", "link"]);
        assert_eq!(links.lines().count(), 1, "{links}");
        env.ok(["rm", "-f", "n1"]);
    }
}

/// A network namespace of the test's own: a default route through one end
/// of a veth pair (pasta copies its configuration) and the other end
/// holding the address a server listens on. Removed when dropped.
struct TestNetns {
    name: String,
    server: Option<std::process::Child>,
}

const SERVER_ADDR: &str = "10.204.0.1";

impl TestNetns {
    fn create(tag: &str, docroot: &Path) -> TestNetns {
        let name = format!("burrow-it-{tag}-{}", std::process::id());
        let ip = |args: &[&str]| {
            let o = Command::new("ip").args(args).output().unwrap();
            assert!(o.status.success(), "ip {args:?}: {}", stderr(&o));
        };
        ip(&["netns", "add", &name]);
        let mut ns = TestNetns {
            name: name.clone(),
            server: None,
        };
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        // A veth pair with both ends here: v0 carries the default route,
        // v1 the server's address.
        ip(&[
            "-n", &name, "link", "add", "v0", "type", "veth", "peer", "name", "v1",
        ]);
        ip(&["-n", &name, "addr", "add", "10.203.0.2/24", "dev", "v0"]);
        ip(&[
            "-n",
            &name,
            "addr",
            "add",
            &format!("{SERVER_ADDR}/24"),
            "dev",
            "v1",
        ]);
        ip(&["-n", &name, "link", "set", "v0", "up"]);
        ip(&["-n", &name, "link", "set", "v1", "up"]);
        ip(&[
            "-n",
            &name,
            "route",
            "add",
            "default",
            "via",
            "10.203.0.1",
            "dev",
            "v0",
        ]);
        let server = Command::new("ip")
            .args(["netns", "exec", &name, "busybox", "httpd", "-f", "-p"])
            .arg(format!("{SERVER_ADDR}:8000"))
            .arg("-h")
            .arg(docroot)
            .spawn()
            .unwrap();
        ns.server = Some(server);
        ns
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        if let Some(mut s) = self.server.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

#[test]
fn outbound_access_through_slirp4netns_and_pasta_reaches_a_server_in_the_tests_netns() {
    if !nix::unistd::Uid::effective().is_root() {
        loud("SKIPPED outbound access: creating a network namespace with a server needs root (run the suite as root)");
        return;
    }
    for env in users("outbound") {
        env.import_busybox("busybox");
        let docroot = env.user_dir("www");
        std::fs::write(docroot.join("index.html"), "from-the-test-netns\n").unwrap();
        let ns = TestNetns::create(&format!("{:?}", env.who), &docroot);
        for helper in ["slirp4netns", "pasta"] {
            if !Path::new("/usr/bin").join(helper).exists() {
                loud(&format!(
                    "SKIPPED outbound through {helper}: not installed (apt-get install {})",
                    if helper == "pasta" { "passt" } else { helper }
                ));
                continue;
            }
            // burrow itself runs in the test's namespace, so its helper's
            // outbound connections start there.
            let line = shell_line(
                &env,
                &format!(
                    "run --rm --network {helper} busybox sh -c \"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 3 nc {SERVER_ADDR} 8000\""
                ),
            );
            let mut got = String::new();
            wait_until(
                "the server in the test's netns",
                Duration::from_secs(10),
                || {
                    let o = Command::new("ip")
                        .args(["netns", "exec", &ns.name, "sh", "-c", &line])
                        .output()
                        .unwrap();
                    got = format!("{}{}", stdout(&o), stderr(&o));
                    got.contains("from-the-test-netns")
                },
            );
            // And the helper's DNS forwarder is the resolver.
            let line = shell_line(
                &env,
                &format!("run --rm --network {helper} busybox cat /etc/resolv.conf"),
            );
            let o = Command::new("ip")
                .args(["netns", "exec", &ns.name, "sh", "-c", &line])
                .output()
                .unwrap();
            let want = if helper == "pasta" {
                "169.254.0.1"
            } else {
                "10.0.2.3"
            };
            assert!(
                stdout(&o).contains(&format!("nameserver {want}")),
                "{}",
                stdout(&o)
            );
        }
    }
}

/// A UDP echo server for the container: busybox has none, so the host's
/// python3 runs in it, with the host's /usr bound read-only.
const UDP_ECHO: &str = "import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('0.0.0.0', 5000))
while True:
    d, a = s.recvfrom(999)
    s.sendto(b'echo:' + d, a)
";

#[test]
fn udp_ports_are_relayed() {
    if !Path::new("/usr/bin/python3").exists() {
        loud("SKIPPED udp publishing: the UDP echo server in the container is the host's python3, which is missing");
        return;
    }
    for env in users("udp") {
        env.import_busybox("busybox");
        let port = UdpSocket::bind("0.0.0.0:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        env.ok([
            "run",
            "-d",
            "--name",
            "u",
            "-p",
            &format!("{port}:5000/udp"),
            "-v",
            "/usr:/usr:ro",
            "-v",
            "/lib:/lib:ro",
            "-v",
            "/lib64:/lib64:ro",
            "busybox",
            "/usr/bin/python3",
            "-c",
            UDP_ECHO,
        ]);
        assert_eq!(
            env.ok(["port", "u"]).lines().next(),
            Some(format!("5000/udp -> 0.0.0.0:{port}").as_str())
        );
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 64];
        wait_until(
            "the echo through the published UDP port",
            Duration::from_secs(10),
            || {
                let _ = client.send_to(b"ping-udp", ("127.0.0.1", port));
                matches!(client.recv_from(&mut buf), Ok((n, _)) if &buf[..n] == b"echo:ping-udp")
            },
        );
        env.ok(["rm", "-f", "u"]);
    }
}

#[test]
fn the_builtin_forwarder_works_without_any_helper() {
    for env in users("nohelper") {
        import_colour(&env);
        env.import_busybox("busybox");
        // A PATH with the id-map helpers and neither pasta nor slirp4netns.
        let bin = env.user_dir("bin-nohelper");
        for tool in ["newuidmap", "newgidmap"] {
            let _ = std::os::unix::fs::symlink(Path::new("/usr/bin").join(tool), bin.join(tool));
        }
        let path = bin.to_str().unwrap();
        let port = free_port();
        let o = env
            .cmd([
                "run",
                "-d",
                "-p",
                &format!("{port}:3000"),
                "-e",
                "COLOR=green",
                "colour",
            ])
            .env("PATH", path)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("apt-get install passt"),
            "says once what to install: {}",
            stderr(&o)
        );
        assert!(fetch(port).contains("background-color: green"));
        // Said once, not on every run.
        let o = env
            .cmd(["run", "--rm", "busybox", "ip", "-o", "link"])
            .env("PATH", path)
            .output()
            .unwrap();
        assert!(
            !stderr(&o).contains("apt-get install passt"),
            "{}",
            stderr(&o)
        );
        assert_eq!(
            stdout(&o).lines().count(),
            1,
            "loopback only: {}",
            stdout(&o)
        );
        let info = env.cmd(["info"]).env("PATH", path).output().unwrap();
        assert!(
            stdout(&info).contains("Network helper:    none"),
            "{}",
            stdout(&info)
        );
    }
}
