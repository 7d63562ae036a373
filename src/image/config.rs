//! Image configuration: the OCI config blob stored on disk (its sha256 is the
//! IMAGE ID) and `ImageRuntimeConfig`, the Docker-shaped view of its `config`
//! section that containers copy and `inspect` shows.

use std::collections::{BTreeMap, BTreeSet};

use oci_spec::image::{Arch, Config, ImageConfiguration, Os, RootFs};
use serde::{Deserialize, Serialize};

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
        }
    }

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
}
