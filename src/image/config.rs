//! Image configuration: the OCI config blob stored on disk (its sha256 is the
//! IMAGE ID) and `ImageRuntimeConfig`, the Docker-shaped view of its `config`
//! section that containers copy and `inspect` shows. OCI's `Config` has no
//! place for Docker's `Shell`, `Healthcheck` and `OnBuild`, so those are
//! read from and written into the blob's JSON beside the OCI fields.

use std::collections::{BTreeMap, BTreeSet};

use oci_spec::image::{Arch, Config, ImageConfiguration, Os, RootFs};
use serde::{Deserialize, Serialize};

use crate::store::{Store, StoreError};

/// What an image says about how to run it, with Docker's field names.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageRuntimeConfig {
    #[serde(default)]
    pub user: String,
    #[serde(default, with = "port_set")]
    pub exposed_ports: BTreeSet<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// `VOLUME` paths: each gets an anonymous volume unless a mount covers it.
    #[serde(default, with = "port_set", skip_serializing_if = "BTreeSet::is_empty")]
    pub volumes: BTreeSet<String>,
    #[serde(flatten)]
    pub docker: DockerOnly,
}

/// The fields of Docker's image `config` that OCI's has no place for.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DockerOnly {
    /// `SHELL`: the command shell-form RUN, CMD and ENTRYPOINT run under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    /// `ONBUILD` triggers, as written after the keyword.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
}

/// `HEALTHCHECK` as Docker stores it: `Test` is `["NONE"]` (disabled),
/// `["CMD", args...]` or `["CMD-SHELL", command]`; durations are in
/// nanoseconds, zero meaning the default.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_period: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_interval: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// An image config blob's `config` section, for the Docker-only fields.
#[derive(Deserialize)]
struct DockerSection {
    #[serde(default)]
    config: Option<DockerOnly>,
}

/// Parse a config blob: the OCI configuration and the full runtime config.
pub fn parse(bytes: &[u8]) -> serde_json::Result<(ImageConfiguration, ImageRuntimeConfig)> {
    let cfg: ImageConfiguration = serde_json::from_slice(bytes)?;
    let docker: DockerSection = serde_json::from_slice(bytes)?;
    let mut rc = cfg
        .config()
        .as_ref()
        .map(ImageRuntimeConfig::from_oci)
        .unwrap_or_default();
    rc.docker = docker.config.unwrap_or_default();
    Ok((cfg, rc))
}

/// The stored image `id`'s configuration and full runtime config.
pub fn load(
    store: &Store,
    id: &str,
) -> Result<(ImageConfiguration, ImageRuntimeConfig), StoreError> {
    let bytes = store.image_config_bytes(id)?;
    parse(&bytes).map_err(|source| StoreError::BadJson {
        path: store.image_config_path(id),
        source,
    })
}

/// The config blob for `cfg`, with `docker`'s fields in its `config`
/// section (an image without them gets exactly OCI's JSON).
pub fn to_bytes(cfg: &ImageConfiguration, docker: &DockerOnly) -> serde_json::Result<Vec<u8>> {
    if docker == &DockerOnly::default() {
        return serde_json::to_vec(cfg);
    }
    let mut v = serde_json::to_value(cfg)?;
    if let serde_json::Value::Object(top) = &mut v {
        let section = top
            .entry("config")
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
        if let (serde_json::Value::Object(section), serde_json::Value::Object(extra)) =
            (section, serde_json::to_value(docker)?)
        {
            section.extend(extra);
        }
    }
    serde_json::to_vec(&v)
}

/// Docker writes ExposedPorts and Volumes as `{"80/tcp": {}}`: a Go set.
mod port_set {
    use std::collections::{BTreeMap, BTreeSet};

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &BTreeSet<String>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(v.iter().map(|k| (k, BTreeMap::<String, ()>::new())))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeSet<String>, D::Error> {
        let m: Option<BTreeMap<String, serde_json::Value>> = Option::deserialize(d)?;
        Ok(m.unwrap_or_default().into_keys().collect())
    }
}

impl ImageRuntimeConfig {
    pub fn from_oci(c: &Config) -> Self {
        ImageRuntimeConfig {
            user: c.user().clone().unwrap_or_default(),
            exposed_ports: c
                .exposed_ports()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            env: c.env().clone().unwrap_or_default(),
            cmd: c.cmd().clone(),
            entrypoint: c.entrypoint().clone(),
            working_dir: c.working_dir().clone().unwrap_or_default(),
            labels: c.labels().clone().unwrap_or_default().into_iter().collect(),
            stop_signal: c.stop_signal().clone(),
            volumes: c
                .volumes()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            docker: DockerOnly::default(),
        }
    }

