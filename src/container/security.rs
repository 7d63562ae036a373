//! `--security-opt`: the options burrow knows (seccomp, no-new-privileges,
//! mask, unmask, fake-ids), checked before anything forks and stored in the record
//! as Docker stores them (`HostConfig.SecurityOpt`; a seccomp profile file
//! is stored as its content, so the container no longer needs the file).

use std::path::Path;

use crate::sandbox::seccomp::{Profile, SeccompError};

#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error("unsupported --security-opt {0:?} (burrow knows seccomp=unconfined|PROFILE.json, no-new-privileges[=true|false], mask=PATH[:PATH...], unmask=ALL|PATH[:PATH...], fake-ids=on|off)")]
    Unknown(String),
    #[error("--security-opt {opt:?}: {reason}")]
    Invalid { opt: String, reason: String },
    #[error("--security-opt seccomp={path}: {source}")]
    Seccomp { path: String, source: SeccompError },
}

/// Which seccomp profile a container gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeccompChoice {
    /// burrow's built-in copy of Docker's default.
    Default,
    Unconfined,
    Profile(Box<Profile>),
}

/// `unmask=`: which of the masked and read-only paths are left alone.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Unmask {
    #[default]
    None,
    All,
    Paths(Vec<String>),
}

/// The parsed options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityOpts {
    pub seccomp: SeccompChoice,
    pub no_new_privs: bool,
    /// `mask=`: more paths to mask, after Docker's.
    pub mask: Vec<String>,
    pub unmask: Unmask,
    /// `fake-ids=on|off`: whether changes of ids and owners succeed without
    /// effect (`sandbox::seccomp::FAKED_ID_CALLS`); None decides by the
    /// mapping and the policy (see [`SecurityOpts::fakes_ids`]).
    pub fake_ids: Option<bool>,
}

impl SecurityOpts {
    /// Whether a container fakes id changes: as `fake-ids=` says, else when
    /// its mapping is `single_id` and it has a seccomp policy at all
    /// (`confined`: not `seccomp=unconfined` or `--privileged`, which ask
    /// for no filter, as in Docker).
    pub fn fakes_ids(&self, single_id: bool, confined: bool) -> bool {
        self.fake_ids.unwrap_or(single_id && confined)
    }
}

impl Default for SecurityOpts {
    fn default() -> Self {
        SecurityOpts {
            seccomp: SeccompChoice::Default,
            no_new_privs: false,
            mask: Vec::new(),
            unmask: Unmask::None,
            fake_ids: None,
        }
    }
}

/// `/a:/b`: absolute paths only (they name places inside the container).
fn paths(opt: &str, list: &str) -> Result<Vec<String>, SecurityError> {
    let out: Vec<String> = list
        .split(':')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    if out.is_empty() || out.iter().any(|p| !p.starts_with('/')) {
        return Err(SecurityError::Invalid {
            opt: opt.to_string(),
            reason: "expected absolute paths separated by ':'".into(),
        });
    }
    Ok(out)
}

fn flag(opt: &str, value: Option<&str>) -> Result<bool, SecurityError> {
    match value {
        None | Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(_) => Err(SecurityError::Invalid {
            opt: opt.to_string(),
            reason: "expected true or false".into(),
        }),
    }
}

/// Parse stored options (a seccomp profile given inline as JSON).
pub fn parse(opts: &[String]) -> Result<SecurityOpts, SecurityError> {
    parse_with(opts, |value| {
        Profile::parse(value.as_bytes()).map_err(|source| SecurityError::Seccomp {
            path: "<inline profile>".into(),
            source,
        })
    })
}

fn parse_with(
    opts: &[String],
    mut profile: impl FnMut(&str) -> Result<Profile, SecurityError>,
) -> Result<SecurityOpts, SecurityError> {
    let mut out = SecurityOpts::default();
    for opt in opts {
        // Docker also accepts the older KEY:VALUE spelling.
        let (key, value) = match opt.split_once(['=', ':']) {
            Some((k, v)) => (k, Some(v)),
            None => (opt.as_str(), None),
        };
        match (key, value) {
            ("seccomp", Some("unconfined")) => out.seccomp = SeccompChoice::Unconfined,
            ("seccomp", Some(v)) if !v.is_empty() => {
                out.seccomp = SeccompChoice::Profile(Box::new(profile(v)?))
            }
            ("no-new-privileges", v) => out.no_new_privs = flag(opt, v)?,
            ("fake-ids", Some("on" | "true")) => out.fake_ids = Some(true),
            ("fake-ids", Some("off" | "false")) => out.fake_ids = Some(false),
            ("fake-ids", _) => {
                return Err(SecurityError::Invalid {
                    opt: opt.to_string(),
                    reason: "expected on or off".into(),
                })
            }
            ("mask", Some(v)) => out.mask.extend(paths(opt, v)?),
            ("unmask", Some("ALL")) => out.unmask = Unmask::All,
            ("unmask", Some(v)) => {
                let more = paths(opt, v)?;
                match &mut out.unmask {
                    Unmask::All => {}
                    Unmask::Paths(p) => p.extend(more),
                    u @ Unmask::None => *u = Unmask::Paths(more),
                }
            }
            _ => return Err(SecurityError::Unknown(opt.clone())),
        }
    }
    Ok(out)
}

