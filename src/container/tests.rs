//! Unit tests of what is data in a container's creation: the merge of the
//! image's config and health check with the create options.

use super::*;
use crate::image::config::{Healthcheck, ImageRuntimeConfig};

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn image() -> ImageRuntimeConfig {
    ImageRuntimeConfig {
        user: "app".into(),
        env: strings(&["LANG=C", "MODE=image"]),
        cmd: Some(strings(&["serve"])),
        entrypoint: Some(strings(&["/entry"])),
        working_dir: "/srv".into(),
        labels: [("tier".to_string(), "image".to_string())].into(),
        ..Default::default()
    }
}

#[test]
fn the_image_config_is_the_default_and_the_options_win() {
    let cfg = merge_config(&image(), &CreateOptions::default()).unwrap();
    assert_eq!(cfg.argv(), ["/entry", "serve"]);
    assert_eq!(
        (cfg.user.as_str(), cfg.working_dir.as_str()),
        ("app", "/srv")
    );
    assert_eq!(
        cfg.env,
        [
            &format!("PATH={}", sandbox::DEFAULT_PATH),
            "LANG=C",
            "MODE=image"
        ]
    );
    let opts = CreateOptions {
        cmd: strings(&["sh"]),
        env: strings(&["MODE=run", "NEW=1"]),
        user: Some("root".into()),
        workdir: Some("/tmp".into()),
        labels: [("tier".to_string(), "run".to_string())].into(),
        ..Default::default()
    };
    let cfg = merge_config(&image(), &opts).unwrap();
    assert_eq!(cfg.argv(), ["/entry", "sh"], "a command replaces Cmd only");
    assert_eq!(
        (cfg.user.as_str(), cfg.working_dir.as_str()),
        ("root", "/tmp")
    );
    assert_eq!(cfg.env[1..], strings(&["LANG=C", "MODE=run", "NEW=1"]));
    assert_eq!(cfg.labels["tier"], "run");
}

#[test]
fn an_empty_entrypoint_clears_the_image_one_and_no_command_is_an_error() {
    let opts = CreateOptions {
        entrypoint: Some(Vec::new()),
        cmd: strings(&["ls"]),
        ..Default::default()
    };
    let cfg = merge_config(&image(), &opts).unwrap();
    assert_eq!(cfg.argv(), ["ls"]);
    let mut bare = image();
    bare.env.push("PATH=/bin".into());
    let opts = CreateOptions {
        entrypoint: Some(Vec::new()),
        ..Default::default()
    };
    assert!(matches!(
        merge_config(&bare, &opts),
        Err(ContainerError::NoCommand)
    ));
    bare.cmd = None;
    bare.entrypoint = None;
    let e = merge_config(&bare, &CreateOptions::default()).unwrap_err();
    assert!(matches!(e, ContainerError::NoCommand));
}

#[test]
fn a_health_check_takes_what_it_leaves_unset_from_the_image() {
    let from_image = Healthcheck {
        test: strings(&["CMD", "true"]),
        interval: 5,
        timeout: 6,
        retries: 7,
        ..Default::default()
    };
    assert_eq!(
        merge_healthcheck(Some(&from_image), None),
        Some(from_image.clone())
    );
    assert_eq!(merge_healthcheck(None, None), None);
    let mine = Healthcheck {
        interval: 1,
        ..Default::default()
    };
    let merged = merge_healthcheck(Some(&from_image), Some(&mine)).unwrap();
    assert_eq!(merged.test, from_image.test);
    assert_eq!((merged.interval, merged.timeout, merged.retries), (1, 6, 7));
    let off = Healthcheck {
        test: strings(&["NONE"]),
        ..Default::default()
    };
    let merged = merge_healthcheck(Some(&from_image), Some(&off)).unwrap();
    assert_eq!(merged.test, ["NONE"]);
}
