//! `build`: a Dockerfile executed step by step on top of the container and
//! image layers. A stage is an image id plus the config changes made since
//! it was committed; RUN runs a container of the stage and commits its
//! upper dir, COPY/ADD/WORKDIR change the stage's filesystem in a user
//! namespace (`stage.rs`) and commit that, and the other instructions only
//! change the config, written with the next layer or at the stage's end.
//! Every step that makes an image first looks for it in the cache.
//!
//! What the build says goes to its caller's `Host` as `BuildEvent`s.

pub mod cache;
pub mod context;
pub mod dockerfile;
pub mod output;
pub mod stage;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use oci_spec::image::History;

use self::cache::{Cache, Cached};
use self::context::{Ignore, Packed, Source};
use self::dockerfile::{Dockerfile, Instruction};
use crate::container::cgroup::SystemdScopes;
use crate::container::{self, CreateOptions, NetworkOptions};
use crate::image::commit::{self as image_commit, CommitOptions};
use crate::image::config::ImageRuntimeConfig;
use crate::image::reference::Reference;
use crate::linux::userns::IdMapping;
use crate::sandbox::RootfsChoice;
use crate::store::{self, Store};

/// How RUN steps run their containers (the settings `run` reads).
#[derive(Debug, Clone)]
pub struct RunEnv {
    pub rootfs: RootfsChoice,
    pub scopes: SystemdScopes,
    pub helper_path: String,
    /// The network mode of RUN containers (`--network`).
    pub network: String,
}

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub context: PathBuf,
    pub tags: Vec<Reference>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub labels: Vec<(String, String)>,
    pub quiet: bool,
    /// RUN steps' output goes to the host as `BuildEvent::Output`, not to
    /// this process's stdout and stderr.
    pub forward_output: bool,
    pub run: RunEnv,
}

/// A failed build: the step it failed at, when there is one.
#[derive(Debug, thiserror::Error)]
#[error("{}{msg}", at.as_ref().map(|a| format!("building at {a}: ")).unwrap_or_default())]
pub struct BuildError {
    /// `STEP n (Dockerfile:LINE): INSTRUCTION`.
    pub at: Option<String>,
    pub msg: String,
}

fn fail(msg: impl Into<String>) -> BuildError {
    BuildError {
        at: None,
        msg: msg.into(),
    }
}

/// What a build says on its way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// A line of the build's account (`STEP 1/3: FROM x`, `--> 0123456789ab`,
    /// `COMMIT app`, `Successfully tagged app:latest`); none with `quiet`.
    Step(String),
    /// A warning or note on the side (`[Warning] ...`, `note: ...`).
    Note(String),
    /// What a RUN step wrote (stdout and stderr), whole lines with their
    /// newlines (with `forward_output`); none with `quiet`.
    Output(String),
    /// The build is done: the image id.
    Built(String),
}

/// What a build needs from its caller: the images FROM and `COPY --from`
/// name (pulled when the caller's policy says so), and somewhere to say
/// how it goes.
pub trait Host {
    fn image(&mut self, name: &str) -> anyhow::Result<String>;
    fn event(&mut self, event: BuildEvent);
}

/// A step's work when the cache has no result: the new image's id, or
/// None when nothing changed.
type Make<'b> = dyn FnMut(&mut Builder<'_>, &Stage) -> Result<Option<String>, String> + 'b;

/// The stage being built.
#[derive(Debug, Clone, Default)]
struct Stage {
    name: Option<String>,
    /// The last image committed (None: `FROM scratch`, nothing yet).
    image: Option<String>,
    runtime: ImageRuntimeConfig,
    /// History of the config-only steps since `image`.
    pending: Vec<History>,
    /// ARGs in scope and their values.
    args: BTreeMap<String, String>,
    /// Whether this stage set CMD (a later ENTRYPOINT keeps it).
    cmd_set: bool,
}

impl Stage {
    /// Variables for substitution: ARGs, then ENV over them (Docker's rule).
    fn vars(&self) -> BTreeMap<String, String> {
        let mut v = self.args.clone();
        for e in &self.runtime.env {
            if let Some((k, val)) = e.split_once('=') {
                v.insert(k.to_string(), val.to_string());
            }
        }
        v
    }

