//! The store under stress, as unprivileged users. Crash consistency: burrow
//! is killed with SIGKILL at random moments of `import`, `pull` (from a real
//! registry on loopback), `create`, `run`, `rm` and `rmi`; after each kill,
//! once one other burrow command has run (it reclaims abandoned staging),
//! `system check` must pass without `--repair`, every listed image must run,
//! and every listed container must inspect. The RNG seed is printed so a
//! failure reproduces with `BURROW_CRASH_SEED=<seed>`;
//! `BURROW_CRASH_TRIALS=<n>` runs a longer trial (CI runs 100). Then
//! concurrency (many burrows at once on one store), a full disk (the store
//! on a small tmpfs: failed imports and pulls, a container that fills it),
//! and `system check` on planted debris.

mod common;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{have, loud, stderr, stdout, users, Env, Registry};

/// xorshift64*: small, seedable, good enough to pick moments.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn env_u64(key: &str) -> Option<u64> {
    std::env::var(key).ok().and_then(|v| v.parse().ok())
}

/// The busybox tarball with one more file, so its layer is its own (a
/// pull or rmi of it has a layer to fetch or delete).
fn marked_tar(busybox: &Path, out: &Path) {
    let mut src = tar::Archive::new(std::fs::File::open(busybox).unwrap());
    let mut b = tar::Builder::new(std::fs::File::create(out).unwrap());
    for e in src.entries().unwrap() {
        let mut e = e.unwrap();
        let mut h = e.header().clone();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        b.append_data(&mut h, e.path().unwrap(), &data[..]).unwrap();
    }
    let mut h = tar::Header::new_ustar();
    h.set_mode(0o644);
    h.set_size(6);
    h.set_cksum();
    b.append_data(&mut h, "crash-marker", &b"marked"[..])
        .unwrap();
    b.finish().unwrap();
    std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o644)).unwrap();
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Import,
    Pull,
    Create,
    Run,
    Rm,
    Rmi,
}

const OPS: [Op; 6] = [Op::Import, Op::Pull, Op::Create, Op::Run, Op::Rm, Op::Rmi];

/// One user's world: its store, the base image it keeps, the marked tarball.
struct World {
    env: Env,
    marked: PathBuf,
    remote: Option<String>,
}

impl World {
    /// The command a trial kills, after the preparation it needs.
    fn prepare(&self, op: Op, n: usize) -> Option<Vec<String>> {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        Some(match op {
            Op::Import => s(&[
                "import",
                self.marked.to_str().unwrap(),
                &format!("crash-import:{n}"),
                "--change",
                r#"CMD ["sh"]"#,
            ]),
            Op::Pull => {
                let r = self.remote.clone()?;
                // Not local, so the pull has a layer to fetch.
                let _ = self.env.run(["rmi", "-f", &r]);
                s(&["pull", "-q", &r])
            }
            Op::Create => s(&["create", "--name", &format!("c{n}"), "crash-base", "true"]),
            Op::Run => s(&["run", "--name", &format!("r{n}"), "crash-base", "true"]),
            Op::Rm => {
                self.env
                    .ok(["create", "--name", &format!("x{n}"), "crash-base", "true"]);
                s(&["rm", &format!("x{n}")])
            }
            Op::Rmi => {
                self.env.ok([
                    "import",
                    self.marked.to_str().unwrap(),
                    &format!("crash-rmi:{n}"),
                ]);
                s(&["rmi", &format!("crash-rmi:{n}")])
            }
        })
    }

    /// After a kill: one command reclaims, then the store must be whole.
    fn verify(&self, what: &str) {
        let env = &self.env;
        env.ok(["images", "-q"]);
        let o = env.run(["system", "check"]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{what}: system check failed:\n{}{}",
            stdout(&o),
            stderr(&o)
        );
        let images = env.ok(["images", "-q", "--no-trunc"]);
        for id in images.lines().filter(|l| !l.is_empty()) {
            let o = env.run(["run", "--rm", id, "true"]);
            assert_eq!(
                o.status.code(),
                Some(0),
                "{what}: listed image {id} does not run: {}",
                stderr(&o)
            );
        }
        for id in env.ok(["ps", "-aq"]).lines().filter(|l| !l.is_empty()) {
            let o = env.run(["inspect", id]);
            assert_eq!(
                o.status.code(),
                Some(0),
                "{what}: listed container {id} does not inspect: {}",
                stderr(&o)
            );
        }
    }

