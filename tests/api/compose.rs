//! docker-compose 1.29 (Debian's `docker-compose`) against the service: a
//! two-service project whose client reaches its web server by service
//! name over the project's network, `up -d`, `ps`, `logs`, and `down -v`
//! leaving no container, network or volume behind; a service that
//! `depends_on` another with `condition: service_healthy` started only once
//! the other's health check, run by its monitor, said healthy.

use std::process::Output;

use crate::common::{loud, stderr, stdout};
use crate::support::{eventually, write_shared, World, COMPOSE, IMAGE};

/// The client is the host's python3 (busybox-static's resolver cannot
/// resolve names in a bare rootfs), with the host's /usr and libraries
/// bound read-only and an nsswitch.conf saying "files" first. Both
/// services end at once on SIGTERM, so `down` does not wait out a timeout.
fn project(nss: &str) -> String {
    format!(
        r#"version: "3.8"
services:
  web:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; mkdir -p /www && echo compose-hello > /www/index.html && httpd -f -p 8080 -h /www & wait"]
    volumes:
      - data:/data
    stop_grace_period: 2s
  client:
    image: {IMAGE}
    depends_on: [web]
    stop_grace_period: 2s
    command:
      - /usr/bin/python3
      - -c
      - |
        import signal, sys, time, urllib.request
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
        for i in range(150):
            try:
                body = urllib.request.urlopen("http://web:8080/", timeout=2).read().decode().strip()
                print("fetched", body, flush=True)
                break
            except Exception as e:
                err = e
                time.sleep(0.2)
        else:
            print("never fetched:", err, flush=True)
        while True:
            time.sleep(1)
    volumes:
      - /usr:/usr:ro
      - /lib:/lib:ro
      - /lib64:/lib64:ro
      - {nss}:/etc/nsswitch.conf:ro
volumes:
  data: {{}}
"#
    )
}

/// COMPOSE_API_VERSION is left unset: compose 1.29 asks for the API
/// version its file format needs (1.38 at most), which the service answers
/// (it serves 1.24 to 1.41), so compose works as users run it.
fn compose(w: &World, dir: &std::path::Path, args: &[&str]) -> Output {
    compose_project(w, dir, "apitest", args)
}

fn compose_project(w: &World, dir: &std::path::Path, project: &str, args: &[&str]) -> Output {
    let mut c = w.client(COMPOSE);
    c.current_dir(dir)
        .args(["-p", project, "-f", "docker-compose.yml"])
        .args(args);
    crate::support::output_within(c, None, crate::support::CLIENT_TIMEOUT)
}

fn compose_ok(w: &World, dir: &std::path::Path, args: &[&str]) -> String {
    let o = compose(w, dir, args);
    assert!(
        o.status.success(),
        "[{}] docker-compose {args:?} failed ({:?})\nstdout: {}\nstderr: {}\nservice log: {}",
        w.who(),
        o.status.code(),
        stdout(&o),
        stderr(&o),
        w.service_log()
    );
    stdout(&o)
}

