//! `burrow-runc`: burrow as an OCI runtime, the runc command line that
//! engines (podman through conmon, containerd through go-runc) drive. A
//! third front end beside `cli/` and `monitor/`: it reads a bundle's
//! `config.json`, translates it into the sandbox's process path
//! (`bundle.rs`), and keeps runc's lifecycle (`lifecycle.rs`, with
//! `create.rs`, `exec.rs` and `hooks.rs`): `create` leaves init blocked on
//! a FIFO until `start`, writes the pid file and exits, so the engine's
//! shim (a subreaper) becomes init's parent.

mod bundle;
mod create;
mod exec;
mod hooks;
mod lifecycle;
mod state;
mod update;

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Global flags, given before the verb by conmon and go-runc.
#[derive(Debug, Parser)]
#[command(
    name = "burrow-runc",
    about = "burrow as an OCI runtime (the runc command line)",
    disable_version_flag = true
)]
pub struct RuncCli {
    /// Where container state lives (default $XDG_RUNTIME_DIR/burrow-runc).
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    /// Append errors (and with --debug, notes) to this file.
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// text or json.
    #[arg(long = "log-format", global = true, default_value = "text",
          value_parser = ["text", "json"])]
    log_format: String,
    #[arg(long, global = true)]
    debug: bool,
    /// Accepted; cgroups are left to the engine when not delegated.
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// true, false or auto (runc's); only `spec` reads it, burrow-runc is
    /// rootless-aware either way.
    #[arg(long, global = true, num_args = 0..=1, require_equals = true,
          default_missing_value = "true")]
    rootless: Option<String>,
    /// crun's spelling of --systemd-cgroup (cgroupfs, systemd, disabled);
    /// accepted, as cgroups are left alone.
    #[arg(long = "cgroup-manager", global = true)]
    cgroup_manager: Option<String>,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Debug, Subcommand)]
