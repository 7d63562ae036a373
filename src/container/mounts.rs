//! Mounts a user adds to a container: `-v HOST:CTR[:ro]`, `-v NAME:CTR`,
//! `--mount type=bind|volume|tmpfs,...` and `--tmpfs CTR[:opts]`, parsed and
//! validated the way Docker does, before anything is created.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One mount, as stored in the record and shown by `inspect` (Docker's
/// `Mounts` entries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountSpec {
    /// "bind", "volume" or "tmpfs".
    #[serde(rename = "Type")]
    pub kind: String,
    /// A volume's name; empty for an anonymous volume until it is created,
    /// and for binds and tmpfs.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Absolute host path (bind; a volume's `_data` once resolved); empty
    /// for tmpfs.
    pub source: String,
    /// Absolute path inside the container.
    pub destination: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    /// tmpfs options (`size=64m,mode=1777`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub options: String,
    /// A volume's driver (always "local").
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    /// `nocopy`, `volume-nocopy`: an empty volume is not seeded from the
    /// image.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_copy: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("invalid {flag} {input:?}: {reason}")]
    Invalid {
        flag: &'static str,
        input: String,
        reason: String,
    },
    /// A missing host directory for `-v` could not be created.
    #[error("invalid {flag} {input:?}: creating {}: {source}", path.display())]
    Create {
        flag: &'static str,
        input: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn err(flag: &'static str, input: &str, reason: impl Into<String>) -> MountError {
    MountError::Invalid {
        flag,
        input: input.to_string(),
        reason: reason.into(),
    }
}

/// `-v HOST:CTR[:ro|rw]`, `-v NAME:CTR[:ro|rw]` or `-v CTR` (an anonymous
/// volume). `cwd` makes `./x` sources absolute (Docker requires absolute
/// paths; relative ones starting with `.` are accepted by the CLI and
/// resolved); a source with neither `/` nor a leading `.` is a volume name,
/// as in Docker.
pub fn parse_volume(s: &str, cwd: &Path) -> Result<MountSpec, MountError> {
    let flag = "-v";
    let parts: Vec<&str> = s.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [dst] => return volume(flag, s, "", dst, true),
        [src, dst] => (*src, *dst, ""),
        [src, dst, mode] => (*src, *dst, *mode),
        _ => {
            return Err(err(
                flag,
                s,
                "use HOST:CONTAINER[:ro] or NAME:CONTAINER[:ro]",
            ))
        }
    };
    // Modes are a comma list: ro or rw, and nocopy for a volume.
    let (mut rw, mut no_copy) = (true, false);
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        match m {
            "rw" => rw = true,
            "ro" => rw = false,
            "nocopy" => no_copy = true,
            m => return Err(err(flag, s, format!("unknown mode {m:?} (ro, rw, nocopy)"))),
        }
    }
    if !src.is_empty() && !src.contains('/') && !src.starts_with('.') {
        let mut v = volume(flag, s, src, dst, rw)?;
        v.no_copy = no_copy;
        return Ok(v);
    }
    if no_copy {
        return Err(err(flag, s, "nocopy is for volumes, not host paths"));
    }
    let source = host_path(flag, s, src, cwd)?;
    // Docker creates a missing host directory for -v.
    if !source.exists() {
        std::fs::create_dir_all(&source).map_err(|e| MountError::Create {
            flag,
            input: s.to_string(),
            path: source.clone(),
            source: e,
        })?;
    }
    bind(flag, s, &source, dst, rw)
}

fn bind(
    flag: &'static str,
    input: &str,
    source: &Path,
    dst: &str,
    rw: bool,
) -> Result<MountSpec, MountError> {
    Ok(MountSpec {
        kind: "bind".into(),
        name: String::new(),
        source: source.to_string_lossy().into_owned(),
        destination: container_path(flag, input, dst)?,
        rw,
        options: String::new(),
        driver: String::new(),
        no_copy: false,
    })
}

/// What a volume name may be, as said in errors.
pub const VOLUME_NAME_RULE: &str =
    "only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, at least two characters";

/// Docker's rule for volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`. Parsing
/// owns it, so the volume store and `-v` agree on what a name is.
pub fn is_volume_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// A volume mount: `name` empty for an anonymous volume. The source is
/// filled in when the volume is resolved at create time.
fn volume(
    flag: &'static str,
    input: &str,
    name: &str,
    dst: &str,
    rw: bool,
) -> Result<MountSpec, MountError> {
    if !name.is_empty() && !is_volume_name(name) {
        let why = format!("invalid volume name {name:?}: {VOLUME_NAME_RULE}");
        return Err(err(flag, input, why));
    }
    Ok(MountSpec {
        kind: "volume".into(),
        name: name.to_string(),
        source: String::new(),
        destination: container_path(flag, input, dst)?,
        rw,
        options: String::new(),
        driver: String::new(),
        no_copy: false,
    })
}

