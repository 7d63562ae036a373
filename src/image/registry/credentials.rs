//! Registry credentials in the files people already have: the containers
//! `auth.json` (`$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/`,
//! `~/.config/containers/`) and Docker's `config.json` (`$DOCKER_CONFIG` or
//! `~/.docker/`), with its `credsStore`/`credHelpers` helper programs.
//!
//! Both files share the `{"auths": {"HOST": {"auth": base64("user:pass")}}}`
//! shape; other fields are kept as they are when burrow writes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use serde_json::{json, Map, Value};

use super::auth::Credential;

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("{path}: {detail}")]
    File { path: PathBuf, detail: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not valid JSON: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: bad \"auth\" value: {source}")]
    Auth {
        path: PathBuf,
        #[source]
        source: base64::DecodeError,
    },
    /// The helper failed, saying this.
    #[error("credential helper docker-credential-{helper}: {detail}")]
    Helper { helper: String, detail: String },
    #[error("credential helper docker-credential-{helper}: {source}")]
    HelperRun {
        helper: String,
        #[source]
        source: std::io::Error,
    },
    #[error("credential helper docker-credential-{helper}: malformed answer: {source}")]
    HelperAnswer {
        helper: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("no place for credentials: set HOME or REGISTRY_AUTH_FILE")]
    NoHome,
}

type Result<T> = std::result::Result<T, CredentialError>;

/// Where the credential files are, from the environment (passed in so tests
/// do not touch the process's own).
#[derive(Debug, Clone, Default)]
pub struct AuthFiles {
    pub registry_auth_file: Option<PathBuf>,
    pub xdg_runtime_dir: Option<PathBuf>,
    pub xdg_config_home: Option<PathBuf>,
    pub docker_config: Option<PathBuf>,
    pub home: Option<PathBuf>,
}

impl AuthFiles {
    pub fn from_process() -> Self {
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        AuthFiles {
            registry_auth_file: var("REGISTRY_AUTH_FILE"),
            xdg_runtime_dir: var("XDG_RUNTIME_DIR"),
            xdg_config_home: var("XDG_CONFIG_HOME"),
            docker_config: var("DOCKER_CONFIG"),
            home: var("HOME"),
        }
    }

    fn docker_file(&self) -> Option<PathBuf> {
        self.docker_config
            .as_ref()
            .map(|d| d.join("config.json"))
            .or_else(|| self.home.as_ref().map(|h| h.join(".docker/config.json")))
    }

    /// Every file to read, in the order podman reads them, Docker's last.
    pub fn read_order(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if let Some(f) = &self.registry_auth_file {
            out.push(f.clone());
        }
        if let Some(d) = &self.xdg_runtime_dir {
            out.push(d.join("containers/auth.json"));
        }
        match (&self.xdg_config_home, &self.home) {
            (Some(c), _) => out.push(c.join("containers/auth.json")),
            (None, Some(h)) => out.push(h.join(".config/containers/auth.json")),
            _ => {}
        }
        out.extend(self.docker_file());
        out
    }

    /// The file `login` writes: `$REGISTRY_AUTH_FILE` when set, else
    /// Docker's config.json (what `docker login` writes).
    pub fn write_target(&self) -> Result<PathBuf> {
        self.registry_auth_file
            .clone()
            .or_else(|| self.docker_file())
            .ok_or(CredentialError::NoHome)
    }
}

/// The keys a registry may be stored under: Docker keeps Docker Hub as
/// `https://index.docker.io/v1/`, podman as `docker.io`; some tools write
/// a scheme or a path.
fn keys_for(registry: &str) -> Vec<String> {
    if matches!(
        registry,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    ) {
        return vec![
            "docker.io".into(),
            "https://index.docker.io/v1/".into(),
            "index.docker.io".into(),
            "registry-1.docker.io".into(),
        ];
    }
    vec![registry.to_string()]
}

