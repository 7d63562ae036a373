//! The build's execution: a `Builder` runs the planned stages step by
//! step, each step looked up in the cache first, RUN through a container of
//! the stage and the filesystem steps through `stage.rs`.

use std::collections::BTreeMap;

use oci_spec::image::History;

use super::cache::{self, Cache, Cached};
use super::context::{self, Source};
use super::dockerfile::{self, Dockerfile, Instruction, InstructionError};
use super::plan::{self, Args};
use super::{output, stage, BuildError, BuildEvent, BuildOptions, Host, StepError};
use crate::container::{self, CreateOptions, NetworkOptions};
use crate::image::commit::{self as image_commit, CommitOptions};
use crate::image::config::ImageRuntimeConfig;
use crate::linux::userns::IdMapping;
use crate::store::{self, Store};

/// A step's work when the cache has no result: the new image's id, or
/// None when nothing changed.
type Make<'b> = dyn FnMut(&mut Builder<'_>, &Stage) -> Result<Option<String>, StepError> + 'b;

/// The stage being built.
#[derive(Debug, Clone, Default)]
pub(super) struct Stage {
    name: Option<String>,
    /// The last image committed (None: `FROM scratch`, nothing yet).
    image: Option<String>,
    pub(super) runtime: ImageRuntimeConfig,
    /// History of the config-only steps since `image`.
    pending: Vec<History>,
    /// ARGs in scope and their values.
    args: BTreeMap<String, String>,
    /// Whether this stage set CMD (a later ENTRYPOINT keeps it).
    cmd_set: bool,
}