/// An anonymous volume at `path`, for an image's `VOLUME` (already checked
/// when the image was made, so not validated again).
pub fn anonymous_volume(path: &str) -> MountSpec {
    MountSpec {
        kind: "volume".into(),
        name: String::new(),
        source: String::new(),
        destination: path.to_string(),
        rw: true,
        options: String::new(),
        driver: String::new(),
        no_copy: false,
    }
}

/// `--mount type=bind,source=/a,target=/b[,readonly]`,
/// `--mount [type=volume,]source=NAME,target=/b[,readonly]` or
/// `--mount type=tmpfs,target=/t[,tmpfs-size=64m][,tmpfs-mode=1777]`.
pub fn parse_mount(s: &str, cwd: &Path) -> Result<MountSpec, MountError> {
    let flag = "--mount";
    let mut kind = "volume";
    let (mut src, mut dst, mut rw) = (None, None, true);
    let mut no_copy = false;
    let mut opts = Vec::new();
    for field in s.split(',') {
        let (k, v) = field.split_once('=').unwrap_or((field, ""));
        match k {
            "type" => kind = v,
            "source" | "src" => src = Some(v),
            "target" | "destination" | "dst" => dst = Some(v),
            "readonly" | "ro" => rw = matches!(v, "false" | "0"),
            "volume-nocopy" => no_copy = !matches!(v, "false" | "0"),
            "tmpfs-size" => opts.push(format!("size={v}")),
            "tmpfs-mode" => opts.push(format!("mode={v}")),
            "bind-propagation" | "consistency" | "volume-driver" => {}
            other => return Err(err(flag, s, format!("unknown field {other:?}"))),
        }
    }
    let dst = dst.ok_or_else(|| err(flag, s, "target= is required"))?;
    if no_copy && kind != "volume" {
        return Err(err(flag, s, "volume-nocopy is for type=volume"));
    }
    match kind {
        "bind" => {
            let src = src.ok_or_else(|| err(flag, s, "source= is required for type=bind"))?;
            let source = host_path(flag, s, src, cwd)?;
            // Unlike -v, --mount refuses a missing source (Docker's rule).
            if !source.exists() {
                return Err(err(
                    flag,
                    s,
                    format!("bind source path does not exist: {}", source.display()),
                ));
            }
            bind(flag, s, &source, dst, rw)
        }
        "tmpfs" => {
            if src.is_some() {
                return Err(err(flag, s, "type=tmpfs takes no source"));
            }
            Ok(tmpfs(flag, s, dst, &opts.join(","))?)
        }
        "volume" => {
            let mut v = volume(flag, s, src.unwrap_or(""), dst, rw)?;
            v.no_copy = no_copy;
            Ok(v)
        }
        other => Err(err(
            flag,
            s,
            format!("type={other} is not supported (bind, volume or tmpfs)"),
        )),
    }
}

/// `--tmpfs /path[:size=64m,mode=1777]`.
pub fn parse_tmpfs(s: &str) -> Result<MountSpec, MountError> {
    let (dst, opts) = s.split_once(':').unwrap_or((s, ""));
    tmpfs("--tmpfs", s, dst, opts)
}

fn tmpfs(flag: &'static str, input: &str, dst: &str, opts: &str) -> Result<MountSpec, MountError> {
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        let (k, v) = o.split_once('=').unwrap_or((o, ""));
        let ok = match k {
            "size" => v
                .trim_end_matches(['k', 'm', 'g', 'K', 'M', 'G', '%'])
                .parse::<u64>()
                .is_ok(),
            "mode" => u32::from_str_radix(v, 8).is_ok(),
            "nr_inodes" => v.parse::<u64>().is_ok(),
            "uid" | "gid" => v.parse::<u32>().is_ok(),
            "noexec" | "exec" | "nosuid" | "nodev" | "ro" | "rw" => true,
            _ => false,
        };
        if !ok {
            return Err(err(flag, input, format!("bad tmpfs option {o:?}")));
        }
    }
    Ok(MountSpec {
        kind: "tmpfs".into(),
        name: String::new(),
        source: String::new(),
        destination: container_path(flag, input, dst)?,
        rw: !opts.split(',').any(|o| o == "ro"),
        options: opts.to_string(),
        driver: String::new(),
        no_copy: false,
    })
}

