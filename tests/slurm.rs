//! burrow on a Slurm cluster of one node (Debian's Slurm 22.05): the test
//! starts munged, slurmctld and slurmd with a private configuration (its
//! own directory, key, socket and ports; as root, as a site runs them),
//! and the unprivileged test users submit jobs: `srun burrow run`, `srun
//! --container=BUNDLE` through an `oci.conf` whose commands are
//! burrow-runc's (the bundle made by `burrow bundle`), in both of its
//! modes (`RunTimeRun`; `RunTimeCreate` then `RunTimeStart`), and `sbatch`
//! with a detached container and `burrow wait`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::{stderr, stdout, Env};

/// munged, slurmctld and slurmd on a private configuration; stopped on drop.
struct Cluster {
    dir: tempfile::TempDir,
    daemons: Vec<Child>,
    /// burrow-runc and its global flags, as the `oci.conf` lines start.
    runc: String,
}

/// How slurmstepd drives the runtime (`oci.conf`'s two valid sets).
#[derive(Clone, Copy)]
enum OciMode {
    /// `RunTimeRun`: the runtime is the task, its output the job's.
    Run,
    /// `RunTimeCreate` then `RunTimeStart`: slurmstepd reads the create
    /// command's output until the pipe closes, then polls `state`.
    CreateStart,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Cluster {
    fn start(burrow: &Path) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("slurm")
            .tempdir_in("/tmp")
            .unwrap();
        let d = dir.path().to_path_buf();
        std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        for sub in ["munge", "ctld", "spool", "log", "etc"] {
            std::fs::create_dir(d.join(sub)).unwrap();
        }
        // Each user's burrow-runc state, in a directory anyone may add to.
        std::fs::create_dir(d.join("runc")).unwrap();
        std::fs::set_permissions(
            d.join("runc"),
            std::os::unix::fs::PermissionsExt::from_mode(0o1777),
        )
        .unwrap();
        let runc = d.join("burrow-runc");
        std::os::unix::fs::symlink(burrow, &runc).unwrap();

        // munge: its own key and socket, run as the munge user.
        let munge = d.join("munge");
        let mut key = vec![0u8; 1024];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut key))
            .unwrap();
        std::fs::write(munge.join("munge.key"), &key).unwrap();
        let o = Command::new("chown")
            .args(["-R", "munge:munge"])
            .arg(&munge)
            .output()
            .unwrap();
        assert!(o.status.success(), "chown munge: {}", stderr(&o));
        std::fs::set_permissions(
            munge.join("munge.key"),
            std::os::unix::fs::PermissionsExt::from_mode(0o400),
        )
        .unwrap();
        let sock = munge.join("sock");
        let o = Command::new("runuser")
            .args(["-u", "munge", "--", "munged"])
            .arg(format!("--socket={}", sock.display()))
            .arg(format!("--key-file={}", munge.join("munge.key").display()))
            .arg(format!("--log-file={}", munge.join("log").display()))
            .arg(format!("--pid-file={}", munge.join("pid").display()))
            .arg(format!("--seed-file={}", munge.join("seed").display()))
            .output()
            .unwrap();
        assert!(o.status.success(), "munged: {}", stderr(&o));

        let host = String::from_utf8(Command::new("hostname").arg("-s").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string();
        let p = |s: &str| d.join(s).display().to_string();
        let conf = format!(
            "ClusterName=burrowtest\nSlurmctldHost={host}(127.0.0.1)\n\
             SlurmctldPort={}\nSlurmdPort={}\n\
             AuthType=auth/munge\nAuthInfo=socket={}\nCredType=cred/munge\n\
             SlurmUser=root\nSlurmdUser=root\n\
             StateSaveLocation={}\nSlurmdSpoolDir={}\n\
             SlurmctldPidFile={}\nSlurmdPidFile={}\n\
             SlurmctldLogFile={}\nSlurmdLogFile={}\n\
             ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n\
             JobAcctGatherType=jobacct_gather/none\n\
             AccountingStorageType=accounting_storage/none\n\
             SchedulerType=sched/builtin\nSelectType=select/linear\n\
             ReturnToService=2\nMpiDefault=none\n\
             NodeName={host} NodeAddr=127.0.0.1 CPUs=1 State=UNKNOWN\n\
             PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n",
            free_port(),
            free_port(),
            sock.display(),
            p("ctld"),
            p("spool"),
            p("ctld.pid"),
            p("slurmd.pid"),
            p("log/ctld.log"),
            p("log/slurmd.log"),
        );
        std::fs::write(d.join("etc/slurm.conf"), conf).unwrap();
        // Slurm's cgroup/v1 plugin asks nothing of the host at start.
        std::fs::write(d.join("etc/cgroup.conf"), "CgroupPlugin=cgroup/v1\n").unwrap();
        // Slurm's documented rootless runc lines, with burrow-runc.
        let base = format!(
            "{} --rootless=true --root={}/%u",
            runc.display(),
            d.join("runc").display()
        );
        let mut cluster = Cluster {
            dir,
            daemons: Vec::new(),
            runc: base,
        };
        cluster.set_oci(OciMode::Run);
        for (prog, log) in [("slurmctld", "ctld.out"), ("slurmd", "slurmd.out")] {
            let mut c = Command::new(prog);
            c.arg("-D")
                .arg("-f")
                .arg(d.join("etc/slurm.conf"))
                .env("SLURM_CONF", d.join("etc/slurm.conf"))
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(d.join("log").join(log)).unwrap());
            let child = c.spawn().unwrap_or_else(|e| panic!("starting {prog}: {e}"));
            cluster.daemons.push(child);
        }
        common::wait_until("the node idle", Duration::from_secs(60), || {
            let o = cluster.as_root("sinfo", &["-h", "-o", "%t"]);
            stdout(&o).trim() == "idle"
        });
        cluster
    }

    /// slurmstepd reads `oci.conf` for each step: a new one takes effect
    /// without restarting the daemons.
    fn set_oci(&self, mode: OciMode) {
        let base = &self.runc;
        let id = "%n.%u.%j.%s.%t";
        let common = format!(
            "RunTimeQuery=\"{base} state {id}\"\nRunTimeKill=\"{base} kill -a {id}\"\n\
             RunTimeDelete=\"{base} delete --force {id}\"\n"
        );
        let verbs = match mode {
            OciMode::Run => format!("RunTimeRun=\"{base} run {id} -b %b\"\n"),
            OciMode::CreateStart => format!(
                "RunTimeCreate=\"{base} create {id} -b %b\"\nRunTimeStart=\"{base} start {id}\"\n"
            ),
        };
        std::fs::write(self.dir.path().join("etc/oci.conf"), common + &verbs).unwrap();
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("etc/slurm.conf")
    }

    fn as_root(&self, prog: &str, args: &[&str]) -> Output {
        Command::new(prog)
            .args(args)
            .env("SLURM_CONF", self.conf())
            .output()
            .unwrap()
    }

    fn logs(&self) -> String {
        ["log/ctld.log", "log/slurmd.log"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// `prog ARGS` as the test user, with burrow's environment for it
    /// (the store, HOME, PATH) and this cluster's configuration: jobs
    /// inherit it, as they inherit a user's login environment.
    fn user_cmd(&self, env: &Env, prog: &str, args: &[&str]) -> Command {
        let like = env.cmd(["version"]);
        let mut c = Command::new(prog);
        c.args(args);
        c.env_clear();
        for (k, v) in like.get_envs() {
            if let Some(v) = v {
                c.env(k, v);
            }
        }
        let bin_dir = Path::new(like.get_program())
            .parent()
            .unwrap()
            .to_path_buf();
        c.env(
            "PATH",
            format!(
                "{}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
                bin_dir.display()
            ),
        )
        .env("SLURM_CONF", self.conf())
        .current_dir(like.get_current_dir().unwrap())
        .stdin(Stdio::null());
        if nix::unistd::Uid::effective().is_root() {
            let (uid, gid) = env.ids();
            std::os::unix::process::CommandExt::uid(&mut c, uid);
            std::os::unix::process::CommandExt::gid(&mut c, gid);
        }
        c
    }
}

impl Cluster {
    /// Run `c` to its end, or fail the test once `limit` has passed (the
    /// user's jobs cancelled), so a hang fails instead of stalling.
    fn output_within(&self, mut c: Command, limit: Duration) -> Output {
        let dir = tempfile::tempdir().unwrap();
        let (out, err) = (dir.path().join("out"), dir.path().join("err"));
        c.stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap());
        let mut child = c.spawn().unwrap();
        let deadline = std::time::Instant::now() + limit;
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                let _ = self.as_root("scancel", &["--partition=debug"]);
                panic!(
                    "{:?} did not end within {limit:?}\n{}",
                    c.get_args().collect::<Vec<_>>(),
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        Output {
            status,
            stdout: std::fs::read(&out).unwrap(),
            stderr: std::fs::read(&err).unwrap(),
        }
    }
}

/// Add a read-write bind mount of `host` at `dest` to the bundle's config.
fn bind_into_bundle(bundle: &Path, host: &Path, dest: &str) {
    let path = bundle.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let mounts = cfg["mounts"].as_array_mut().unwrap();
    mounts.retain(|m| m["destination"] != dest);
    mounts.push(serde_json::json!({
        "destination": dest,
        "type": "bind",
        "source": host,
        "options": ["rbind", "rw"]
    }));
    std::fs::write(&path, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for d in &mut self.daemons {
            let _ = d.kill();
            let _ = d.wait();
        }
        let _ = Command::new("runuser")
            .args(["-u", "munge", "--", "munged", "--stop"])
            .arg(format!(
                "--socket={}",
                self.dir.path().join("munge/sock").display()
            ))
            .output();
    }
}

fn have_slurm() -> bool {
    if !nix::unistd::Uid::effective().is_root() {
        common::loud("SKIPPED slurm: the test starts slurmctld, slurmd and munged, as a site does: run it as root");
        return false;
    }
    for tool in ["slurmctld", "slurmd", "srun", "sbatch", "sinfo", "munged"] {
        if !common::have(tool) {
            common::loud(&format!(
                "SKIPPED slurm: {tool} is not installed (apt-get install slurmctld slurmd slurm-client munge)"
            ));
            return false;
        }
    }
    true
}

#[test]
fn slurm_jobs_run_burrow_and_burrow_runc_containers() {
    if !have_slurm() {
        return;
    }
    let users = common::users("slurm");
    let burrow = PathBuf::from(users[0].cmd(["version"]).get_program());
    let cluster = Cluster::start(&burrow);
    for env in &users {
        let who = env.who;
        env.import_busybox("busybox");

        // burrow itself inside a job.
        let o = cluster
            .user_cmd(
                env,
                "srun",
                &[
                    "burrow",
                    "run",
                    "--rm",
                    "busybox",
                    "sh",
                    "-c",
                    "echo job; exit 3",
                ],
            )
            .output()
            .unwrap();
        assert_eq!(
            stdout(&o),
            "job\n",
            "[{who:?}] {}\n{}",
            stderr(&o),
            cluster.logs()
        );
        assert_eq!(o.status.code(), Some(3), "[{who:?}] {}", stderr(&o));

        // The job's cgroup: burrow inside a job places its containers
        // there when Slurm delegated it (a cgroup v2 of the job's that the
        // user may write), as in any delegated subtree; otherwise a limit
        // is refused with the reason, never dropped.
        let probe = cluster
            .user_cmd(
                env,
                "srun",
                &[
                    "sh",
                    "-c",
                    "test -e /sys/fs/cgroup/cgroup.controllers || { echo hybrid; exit; }; \
                     d=/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/self/cgroup); \
                     test -w $d/cgroup.procs && echo delegated || echo root-owned $d",
                ],
            )
            .output()
            .unwrap();
        let job_cgroup = stdout(&probe);
        let o = cluster
            .user_cmd(
                env,
                "srun",
                &[
                    "burrow",
                    "run",
                    "--rm",
                    "--memory",
                    "64m",
                    "busybox",
                    "cat",
                    "/sys/fs/cgroup/memory.max",
                ],
            )
            .output()
            .unwrap();
        if job_cgroup.trim() == "delegated" {
            assert_eq!(stdout(&o), "67108864\n", "[{who:?}] {}", stderr(&o));
        } else {
            let why = if job_cgroup.trim() == "hybrid" {
                "this host's cgroups are a hybrid v1/v2 layout, and Slurm's cgroup/v2 plugin, the one that gives a job a cgroup v2, needs a pure v2 host".to_string()
            } else {
                format!(
                    "Slurm leaves the job's cgroup to root ({})",
                    job_cgroup.trim()
                )
            };
            common::loud(&format!(
                "SKIPPED slurm: a container in the job's delegated cgroup: {why}; only the refusal of a limit is tested"
            ));
            assert_eq!(o.status.code(), Some(125), "[{who:?}] {}", stderr(&o));
            assert!(
                stderr(&o).contains("cgroup"),
                "[{who:?}] the refusal says why: {}",
                stderr(&o)
            );
        }

        // srun --container: Slurm's own OCI support, with burrow-runc as
        // the runtime and a bundle `burrow bundle` made.
        let bundle = env.user_dir("slurm-bundle").join("bb");
        let _ = std::fs::remove_dir_all(&bundle);
        env.ok(["bundle", "busybox", bundle.to_str().unwrap()]);
        let container = format!("--container={}", bundle.display());
        let o = cluster
            .user_cmd(
                env,
                "srun",
                &[
                    &container,
                    "sh",
                    "-c",
                    "echo $(id -u) $(hostname) $SLURM_JOB_ID; exit 4",
                ],
            )
            .output()
            .unwrap();
        let out = stdout(&o);
        let fields: Vec<&str> = out.split_whitespace().collect();
        assert_eq!(
            &fields[..fields.len().min(2)],
            ["0", "burrow"],
            "[{who:?}] {out} {}\n{}",
            stderr(&o),
            cluster.logs()
        );
        assert!(
            fields.get(2).is_some_and(|j| j.parse::<u32>().is_ok()),
            "[{who:?}] the job's environment reaches the container: {out}"
        );
        assert_eq!(o.status.code(), Some(4), "[{who:?}] {}", stderr(&o));

        // The same through RunTimeCreate and RunTimeStart. The container's
        // output goes to the create command's capture, never to the job,
        // and the job's exit code is the start command's: the container
        // leaves its proof in a directory bound into it.
        let out_dir = env.user_dir("slurm-create-start");
        let proof = out_dir.join("proof");
        let _ = std::fs::remove_file(&proof);
        bind_into_bundle(&bundle, &out_dir, "/out");
        cluster.set_oci(OciMode::CreateStart);
        let o = cluster.output_within(
            cluster.user_cmd(
                env,
                "srun",
                &[
                    &container,
                    "sh",
                    "-c",
                    "echo $(id -u) $SLURM_JOB_ID > /out/proof; echo to-nowhere; exit 4",
                ],
            ),
            Duration::from_secs(120),
        );
        cluster.set_oci(OciMode::Run);
        assert!(
            o.status.success(),
            "[{who:?}] srun in create/start mode: {}\n{}",
            stderr(&o),
            cluster.logs()
        );
        let got = std::fs::read_to_string(&proof).unwrap_or_default();
        let fields: Vec<&str> = got.split_whitespace().collect();
        assert_eq!(
            fields.first(),
            Some(&"0"),
            "[{who:?}] the container ran in create/start mode: {got:?}\n{}",
            cluster.logs()
        );
        assert!(
            fields.get(1).is_some_and(|j| j.parse::<u32>().is_ok()),
            "[{who:?}] the job's environment reaches the container: {got:?}"
        );

        // sbatch: a detached container, and `burrow wait` in the job.
        let out_file = env.user_dir("slurm-out").join("batch.out");
        let _ = std::fs::remove_file(&out_file);
        let o = cluster
            .user_cmd(
                env,
                "sbatch",
                &[
                    "--wait",
                    "-o",
                    out_file.to_str().unwrap(),
                    "--wrap",
                    "burrow rm -f slurm-batch >/dev/null 2>&1; burrow run -d --name slurm-batch busybox sh -c 'exit 6' >/dev/null && burrow wait slurm-batch && burrow rm slurm-batch",
                ],
            )
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "[{who:?}] sbatch: {}\n{}",
            stderr(&o),
            cluster.logs()
        );
        let got = std::fs::read_to_string(&out_file).unwrap_or_default();
        assert_eq!(
            got.trim(),
            "6\nslurm-batch",
            "[{who:?}] the batch job's output"
        );

        // Nothing is left behind: no container of burrow's, no state of
        // burrow-runc's.
        assert_eq!(env.ok(["ps", "-aq"]).trim(), "", "[{who:?}]");
        let (uid, _) = env.ids();
        let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .unwrap()
            .unwrap();
        let state = cluster.dir.path().join("runc").join(&user.name);
        let left: Vec<_> = std::fs::read_dir(&state)
            .map(|r| r.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(
            left.is_empty(),
            "[{who:?}] burrow-runc state left: {left:?}"
        );
    }
}