impl Stage {
    /// Variables for substitution: ARGs, then ENV over them (Docker's rule).
    pub(super) fn vars(&self) -> BTreeMap<String, String> {
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

    /// `path` taken from the stage's working directory, as written
    /// (not cleaned: a trailing `/` still says "a directory").
    pub(super) fn in_workdir(&self, path: &str) -> String {
        if path.starts_with('/') {
            return path.to_string();
        }
        let base = if self.runtime.working_dir.is_empty() {
            "/"
        } else {
            self.runtime.working_dir.as_str()
        };
        format!("{}/{path}", base.trim_end_matches('/'))
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

impl Stage {
    /// Variables an ARG default may use: globals, then the stage's own.
    fn vars_with(&self, globals: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut v = globals.clone();
        v.extend(self.vars());
        v
    }
}

pub(super) struct Builder<'a> {
    pub(super) store: &'a Store,
    pub(super) mapping: &'a IdMapping,
    pub(super) opts: &'a BuildOptions,
    pub(super) cache: Cache,
    pub(super) host: &'a mut dyn Host,
    pub(super) source: Source,
    pub(super) escape: char,
    /// Finished stages: name (lower case) and image id.
    pub(super) done: Vec<(Option<String>, String)>,
    pub(super) args: Args<'a>,
    /// The last image id shown as `--> id`, so a stage's end does not show
    /// its last step's image twice.
    pub(super) shown: Option<String>,
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

    pub(super) fn run(&mut self, df: &Dockerfile) -> Result<String, BuildError> {
        let target = self.opts.target.as_deref();
        let plan = plan::plan(df, target, &mut self.args)?;
        let last = plan.stages.len() - 1;
        let count = last + 1;
        let mut final_id = String::new();
        for (n, s) in plan.stages.iter().enumerate() {
            let prefix = if count > 1 {
                format!("[{}/{count}] ", n + 1)
            } else {
                String::new()
            };
            let id = self.stage(&s.steps, &plan.globals, &prefix, n == last)?;
            self.done.push((s.name.clone(), id.clone()));
            final_id = id;
        }
        let unused = self.args.unused();
        if !unused.is_empty() {
            self.note(format!(
                "[Warning] one or more build args were not consumed: [{}]",
                unused.join(" ")
            ));
        }
        for t in &self.opts.tags {
            let _lock = self.store.lock_exclusive().map_err(StepError::from)?;
            let mut repos = self.store.repositories().map_err(StepError::from)?;
            repos.insert(t.to_string(), final_id.clone());
            self.store
                .save_repositories(&repos)
                .map_err(StepError::from)?;
        }
        for t in &self.opts.tags {
            self.say(&format!("Successfully tagged {t}"));
        }
        Ok(final_id)
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
                .map_err(|source| BuildError {
                    at: Some(at),
                    source: Box::new(source),
                })?;
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
            _ => self.finish(&st).map_err(BuildError::from)?,
        };
        self.show_id(&id);
        Ok(id)
    }

    /// Commit the stage's config changes since its last layer (cached).
    fn finish(&mut self, st: &Stage) -> Result<String, StepError> {
        if st.pending.is_empty() {
            if let Some(id) = &st.image {
                let (_, now) = crate::image::config::load(self.store, id)?;
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
        let id = image_commit::commit_config(self.store, st.image.as_deref(), &opts)?;
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
    ) -> Result<(), StepError> {
        let kw = ins.keyword.as_str();
        let args = if dockerfile::substitutes(kw) && kw != "ARG" && kw != "FROM" {
            dockerfile::substitute(&ins.args, &st.vars(), self.escape)?
        } else {
            ins.args.clone()
        };
        match kw {
            "FROM" => {
                let text = dockerfile::substitute(&ins.args, globals, self.escape)?;
                let w = dockerfile::words(&text, self.escape).map_err(InstructionError::from)?;
                let base = w.first().cloned().unwrap_or_default();
                st.name = plan::stage_name(ins, self.escape)?;
                st.image = if base == "scratch" {
                    None
                } else {
                    Some(self.image_of(&base)?)
                };
                st.runtime = match &st.image {
                    Some(id) => crate::image::config::load(self.store, id)?.1,
                    None => ImageRuntimeConfig::default(),
                };
                self.onbuild_triggers(st, globals)?;
            }
            "ARG" => {
                let escape = self.escape;
                let vars = st.vars_with(globals);
                for (k, v) in self.args.declare(&ins.args, &vars, escape)? {
                    st.args.insert(k, v);
                }
                // ARG changes no config: it is in the next steps' keys.
            }
            "WORKDIR" => self.workdir_step(st, &args)?,
            "RUN" => self.run_step(st, ins)?,
            "COPY" | "ADD" => self.copy_step(st, ins, &args)?,
            _ => configure(st, ins, &args, self.escape)?,
        }
        Ok(())
    }

    /// WORKDIR: the directory made on the stage's filesystem (cached).
    fn workdir_step(&mut self, st: &mut Stage, args: &str) -> Result<(), StepError> {
        let nop = |text: &str| format!("/bin/sh -c #(nop) {text}");
        let dir = format!("/{}", context::clean(&st.in_workdir(args)).join("/"));
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
        Ok(())
    }

    /// After FROM: the base image's ONBUILD triggers run as this stage's
    /// first steps, and are not passed on (Docker's rule).
    fn onbuild_triggers(
        &mut self,
        st: &mut Stage,
        globals: &BTreeMap<String, String>,
    ) -> Result<(), StepError> {
        let Some(triggers) = st.runtime.docker.on_build.take() else {
            return Ok(());
        };
        if triggers.is_empty() {
            return Ok(());
        }
        self.say(&format!("--> Executing {} build triggers", triggers.len()));
        for t in triggers {
            let err = |e: StepError| StepError::Trigger {
                trigger: t.clone(),
                source: Box::new(e),
            };
            // Checked again: the image may come from anywhere.
            let ins = dockerfile::onbuild_trigger(&dockerfile::Instruction {
                line: 0,
                keyword: "ONBUILD".into(),
                flags: Vec::new(),
                args: t.clone(),
                heredoc: None,
            })
            .map_err(|e| err(e.into()))?;
            self.say(&format!("--> Trigger: {}", ins.text()));
            self.step(st, &ins, globals).map_err(err)?;
        }
        Ok(())
    }

    /// An image for FROM or `COPY --from`: an earlier stage by name or
    /// index, else an image (pulled when missing).
    pub(super) fn image_of(&mut self, name: &str) -> Result<String, StepError> {
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
                None => Err(StepError::NoStage(n)),
            };
        }
        self.host.image(name).map_err(StepError::Host)
    }

    /// Look the step up in the cache, else do it: `make` returns the new
    /// image id, or None when it changed nothing.
    fn cached(
        &mut self,
        st: &mut Stage,
        key: String,
        make: &mut Make<'_>,
    ) -> Result<(), StepError> {
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
    ) -> Result<(), StepError> {
        self.fs_step_keyed(st, what, "", plan, created_by)
    }

    pub(super) fn fs_step_keyed(
        &mut self,
        st: &mut Stage,
        what: &str,
        content: &str,
        plan: stage::Plan,
        created_by: String,
    ) -> Result<(), StepError> {
        let key = cache::key(&[&st.key_base(), what, content]);
        let mut plan = Some(plan);
        self.cached(st, key, &mut |b, st| {
            let staging = b.store.staging("build", b.mapping)?;
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
            )?;
            for n in done.notes {
                b.note(format!("note: {n}"));
            }
            Ok(Some(done.id))
        })
    }