#[test]
fn a_two_service_project_up_ps_logs_down() {
    if !std::path::Path::new(COMPOSE).exists() {
        loud(
            "SKIPPED api compose: docker-compose is not installed (apt-get install docker-compose)",
        );
        return;
    }
    for w in crate::support::worlds() {
        let dir = w.env.user_dir("compose");
        let nss = dir.join("nsswitch.conf");
        write_shared(&nss, "hosts: files dns\n");
        write_shared(
            &dir.join("docker-compose.yml"),
            &project(nss.to_str().unwrap()),
        );
        let project_filter = "label=com.docker.compose.project=apitest";
        compose_ok(w, &dir, &["up", "-d"]);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let ps = compose_ok(w, &dir, &["ps"]);
            for svc in ["apitest_web_1", "apitest_client_1"] {
                assert!(
                    ps.lines().any(|l| l.starts_with(svc) && l.contains("Up")),
                    "[{}] compose ps does not show {svc} up:\n{ps}",
                    w.who()
                );
            }
            let mut logs = String::new();
            eventually("the client fetched from web by name", 40, || {
                logs = stdout(&compose(w, &dir, &["logs", "--no-color", "client"]));
                logs.contains("fetched") || logs.contains("never fetched")
            });
            assert!(
                logs.contains("fetched compose-hello"),
                "[{}] compose logs client:\n{logs}",
                w.who()
            );
            let names = w.burrow_ok(&["ps", "--filter", project_filter, "--format", "{{.Names}}"]);
            assert_eq!(
                names.lines().count(),
                2,
                "[{}] burrow ps lists the project's containers:\n{names}",
                w.who()
            );
            assert!(
                w.burrow_ok(&["network", "ls"]).contains("apitest_default"),
                "[{}] the project's network",
                w.who()
            );
        }));
        compose_ok(w, &dir, &["down", "-v"]);
        if let Err(e) = result {
            std::panic::resume_unwind(e);
        }
        let left = w.burrow_ok(&["ps", "-a", "-q", "--filter", project_filter]);
        assert_eq!(left.trim(), "", "[{}] down -v left containers", w.who());
        let nets = w.burrow_ok(&["network", "ls"]);
        assert!(
            !nets.contains("apitest_default"),
            "[{}] down -v left the network:\n{nets}",
            w.who()
        );
        let vols = w.burrow_ok(&["volume", "ls"]);
        assert!(
            !vols.contains("apitest_data"),
            "[{}] down -v left the volume:\n{vols}",
            w.who()
        );
    }
}

/// `web` becomes healthy three seconds after it starts (its probe looks for
/// a file it writes then); `app` depends on it being healthy.
const HEALTHY_PROJECT: &str = r#"version: "2.4"
services:
  web:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3; touch /ready; sleep 1000 & wait"]
    healthcheck:
      test: ["CMD-SHELL", "test -f /ready"]
      interval: 1s
      retries: 60
    stop_grace_period: 2s
  app:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]
    depends_on:
      web:
        condition: service_healthy
    stop_grace_period: 2s
"#;

#[test]
fn depends_on_service_healthy_waits_for_the_health_check() {
    if !std::path::Path::new(COMPOSE).exists() {
        loud(
            "SKIPPED api compose healthy: docker-compose is not installed (apt-get install docker-compose)",
        );
        return;
    }
    for w in crate::support::worlds() {
        let dir = w.env.user_dir("compose-healthy");
        write_shared(&dir.join("docker-compose.yml"), HEALTHY_PROJECT);
        let run = |args: &[&str]| compose_project(w, &dir, "apihealthy", args);
        let up = run(&["up", "-d"]);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            assert!(
                up.status.success(),
                "[{}] compose up -d failed\nstdout: {}\nstderr: {}\nservice log: {}",
                w.who(),
                stdout(&up),
                stderr(&up),
                w.service_log()
            );
            let state = |name: &str| -> serde_json::Value {
                let out = w.burrow_ok(&["inspect", "--format", "{{json .State}}", name]);
                serde_json::from_str(&out).unwrap()
            };
            let (web, app) = (state("apihealthy_web_1"), state("apihealthy_app_1"));
            assert_eq!(web["Health"]["Status"], "healthy", "[{}] {web}", w.who());
            assert_eq!(app["Running"], true, "[{}] {app}", w.who());
            let at = |v: &serde_json::Value| {
                humantime::parse_rfc3339_weak(v["StartedAt"].as_str().unwrap()).unwrap()
            };
            let waited = at(&app).duration_since(at(&web)).unwrap_or_default();
            assert!(
                waited >= std::time::Duration::from_secs(3),
                "[{}] app started {waited:?} after web, before web could be healthy",
                w.who()
            );
        }));
        let down = run(&["down"]);
        if let Err(e) = result {
            std::panic::resume_unwind(e);
        }
        assert!(down.status.success(), "[{}] {}", w.who(), stderr(&down));
    }
}