enum Verb {
    /// Create a container from a bundle; its process waits for `start`.
    Create(CreateArgs),
    /// Let a created container's process run.
    Start {
        id: String,
    },
    /// create + start; without --detach, wait and exit with its code.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        #[arg(short, long)]
        detach: bool,
        /// Keep the container's state after it exits (crun's flag).
        #[arg(long)]
        keep: bool,
    },
    /// Print a container's state as JSON.
    State {
        id: String,
    },
    /// Send a signal (name or number, default SIGTERM) to the container.
    Kill {
        #[arg(short, long)]
        all: bool,
        id: String,
        signal: Option<String>,
    },
    /// Remove a container's state (--force kills it first).
    Delete {
        #[arg(short, long)]
        force: bool,
        /// The argument is a regular expression: delete every container
        /// whose id it matches (crun's flag; unanchored, as crun's).
        #[arg(short, long)]
        regex: bool,
        id: String,
    },
    /// Run a process in a running container.
    Exec(ExecArgs),
    /// List containers.
    #[command(alias = "ls")]
    List {
        #[arg(short, long, default_value = "table")]
        format: String,
        #[arg(short, long)]
        quiet: bool,
    },
    /// The container's processes.
    Ps {
        #[arg(short, long, default_value = "table")]
        format: String,
        id: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Stop every process of the container (SIGSTOP: no delegated freezer).
    Pause {
        id: String,
    },
    Resume {
        id: String,
    },
    /// Change a running container's limits in its own cgroup v2.
    Update(UpdateArgs),
    /// Refused: burrow-runc has no CRIU support (runc's flags accepted).
    Checkpoint(CheckpointArgs),
    /// Refused, as `checkpoint` is.
    Restore {
        #[command(flatten)]
        checkpoint: CheckpointArgs,
        #[arg(short, long)]
        bundle: Option<PathBuf>,
        #[arg(short, long)]
        detach: bool,
        #[command(flatten)]
        init: InitArgs,
        #[arg(long = "no-subreaper")]
        no_subreaper: bool,
    },
    /// What this runtime supports, as JSON.
    Features,
    /// Refused: crun's verb that adds mounts to (or removes them from) a
    /// running container; burrow-runc never changes a container's mount
    /// tree once it runs.
    Mounts {
        #[arg(value_parser = ["add", "remove"])]
        action: String,
        id: String,
        file: PathBuf,
    },
    /// Write a starting config.json into the bundle directory.
    /// With --rootless, a user namespace mapping only you to root.
    Spec {
        #[arg(short, long)]
        bundle: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
struct CreateArgs {
    /// The bundle directory (default: the current one).
    #[arg(short, long)]
    bundle: Option<PathBuf>,
    /// The config file, relative to the bundle (crun's flag).
    #[arg(short, long, default_value = "config.json")]
    config: PathBuf,
    #[command(flatten)]
    init: InitArgs,
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    id: String,
}

/// The flags `create` and `restore` share: where init's pid and its
/// terminal go, and runc's `--no-pivot` (accepted; pivot_root is always
/// used).
#[derive(Debug, clap::Args)]
struct InitArgs {
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// A unix socket to send the pty master to (process.terminal).
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    #[arg(long = "no-pivot")]
    no_pivot: bool,
}

/// runc's `update` flags (-1 is "unlimited" for the limits); `--resources`
/// (a file, or `-` for stdin) holds an OCI `LinuxResources` object instead.
#[derive(Debug, clap::Args)]
struct UpdateArgs {
    #[arg(short, long)]
    resources: Option<PathBuf>,
    #[arg(long, allow_negative_numbers = true)]
    memory: Option<String>,
    #[arg(long = "memory-reservation", allow_negative_numbers = true)]
    memory_reservation: Option<String>,
    #[arg(long = "memory-swap", allow_negative_numbers = true)]
    memory_swap: Option<String>,
    #[arg(long = "kernel-memory", allow_negative_numbers = true)]
    kernel_memory: Option<String>,
    #[arg(long = "kernel-memory-tcp", allow_negative_numbers = true)]
    kernel_memory_tcp: Option<String>,
    #[arg(long = "cpu-share", allow_negative_numbers = true)]
    cpu_share: Option<String>,
    #[arg(long = "cpu-quota", allow_negative_numbers = true)]
    cpu_quota: Option<String>,
    #[arg(long = "cpu-period", allow_negative_numbers = true)]
    cpu_period: Option<String>,
    #[arg(long = "cpu-rt-period", allow_negative_numbers = true)]
    cpu_rt_period: Option<String>,
    #[arg(long = "cpu-rt-runtime", allow_negative_numbers = true)]
    cpu_rt_runtime: Option<String>,
    #[arg(long = "cpu-idle", allow_negative_numbers = true)]
    cpu_idle: Option<String>,
    #[arg(long = "cpuset-cpus", allow_negative_numbers = true)]
    cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems", allow_negative_numbers = true)]
    cpuset_mems: Option<String>,
    #[arg(long = "pids-limit", allow_negative_numbers = true)]
    pids_limit: Option<String>,
    #[arg(long = "blkio-weight", allow_negative_numbers = true)]
    blkio_weight: Option<String>,
    #[arg(long = "l3-cache-schema")]
    l3_cache_schema: Option<String>,
    #[arg(long = "mem-bw-schema", allow_negative_numbers = true)]
    mem_bw_schema: Option<String>,
    id: String,
}

/// runc's `checkpoint` flags (containerd's shim passes them), accepted so
/// that the refusal is burrow-runc's own message.
#[derive(Debug, clap::Args)]
struct CheckpointArgs {
    #[arg(long = "image-path")]
    image_path: Option<PathBuf>,
    #[arg(long = "work-path")]
    work_path: Option<PathBuf>,
    #[arg(long = "parent-path")]
    parent_path: Option<PathBuf>,
    #[arg(long = "leave-running")]
    leave_running: bool,
    #[arg(long = "tcp-established")]
    tcp_established: bool,
    #[arg(long = "ext-unix-sk")]
    ext_unix_sk: bool,
    #[arg(long = "shell-job")]
    shell_job: bool,
    #[arg(long = "lazy-pages")]
    lazy_pages: bool,
    #[arg(long = "status-fd")]
    status_fd: Option<i32>,
    #[arg(long = "page-server")]
    page_server: Option<String>,
    #[arg(long = "file-locks")]
    file_locks: bool,
    #[arg(long = "pre-dump")]
    pre_dump: bool,
    #[arg(long = "manage-cgroups-mode")]
    manage_cgroups_mode: Option<String>,
    #[arg(long = "empty-ns")]
    empty_ns: Vec<String>,
    #[arg(long = "auto-dedup")]
    auto_dedup: bool,
    id: String,
}

#[derive(Debug, clap::Args)]
struct ExecArgs {
    /// A JSON OCI process object.
    #[arg(short, long)]
    process: Option<PathBuf>,
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    #[arg(short, long)]
    detach: bool,
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    #[arg(short, long)]
    tty: bool,
    #[arg(long)]
    cwd: Option<String>,
    #[arg(short, long)]
    env: Vec<String>,
    /// UID[:GID]
    #[arg(short, long)]
    user: Option<String>,
    #[arg(long = "no-new-privs")]
    no_new_privs: bool,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    #[arg(long = "process-label")]
    process_label: Option<String>,
    #[arg(long)]
    apparmor: Option<String>,
    #[arg(long)]
    cap: Vec<String>,
    #[arg(long)]
    cgroup: Option<String>,
    id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// Where errors and notes go: stderr (the engine reads it), and the
/// `--log` file in runc's text or JSON lines.
pub(crate) struct Log {
    file: Option<PathBuf>,
    json: bool,
    debug: bool,
}

impl Log {
    fn write(&self, level: &str, msg: &str) {
        let Some(path) = &self.file else { return };
        let time = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let line = if self.json {
            serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
        } else {
            format!("time=\"{time}\" level={level} msg={msg:?}")
        };
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }

    pub(crate) fn error(&self, msg: &str) {
        eprintln!("burrow-runc: {msg}");
        self.write("error", msg);
    }

    /// A note for `--debug` (what was ignored, and why).
    pub(crate) fn debug(&self, msg: &str) {
        if self.debug {
            eprintln!("burrow-runc: debug: {msg}");
            self.write("debug", msg);
        }
    }
}

/// The three lines containerd parses (podman shows them as they are),
/// naming the runtime burrow stands in for: crun when called by that name,
/// else runc.
fn version(prog: &str) -> String {
    let name = if prog == "crun" { "crun" } else { "runc" };
    format!(
        "{name} version {}-burrow\ncommit: {}\nspec: 1.0.2-dev\n",
        env!("CARGO_PKG_VERSION"),
        option_env!("BURROW_GIT_COMMIT").unwrap_or("unknown")
    )
}

/// Each verb's synopsis after the global options, as runc's and crun's
/// usage lines give it.
const SYNOPSES: [(&str, &str); 17] = [
    ("create", "create [OPTION]... CONTAINER"),
    ("start", "start CONTAINER"),
    ("run", "run [OPTION]... CONTAINER"),
    ("state", "state CONTAINER"),
    ("kill", "kill CONTAINER [SIGNAL]"),
    ("delete", "delete CONTAINER"),
    ("exec", "exec CONTAINER cmd"),
    ("list", "list"),
    ("ps", "ps CONTAINER"),
    ("pause", "pause CONTAINER"),
    ("resume", "resume CONTAINER"),
    ("update", "update [OPTION]... CONTAINER"),
    ("checkpoint", "checkpoint CONTAINER"),
    ("restore", "restore CONTAINER"),
    ("features", "features"),
    ("spec", "spec"),
    ("mounts", "mounts [add|remove] CONTAINER FILE"),
];

/// The command line, named as it was called (`prog`), with usage lines in
/// the form engines' users know from runc and crun:
/// `PROG [OPTION...] VERB ARGS`.
fn command(prog: &str) -> clap::Command {
    use clap::CommandFactory;
    let mut cmd = RuncCli::command()
        .bin_name(prog.to_string())
        .override_usage(format!("{prog} [OPTION...] COMMAND [OPTION...]"));
    for (verb, synopsis) in SYNOPSES {
        cmd = cmd.mut_subcommand(verb, |c| {
            c.override_usage(format!("{prog} [OPTION...] {synopsis}"))
        });
    }
    cmd
}

/// Run the runtime with `args` (args[0] the program name); returns the
/// process exit code.
pub fn main(args: Vec<String>) -> i32 {
    let prog = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map_or_else(
            || "burrow-runc".into(),
            |n| n.to_string_lossy().into_owned(),
        );
    // `--version` (or `-v`) among the global flags, before any verb, as
    // runc takes it.
    const VERBS: [&str; 19] = [
        "mounts",
        "create",
        "start",
        "run",
        "state",
        "kill",
        "delete",
        "exec",
        "list",
        "ls",
        "ps",
        "pause",
        "resume",
        "update",
        "checkpoint",
        "restore",
        "features",
        "spec",
        "help",
    ];
    if args
        .iter()
        .skip(1)
        .take_while(|a| !VERBS.contains(&a.as_str()))
        .any(|a| a == "--version" || a == "-v")
    {
        print!("{}", version(&prog));
        return 0;
    }
    let parsed = command(&prog)
        .try_get_matches_from(&args)
        .and_then(|m| <RuncCli as clap::FromArgMatches>::from_arg_matches(&m));
    let cli = match parsed {
        Ok(c) => c,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return 0;
        }
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("bad usage");
            eprintln!("burrow-runc: {}", first.trim_start_matches("error: "));
            return 1;
        }
    };
    // crun's `--log=file:PATH` names the driver; only files are written.
    let log_file = match cli.log.as_ref().map(|p| p.to_string_lossy().into_owned()) {
        Some(v) => match v.split_once(':') {
            Some(("file", path)) => Some(PathBuf::from(path)),
            Some((driver, _)) if !driver.contains('/') => {
                eprintln!("burrow-runc: unknown log driver {driver:?} (a file path, or file:PATH)");
                return 1;
            }
            _ => Some(PathBuf::from(v)),
        },
        None => None,
    };
    // Writing a hook's stdin must not kill us when it does not read it.
    let _ = crate::linux::process::ignore_signal(nix::sys::signal::Signal::SIGPIPE);
    let log = Log {
        file: log_file,
        json: cli.log_format == "json",
        debug: cli.debug,
    };
    let root = match cli.root.clone() {
        Some(r) => r,
        None => {
            let r = state::default_root(
                std::env::var("XDG_RUNTIME_DIR").ok().as_deref(),
                nix::unistd::Uid::effective().as_raw(),
            );
            // The default may be in /tmp, where another user can plant a
            // directory or a symlink first: our state (init's pid, the exec
            // FIFO) goes only into a private directory of ours.
            if let Err(e) = crate::linux::fs::private_dir_of_ours(&r) {
                log.error(&format!(
                    "state directory {} {e}: remove it, or pass --root",
                    r.display()
                ));
                return 1;
            }
            r
        }
    };
    if cli.systemd_cgroup || cli.cgroup_manager.is_some() {
        log.debug("--systemd-cgroup: cgroups are not managed by burrow-runc");
    }
    let rootless = cli.rootless.as_deref().is_some_and(|v| v != "false");
    match lifecycle::dispatch(&root, &log, cli.verb, rootless) {
        Ok(code) => code,
        Err(e) => {
            log.error(&crate::util::message::one_line(&e));
            1
        }
    }
}

/// Whether this invocation is the runtime: the program is called
/// `burrow-runc` (a link), or the first argument is `runtime`.
pub fn invoked_as_runtime(args: &[String]) -> Option<Vec<String>> {
    let prog = args.first().map(|a| {
        std::path::Path::new(a)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    // Named `runc` or `crun` too: a link of that name first on an
    // engine's PATH makes burrow the runtime it runs by default
    // (containerd's runc shim runs `runc` from its PATH when no binary is
    // configured; podman looks for `crun` first).
    if matches!(prog.as_deref(), Some("burrow-runc" | "runc" | "crun")) {
        return Some(args.to_vec());
    }
    if args.get(1).map(String::as_str) == Some("runtime") {
        let mut v = vec!["burrow-runc".to_string()];
        v.extend(args[2..].iter().cloned());
        return Some(v);
    }
    None
}