    /// Everything about the stage a step's result depends on, besides the
    /// step itself.
    fn key_base(&self) -> String {
        let pending: Vec<_> = self
            .pending
            .iter()
            .map(|h| h.created_by().clone())
            .collect();
        serde_json::json!({
            "image": self.image,
            "config": self.runtime,
            "pending": pending,
            "args": self.args,
        })
        .to_string()
    }

    fn note(&mut self, created_by: String) {
        let mut h = History::default();
        h.set_created(Some(crate::util::human::now_rfc3339()));
        h.set_created_by(Some(created_by));
        h.set_empty_layer(Some(true));
        self.pending.push(h);
    }

    fn commit_options(&self, created_by: String) -> CommitOptions {
        CommitOptions {
            created_by,
            runtime: Some(self.runtime.clone()),
            history_before: self.pending.clone(),
            ..Default::default()
        }
    }

    /// What shell-form RUN, CMD and ENTRYPOINT run under: the SHELL this
    /// stage or its base image set, else Docker's default.
    fn shell(&self) -> Vec<String> {
        self.runtime
            .docker
            .shell
            .clone()
            .unwrap_or_else(default_shell)
    }

    fn set_image(&mut self, id: String) {
        self.image = Some(id);
        self.pending.clear();
    }
}

/// The default SHELL.
fn default_shell() -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into()]
}

/// ARGs Docker defines without a declaration (proxies).
const PREDEFINED_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

pub struct Builder<'a> {
    store: &'a Store,
    mapping: &'a IdMapping,
    opts: &'a BuildOptions,
    cache: Cache,
    host: &'a mut dyn Host,
    source: Source,
    escape: char,
    /// Finished stages: name (lower case) and image id.
    done: Vec<(Option<String>, String)>,
    used_args: BTreeSet<String>,
    /// The last image id shown as `--> id`, so a stage's end does not show
    /// its last step's image twice.
    shown: Option<String>,
}

/// The image id of the build.
pub fn build<'a>(
    store: &'a Store,
    mapping: &'a IdMapping,
    opts: &'a BuildOptions,
    dockerfile: &Dockerfile,
    host: &'a mut dyn Host,
) -> Result<String, BuildError> {
    let ignore = Ignore::read(&opts.context).map_err(|e| {
        fail(format!(
            "reading {}/.dockerignore: {e}",
            opts.context.display()
        ))
    })?;
    let mut b = Builder {
        store,
        mapping,
        opts,
        cache: Cache::open(store, !opts.no_cache),
        host,
        source: Source {
            root: opts.context.clone(),
            ignore,
            what: "build context".into(),
        },
        escape: dockerfile.escape,
        done: Vec::new(),
        used_args: BTreeSet::new(),
        shown: None,
    };
    let id = b.run(dockerfile)?;
    b.host.event(BuildEvent::Built(id.clone()));
    Ok(id)
}