fn host_path(
    flag: &'static str,
    input: &str,
    src: &str,
    cwd: &Path,
) -> Result<PathBuf, MountError> {
    if src.is_empty() {
        return Err(err(flag, input, "empty host path"));
    }
    let p = Path::new(src);
    if p.is_absolute() {
        Ok(p.to_path_buf())
    } else if src.starts_with('.') {
        Ok(cwd.join(p))
    } else {
        Err(err(
            flag,
            input,
            "a bind source must be an absolute host path (or ./relative)",
        ))
    }
}

fn container_path(flag: &'static str, input: &str, dst: &str) -> Result<String, MountError> {
    if !dst.starts_with('/') {
        return Err(err(flag, input, "the container path must be absolute"));
    }
    if dst.split('/').any(|c| c == "..") {
        return Err(err(flag, input, "the container path must not contain '..'"));
    }
    if dst == "/" {
        return Err(err(flag, input, "cannot mount over the container's root"));
    }
    Ok(dst.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes() {
        let d = tempfile::tempdir().unwrap();
        let v = parse_volume(&format!("{}:/work", d.path().display()), Path::new("/")).unwrap();
        assert_eq!(
            (v.kind.as_str(), v.destination.as_str(), v.rw),
            ("bind", "/work", true)
        );
        let v = parse_volume("./sub:/w:ro", d.path()).unwrap();
        assert!(!v.rw);
        assert!(
            d.path().join("sub").is_dir(),
            "-v creates a missing host dir"
        );
        for bad in [
            "rel", "/a:rel", "/a:/b:zz", "/a:/../x", "/a:/", "-x:/y", "a:/y",
        ] {
            assert!(parse_volume(bad, d.path()).is_err(), "{bad}");
        }
        let n = parse_volume("cache:/var/cache:ro", d.path()).unwrap();
        assert_eq!(
            (n.kind.as_str(), n.name.as_str(), n.source.as_str(), n.rw),
            ("volume", "cache", "", false)
        );
        let anon = parse_volume("/data", d.path()).unwrap();
        assert_eq!((anon.kind.as_str(), anon.name.as_str()), ("volume", ""));
        let nc = parse_volume("cache:/c:ro,nocopy", d.path()).unwrap();
        assert!(nc.no_copy && !nc.rw && !n.no_copy);
        assert!(parse_volume("/a:/b:nocopy", d.path()).is_err());
        let m = parse_mount("type=volume,src=v1,dst=/v,volume-nocopy", d.path()).unwrap();
        assert!(m.no_copy);
        let m = parse_mount("type=volume,src=v1,dst=/v,volume-nocopy=false", d.path()).unwrap();
        assert!(!m.no_copy);
        assert!(parse_mount("type=tmpfs,dst=/t,volume-nocopy", d.path()).is_err());
    }

    #[test]
    fn mounts_and_tmpfs() {
        let d = tempfile::tempdir().unwrap();
        let m = parse_mount(
            &format!(
                "type=bind,source={},target=/src,readonly",
                d.path().display()
            ),
            Path::new("/"),
        )
        .unwrap();
        assert!(!m.rw);
        assert!(parse_mount("type=bind,source=/no/such/dir,target=/x", Path::new("/")).is_err());
        let t = parse_mount("type=tmpfs,target=/cache,tmpfs-size=64m", Path::new("/")).unwrap();
        assert_eq!((t.kind.as_str(), t.options.as_str()), ("tmpfs", "size=64m"));
        let v = parse_mount("type=volume,source=xy,target=/x,readonly", Path::new("/")).unwrap();
        assert_eq!(
            (v.kind.as_str(), v.name.as_str(), v.rw),
            ("volume", "xy", false)
        );
        // Docker's default type is volume; no source is an anonymous one.
        let v = parse_mount("target=/x", Path::new("/")).unwrap();
        assert_eq!((v.kind.as_str(), v.name.as_str()), ("volume", ""));
        assert!(parse_mount("type=volume,source=/abs,target=/x", Path::new("/")).is_err());
        assert!(parse_mount("type=nfs,target=/x", Path::new("/")).is_err());
        assert!(parse_mount("type=tmpfs", Path::new("/")).is_err());
        let t = parse_tmpfs("/run:size=10m,mode=755").unwrap();
        assert_eq!(t.destination, "/run");
        assert!(parse_tmpfs("/run:size=lots").is_err());
        assert!(parse_tmpfs("relative").is_err());
    }
}
