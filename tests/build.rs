//! `burrow build` as an unprivileged user, with and without a subuid range:
//! a two-stage build that runs, the cache on an unchanged rebuild and after
//! one copied file changes, a failing RUN's exit code and line, the config
//! instructions' semantics (ENV, ARG, WORKDIR, USER, COPY --chown/--chmod,
//! .dockerignore), SHELL, HEALTHCHECK and ONBUILD kept in the config,
//! FROM scratch with ADD of an archive, and a built image pushed to a
//! loopback registry, pulled and run by rootless podman.

mod common;

use std::path::{Path, PathBuf};

use common::podman::{have_podman, Podman};
use common::{have, stderr, stdout, users, Env, Registry, Who};

const TWO_STAGE: &str = r##"# syntax=docker/dockerfile:1
ARG GREETING=hello
FROM busybox AS build
ARG GREETING
WORKDIR /src
COPY greet.txt .
RUN echo "#!/bin/sh" > hello.sh \
    && echo "echo $GREETING $(cat greet.txt)" >> hello.sh \
    && chmod 755 hello.sh \
    && echo built-the-script
FROM busybox
COPY --from=build /src/hello.sh /usr/local/bin/hello
CMD ["hello"]
"##;

/// A context directory the test user can read, with these files.
fn context(env: &Env, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = env.user_dir(name);
    for (f, text) in files {
        write(&dir.join(f), text);
    }
    dir
}

fn write(p: &Path, text: &str) {
    std::fs::write(p, text).unwrap();
}

fn build(env: &Env, args: &[&str]) -> (String, String) {
    let mut all = vec!["build"];
    all.extend_from_slice(args);
    let o = env.run(&all);
    assert!(
        o.status.success(),
        "[{:?}] burrow {all:?} failed ({:?})\nstdout: {}\nstderr: {}",
        env.who,
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
    let out = stdout(&o);
    let id = out.lines().last().unwrap_or_default().to_string();
    assert_eq!(id.len(), 64, "the last line is the image id: {out}");
    (out, id)
}

/// The lines of `out` from the step whose text starts with `step` up to the
/// next step.
fn step_output<'a>(out: &'a str, step: &str) -> Vec<&'a str> {
    out.lines()
        .skip_while(|l| !l.split_once(": ").is_some_and(|(_, s)| s.starts_with(step)))
        .skip(1)
        .take_while(|l| !l.contains("STEP ") && !l.starts_with("COMMIT"))
        .collect()
}

fn cached(out: &str, step: &str) -> bool {
    step_output(out, step)
        .iter()
        .any(|l| l.starts_with("--> Using cache"))
}

/// Whether the RUN step of TWO_STAGE ran (its output, not its STEP line).
fn ran(out: &str) -> bool {
    out.lines().any(|l| l == "built-the-script")
}

