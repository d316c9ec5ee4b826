//! What every pod worker of a node shares (the client, runc, the pod
//! network, the images and settings) and the steps a worker takes through
//! it: the status written back, the environment's Secrets and ConfigMaps
//! fetched, a container's bundle written, and a container created under
//! the node's device rules and started.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use super::container::{NodeSettings, PodFiles, container_config};
use super::network::PodNetwork;
use super::runc::Runc;
use super::status::{PodView, pod_status};
use crate::env::EnvSources;
use crate::image::Image;
use crate::oci::devices::{DeviceRules, host_devices};
use crate::oci::render_config;

/// One pod's sandbox, as its containers are started in it: the node, the
/// pod, its files (token, env, volumes), network namespace, short id and
/// folder.
#[derive(Clone, Copy)]
pub struct Sandbox<'a> {
    pub node: &'a NodeContext,
    pub pod: &'a Pod,
    pub files: &'a PodFiles,
    pub netns: &'a str,
    pub short: &'a str,
    pub dir: &'a Path,
}

/// What every pod worker of a node shares.
pub struct NodeContext {
    pub client: kube::Client,
    pub runc: Runc,
    pub network: PodNetwork,
    pub name: String,
    pub host_ip: String,
    /// The agent's folder (pods' files, bundles and logs).
    pub dir: PathBuf,
    /// Images by repository (the image reference before its tag).
    pub images: Vec<(String, Image)>,
    pub settings: NodeSettings,
    pub device_rules: DeviceRules,
    /// The cluster's CA, for the pods' ServiceAccount volumes.
    pub ca_pem: String,
    /// First restart delay (the kubelet's is 10 s, doubling to 5 min).
    pub restart_backoff: Duration,
    /// Prefix of the agent's container ids.
    pub id_prefix: String,
    /// Pod addresses in use.
    pub addresses: Mutex<BTreeSet<Ipv4Addr>>,
}

/// The short id the agent names a pod's namespace and containers by: the
/// first 12 hex digits of its uid.
pub fn short_id(pod: &Pod) -> String {
    let uid = pod
        .metadata
        .uid
        .clone()
        .unwrap_or_default()
        .replace('-', "");
    uid[..uid.len().min(12)].to_string()
}

/// The runc id of container `name` of the pod with `short` id.
pub fn container_id(prefix: &str, short: &str, name: &str) -> String {
    format!("{prefix}{short}-{name}")
}

/// The folder of a pod's files and logs.
pub fn pod_dir(dir: &Path, pod: &Pod) -> PathBuf {
    let m = &pod.metadata;
    let part = |v: &Option<String>| v.clone().unwrap_or_default();
    dir.join("pods").join(format!(
        "{}_{}_{}",
        part(&m.namespace),
        part(&m.name),
        part(&m.uid)
    ))
}

pub(super) fn now() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

impl NodeContext {
    fn image(&self, reference: &str) -> Option<&Image> {
        let repository = reference.rsplit_once(':').map_or(reference, |(r, _)| r);
        self.images
            .iter()
            .find(|(r, _)| r == repository)
            .map(|(_, image)| image)
    }

    pub(super) fn backoff(&self, restarts: i32) -> Duration {
        let factor = 1u32 << restarts.clamp(1, 6).saturating_sub(1);
        (self.restart_backoff * factor).min(self.restart_backoff * 30)
    }

    pub(super) async fn report(&self, pod: &Pod, view: &PodView) {
        let api: Api<Pod> = Api::namespaced(
            self.client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or_default(),
        );
        let name = pod.metadata.name.clone().unwrap_or_default();
        let patch = json!({"status": pod_status(view, &now())});
        if let Err(error) = api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            tracing::debug!(pod = %name, %error, "status not written");
        }
    }

    /// The Secrets and ConfigMaps `container`'s environment names.
    async fn env_sources(&self, pod: &Pod, container: &Container) -> EnvSources {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
        let mut sources = EnvSources::default();
        for var in container.env.iter().flatten() {
            let Some(from) = &var.value_from else {
                continue;
            };
            if let Some(s) = &from.secret_key_ref
                && let Ok(secret) = Api::<Secret>::namespaced(self.client.clone(), namespace)
                    .get(&s.name)
                    .await
            {
                let data = secret.data.unwrap_or_default().into_iter();
                let map = data.map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()));
                sources.secrets.insert(s.name.clone(), map.collect());
            }
            if let Some(c) = &from.config_map_key_ref
                && let Ok(map) = Api::<ConfigMap>::namespaced(self.client.clone(), namespace)
                    .get(&c.name)
                    .await
            {
                sources
                    .config_maps
                    .insert(c.name.clone(), map.data.unwrap_or_default());
            }
        }
        sources
    }

    /// Writes the bundle of `container` and returns its folder and whether
    /// it is privileged; `Err` is (reason, message) for the status.
    pub(super) async fn bundle(
        &self,
        pod: &Pod,
        container: &Container,
        files: &PodFiles,
        netns: &str,
        id: &str,
    ) -> Result<(PathBuf, String, bool), (String, String)> {
        let image = self
            .image(container.image.as_deref().unwrap_or_default())
            .ok_or_else(|| {
                (
                    "ErrImagePull".to_string(),
                    format!("no image {:?} on this node", container.image),
                )
            })?;
        let sources = self.env_sources(pod, container).await;
        let netns_path = PathBuf::from("/run/netns").join(netns);
        let mut config = container_config(
            pod,
            container,
            image,
            &self.settings,
            files,
            &sources,
            netns_path,
            id,
        )
        .map_err(|e| ("CreateContainerConfigError".to_string(), e.to_string()))?;
        if config.privileged {
            config.devices = host_devices(Path::new("/dev"));
        }
        let bundle = pod_dir(&self.dir, pod)
            .join("bundles")
            .join(&container.name);
        let written = std::fs::create_dir_all(&bundle).and_then(|()| {
            std::fs::write(
                bundle.join("config.json"),
                serde_json::to_vec_pretty(&render_config(&config)).unwrap_or_default(),
            )
        });
        written.map_err(|e| ("CreateContainerError".to_string(), e.to_string()))?;
        Ok((bundle, config.cgroups_path, config.privileged))
    }

    /// Waits for container `id` to exit until `deadline` (the end of its
    /// grace period), then SIGKILLs and removes it.
    pub(super) async fn stop_by(&self, id: &str, deadline: std::time::Instant) {
        while std::time::Instant::now() < deadline
            && self
                .runc
                .state(id)
                .await
                .is_some_and(|s| s.status == "running")
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = self.runc.kill(id, "KILL").await;
        let _ = self.runc.delete(id).await;
    }

    /// `runc create`, the node's device rules, `runc start`.
    pub(super) async fn start(
        &self,
        bundle: &Path,
        cgroup: &str,
        privileged: bool,
        id: &str,
        log: &Path,
    ) -> Result<(), String> {
        let _ = self.runc.delete(id).await;
        self.runc
            .create(id, bundle, log)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(rule) = self.device_rules.deny_rule(privileged) {
            let deny = format!("/sys/fs/cgroup/devices{cgroup}/devices.deny");
            if let Err(e) = std::fs::write(&deny, rule) {
                let _ = self.runc.delete(id).await;
                return Err(format!("applying the device rules ({deny}): {e}"));
            }
        }
        self.runc.start(id).await.map_err(|e| e.to_string())
    }
}
