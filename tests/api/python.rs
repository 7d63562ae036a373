//! The Python clients against the service: Debian's python3-docker 5 with
//! the system python3, and docker-py 7 and testcontainers-python 4 from
//! PyPI in a venv made at test time (skipped loudly when PyPI cannot be
//! reached). The scripts are in `py/`; each prints `ok` at its end.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use crate::common::{loud, stderr, stdout, Registry};
use crate::support::{eventually, push_image, write_shared, Cleanup, World, IMAGE, PYTHON};

/// What the venv holds (the clients the issue names, from PyPI).
const VENV_SPEC: &[&str] = &["testcontainers>=4,<5", "docker>=7,<8"];

fn script_text(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/api/py")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Which Python runs the scripts.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Py {
    /// /usr/bin/python3 with Debian's python3-docker first on its path
    /// (a docker-py installed under /usr/local would otherwise win).
    Debian,
    /// The venv's python, with docker-py 7 and testcontainers 4.
    Venv,
}

/// Run the script `name` as the test user with `python`, its env vars set.
fn run_script(w: &World, py: Py, name: &str, vars: &[(&str, &str)]) -> Output {
    let dir = w.env.user_dir("py");
    let file = dir.join(format!("{:?}-{name}", py));
    write_shared(&file, &script_text(name));
    let program = match py {
        Py::Debian => PYTHON.to_string(),
        Py::Venv => match venv() {
            Ok(v) => v.join("bin/python").display().to_string(),
            Err(e) => panic!("{e}"),
        },
    };
    let mut c = w.client(&program);
    c.arg("-s").arg(&file).env("PYTHONDONTWRITEBYTECODE", "1");
    if py == Py::Debian {
        c.env("PYTHONPATH", "/usr/lib/python3/dist-packages");
    }
    for (k, v) in vars {
        c.env(k, v);
    }
    crate::support::output_within(c, None, crate::support::CLIENT_TIMEOUT)
}

/// Note in `failed` a script that did not end with `ok`.
fn check(w: &World, what: &str, o: &Output, failed: &mut Vec<String>) {
    let out = stdout(o);
    if !(o.status.success() && out.lines().last() == Some("ok")) {
        failed.push(format!(
            "[{}] {what}: exit {:?}\nstdout:\n{out}\nstderr:\n{}\nservice log:\n{}",
            w.who(),
            o.status.code(),
            stderr(o),
            w.service_log()
        ));
    }
}