impl Builder<'_> {
    fn say(&mut self, line: &str) {
        if !self.opts.quiet {
            self.host.event(BuildEvent::Step(line.to_string()));
        }
    }

    fn note(&mut self, line: String) {
        self.host.event(BuildEvent::Note(line));
    }

    /// `--> <short id>` after a step or a stage that made (or found) `id`.
    fn show_id(&mut self, id: &str) {
        if self.shown.as_deref() != Some(id) {
            self.say(&format!("--> {}", store::short_hex(id)));
            self.shown = Some(id.to_string());
        }
    }

    fn run(&mut self, df: &Dockerfile) -> Result<String, BuildError> {
        // Split into the global ARGs and the stages.
        let mut globals = BTreeMap::new();
        let mut stages: Vec<Vec<&Instruction>> = Vec::new();
        for i in &df.instructions {
            if i.keyword == "FROM" {
                stages.push(vec![i]);
            } else if let Some(s) = stages.last_mut() {
                s.push(i);
            } else {
                // Only ARG parses before the first FROM.
                let at = |m: String| BuildError {
                    at: Some(format!("Dockerfile:{}", i.line)),
                    msg: m,
                };
                let earlier = globals.clone();
                for (k, v) in self.declare(&i.args, &earlier).map_err(at)? {
                    globals.insert(k, v);
                }
            }
        }
        let names: Vec<Option<String>> = stages
            .iter()
            .map(|s| stage_name(s[0], self.escape).ok().flatten())
            .collect();
        let last = match &self.opts.target {
            None => stages.len() - 1,
            Some(t) => names
                .iter()
                .position(|n| n.as_deref() == Some(t.to_ascii_lowercase().as_str()))
                .ok_or_else(|| fail(format!("target stage {t:?} could not be found")))?,
        };
        let count = last + 1;
        let mut final_id = String::new();
        for (n, steps) in stages.iter().take(count).enumerate() {
            let prefix = if count > 1 {
                format!("[{}/{count}] ", n + 1)
            } else {
                String::new()
            };
            let id = self.stage(steps, &globals, &prefix, n == last)?;
            self.done.push((names[n].clone(), id.clone()));
            final_id = id;
        }
        let unused: Vec<_> = self
            .opts
            .build_args
            .keys()
            .filter(|k| !self.used_args.contains(*k) && !PREDEFINED_ARGS.contains(&k.as_str()))
            .cloned()
            .collect();
        if !unused.is_empty() {
            self.note(format!(
                "[Warning] one or more build args were not consumed: [{}]",
                unused.join(" ")
            ));
        }
        for t in &self.opts.tags {
            let _lock = self
                .store
                .lock_exclusive()
                .map_err(|e| fail(e.to_string()))?;
            let mut repos = self.store.repositories().map_err(|e| fail(e.to_string()))?;
            repos.insert(t.to_string(), final_id.clone());
            self.store
                .save_repositories(&repos)
                .map_err(|e| fail(e.to_string()))?;
        }
        for t in &self.opts.tags {
            self.say(&format!("Successfully tagged {t}"));
        }
        Ok(final_id)
    }

    /// `ARG name[=default] ...`: the values they take (a build arg wins over
    /// the default; `inherited` supplies a global's value).
    fn declare(
        &mut self,
        args: &str,
        inherited: &BTreeMap<String, String>,
    ) -> Result<Vec<(String, String)>, String> {
        let text = dockerfile::substitute(args, inherited, self.escape)?;
        let mut out = Vec::new();
        for w in dockerfile::words(&text, self.escape)? {
            let (name, default) = match w.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (w.clone(), None),
            };
            if name.is_empty() {
                return Err(format!("ARG {w:?}: a name is needed"));
            }
            let value = match self.opts.build_args.get(&name) {
                Some(v) => {
                    self.used_args.insert(name.clone());
                    Some(v.clone())
                }
                None => default.or_else(|| inherited.get(&name).cloned()),
            };
            // A declared ARG with no value is in scope but unset.
            if let Some(v) = value {
                out.push((name, v));
            }
        }
        Ok(out)
    }

    fn stage(
        &mut self,
        steps: &[&Instruction],
        globals: &BTreeMap<String, String>,
        prefix: &str,
        is_final: bool,
    ) -> Result<String, BuildError> {
        let total = steps.len();
        let mut st = Stage::default();
        for (n, ins) in steps.iter().enumerate() {
            let text = ins.text();
            self.say(&format!("{prefix}STEP {}/{total}: {text}", n + 1));
            let at = format!("STEP {} (Dockerfile:{}): {}", n + 1, ins.line, text);
            self.step(&mut st, ins, globals)
                .map_err(|msg| BuildError { at: Some(at), msg })?;
        }
        // The stage's image: its last commit plus what changed since.
        if is_final {
            for (k, v) in &self.opts.labels {
                st.runtime.labels.insert(k.clone(), v.clone());
            }
            let shown = self
                .opts
                .tags
                .first()
                .map(|t| format!(" {}", t.short()))
                .unwrap_or_default();
            self.say(&format!("COMMIT{shown}"));
        }
        let id = match (&st.image, st.pending.is_empty() && !is_final) {
            (Some(id), true) => id.clone(),
            _ => self
                .finish(&st)
                .map_err(|msg| BuildError { at: None, msg })?,
        };
        self.show_id(&id);
        Ok(id)
    }

    /// Commit the stage's config changes since its last layer (cached).
    fn finish(&mut self, st: &Stage) -> Result<String, String> {
        if st.pending.is_empty() {
            if let Some(id) = &st.image {
                let (_, now) =
                    crate::image::config::load(self.store, id).map_err(|e| e.to_string())?;
                if now == st.runtime {
                    return Ok(id.clone());
                }
            }
        }
        let key = cache::key(&[&st.key_base(), "COMMIT"]);
        if let Some(Cached::Image(id)) = self.cache.get(self.store, &key) {
            self.say(&format!("--> Using cache {}", store::hex_of(&id)));
            return Ok(id);
        }
        let opts = CommitOptions {
            runtime: Some(st.runtime.clone()),
            history_before: st.pending.clone(),
            ..Default::default()
        };
        let id = image_commit::commit_config(self.store, st.image.as_deref(), &opts)
            .map_err(|e| e.to_string())?;
        self.made(&id);
        self.cache.put(&key, &Cached::Image(id.clone()));
        Ok(id)
    }

    /// Mark an image this build made, so `images` hides it while untagged.
    fn made(&self, id: &str) {
        if let Err(e) = crate::image::add::mark_build_cache(self.store, id) {
            tracing::warn!("marking {id} as build cache: {e}");
        }
    }

    /// One instruction.
    fn step(
        &mut self,
        st: &mut Stage,
        ins: &Instruction,
        globals: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        let kw = ins.keyword.as_str();
        let args = if dockerfile::substitutes(kw) && kw != "ARG" && kw != "FROM" {
            dockerfile::substitute(&ins.args, &st.vars(), self.escape)?
        } else {
            ins.args.clone()
        };
        let nop = |text: &str| format!("/bin/sh -c #(nop) {text}");
        match kw {
            "FROM" => {
                let text = dockerfile::substitute(&ins.args, globals, self.escape)?;
                let w = dockerfile::words(&text, self.escape)?;
                let base = w.first().cloned().unwrap_or_default();
                st.name = stage_name(ins, self.escape)?;
                st.image = if base == "scratch" {
                    None
                } else {
                    Some(self.image_of(&base)?)
                };
                st.runtime = match &st.image {
                    Some(id) => {
                        crate::image::config::load(self.store, id)
                            .map_err(|e| e.to_string())?
                            .1
                    }
                    None => ImageRuntimeConfig::default(),
                };
                self.onbuild_triggers(st, globals)?;
            }
            "ARG" => {
                for (k, v) in self.declare(&ins.args, &st.vars_with(globals))? {
                    st.args.insert(k, v);
                }
                // ARG changes no config: it is in the next steps' keys.
            }
            "ENV" => {
                for (k, v) in dockerfile::key_values(&args, self.escape, true)? {
                    st.runtime.set_env(&format!("{k}={v}"));
                }
                st.note(nop(&format!("ENV {args}")));
            }
            "LABEL" => {
                for (k, v) in dockerfile::key_values(&args, self.escape, true)? {
                    st.runtime.labels.insert(k, v);
                }
                st.note(nop(&format!("LABEL {args}")));
            }
            "MAINTAINER" => st.note(nop(&format!("MAINTAINER {args}"))),
            "CMD" | "ENTRYPOINT" => {
                let argv = ins.exec_form().unwrap_or_else(|| {
                    let mut v = st.shell();
                    v.push(args.clone());
                    v
                });
                if kw == "CMD" {
                    st.runtime.cmd = Some(argv.clone());
                    st.cmd_set = true;
                } else {
                    st.runtime.entrypoint = Some(argv.clone());
                    // Docker: a new ENTRYPOINT drops the Cmd the base
                    // image had (not one this stage set).
                    if !st.cmd_set {
                        st.runtime.cmd = None;
                    }
                }
                st.note(nop(&format!(
                    "{kw} {}",
                    serde_json::to_string(&argv).unwrap_or_default()
                )));
            }
            "WORKDIR" => {
                let dir = if args.starts_with('/') {
                    args.clone()
                } else {
                    let base = if st.runtime.working_dir.is_empty() {
                        "/"
                    } else {
                        st.runtime.working_dir.as_str()
                    };
                    format!("{}/{args}", base.trim_end_matches('/'))
                };
                let dir = format!("/{}", context::clean(&dir).join("/"));
                st.runtime.working_dir = dir.clone();
                let plan = stage::Plan {
                    mkdir: vec![dir.clone()],
                    mkdir_owner: (!st.runtime.user.is_empty()).then(|| st.runtime.user.clone()),
                    tar: None,
                    place: None,
                    chown: None,
                    entries: Vec::new(),
                };
                let created_by = nop(&format!("WORKDIR {dir}"));
                self.fs_step(st, &format!("WORKDIR {dir}"), plan, created_by)?;
            }
            "USER" | "EXPOSE" | "VOLUME" | "STOPSIGNAL" => {
                crate::image::change::apply_change(&mut st.runtime, &format!("{kw} {args}"))
                    .map_err(|e| e.reason)?;
                st.note(nop(&format!("{kw} {args}")));
            }
            "SHELL" => {
                let shell = ins
                    .exec_form()
                    .filter(|v| !v.is_empty())
                    .ok_or("SHELL requires the arguments to be in JSON form")?;
                st.note(nop(&format!(
                    "SHELL {}",
                    serde_json::to_string(&shell).unwrap_or_default()
                )));
                st.runtime.docker.shell = Some(shell);
            }
            "HEALTHCHECK" => {
                st.runtime.docker.healthcheck = Some(dockerfile::healthcheck(ins)?);
                st.note(nop(&ins.text()));
            }
            "ONBUILD" => {
                let trigger = dockerfile::onbuild_trigger(ins)?;
                st.runtime
                    .docker
                    .on_build
                    .get_or_insert_with(Vec::new)
                    .push(trigger.text());
                st.note(nop(&format!("ONBUILD {}", trigger.text())));
            }
            "RUN" => self.run_step(st, ins)?,
            "COPY" | "ADD" => self.copy_step(st, ins, &args)?,
            other => return Err(format!("{other} is not supported")),
        }
        Ok(())
    }

    /// After FROM: the base image's ONBUILD triggers run as this stage's
    /// first steps, and are not passed on (Docker's rule).
    fn onbuild_triggers(
        &mut self,
        st: &mut Stage,
        globals: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        let Some(triggers) = st.runtime.docker.on_build.take() else {
            return Ok(());
        };
        if triggers.is_empty() {
            return Ok(());
        }
        self.say(&format!("--> Executing {} build triggers", triggers.len()));
        for t in triggers {
            let err = |e: String| format!("ONBUILD trigger {t:?}: {e}");
            // Checked again: the image may come from anywhere.
            let ins = dockerfile::onbuild_trigger(&dockerfile::Instruction {
                line: 0,
                keyword: "ONBUILD".into(),
                flags: Vec::new(),
                args: t.clone(),
                heredoc: None,
            })
            .map_err(err)?;
            self.say(&format!("--> Trigger: {}", ins.text()));
            self.step(st, &ins, globals).map_err(err)?;
        }
        Ok(())
    }

    /// An image for FROM or `COPY --from`: an earlier stage by name or
    /// index, else an image (pulled when missing).
    fn image_of(&mut self, name: &str) -> Result<String, String> {
        let lower = name.to_ascii_lowercase();
        if let Some((_, id)) = self
            .done
            .iter()
            .find(|(n, _)| n.as_deref() == Some(lower.as_str()))
        {
            return Ok(id.clone());
        }
        if let Ok(n) = name.parse::<usize>() {
            return match self.done.get(n) {
                Some((_, id)) => Ok(id.clone()),
                None => Err(format!("no stage {n} before this one")),
            };
        }
        self.host.image(name).map_err(|e| format!("{e:#}"))
    }

    /// Look the step up in the cache, else do it: `make` returns the new
    /// image id, or None when it changed nothing.
    fn cached(&mut self, st: &mut Stage, key: String, make: &mut Make<'_>) -> Result<(), String> {
        match self.cache.get(self.store, &key) {
            Some(Cached::Image(id)) => {
                self.say(&format!("--> Using cache {}", store::hex_of(&id)));
                self.show_id(&id);
                st.set_image(id);
            }
            Some(Cached::Unchanged) => self.say("--> Using cache"),
            None => match make(self, st)? {
                Some(id) => {
                    self.made(&id);
                    self.cache.put(&key, &Cached::Image(id.clone()));
                    self.show_id(&id);
                    st.set_image(id);
                }
                None => self.cache.put(&key, &Cached::Unchanged),
            },
        }
        Ok(())
    }

    /// A step done in a user namespace on the stage's filesystem.
    fn fs_step(
        &mut self,
        st: &mut Stage,
        what: &str,
        plan: stage::Plan,
        created_by: String,
    ) -> Result<(), String> {
        self.fs_step_keyed(st, what, "", plan, created_by)
    }

    fn fs_step_keyed(
        &mut self,
        st: &mut Stage,
        what: &str,
        content: &str,
        plan: stage::Plan,
        created_by: String,
    ) -> Result<(), String> {
        let key = cache::key(&[&st.key_base(), what, content]);
        let mut plan = Some(plan);
        self.cached(st, key, &mut |b, st| {
            let staging = b
                .store
                .staging("build", b.mapping)
                .map_err(|e| e.to_string())?;
            let plan = plan.take().expect("made once");
            if !stage::apply(b.store, b.mapping, st.image.as_deref(), &staging, plan)? {
                return Ok(None);
            }
            let opts = st.commit_options(created_by.clone());
            let done = image_commit::commit_changes_on(
                b.store,
                b.mapping,
                b.mapping,
                st.image.as_deref(),
                &image_commit::ChangesFrom::Upper(staging.join("upper")),
                &opts,
            )
            .map_err(|e| e.to_string())?;
            for n in done.notes {
                b.note(format!("note: {n}"));
            }
            Ok(Some(done.id))
        })
    }

    fn run_step(&mut self, st: &mut Stage, ins: &Instruction) -> Result<(), String> {
        let argv = match (&ins.heredoc, ins.exec_form()) {
            (Some(_), Some(_)) => return Err("a heredoc needs the shell form".into()),
            (None, Some(v)) => v,
            (None, None) => [st.shell(), vec![ins.args.clone()]].concat(),
            // `RUN <<EOF` alone runs the body as a script; otherwise the
            // shell gets the heredoc as written.
            (Some(h), None) if dockerfile::heredoc_only(&ins.args) => {
                [st.shell(), vec![h.body.clone()]].concat()
            }
            (Some(h), None) => {
                let text = format!("{}\n{}{}", ins.args, h.body, h.word);
                [st.shell(), vec![text]].concat()
            }
        };
        if argv.is_empty() {
            return Err("RUN needs a command".into());
        }
        // ARGs reach RUN as environment (ENV wins); they are part of the key.
        let mut env = st.runtime.env.clone();
        for (k, v) in &st.args {
            if !env
                .iter()
                .any(|e| e.split_once('=').map(|p| p.0) == Some(k))
            {
                env.push(format!("{k}={v}"));
            }
        }
        let created_by = argv.join(" ");
        let key = cache::key(&[
            &st.key_base(),
            "RUN",
            &serde_json::to_string(&argv).unwrap(),
        ]);
        self.cached(st, key, &mut |b, st| {
            let Some(image) = st.image.clone() else {
                return Err("there is nothing to run in a stage FROM scratch with no files".into());
            };
            b.run_container(st, &image, &argv, &env, &created_by)
                .map(Some)
        })
    }

    /// Run `argv` in a container of `image` with the stage's config, then
    /// commit its changes; the container is removed either way.
    fn run_container(
        &mut self,
        st: &Stage,
        image: &str,
        argv: &[String],
        env: &[String],
        created_by: &str,
    ) -> Result<String, String> {
        let non_empty = |s: &String| (!s.is_empty()).then(|| s.clone());
        let opts = CreateOptions {
            image: image.to_string(),
            image_id: image.to_string(),
            cmd: argv.to_vec(),
            env: env.to_vec(),
            entrypoint: Some(Vec::new()),
            workdir: non_empty(&st.runtime.working_dir),
            user: non_empty(&st.runtime.user),
            network: NetworkOptions {
                mode: self.opts.run.network.clone(),
                ..Default::default()
            },
            ..Default::default()
        };
        let mut rec = {
            let _lock = self.store.lock_shared().map_err(|e| e.to_string())?;
            container::create(self.store, self.mapping, &opts).map_err(|e| e.to_string())?
        };
        let run = self.opts.run.clone();
        let ran = if self.opts.forward_output {
            let quiet = self.opts.quiet;
            output::run(self.store, &mut rec, self.mapping, &run, quiet, self.host)
        } else {
            container::run_foreground(
                self.store,
                &mut rec,
                self.mapping,
                run.rootfs,
                run.scopes,
                run.helper_path,
            )
        };
        let result = ran.map_err(|e| e.to_string()).and_then(|code| match code {
            0 => {
                let opts = st.commit_options(created_by.to_string());
                container::commit::commit(self.store, self.mapping, &mut rec, opts, false)
                    .map_err(|e| e.to_string())
            }
            n => Err(format!("exit code {n}")),
        });
        let removed = container::remove(self.store, &rec, self.mapping, true)
            .and_then(|()| container::remove_anonymous_volumes(self.store, self.mapping, &rec));
        if let Err(e) = removed {
            self.note(format!(
                "WARN: removing the build container {}: {e}",
                rec.name
            ));
        }
        let done = result?;
        for n in done.notes {
            self.note(format!("note: {n}"));
        }
        Ok(done.id)
    }

    fn copy_step(&mut self, st: &mut Stage, ins: &Instruction, args: &str) -> Result<(), String> {
        let kw = ins.keyword.as_str();
        let mut parts = match dockerfile::exec_form(args) {
            Some(v) => v,
            None => dockerfile::words(args, self.escape)?,
        };
        if parts.len() < 2 {
            return Err(format!(
                "{kw} requires at least two arguments: SOURCE... DEST"
            ));
        }
        let dest_arg = parts.pop().unwrap_or_default();
        let dest = if dest_arg.starts_with('/') {
            dest_arg.clone()
        } else {
            let base = if st.runtime.working_dir.is_empty() {
                "/".to_string()
            } else {
                st.runtime.working_dir.clone()
            };
            format!("{}/{dest_arg}", base.trim_end_matches('/'))
        };
        let dir_dest = dest.ends_with('/') || dest_arg == "." || dest_arg.ends_with("/.");
        let dest = format!("/{}", context::clean(&dest).join("/"));
        let vars = st.vars();
        let flag = |name: &str| -> Result<Option<String>, String> {
            ins.flag(name)
                .map(|v| dockerfile::substitute(v, &vars, self.escape))
                .transpose()
        };
        let chmod = match flag("chmod")? {
            None => None,
            Some(m) => Some(
                u32::from_str_radix(&m, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| format!("--chmod={m}: expected an octal mode"))?,
            ),
        };
        let chown = flag("chown")?;
        let from = flag("from")?;
        if kw == "ADD" {
            if let Some(url) = parts.iter().find(|p| p.contains("://")) {
                return Err(format!("ADD {url}: remote sources are not supported yet"));
            }
        }
        let staging = self
            .store
            .staging("build-copy", self.mapping)
            .map_err(|e| e.to_string())?;
        let tar_path = staging.join("copy.tar");
        let create =
            || std::fs::File::create(&tar_path).map_err(|e| format!("{}: {e}", tar_path.display()));
        // ADD of one local archive unpacks it into the destination.
        if kw == "ADD" && parts.len() == 1 {
            if let Some(hash) = self.add_archive(&parts[0], &tar_path)? {
                let plan = stage::Plan {
                    mkdir: Vec::new(),
                    mkdir_owner: None,
                    tar: Some(tar_path.clone()),
                    place: Some(stage::Place::Into(dest.clone())),
                    chown: None,
                    entries: Vec::new(),
                };
                let created_by = format!("/bin/sh -c #(nop) ADD file:{hash} in {dest} ");
                return self.fs_step_keyed(st, &format!("ADD {dest}"), &hash, plan, created_by);
            }
        }
        let packed: Packed = match &from {
            None => {
                let mut sources = Vec::new();
                for p in &parts {
                    sources.extend(context::expand(&self.source, p)?);
                }
                context::pack(&self.source, &sources, chmod, create()?)?
            }
            Some(f) => {
                let image = self.image_of(f)?;
                let what = format!("image of --from={f}");
                stage::pack_from_image(
                    self.store,
                    self.mapping,
                    &image,
                    &what,
                    &parts,
                    chmod,
                    create()?,
                )?
            }
        };
        let place = if packed.single_file && !dir_dest {
            stage::Place::Auto {
                path: dest.clone(),
                name: packed.entries.first().cloned().unwrap_or_default(),
            }
        } else if packed.sources > 1 && !dir_dest {
            return Err(format!(
                "when using {kw} with more than one source file, the destination must be a directory and end with a /"
            ));
        } else {
            stage::Place::Into(dest.clone())
        };
        let kind = if packed.single_file { "file" } else { "dir" };
        let created_by = format!("/bin/sh -c #(nop) {kw} {kind}:{} in {dest} ", packed.hash);
        let plan = stage::Plan {
            mkdir: Vec::new(),
            mkdir_owner: None,
            tar: Some(tar_path.clone()),
            place: Some(place),
            chown,
            entries: packed.entries.clone(),
        };
        let what = format!("{kw} {dest_arg} {dest} {:?} {:?}", plan.chown, plan.place);
        let content = format!("{}:{}", packed.hash, packed.single_file);
        self.fs_step_keyed(st, &what, &content, plan, created_by)
    }

    /// When `src` (in the context) is a tar archive, plain or compressed,
    /// write its tar to `out` and return the tar's hash.
    fn add_archive(&self, src: &str, out: &Path) -> Result<Option<String>, String> {
        let rel = context::clean(src);
        if rel.iter().any(|p| p.contains(['*', '?', '['])) {
            return Ok(None);
        }
        // The same checks as any source (ignored, missing, through a link).
        context::expand(&self.source, src)?;
        let path = self.source.root.join(rel.iter().collect::<PathBuf>());
        if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            return Ok(None);
        }
        let err = |e: std::io::Error| format!("{}: {e}", path.display());
        let mut head = Vec::new();
        std::fs::File::open(&path)
            .map_err(err)?
            .take(512)
            .read_to_end(&mut head)
            .map_err(err)?;
        if crate::image::compress::detect(&head).is_err() {
            return Ok(None);
        }
        let f = std::fs::File::open(&path).map_err(err)?;
        let (_, mut r) = crate::image::compress::decoder(f).map_err(|e| e.to_string())?;
        let mut w = HashWrite {
            inner: std::fs::File::create(out).map_err(err)?,
            hasher: <sha2::Sha256 as sha2::Digest>::new(),
        };
        std::io::copy(&mut r, &mut w).map_err(err)?;
        Ok(Some(store::hex(&sha2::Digest::finalize(w.hasher))))
    }
}

struct HashWrite<W> {
    inner: W,
    hasher: sha2::Sha256,
}

impl<W: Write> Write for HashWrite<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        sha2::Digest::update(&mut self.hasher, &buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl Stage {
    /// Variables an ARG default may use: globals, then the stage's own.
    fn vars_with(&self, globals: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut v = globals.clone();
        v.extend(self.vars());
        v
    }
}

/// The `AS name` of a FROM, lower case (Docker's stage names are).
fn stage_name(from: &Instruction, escape: char) -> Result<Option<String>, String> {
    let w = dockerfile::words(&from.args, escape)?;
    match w.as_slice() {
        [_] => Ok(None),
        [_, as_, name] if as_.eq_ignore_ascii_case("as") => {
            let ok = name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                && name.starts_with(|c: char| c.is_ascii_alphabetic());
            if !ok {
                return Err(format!("invalid stage name {name:?}"));
            }
            Ok(Some(name.to_ascii_lowercase()))
        }
        _ => Err("FROM takes IMAGE [AS NAME]".into()),
    }
}