    fn run_step(&mut self, st: &mut Stage, ins: &Instruction) -> Result<(), StepError> {
        let argv = match (&ins.heredoc, ins.exec_form()) {
            (Some(_), Some(_)) => return Err(StepError::HeredocExecForm),
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
            return Err(StepError::NoCommand);
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
                return Err(StepError::NothingToRun);
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
    ) -> Result<String, StepError> {
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
            let _lock = self.store.lock_shared()?;
            container::create(self.store, self.mapping, &opts)?
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
                crate::network::Access {
                    helper_path: run.helper_path,
                    keeper: None,
                },
            )
        };
        let result = ran.map_err(StepError::from).and_then(|code| match code {
            0 => {
                let opts = st.commit_options(created_by.to_string());
                container::commit::commit(self.store, self.mapping, &mut rec, opts, false)
                    .map_err(StepError::from)
            }
            n => Err(StepError::ExitCode(n)),
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
}

/// The instructions that only change the stage's config.
fn configure(st: &mut Stage, ins: &Instruction, args: &str, escape: char) -> Result<(), StepError> {
    let kw = ins.keyword.as_str();
    let nop = |text: &str| format!("/bin/sh -c #(nop) {text}");
    match kw {
        "ENV" => {
            for (k, v) in dockerfile::key_values(args, escape, true)? {
                st.runtime.set_env(&format!("{k}={v}"));
            }
            st.note(nop(&format!("ENV {args}")));
        }
        "LABEL" => {
            for (k, v) in dockerfile::key_values(args, escape, true)? {
                st.runtime.labels.insert(k, v);
            }
            st.note(nop(&format!("LABEL {args}")));
        }
        "MAINTAINER" => st.note(nop(&format!("MAINTAINER {args}"))),
        "CMD" | "ENTRYPOINT" => {
            let argv = ins.exec_form().unwrap_or_else(|| {
                let mut v = st.shell();
                v.push(args.to_string());
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
        "USER" | "EXPOSE" | "VOLUME" | "STOPSIGNAL" => {
            crate::image::change::apply_change(&mut st.runtime, &format!("{kw} {args}"))
                .map_err(StepError::Change)?;
            st.note(nop(&format!("{kw} {args}")));
        }
        "SHELL" => {
            let shell = ins
                .exec_form()
                .filter(|v| !v.is_empty())
                .ok_or(StepError::ShellForm)?;
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
        other => return Err(StepError::Unsupported(other.to_string())),
    }
    Ok(())
}