/// Check the options as given on the command line and return them as the
/// record stores them: `seccomp=FILE` becomes `seccomp=<the file's JSON>`
/// (relative to `cwd`), as Docker's client sends the content.
pub fn normalize(opts: &[String], cwd: &Path) -> Result<Vec<String>, SecurityError> {
    let mut stored = Vec::new();
    for opt in opts {
        let mut inline = None;
        parse_with(std::slice::from_ref(opt), |value| {
            if value.trim_start().starts_with('{') {
                return Profile::parse(value.as_bytes()).map_err(|source| SecurityError::Seccomp {
                    path: "<inline profile>".into(),
                    source,
                });
            }
            let path = cwd.join(value);
            let seccomp = |source| SecurityError::Seccomp {
                path: value.to_string(),
                source,
            };
            let bytes = std::fs::read(&path)
                .map_err(|source| seccomp(SeccompError::Read { path, source }))?;
            let p = Profile::parse(&bytes).map_err(seccomp)?;
            // Compact, so `inspect` shows one line per option.
            inline = Some(format!(
                "seccomp={}",
                serde_json::to_string(
                    &serde_json::from_slice::<serde_json::Value>(&bytes).unwrap_or_default()
                )
                .unwrap_or_default()
            ));
            Ok(p)
        })?;
        stored.push(inline.unwrap_or_else(|| opt.clone()));
    }
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn options_parse_as_docker_and_podman_spell_them() {
        let o = parse(&s(&[
            "seccomp=unconfined",
            "no-new-privileges",
            "mask=/a:/b",
            "unmask=/proc/kcore",
        ]))
        .unwrap();
        assert_eq!(o.seccomp, SeccompChoice::Unconfined);
        assert!(o.no_new_privs);
        assert_eq!(o.mask, ["/a", "/b"]);
        assert_eq!(o.unmask, Unmask::Paths(s(&["/proc/kcore"])));
        assert!(
            !parse(&s(&["no-new-privileges=false"]))
                .unwrap()
                .no_new_privs
        );
        assert!(parse(&s(&["no-new-privileges:true"])).unwrap().no_new_privs);
        assert_eq!(parse(&s(&["unmask=ALL"])).unwrap().unmask, Unmask::All);
        let fake = |v: &[&str]| parse(&s(v)).unwrap().fake_ids;
        assert_eq!(fake(&[]), None);
        assert_eq!(fake(&["fake-ids=on"]), Some(true));
        assert_eq!(fake(&["fake-ids=off"]), Some(false));
        assert_eq!(fake(&["fake-ids=on", "fake-ids=off"]), Some(false));
        assert!(parse(&[]).unwrap().fakes_ids(true, true));
        assert!(!parse(&[]).unwrap().fakes_ids(false, true));
        assert!(!parse(&[]).unwrap().fakes_ids(true, false));
        assert!(!parse(&s(&["fake-ids=off"])).unwrap().fakes_ids(true, true));
        assert!(parse(&s(&["fake-ids=on"])).unwrap().fakes_ids(false, false));
        assert_eq!(parse(&[]).unwrap(), SecurityOpts::default());
        for bad in [
            "apparmor=x",
            "bogus",
            "mask=relative",
            "no-new-privileges=maybe",
            "seccomp=",
            "fake-ids",
            "fake-ids=maybe",
        ] {
            assert!(parse(&s(&[bad])).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_profile_file_is_stored_as_its_content() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("p.json"),
            "{\n \"defaultAction\": \"SCMP_ACT_ALLOW\",\n \"syscalls\": [{\"names\": [\"uname\"], \"action\": \"SCMP_ACT_ERRNO\"}]\n}\n",
        )
        .unwrap();
        let stored = normalize(&s(&["seccomp=p.json", "no-new-privileges"]), d.path()).unwrap();
        assert!(
            stored[0].starts_with("seccomp={\"defaultAction\""),
            "{stored:?}"
        );
        assert_eq!(stored[1], "no-new-privileges");
        let o = parse(&stored).unwrap();
        assert!(matches!(o.seccomp, SeccompChoice::Profile(_)));
        let e = normalize(&s(&["seccomp=missing.json"]), d.path()).unwrap_err();
        assert!(e.to_string().contains("missing.json"), "{e}");
        std::fs::write(d.path().join("bad.json"), "{\"defaultAction\": 3}").unwrap();
        let e = normalize(&s(&["seccomp=bad.json"]), d.path()).unwrap_err();
        assert!(
            e.to_string().contains("bad.json: parsing seccomp profile"),
            "{e}"
        );
    }
}