#[test]
fn two_stage_build_runs_and_rebuilds_from_the_cache() {
    for env in users("build_two_stage") {
        env.import_busybox("busybox");
        let ctx = context(
            &env,
            "ctx",
            &[("Dockerfile", TWO_STAGE), ("greet.txt", "world\n")],
        );
        let ctx_s = ctx.to_str().unwrap();
        let (out, id) = build(&env, &["-t", "app", ctx_s]);
        let who = env.who;
        assert!(
            out.contains("[1/2] STEP 1/5: FROM busybox AS build"),
            "{out}"
        );
        assert!(out.contains("[2/2] STEP 3/3: CMD [\"hello\"]"), "{out}");
        assert!(ran(&out), "RUN output is streamed: {out}");
        assert!(
            out.contains("Successfully tagged docker.io/library/app:latest"),
            "{out}"
        );
        assert!(
            !out.contains("Using cache"),
            "a first build has no cache: {out}"
        );
        assert_eq!(env.ok(["run", "--rm", "app"]), "hello world\n", "[{who:?}]");
        // No build container is left behind.
        assert_eq!(env.ok(["ps", "-a", "-q"]), "", "[{who:?}]");
        // The steps' images are cache, listed only with -a.
        assert_eq!(env.ok(["images", "-q"]).lines().count(), 2, "[{who:?}]");
        assert!(env.ok(["images", "-a", "-q"]).lines().count() > 2);
        let history = env.ok(["history", "--no-trunc", "app"]);
        assert!(history.contains("COPY file:"), "{history}");

        // Unchanged: every step that makes an image comes from the cache,
        // RUN does not run, and the image is the same one.
        let (again, id2) = build(&env, &["-t", "app", ctx_s]);
        assert_eq!(id2, id, "[{who:?}] {again}");
        for step in ["WORKDIR", "COPY greet.txt", "RUN", "COPY --from"] {
            assert!(
                cached(&again, step),
                "[{who:?}] {step} not cached:\n{again}"
            );
        }
        assert!(!ran(&again), "{again}");

        // One copied file changes: the steps before it stay cached, it and
        // the ones after are made again.
        write(&ctx.join("greet.txt"), "moon\n");
        let (changed, id3) = build(&env, &["-t", "app", ctx_s]);
        assert_ne!(id3, id);
        assert!(cached(&changed, "WORKDIR"), "{changed}");
        assert!(!cached(&changed, "COPY greet.txt"), "{changed}");
        assert!(!cached(&changed, "RUN"), "{changed}");
        assert!(ran(&changed), "{changed}");
        assert_eq!(env.ok(["run", "--rm", "app"]), "hello moon\n", "[{who:?}]");

        // A build arg in use is part of RUN's key; --no-cache runs it all.
        let (_, _) = build(&env, &["--build-arg", "GREETING=hi", "-t", "app", ctx_s]);
        assert_eq!(env.ok(["run", "--rm", "app"]), "hi moon\n", "[{who:?}]");
        let (fresh, _) = build(&env, &["--no-cache", "-t", "app", ctx_s]);
        assert!(!fresh.contains("Using cache"), "{fresh}");
        assert!(ran(&fresh), "{fresh}");

        // --target names an earlier stage.
        let (_, _) = build(&env, &["--target", "build", "-t", "app-build", ctx_s]);
        assert_eq!(
            env.ok(["run", "--rm", "app-build", "cat", "/src/hello.sh"]),
            "#!/bin/sh\necho hello moon\n"
        );

        // `image prune` removes the cache images: the next build runs again.
        env.ok(["image", "prune"]);
        assert_eq!(
            env.ok(["images", "-a", "-q"]).lines().count(),
            env.ok(["images", "-q"]).lines().count()
        );
        let (after, _) = build(&env, &["-t", "app", ctx_s]);
        assert!(ran(&after), "{after}");
        assert_eq!(env.ok(["run", "--rm", "app"]), "hello moon\n", "[{who:?}]");
    }
}