    /// OCI's part; see [`to_bytes`] for the rest.
    pub fn to_oci(&self) -> Config {
        let mut c = Config::default();
        let non_empty = |s: &String| (!s.is_empty()).then(|| s.clone());
        c.set_user(non_empty(&self.user));
        c.set_exposed_ports(
            (!self.exposed_ports.is_empty()).then(|| self.exposed_ports.iter().cloned().collect()),
        );
        c.set_env((!self.env.is_empty()).then(|| self.env.clone()));
        c.set_cmd(self.cmd.clone());
        c.set_entrypoint(self.entrypoint.clone());
        c.set_working_dir(non_empty(&self.working_dir));
        c.set_labels((!self.labels.is_empty()).then(|| {
            self.labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }));
        c.set_stop_signal(self.stop_signal.clone());
        c.set_volumes((!self.volumes.is_empty()).then(|| self.volumes.iter().cloned().collect()));
        c
    }

    /// Set `KEY=VALUE` in Env, replacing an existing KEY (Docker's merge rule).
    pub fn set_env(&mut self, kv: &str) {
        set_env(&mut self.env, kv);
    }
}

/// Replace `KEY=...` in `env` or append it, keeping the original order.
pub fn set_env(env: &mut Vec<String>, kv: &str) {
    let key = kv.split_once('=').map_or(kv, |(k, _)| k);
    match env
        .iter_mut()
        .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
    {
        Some(slot) => *slot = kv.to_string(),
        None => env.push(kv.to_string()),
    }
}

/// Build a fresh OCI image configuration for the given layers.
pub fn new_image_config(
    runtime: &ImageRuntimeConfig,
    diff_ids: Vec<String>,
    created: &str,
    comment: &str,
) -> ImageConfiguration {
    let mut rootfs = RootFs::default();
    rootfs.set_typ("layers".to_string());
    rootfs.set_diff_ids(diff_ids);
    let mut history = oci_spec::image::History::default();
    history.set_created(Some(created.to_string()));
    history.set_created_by(Some(comment.to_string()));
    let mut img = ImageConfiguration::default();
    img.set_created(Some(created.to_string()));
    img.set_architecture(host_arch());
    img.set_os(Os::Linux);
    img.set_config(Some(runtime.to_oci()));
    img.set_rootfs(rootfs);
    img.set_history(Some(vec![history]));
    img
}

pub fn host_arch() -> Arch {
    match std::env::consts::ARCH {
        "x86_64" => Arch::Amd64,
        "aarch64" => Arch::ARM64,
        "arm" => Arch::ARM,
        "x86" => Arch::i386,
        other => Arch::Other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_merge_replaces_by_key() {
        let mut env = vec!["PATH=/bin".to_string(), "A=1".to_string()];
        set_env(&mut env, "A=2");
        set_env(&mut env, "B=3");
        assert_eq!(env, ["PATH=/bin", "A=2", "B=3"]);
    }

    #[test]
    fn runtime_config_round_trips_through_oci() {
        let mut rc = ImageRuntimeConfig {
            cmd: Some(vec!["sh".into()]),
            working_dir: "/w".into(),
            ..Default::default()
        };
        rc.exposed_ports.insert("80/tcp".into());
        rc.labels.insert("a".into(), "b".into());
        rc.volumes.insert("/data".into());
        rc.set_env("X=1");
        assert_eq!(ImageRuntimeConfig::from_oci(&rc.to_oci()), rc);
        let json = serde_json::to_value(&rc).unwrap();
        assert_eq!(json["ExposedPorts"], serde_json::json!({"80/tcp": {}}));
        assert_eq!(json["Cmd"], serde_json::json!(["sh"]));
        assert_eq!(json["Volumes"], serde_json::json!({"/data": {}}));
    }

    #[test]
    fn docker_only_fields_round_trip_through_the_blob() {
        let mut rc = ImageRuntimeConfig {
            cmd: Some(vec!["sh".into()]),
            ..Default::default()
        };
        rc.docker.shell = Some(vec!["/bin/bash".into(), "-c".into()]);
        rc.docker.healthcheck = Some(Healthcheck {
            test: vec!["CMD-SHELL".into(), "true".into()],
            interval: 5_000_000_000,
            retries: 3,
            ..Default::default()
        });
        rc.docker.on_build = Some(vec!["RUN echo hi".into()]);
        let img = new_image_config(&rc, Vec::new(), "2026-01-01T00:00:00Z", "");
        let bytes = to_bytes(&img, &rc.docker).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["config"]["Cmd"], serde_json::json!(["sh"]));
        assert_eq!(
            v["config"]["Healthcheck"],
            serde_json::json!({"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000i64, "Retries": 3})
        );
        assert_eq!(v["config"]["Shell"], serde_json::json!(["/bin/bash", "-c"]));
        let (back_img, back) = parse(&bytes).unwrap();
        assert_eq!(back, rc);
        // The Docker-shaped view (inspect, records) reads back as well.
        let shown = serde_json::to_value(&rc).unwrap();
        assert_eq!(shown["Healthcheck"]["Retries"], 3);
        assert_eq!(
            serde_json::from_value::<ImageRuntimeConfig>(shown).unwrap(),
            rc
        );
        assert_eq!(back_img, img);
        // Without them the blob is OCI's JSON as before.
        let plain = ImageRuntimeConfig::default();
        let img = new_image_config(&plain, Vec::new(), "2026-01-01T00:00:00Z", "");
        assert_eq!(
            to_bytes(&img, &plain.docker).unwrap(),
            serde_json::to_vec(&img).unwrap()
        );
    }
}