/// The host part of a stored key (`https://host/v1/` → `host`).
fn key_host(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

fn matches(key: &str, registry: &str) -> bool {
    keys_for(registry)
        .iter()
        .any(|k| k == key || key_host(key) == key_host(k))
}

fn read_json(path: &Path) -> Result<Option<Value>> {
    match std::fs::read(path) {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(None),
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|source| CredentialError::Json {
                path: path.to_path_buf(),
                source,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CredentialError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn decode_auth(path: &Path, auth: &str) -> Result<Credential> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|source| CredentialError::Auth {
            path: path.to_path_buf(),
            source,
        })?;
    let text = String::from_utf8_lossy(&raw);
    let (u, p) = text.split_once(':').ok_or_else(|| CredentialError::File {
        path: path.to_path_buf(),
        detail: "\"auth\" is not user:password".into(),
    })?;
    Ok(Credential {
        username: u.to_string(),
        secret: p.to_string(),
    })
}

/// The credential for `registry`, from the first file (or helper) that has one.
pub fn lookup(files: &AuthFiles, registry: &str) -> Result<Option<Credential>> {
    for path in files.read_order() {
        let Some(v) = read_json(&path)? else { continue };
        if let Some(helper) = helper_for(&v, registry) {
            if let Some(c) = helper_get(&helper, registry)? {
                return Ok(Some(c));
            }
        }
        if let Some(auths) = v.get("auths").and_then(Value::as_object) {
            for (k, entry) in auths {
                if !matches(k, registry) {
                    continue;
                }
                if let Some(a) = entry.get("auth").and_then(Value::as_str) {
                    if !a.is_empty() {
                        return decode_auth(&path, a).map(Some);
                    }
                }
            }
        }
    }
    Ok(None)
}

fn helper_for(v: &Value, registry: &str) -> Option<String> {
    if let Some(h) = v.get("credHelpers").and_then(Value::as_object) {
        for (k, name) in h {
            if matches(k, registry) {
                return name.as_str().map(str::to_string);
            }
        }
    }
    v.get("credsStore")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The server name a helper is asked about (Docker's form for Docker Hub).
fn helper_server(registry: &str) -> String {
    if keys_for(registry).len() > 1 {
        "https://index.docker.io/v1/".into()
    } else {
        registry.to_string()
    }
}

fn run_helper(helper: &str, verb: &str, input: &[u8]) -> Result<(bool, Vec<u8>)> {
    let err = |source| CredentialError::HelperRun {
        helper: helper.to_string(),
        source,
    };
    // The input comes from a file, not a pipe: a helper that exits without
    // reading it (as `erase` may) must not kill burrow with SIGPIPE.
    let stdin = crate::linux::fs::memory_file(c"credential-helper-input", input).map_err(err)?;
    let out = Command::new(format!("docker-credential-{helper}"))
        .arg(verb)
        .stdin(Stdio::from(stdin))
        .output()
        .map_err(err)?;
    let mut text = out.stdout;
    if !out.status.success() {
        text.extend_from_slice(&out.stderr);
    }
    Ok((out.status.success(), text))
}

fn helper_get(helper: &str, registry: &str) -> Result<Option<Credential>> {
    let (ok, out) = run_helper(helper, "get", helper_server(registry).as_bytes())?;
    if !ok {
        // "credentials not found in native keychain": nothing stored.
        return Ok(None);
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Answer {
        username: String,
        secret: String,
    }
    let a: Answer =
        serde_json::from_slice(&out).map_err(|source| CredentialError::HelperAnswer {
            helper: helper.to_string(),
            source,
        })?;
    Ok(Some(Credential {
        username: a.username,
        secret: a.secret,
    }))
}

fn write_json(path: &Path, v: &Value) -> Result<()> {
    let err = |source| CredentialError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let bytes = serde_json::to_vec_pretty(v).expect("JSON value serializes");
    // 0600 from the start: the temp file holds secrets before the rename.
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(&bytes).map_err(err)?;
    f.sync_all().map_err(err)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(e)
    })
}

use std::os::unix::fs::OpenOptionsExt;

/// Save a credential (after the registry accepted it). Returns where it went.
pub fn store(files: &AuthFiles, registry: &str, cred: &Credential) -> Result<String> {
    let path = files.write_target()?;
    let mut v = read_json(&path)?.unwrap_or_else(|| json!({}));
    if !v.is_object() {
        v = json!({});
    }
    if let Some(helper) = helper_for(&v, registry) {
        let input = json!({
            "ServerURL": helper_server(registry),
            "Username": cred.username,
            "Secret": cred.secret,
        });
        let (ok, out) = run_helper(&helper, "store", input.to_string().as_bytes())?;
        if !ok {
            return Err(CredentialError::Helper {
                helper,
                detail: String::from_utf8_lossy(&out).trim().to_string(),
            });
        }
        return Ok(format!("credential helper docker-credential-{helper}"));
    }
    let key = if keys_for(registry).len() > 1 && files.registry_auth_file.is_none() {
        // Docker's own key for Docker Hub, so `docker` reads it back.
        "https://index.docker.io/v1/".to_string()
    } else {
        registry.to_string()
    };
    let obj = v.as_object_mut().expect("made an object above");
    let auths = obj
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    if !auths.is_object() {
        *auths = Value::Object(Map::new());
    }
    let auths = auths.as_object_mut().expect("made an object above");
    auths.retain(|k, _| !matches(k, registry));
    let raw = format!("{}:{}", cred.username, cred.secret);
    auths.insert(
        key,
        json!({ "auth": base64::engine::general_purpose::STANDARD.encode(raw) }),
    );
    write_json(&path, &v)?;
    Ok(path.display().to_string())
}

/// Remove `registry`'s credential from every file (and helper) that has
/// it. Returns false when none had it.
pub fn remove(files: &AuthFiles, registry: &str) -> Result<bool> {
    let mut removed = false;
    for path in files.read_order() {
        let Some(mut v) = read_json(&path)? else {
            continue;
        };
        if let Some(helper) = helper_for(&v, registry) {
            let (ok, _) = run_helper(&helper, "erase", helper_server(registry).as_bytes())?;
            removed |= ok;
        }
        let Some(auths) = v.get_mut("auths").and_then(Value::as_object_mut) else {
            continue;
        };
        let before = auths.len();
        auths.retain(|k, _| !matches(k, registry));
        if auths.len() != before {
            removed = true;
            write_json(&path, &v)?;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn files(d: &Path) -> AuthFiles {
        AuthFiles {
            home: Some(d.join("home")),
            xdg_runtime_dir: Some(d.join("run")),
            ..Default::default()
        }
    }

    #[test]
    fn docker_hub_keys_and_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let f = files(d.path());
        let c = Credential {
            username: "me".into(),
            secret: "s3:cr:et".into(),
        };
        assert_eq!(lookup(&f, "docker.io").unwrap(), None);
        let where_ = store(&f, "docker.io", &c).unwrap();
        let path = d.path().join("home/.docker/config.json");
        assert_eq!(where_, path.display().to_string());
        let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert!(v["auths"]["https://index.docker.io/v1/"]["auth"].is_string());
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(lookup(&f, "docker.io").unwrap(), Some(c.clone()));
        assert_eq!(lookup(&f, "127.0.0.1:5000").unwrap(), None);
        store(&f, "127.0.0.1:5000", &c).unwrap();
        assert!(remove(&f, "docker.io").unwrap());
        assert!(!remove(&f, "docker.io").unwrap());
        assert_eq!(lookup(&f, "docker.io").unwrap(), None);
        assert_eq!(lookup(&f, "127.0.0.1:5000").unwrap(), Some(c));
    }

    #[test]
    fn podman_auth_json_is_read_first_and_other_fields_kept() {
        let d = tempfile::tempdir().unwrap();
        let f = files(d.path());
        let podman = d.path().join("run/containers/auth.json");
        std::fs::create_dir_all(podman.parent().unwrap()).unwrap();
        // "u:p" and "d:q"
        std::fs::write(&podman, r#"{"auths":{"quay.io":{"auth":"dTpw"}}}"#).unwrap();
        let docker = d.path().join("home/.docker/config.json");
        std::fs::create_dir_all(docker.parent().unwrap()).unwrap();
        std::fs::write(
            &docker,
            r#"{"auths":{"https://quay.io/v1/":{"auth":"ZDpx"}},"psFormat":"x"}"#,
        )
        .unwrap();
        assert_eq!(lookup(&f, "quay.io").unwrap().unwrap().username, "u");
        assert!(remove(&f, "quay.io").unwrap());
        let v: Value = serde_json::from_slice(&std::fs::read(&docker).unwrap()).unwrap();
        assert_eq!(v["psFormat"], "x", "other settings survive");
        assert_eq!(lookup(&f, "quay.io").unwrap(), None);
        std::fs::write(&podman, "{not json").unwrap();
        assert!(lookup(&f, "quay.io").is_err());
    }
}
