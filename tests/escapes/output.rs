//! Terminal escape sequences an image carries (in its CMD, a label, its
//! build history, a file name its container makes) are printed escaped by
//! `ps`, `history`, `diff`, `images` and `inspect` templates: a raw ESC or
//! BEL would retitle or clear the user's terminal (or worse, on terminals
//! that answer queries as typed input).

use crate::common::users;
use crate::{evil_image, plant_secret, SECRET};

/// Sets the window title, then clears the screen.
const SEQ: &str = "\x1b]0;pwned\x07\x1b[2J\u{9b}1m";

/// The raw control characters that must never reach the terminal.
fn raw_controls(out: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(out)
        .chars()
        .filter(|c| c.is_control() && *c != '\n')
        .map(|c| format!("{:#x}", u32::from(c)))
        .collect()
}

#[test]
fn image_text_is_escaped_in_tables_and_templates() {
    for env in users("escape-output") {
        let secret = plant_secret(&env);
        // CMD makes a file whose name carries the sequence.
        // (JSON escapes: a raw control character is not valid JSON.)
        let argv = [
            "sh".to_string(),
            "-c".into(),
            format!("touch '/tmp/f{SEQ}'"),
        ];
        let cmd = format!("CMD {}", serde_json::to_string(&argv).unwrap());
        let label = format!(r#"LABEL evil="v{SEQ}""#);
        evil_image(&env, "evil", &[], &[&cmd, &label]);
        env.ok(["create", "--name", "c", "evil"]);
        env.ok(["start", "-a", "c"]);
        env.ok([
            "commit",
            "--message",
            &format!("m{SEQ}"),
            "--change",
            &format!(r#"LABEL again="w{SEQ}""#),
            "c",
            "evil2",
        ]);

        let views: &[&[&str]] = &[
            &["ps", "-a"],
            &["ps", "-a", "--no-trunc"],
            &["ps", "-a", "--format", "{{.Command}}"],
            &["ps", "-a", "--no-trunc", "--format", "{{.Command}}"],
            &["ps", "-a", "--format", "table {{.Names}}\t{{.Labels}}"],
            &["ps", "-a", "--format", "json"],
            &["history", "evil2"],
            &["history", "--no-trunc", "evil2"],
            &["history", "--format", "json", "evil2"],
            &["diff", "c"],
            &["images"],
            &["images", "--format", "{{json .}}"],
            &[
                "inspect",
                "--format",
                "{{.Config.Labels}} {{.Config.Cmd}}",
                "c",
            ],
            &["inspect", "evil2"],
        ];
        let mut raw = Vec::new();
        for args in views {
            let o = env.run(*args);
            assert!(
                o.status.success(),
                "burrow {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            let found = raw_controls(&o.stdout);
            if !found.is_empty() {
                raw.push(format!(
                    "burrow {args:?} printed {found:?}:\n{}",
                    String::from_utf8_lossy(&o.stdout).escape_debug()
                ));
            }
        }
        assert!(
            raw.is_empty(),
            "[{:?}] raw control characters printed:\n{}",
            env.who,
            raw.join("\n")
        );
        // The text is still shown, escaped as Go's strconv.Quote writes it.
        let ps = env.ok(["ps", "-a", "--no-trunc", "--format", "{{.Command}}"]);
        assert!(ps.contains(r"\x1b]0;pwned\a\x1b[2J\u009b1m"), "{ps}");
        let diff = env.ok(["diff", "c"]);
        assert!(diff.contains(r"/tmp/f\x1b]0;pwned\a"), "{diff}");
        assert_eq!(std::fs::read_to_string(&secret).unwrap(), SECRET);
        env.ok(["rm", "c"]);
    }
}

/// A base image's ONBUILD trigger is printed as a step of the user's own
/// build (`--> Trigger: ...`, `STEP 2/2: ...`): escaped too.
#[test]
fn build_prints_a_base_images_triggers_escaped() {
    for env in users("escape-output-build") {
        env.import_busybox("busybox");
        let base = env.user_dir("evilbase");
        std::fs::write(
            base.join("Dockerfile"),
            format!("FROM busybox\nONBUILD RUN true '{SEQ}'\n"),
        )
        .unwrap();
        env.ok(["build", "-t", "evilbase", base.to_str().unwrap()]);
        let app = env.user_dir("app");
        std::fs::write(app.join("Dockerfile"), "FROM evilbase\n").unwrap();
        let o = env.run(["build", "-t", "app", app.to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        for (what, text) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
            assert_eq!(
                raw_controls(text),
                Vec::<String>::new(),
                "[{:?}] build's {what} printed raw control characters:\n{}",
                env.who,
                String::from_utf8_lossy(text).escape_debug()
            );
        }
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains(r"\x1b]0;pwned\a"), "{out}");
    }
}