/// The docker-py scripts with one Python, in every world.
fn docker_py_scripts(py: Py) {
    let mut failed = Vec::new();
    for w in crate::support::worlds() {
        let tag = format!("py-{py:?}").to_lowercase();
        let c = Cleanup::new(w, &tag);
        let label = c.label();
        let label_value = label.trim_start_matches("apitest=");
        let vars = [
            ("APITEST_IMAGE", IMAGE),
            ("APITEST_LABEL", label_value),
            ("APITEST_PREFIX", tag.as_str()),
        ];
        let o = run_script(w, py, "containers.py", &vars);
        check(w, "containers.py", &o, &mut failed);
        for script in ["networks.py", "volumes.py"] {
            let o = run_script(w, py, script, &vars);
            check(w, script, &o, &mut failed);
        }

        let reg = Registry::start(&w.env.home.join(format!("registry-{tag}")));
        let repo = format!("127.0.0.1:{}/apitest/{tag}", reg.port);
        let r = format!("{repo}:1");
        push_image(w, &r);
        let mut vars = vars.to_vec();
        vars.push(("APITEST_REPO", &repo));
        let o = run_script(w, py, "images.py", &vars);
        check(w, "images.py", &o, &mut failed);
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}

#[test]
fn docker_py_5_from_debian() {
    let o = Command::new(PYTHON)
        .args(["-s", "-c", "import docker; print(docker.__version__)"])
        .env("PYTHONPATH", "/usr/lib/python3/dist-packages")
        .output();
    match o {
        Ok(o) if o.status.success() => {
            loud(&format!("api docker-py (Debian): {}", stdout(&o).trim()));
        }
        _ => {
            loud("SKIPPED api docker-py 5: Debian's python3-docker is not installed (apt-get install python3-docker)");
            return;
        }
    }
    docker_py_scripts(Py::Debian);
}

#[test]
fn docker_py_7_from_pypi() {
    if venv_or_skip("api docker-py 7").is_none() {
        return;
    }
    docker_py_scripts(Py::Venv);
}

/// The venv with docker-py 7 and testcontainers 4, made once: under
/// target/ when the test users can reach it there (kept between runs),
/// else in the harness's shared directory. Err with the reason when pip
/// cannot install (no python3-venv, PyPI unreachable).
fn venv() -> Result<PathBuf, String> {
    static V: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    V.get_or_init(make_venv).clone()
}

fn venv_or_skip(test: &str) -> Option<PathBuf> {
    match venv() {
        Ok(v) => Some(v),
        Err(e) => {
            loud(&format!("SKIPPED {test}: {e}"));
            None
        }
    }
}

/// Whether every directory above `p` lets others through.
fn reachable_by_others(p: &Path) -> bool {
    p.ancestors()
        .skip(1)
        .all(|a| std::fs::metadata(a).is_ok_and(|m| m.permissions().mode() & 0o001 != 0))
}

fn make_venv() -> Result<PathBuf, String> {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("api-venv");
    let dir = if reachable_by_others(&target) {
        target
    } else {
        let w = crate::support::worlds()
            .first()
            .ok_or("no test user on this host")?;
        w.env.shared_dir().join("api-venv")
    };
    let stamp = dir.join("apitest-spec");
    let spec = VENV_SPEC.join(" ");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == spec) {
        return Ok(dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let o = Command::new(PYTHON)
        .args(["-m", "venv"])
        .arg(&dir)
        .output()
        .map_err(|e| format!("{PYTHON} -m venv: {e}"))?;
    if !o.status.success() {
        return Err(format!(
            "{PYTHON} -m venv failed (is python3-venv installed?): {}",
            stderr(&o).trim()
        ));
    }
    // pip runs as root with the environment's own proxy settings: it is
    // the one step that leaves loopback (PyPI).
    let o = Command::new(dir.join("bin/pip"))
        .args(["install", "--disable-pip-version-check", "-q"])
        .args(VENV_SPEC)
        .output()
        .map_err(|e| format!("pip: {e}"))?;
    if !o.status.success() {
        let err = stderr(&o);
        let tail: Vec<&str> = err.lines().rev().take(5).collect();
        return Err(format!(
            "pip could not install {spec} from PyPI: {}",
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        ));
    }
    std::fs::write(&stamp, &spec).unwrap();
    Ok(dir)
}

#[test]
fn testcontainers_runs_a_container_with_an_exposed_port() {
    if venv_or_skip("api testcontainers").is_none() {
        return;
    }
    let mut failed = Vec::new();
    for w in crate::support::worlds() {
        let o = run_script(
            w,
            Py::Venv,
            "tc_basic.py",
            &[
                ("APITEST_IMAGE", IMAGE),
                ("TESTCONTAINERS_RYUK_DISABLED", "true"),
                // Where /.dockerenv exists (CI runners are often
                // containers), testcontainers believes the test runs in a
                // container and reaches ports through the network's
                // gateway; these tests run on the host, where burrow
                // publishes ports: the docker host's address is the one.
                ("TESTCONTAINERS_CONNECTION_MODE", "docker_host"),
            ],
        );
        check(w, "tc_basic.py", &o, &mut failed);
        let Some(session) = stdout(&o)
            .lines()
            .find_map(|l| l.strip_prefix("session ").map(str::to_string))
        else {
            continue;
        };
        let left = w.burrow_ok(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=org.testcontainers.session-id={session}"),
        ]);
        if !left.trim().is_empty() {
            failed.push(format!("[{}] tc_basic.py left containers: {left}", w.who()));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}

#[test]
fn testcontainers_with_a_stand_in_reaper_that_mounts_the_socket() {
    if venv_or_skip("api testcontainers reaper").is_none() {
        return;
    }
    let mut failed = Vec::new();
    for w in crate::support::worlds() {
        if !crate::support::build_reaper(w) {
            return;
        }
        let o = run_script(
            w,
            Py::Venv,
            "tc_reaper.py",
            &[
                ("APITEST_IMAGE", IMAGE),
                ("TESTCONTAINERS_RYUK_DISABLED", "false"),
                ("RYUK_CONTAINER_IMAGE", "apitest/reaper:1"),
                ("RYUK_RECONNECTION_TIMEOUT", "1s"),
                ("TESTCONTAINERS_CONNECTION_MODE", "docker_host"),
            ],
        );
        let out = stdout(&o);
        let session = out
            .lines()
            .find_map(|l| l.strip_prefix("session "))
            .map(str::to_string);
        let Some(session) = session.filter(|_| o.status.success()) else {
            failed.push(format!(
                "[{}] tc_reaper.py: exit {:?}\nstdout:\n{out}\nstderr:\n{}\nservice log:\n{}",
                w.who(),
                o.status.code(),
                stderr(&o),
                w.service_log()
            ));
            continue;
        };
        let session_filter = format!("label=org.testcontainers.session-id={session}");
        let reaper_name = format!("testcontainers-ryuk-{session}");
        let mut listed = String::new();
        let gone = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            eventually(
                "the reaper removes what the session left, then itself",
                30,
                || {
                    listed = w.burrow_ok(&["ps", "-a", "--format", "{{.Names}} {{.Labels}}"]);
                    let left = w.burrow_ok(&["ps", "-aq", "--filter", &session_filter]);
                    left.trim().is_empty() && !listed.contains(&reaper_name)
                },
            )
        }));
        if gone.is_err() {
            let logs = w.env.run(["logs", &reaper_name]);
            failed.push(format!(
                "[{}] the stand-in reaper did not clean up session {session}\ncontainers:\n{listed}\nreaper logs:\n{}{}\nservice log:\n{}",
                w.who(),
                stdout(&logs),
                stderr(&logs),
                w.service_log()
            ));
            let left = w.burrow_ok(&["ps", "-aq", "--filter", "label=org.testcontainers=true"]);
            let _ = w
                .env
                .cmd(
                    ["rm", "-f"]
                        .into_iter()
                        .map(String::from)
                        .chain(left.split_whitespace().map(String::from)),
                )
                .output();
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}