#[test]
fn failing_run_reports_its_exit_code_and_line() {
    for env in users("build_failing_run") {
        env.import_busybox("busybox");
        let ctx = context(
            &env,
            "ctx",
            &[(
                "Dockerfile",
                "FROM busybox\nRUN echo fine\n\nRUN echo failing; \\\n    exit 3\nCMD [\"sh\"]\n",
            )],
        );
        let o = env.run(["build", "-t", "broken", ctx.to_str().unwrap()]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.contains("building at STEP 3 (Dockerfile:4): RUN echo failing;")
                && err.contains("exit code 3"),
            "[{:?}] {err}",
            env.who
        );
        assert!(stdout(&o).contains("failing"), "{}", stdout(&o));
        assert_eq!(env.ok(["ps", "-a", "-q"]), "");
        assert!(env.run(["image", "inspect", "broken"]).status.code() == Some(1));

        // `-f -` reads the Dockerfile from stdin.
        let mut c = env.cmd(["build", "-q", "-f", "-", ctx.to_str().unwrap()]);
        c.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(b"FROM busybox\nRUN exit 7\n").unwrap();
        }
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(1));
        assert!(
            stderr(&o).contains("(Dockerfile:2): RUN exit 7: exit code 7"),
            "{}",
            stderr(&o)
        );

        // A parse error names its line and builds nothing.
        write(&ctx.join("Dockerfile"), "FROM busybox\nRUNN echo\n");
        let o = env.run(["build", ctx.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1));
        assert!(
            stderr(&o).contains("Dockerfile:2: unknown instruction: RUNN"),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn env_arg_workdir_user_and_copy_flags() {
    const DOCKERFILE: &str = r#"FROM busybox
ARG DIR=/srv
ENV APP_HOME=${DIR}/app PLAIN="two words"
WORKDIR $APP_HOME
WORKDIR sub
RUN pwd > /where && echo "$APP_HOME|$DIR|$PLAIN" > /vars
COPY --chown=1000:1000 --chmod=600 f.txt owned.txt
COPY dir/ /copied/
COPY *.md /docs/
COPY f.txt /etc
RUN <<EOF
echo heredoc-a > /h
echo "heredoc-$PLAIN" >> /h
EOF
LABEL stage=final
USER 1000:1000
EXPOSE 8080
CMD cat /where /vars
"#;
    for env in users("build_semantics") {
        env.import_busybox("busybox");
        let ctx = context(
            &env,
            "ctx",
            &[
                ("Dockerfile", DOCKERFILE),
                ("f.txt", "secret\n"),
                ("a.md", "a\n"),
                ("b.md", "b\n"),
                (".dockerignore", "dir/skip*\n"),
            ],
        );
        std::fs::create_dir_all(ctx.join("dir/sub")).unwrap();
        write(&ctx.join("dir/sub/in.txt"), "in\n");
        write(&ctx.join("dir/skipped.txt"), "no\n");
        build(
            &env,
            &[
                "-t",
                "sem",
                "--label",
                "by=test",
                "--network",
                "none",
                ctx.to_str().unwrap(),
            ],
        );
        let who = env.who;
        assert_eq!(
            // Without a subuid range uid 1000 does not exist to run as.
            env.ok(["run", "--rm", "-u", "0", "sem"]),
            "/srv/app/sub\n/srv/app|/srv|two words\n",
            "[{who:?}]"
        );
        let inspect: serde_json::Value =
            serde_json::from_str(&env.ok(["image", "inspect", "sem"])).unwrap();
        let cfg = &inspect[0]["Config"];
        assert_eq!(cfg["WorkingDir"], "/srv/app/sub");
        assert_eq!(cfg["User"], "1000:1000");
        assert_eq!(cfg["Labels"]["stage"], "final");
        assert_eq!(cfg["Labels"]["by"], "test");
        assert!(cfg["ExposedPorts"].get("8080/tcp").is_some(), "{cfg}");
        let envs: Vec<&str> = cfg["Env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(envs.contains(&"APP_HOME=/srv/app"), "{envs:?}");
        assert!(
            !envs.iter().any(|e| e.starts_with("DIR=")),
            "ARG is not kept: {envs:?}"
        );
        let listing = env.ok([
            "run",
            "--rm",
            "-u",
            "0",
            "sem",
            "sh",
            "-c",
            "ls -ln owned.txt | awk '{print $1, $3}'; cat owned.txt /etc/f.txt /h; find /copied /docs -type f | sort",
        ]);
        let owner = if who == Who::Range { "1000" } else { "0" };
        let first = listing.lines().next().unwrap_or_default();
        assert!(
            first == format!("-rw------- {owner}"),
            "[{who:?}] {listing}"
        );
        assert!(
            listing.ends_with("secret\nsecret\nheredoc-a\nheredoc-two words\n/copied/sub/in.txt\n/docs/a.md\n/docs/b.md\n"),
            "[{who:?}] {listing}"
        );
    }
}

#[test]
fn scratch_add_of_an_archive_copy_from_an_image_and_stages_by_name_and_index() {
    const DOCKERFILE: &str = r#"FROM scratch AS base
ADD busybox.tar /
COPY --from=busybox /etc/passwd /copied/passwd
RUN echo ran-in-scratch > /made
FROM base
COPY --from=0 /made /made-again
CMD ["sh", "-c", "cat /made-again; head -n 1 /copied/passwd"]
"#;
    for env in users("build_scratch") {
        env.import_busybox("busybox");
        let ctx = context(&env, "ctx", &[("Dockerfile", DOCKERFILE)]);
        std::fs::copy(env.busybox_tar(), ctx.join("busybox.tar")).unwrap();
        env.share(&ctx.join("busybox.tar"));
        build(&env, &["-t", "fromscratch", ctx.to_str().unwrap()]);
        assert_eq!(
            env.ok(["run", "--rm", "fromscratch"]),
            "ran-in-scratch\nroot:x:0:0:root:/root:/bin/sh\n",
            "[{:?}]",
            env.who
        );
        let inspect: serde_json::Value =
            serde_json::from_str(&env.ok(["image", "inspect", "fromscratch"])).unwrap();
        assert_eq!(
            inspect[0]["RootFS"]["Layers"].as_array().unwrap().len(),
            4,
            "one layer per ADD, COPY and RUN"
        );
    }
}

#[test]
fn a_built_image_pushes_and_podman_pulls_and_runs_it() {
    let test = "a_built_image_pushes_and_podman_pulls_and_runs_it";
    if !have("docker-registry") {
        common::loud(&format!(
            "SKIPPED {test}: docker-registry is not installed (apt-get install docker-registry)"
        ));
        return;
    }
    if !have_podman(test) {
        return;
    }
    for env in users("build_push") {
        let who = env.who;
        env.import_busybox("busybox");
        let ctx = context(
            &env,
            "ctx",
            &[("Dockerfile", TWO_STAGE), ("greet.txt", "registry\n")],
        );
        let reg = Registry::start(&env.home.join("registry"));
        let dest = format!("127.0.0.1:{}/built/app:1", reg.port);
        build(&env, &["-t", &dest, ctx.to_str().unwrap()]);
        let out = env.ok(["push", &dest]);
        assert!(out.contains("1: digest: sha256:"), "{out}");

        // The same user's rootless podman pulls it into a store of its own
        // and runs it (through conmon, with burrow as its OCI runtime: the
        // runtimes podman brings cannot run containers on this kind of host):
        // the script the first stage wrote is the image's CMD.
        let pm = Podman::new(&env);
        pm.ok(&["pull", "-q", "--tls-verify=false", &dest]);
        let cmd = pm.ok(&[
            "image",
            "inspect",
            "--format",
            "{{json .Config.Cmd}}",
            &dest,
        ]);
        assert_eq!(cmd.trim(), r#"["hello"]"#, "[{who:?}]");
        let o = pm.run(&["run", "--rm", "--network", "none", &dest]);
        assert_eq!(o.status.code(), Some(0), "[{who:?}] {}", stderr(&o));
        assert_eq!(stdout(&o), "hello registry\n", "[{who:?}]");
    }
}

#[test]
fn shell_healthcheck_and_onbuild_are_kept_in_the_config() {
    const BASE: &str = r#"FROM busybox
HEALTHCHECK --interval=5s --timeout=3s --retries=3 CMD wget -q -O- http://localhost/ || exit 1
ONBUILD RUN ["/bin/sh", "-c", "echo onbuild-ran > /onbuild"]
SHELL ["/bin/echo", "shell-form:"]
RUN a shell-form run
CMD hi there
"#;
    const CHILD: &str = r#"FROM hc-base
RUN inherited
HEALTHCHECK NONE
CMD ["cat", "/onbuild"]
"#;
    let config = |env: &Env, image: &str| -> serde_json::Value {
        let v: serde_json::Value =
            serde_json::from_str(&env.ok(["image", "inspect", image])).unwrap();
        v[0]["Config"].clone()
    };
    for env in users("build_docker_fields") {
        let who = env.who;
        env.import_busybox("busybox");
        let base = context(&env, "base", &[("Dockerfile", BASE)]);
        let (out, _) = build(&env, &["-t", "hc-base", base.to_str().unwrap()]);
        // SHELL changes how a later shell-form RUN and CMD are run.
        assert!(
            out.lines().any(|l| l == "shell-form: a shell-form run"),
            "[{who:?}] {out}"
        );
        assert!(!out.contains("build triggers"), "[{who:?}] {out}");
        let cfg = config(&env, "hc-base");
        assert_eq!(
            cfg["Healthcheck"],
            serde_json::json!({
                "Test": ["CMD-SHELL", "wget -q -O- http://localhost/ || exit 1"],
                "Interval": 5_000_000_000i64,
                "Timeout": 3_000_000_000i64,
                "Retries": 3
            }),
            "[{who:?}] {cfg}"
        );
        assert_eq!(
            cfg["Shell"],
            serde_json::json!(["/bin/echo", "shell-form:"])
        );
        assert_eq!(
            cfg["OnBuild"],
            serde_json::json!([r#"RUN ["/bin/sh", "-c", "echo onbuild-ran > /onbuild"]"#])
        );
        assert_eq!(
            cfg["Cmd"],
            serde_json::json!(["/bin/echo", "shell-form:", "hi there"])
        );
        assert_eq!(env.ok(["run", "--rm", "hc-base"]), "shell-form: hi there\n");
        // A container copies the health check (`inspect` of either kind).
        env.ok(["create", "--name", "hc", "hc-base"]);
        let c: serde_json::Value = serde_json::from_str(&env.ok(["inspect", "hc"])).unwrap();
        assert_eq!(
            c[0]["Config"]["Healthcheck"]["Test"][0], "CMD-SHELL",
            "[{who:?}] {c}"
        );
        env.ok(["rm", "hc"]);

        // A build FROM it runs its trigger first, inherits its SHELL, and
        // HEALTHCHECK NONE turns the inherited check off.
        let child = context(&env, "child", &[("Dockerfile", CHILD)]);
        let (out, _) = build(&env, &["-t", "hc-child", child.to_str().unwrap()]);
        assert!(
            out.contains("--> Executing 1 build triggers"),
            "[{who:?}] {out}"
        );
        assert!(
            out.lines().any(|l| l == "shell-form: inherited"),
            "[{who:?}] {out}"
        );
        let cfg = config(&env, "hc-child");
        assert_eq!(cfg["Healthcheck"], serde_json::json!({"Test": ["NONE"]}));
        assert_eq!(
            cfg["Shell"],
            serde_json::json!(["/bin/echo", "shell-form:"])
        );
        assert!(cfg.get("OnBuild").is_none(), "not passed on: {cfg}");
        assert_eq!(env.ok(["run", "--rm", "hc-child"]), "onbuild-ran\n");

        // A bad duration names the line.
        write(
            &child.join("Dockerfile"),
            "FROM busybox\nHEALTHCHECK --interval=5 CMD true\n",
        );
        let o = env.run(["build", child.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1));
        assert!(
            stderr(&o).contains("(Dockerfile:2): HEALTHCHECK --interval=5 CMD true")
                && stderr(&o).contains("missing unit in duration"),
            "[{who:?}] {}",
            stderr(&o)
        );
    }
}

#[test]
fn workdir_after_user_makes_its_directories_owned_by_that_user() {
    const DOCKERFILE: &str = r#"FROM busybox
WORKDIR /existing
USER 1000:1000
WORKDIR /made/app
WORKDIR /existing
WORKDIR data
USER nobody
WORKDIR /by-name
USER root
WORKDIR /as-root
"#;
    for env in users("build_workdir_user") {
        let who = env.who;
        env.import_busybox("busybox");
        let ctx = context(&env, "ctx", &[("Dockerfile", DOCKERFILE)]);
        build(&env, &["-t", "wd", ctx.to_str().unwrap()]);
        let owners = env.ok([
            "run",
            "--rm",
            "-u",
            "0",
            "wd",
            "stat",
            "-c",
            "%n %u:%g",
            "/made",
            "/made/app",
            "/existing",
            "/existing/data",
            "/by-name",
            "/as-root",
        ]);
        // Without a subuid range every file is root's, as in import.
        let (user, nobody) = match who {
            Who::Range => ("1000:1000", "65534:65534"),
            Who::Single => ("0:0", "0:0"),
        };
        assert_eq!(
            owners,
            format!(
                "/made {user}\n/made/app {user}\n/existing 0:0\n/existing/data {user}\n/by-name {nobody}\n/as-root 0:0\n"
            ),
            "[{who:?}] the directories WORKDIR made are USER's, the ones that were there keep their owner"
        );
    }
}