    /// Back to the base image alone, no containers.
    fn reset(&self) {
        let env = &self.env;
        let ids: Vec<String> = env
            .ok(["ps", "-aq"])
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect();
        if !ids.is_empty() {
            let mut args = vec!["rm".to_string(), "-f".to_string()];
            args.extend(ids);
            env.ok(args);
        }
        let base = env.ok(["images", "-q", "--no-trunc", "crash-base"]);
        for id in env.ok(["images", "-q", "--no-trunc"]).lines() {
            if !id.is_empty() && id != base.trim() {
                env.ok(["rmi", "-f", id]);
            }
        }
    }
}

/// Run `args`, measuring how long it takes unkilled.
fn timed(env: &Env, args: &[String]) -> Duration {
    let t = Instant::now();
    let o = env.run(args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    t.elapsed()
}

#[test]
fn sigkill_at_random_moments_leaves_a_consistent_store() {
    for t in ["docker-registry", "skopeo"] {
        if !have(t) {
            loud(&format!(
                "SKIPPED sigkill_at_random_moments_leaves_a_consistent_store: {t} is not installed"
            ));
            return;
        }
    }
    let trials = env_u64("BURROW_CRASH_TRIALS").unwrap_or(100) as usize;
    let seed = env_u64("BURROW_CRASH_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    eprintln!("crash test: seed {seed} ({trials} trials; rerun with BURROW_CRASH_SEED={seed})");
    let mut rng = Rng::new(seed);

    let envs = users("crash");
    let scratch = envs[0].shared_dir().join("crash");
    std::fs::create_dir_all(&scratch).unwrap();
    std::fs::set_permissions(&scratch, std::fs::Permissions::from_mode(0o755)).unwrap();
    let marked = scratch.join("marked.tar");
    marked_tar(envs[0].busybox_tar(), &marked);
    let reg = Registry::start(&scratch.join("registry"));
    let remote = format!("127.0.0.1:{}/crash/marked:1", reg.port);

    let mut worlds = Vec::new();
    for env in envs {
        env.import_busybox("crash-base");
        worlds.push(World {
            env,
            marked: marked.clone(),
            remote: Some(remote.clone()),
        });
    }
    // The remote image, pushed once.
    let w0 = &worlds[0];
    w0.env.ok([
        "import",
        marked.to_str().unwrap(),
        &remote,
        "--change",
        r#"CMD ["sh"]"#,
    ]);
    w0.env.ok(["push", &remote]);
    w0.reset();

    // How long each operation takes here, unkilled (the quickest of three:
    // the machine may be busy): the kill comes at a uniform moment of that
    // span (and a little past it).
    let mut span = Vec::new();
    for op in OPS {
        let mut quickest = Duration::MAX;
        for _ in 0..3 {
            let args = w0.prepare(op, 0).unwrap();
            quickest = quickest.min(timed(&w0.env, &args));
            w0.reset();
        }
        span.push(quickest);
    }
    eprintln!(
        "crash test: unkilled durations {:?}",
        OPS.iter().zip(&span).collect::<Vec<_>>()
    );

    let started = Instant::now();
    let mut killed = 0;
    for n in 1..=trials {
        let i = rng.below(OPS.len() as u64) as usize;
        let op = OPS[i];
        let w = &worlds[rng.below(worlds.len() as u64) as usize];
        let args = w.prepare(op, n).unwrap();
        let max = span[i].as_micros() as u64 * 11 / 10;
        let delay = Duration::from_micros(rng.below(max + 1));
        let what = format!(
            "trial {n} (seed {seed}): {op:?} as {:?} killed after {delay:?}",
            w.env.who
        );
        let mut child = w
            .env
            .cmd(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            killed += 1;
        }
        let _ = child.kill();
        let _ = child.wait();
        w.verify(&what);
        w.reset();
    }
    eprintln!(
        "crash test: {trials} trials, {killed} killed mid-operation, {:?}",
        started.elapsed()
    );
    assert!(
        killed * 5 >= trials * 2,
        "at least 40% of the trials must kill burrow mid-operation ({killed} of {trials})"
    );
    drop(reg);
}

// ---------------------------------------------------------------------------
// Concurrency: many burrows at once on one store end consistent.

/// Spawn every command at once and collect (exit code, stdout, stderr).
fn all_at_once(env: &Env, cmds: &[Vec<String>]) -> Vec<(Option<i32>, String, String)> {
    let children: Vec<Child> = cmds
        .iter()
        .map(|args| {
            env.cmd(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| {
            let o = c.wait_with_output().unwrap();
            (o.status.code(), stdout(&o), stderr(&o))
        })
        .collect()
}

fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn fifty_detached_runs_at_once() {
    let Some(env) = Env::new(common::Who::Range, "conc-fifty") else {
        return;
    };
    env.import_busybox("conc");
    let cmds: Vec<Vec<String>> = (0..50)
        .map(|_| args(&["run", "-d", "conc", "sleep", "60"]))
        .collect();
    let results = all_at_once(&env, &cmds);
    for (code, out, err) in &results {
        assert_eq!(*code, Some(0), "run -d failed: {out}{err}");
    }
    let running = env.ok(["ps", "-q"]);
    assert_eq!(running.lines().count(), 50, "{running}");
    env.check_passes("50 run -d");
    let mut rm = args(&["rm", "-f"]);
    rm.extend(running.lines().map(str::to_string));
    env.ok(rm);
    assert_eq!(env.ok(["ps", "-aq"]), "");
    env.check_passes("after rm -f of 50");
}

#[test]
fn twenty_runs_of_one_name_exactly_one_wins() {
    for env in users("conc-name") {
        env.import_busybox("conc");
        let cmds: Vec<Vec<String>> = (0..20)
            .map(|_| args(&["run", "--name", "same", "conc", "true"]))
            .collect();
        let results = all_at_once(&env, &cmds);
        let won = results.iter().filter(|r| r.0 == Some(0)).count();
        assert_eq!(won, 1, "{results:?}");
        for (code, _, err) in results.iter().filter(|r| r.0 != Some(0)) {
            assert_eq!(*code, Some(125), "{err}");
            assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
            assert!(
                err.contains("\"/same\" is already in use"),
                "names the conflict: {err}"
            );
        }
        assert_eq!(env.ok(["ps", "-aq"]).lines().count(), 1);
        env.check_passes("20 runs of one name");
    }
}

#[test]
fn two_pulls_of_one_image_at_once() {
    if !have("docker-registry") {
        loud("SKIPPED two_pulls_of_one_image_at_once: docker-registry is not installed");
        return;
    }
    let envs = users("conc-pull");
    let scratch = envs[0].shared_dir().join("conc-pull");
    std::fs::create_dir_all(&scratch).unwrap();
    std::fs::set_permissions(&scratch, std::fs::Permissions::from_mode(0o755)).unwrap();
    let marked = scratch.join("marked.tar");
    marked_tar(envs[0].busybox_tar(), &marked);
    let reg = Registry::start(&scratch.join("registry"));
    let remote = format!("127.0.0.1:{}/conc/marked:1", reg.port);
    envs[0].ok(["import", marked.to_str().unwrap(), &remote]);
    envs[0].ok(["push", &remote]);
    envs[0].ok(["rmi", &remote]);
    for env in &envs {
        for round in 0..3 {
            let results = all_at_once(
                env,
                &[
                    args(&["pull", "-q", &remote]),
                    args(&["pull", "-q", &remote]),
                ],
            );
            for (code, out, err) in &results {
                assert_eq!(*code, Some(0), "round {round}: {out}{err}");
            }
            assert_eq!(env.ok(["images", "-q", &remote]).lines().count(), 1);
            env.check_passes("two pulls at once");
            env.ok(["run", "--rm", &remote, "cat", "/crash-marker"]);
            env.ok(["rmi", &remote]);
            env.check_passes("rmi after two pulls");
        }
    }
}

#[test]
fn rm_force_racing_start() {
    for env in users("conc-rmstart") {
        env.import_busybox("conc");
        for n in 0..10 {
            let name = format!("race{n}");
            // An argument no other test uses, to find leftover processes.
            env.ok(["create", "--name", &name, "conc", "sleep", "6061"]);
            let results = all_at_once(&env, &[args(&["start", &name]), args(&["rm", "-f", &name])]);
            assert_eq!(results[1].0, Some(0), "rm -f: {results:?}");
            // Whoever won, nothing of the container is left: no record,
            // no name, no process.
            assert_eq!(env.ok(["ps", "-aq"]), "", "{results:?}");
            env.check_passes(&format!("rm -f racing start {n}"));
            let o = env.run(["create", "--name", &name, "conc", "true"]);
            assert_eq!(o.status.code(), Some(0), "the name is free: {}", stderr(&o));
            env.ok(["rm", &name]);
        }
        let leftover = Command::new("pgrep")
            .args(["-f", "sleep 6061"])
            .output()
            .unwrap();
        assert!(
            stdout(&leftover).trim().is_empty(),
            "a container outlived rm -f: {}",
            stdout(&leftover)
        );
    }
}

#[test]
fn rmi_racing_run_of_the_same_image() {
    for env in users("conc-rmirun") {
        for n in 0..10 {
            let image = format!("conc-rmi:{n}");
            env.import_busybox(&image);
            let results = all_at_once(
                &env,
                &[
                    args(&["run", "--rm", &image, "true"]),
                    args(&["rmi", &image]),
                ],
            );
            let (run, rmi) = (&results[0], &results[1]);
            // One of the two orders: the run first (rmi refuses or succeeds
            // once the --rm container is gone) or the rmi first (the run
            // cannot find the image).
            assert!(run.0 == Some(0) || run.0 == Some(125), "run: {results:?}");
            assert!(
                rmi.0 == Some(0) || rmi.0 == Some(125) || rmi.0 == Some(1),
                "rmi: {results:?}"
            );
            env.check_passes(&format!("rmi racing run {n}: {results:?}"));
            let _ = env.run(["rmi", "-f", &image]);
            env.check_passes("after the race");
        }
    }
}

// ---------------------------------------------------------------------------
// A full disk: the store on a small tmpfs.

/// A tar with one incompressible file of `mib` MiB.
fn big_tar(out: &Path, mib: usize) {
    let mut rng = Rng::new(42);
    let data: Vec<u8> = (0..mib * 1024 * 1024 / 8)
        .flat_map(|_| rng.next().to_le_bytes())
        .collect();
    let mut b = tar::Builder::new(std::fs::File::create(out).unwrap());
    let mut h = tar::Header::new_ustar();
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_cksum();
    b.append_data(&mut h, "big", &data[..]).unwrap();
    b.finish().unwrap();
    std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o644)).unwrap();
}

#[test]
fn a_full_disk_fails_import_and_pull_cleanly() {
    if !nix::unistd::Uid::effective().is_root() {
        loud(
            "SKIPPED a_full_disk_fails_import_and_pull_cleanly: mounting a small tmpfs needs root",
        );
        return;
    }
    if !have("docker-registry") {
        loud("SKIPPED a_full_disk_fails_import_and_pull_cleanly: docker-registry is not installed");
        return;
    }
    let Some(mut env) = Env::new(common::Who::Range, "full-disk") else {
        return;
    };
    let scratch = env.shared_dir().join("full-disk");
    std::fs::create_dir_all(&scratch).unwrap();
    std::fs::set_permissions(&scratch, std::fs::Permissions::from_mode(0o755)).unwrap();
    let big = scratch.join("big.tar");
    big_tar(&big, 32);
    // The image to pull, pushed from the ordinary store.
    let reg = Registry::start(&scratch.join("registry"));
    let remote = format!("127.0.0.1:{}/full/big:1", reg.port);
    env.ok([
        "import",
        big.to_str().unwrap(),
        &remote,
        "--change",
        r#"CMD ["sh"]"#,
    ]);
    env.ok(["push", &remote]);

    let _mounted = env.store_on_tmpfs("20m");
    env.import_busybox("base");
    let before = common::listing(&env.root);

    for (what, cmd) in [
        ("import", args(&["import", big.to_str().unwrap(), "big:1"])),
        ("pull", args(&["pull", "-q", &remote])),
    ] {
        let o = env.run(&cmd);
        let err = stderr(&o);
        eprintln!(
            "{what} on a full disk: {:?} {}",
            o.status.code(),
            err.trim()
        );
        assert_ne!(o.status.code(), Some(0), "{what} on a full disk succeeded");
        assert!(
            err.to_lowercase().contains("no space left on device"),
            "{what}: the error names the full disk: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{what}: one line: {err}");
        assert_eq!(
            common::listing(&env.root),
            before,
            "{what}: the store is as before"
        );
        env.check_passes(what);
    }
    env.ok(["run", "--rm", "base", "true"]);
}

/// A container that fills the store's disk and then exits 3: the exit is
/// its own, not burrow's 125 nor the 137 of a supervisor that died, in
/// `run`'s exit code, `wait`, `ps -a` and `inspect`, and each write that
/// failed (its log, its record) is said on a line of its own. Foreground
/// `run` and `run -d` + `wait`, as both users.
#[test]
fn a_container_that_fills_the_disk_keeps_its_exit_code() {
    if !nix::unistd::Uid::effective().is_root() {
        loud("SKIPPED a_container_that_fills_the_disk_keeps_its_exit_code: mounting a small tmpfs needs root");
        return;
    }
    // Fill the disk, then write more output than the log's last block
    // holds, then exit 3.
    let script =
        "echo start; dd if=/dev/zero of=/fill bs=1M 2>/dev/null; yes | head -n 20000; exit 3";
    for mut env in users("fill-disk") {
        let _mounted = env.store_on_tmpfs("20m");
        env.import_busybox("base");
        for detached in [false, true] {
            let name = if detached { "bg" } else { "fg" };
            let run = ["run", "--network", "none", "--name", name];
            let o = if detached {
                let o = env.run(run.iter().chain(&["-d", "base", "sh", "-c", script]));
                assert_eq!(o.status.code(), Some(0), "run -d: {}", stderr(&o));
                env.run(["wait", name])
            } else {
                env.run(run.iter().chain(&["base", "sh", "-c", script]))
            };
            let who = format!(
                "[{:?}] {}",
                env.who,
                if detached { "run -d + wait" } else { "run" }
            );
            let err = stderr(&o);
            if detached {
                assert_eq!(o.status.code(), Some(0), "{who}: {err}");
                assert_eq!(stdout(&o).trim(), "3", "{who}: {err}");
            } else {
                assert_eq!(o.status.code(), Some(3), "{who}: {err}");
            }
            // Each failed write on a line of its own, naming the full disk.
            for what in ["writing the container's log: ", "recording the exit in "] {
                assert!(
                    err.lines().any(|l| l
                        .starts_with(&format!("burrow: container {name}: {what}"))
                        && l.contains("No space left on device")),
                    "{who}: a line says {what:?}: {err}"
                );
            }
            let ps = env.ok(["ps", "-a", "--filter", &format!("name={name}")]);
            let line = ps.lines().find(|l| l.ends_with(name)).unwrap_or_default();
            assert!(
                line.contains("Exited (3) ") && line.contains(" ago"),
                "{who}: ps shows the exit and when: {ps}"
            );
            let state = env.ok([
                "inspect",
                "-f",
                "{{.State.ExitCode}} {{.State.FinishedAt}}",
                name,
            ]);
            let (code, finished) = state.trim().split_once(' ').unwrap();
            assert_eq!(code, "3", "{who}: {state}");
            assert!(
                finished.starts_with("20") && !finished.starts_with("0001"),
                "{who}: a finish time: {state}"
            );
            // Removing it frees the disk for the next case: once the
            // kernel has let go of the container's overlay, which it does
            // a moment after the container's mount namespace ends.
            env.ok(["rm", "-f", name]);
            common::wait_until(
                "the removed container's space is free again",
                std::time::Duration::from_secs(20),
                || {
                    nix::sys::statvfs::statvfs(&env.root)
                        .is_ok_and(|s| s.blocks_available() * s.fragment_size() > 10 << 20)
                },
            );
        }
    }
}

// ---------------------------------------------------------------------------
// `system check` on a store with debris planted in it.

#[test]
fn system_check_reports_and_repairs_debris() {
    let Some(env) = Env::new(common::Who::Range, "check-debris") else {
        return;
    };
    // Each command in a mount namespace of its own: `system check` also
    // reports the user's keeper of the caller's namespaces, which other
    // tests' containers on this host may have left in any state.
    let env = env.on_host("check-debris", ":");
    env.import_busybox("base");
    env.ok(["create", "--name", "keep", "base", "true"]);
    let o = env.run(["system", "check"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_eq!(stdout(&o), "store is consistent\n");

    let root = &env.root;
    let (uid, gid) = env.ids();
    let own = |p: &Path| {
        let st = Command::new("chown")
            .args(["-R", &format!("{uid}:{gid}")])
            .arg(p)
            .status()
            .unwrap();
        assert!(st.success());
    };
    // A pid no process can have (above the kernel's pid_max limit).
    let stale = root.join("tmp/import-4194305-abcdef");
    std::fs::create_dir_all(stale.join("fs/etc")).unwrap();
    let half_layer = root.join(format!("layers/{}", "e".repeat(64)));
    std::fs::create_dir_all(half_layer.join("fs")).unwrap();
    let orphan = root.join(format!("containers/{}", "f".repeat(64)));
    std::fs::create_dir_all(orphan.join("upper")).unwrap();
    std::os::unix::fs::symlink("0".repeat(64), root.join("names/dangling")).unwrap();
    for p in [&stale, &half_layer, &orphan, &root.join("names/dangling")] {
        own(p);
    }
    let repos = root.join("repositories.json");
    let mut tags: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&repos).unwrap()).unwrap();
    tags["docker.io/library/gone:latest"] = serde_json::json!(format!("sha256:{}", "1".repeat(64)));
    std::fs::write(&repos, tags.to_string()).unwrap();

    let o = env.run(["system", "check"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    for says in [
        "import-4194305-abcdef was left by a process that is gone",
        "is incomplete",
        "has no record",
        "name dangling points at container",
        "tag docker.io/library/gone:latest points at image",
    ] {
        assert!(out.contains(says), "{says}: {out}");
    }
    assert!(stderr(&o).contains("5 problems found"), "{}", stderr(&o));

    let o = env.run(["system", "check", "--repair"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    assert_eq!(out.matches("removed ").count(), 4, "{out}");
    assert!(
        out.contains("untagged docker.io/library/gone:latest"),
        "{out}"
    );
    assert!(out.ends_with("store is consistent\n"), "{out}");
    for p in [&stale, &half_layer, &orphan, &root.join("names/dangling")] {
        assert!(!p.exists(), "{} was not removed", p.display());
    }
    // What a repair cannot fix: a container whose layer is gone.
    let layer = std::fs::read_dir(root.join("layers"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::rename(&layer, root.join("moved-away")).unwrap();
    let o = env.run(["system", "check", "--repair"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("(keep): layer sha256:"), "{out}");
    assert!(!out.contains("--repair removes it"), "{out}");
    std::fs::rename(root.join("moved-away"), &layer).unwrap();
    env.ok(["system", "check"]);
}
