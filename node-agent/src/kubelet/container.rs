//! One container's OCI configuration from its pod, as the kubelet and
//! containerd's CRI plugin derive it: command, environment, capabilities,
//! seccomp, read-only root, volumes, the ServiceAccount token, `/etc/hosts`,
//! resources — plus the declared test overlay ([`Overlay`]), which adds
//! environment and mounts but never edits the pod's template.

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::{Container, Pod};

use crate::env::{self, ApiService, EnvSources};
use crate::image::Image;
use crate::oci::{BindMount, ContainerConfig, UserIds, capabilities, cpu_shares, seccomp};

/// Where the kubelet projects the ServiceAccount token.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// What a test environment adds to every container of a node (e.g. the
/// fake tailnet's folder), declared in one place.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Overlay {
    /// Extra environment, after the pod's.
    #[serde(default)]
    pub env: Vec<(String, String)>,
    /// Extra read-write bind mounts: (node path, container path).
    #[serde(default)]
    pub mounts: Vec<(PathBuf, String)>,
    /// Run on the node after a pod's network namespace is made, with
    /// `POD_NETNS`, `POD_NAME`, `POD_NAMESPACE`, `POD_IP` set.
    #[serde(default)]
    pub network_hook: Option<PathBuf>,
}

/// The node's side of a container's configuration.
#[derive(Debug, Clone)]
pub struct NodeSettings {
    /// Every capability the kernel knows.
    pub all_capabilities: Vec<String>,
    /// The `RuntimeDefault` seccomp profile's text.
    pub seccomp_profile: Option<String>,
    pub overlay: Overlay,
    /// Parent of the containers' cgroups.
    pub cgroup_parent: String,
    pub api: ApiService,
}

/// The pod's files on the node.
#[derive(Debug, Clone, Default)]
pub struct PodFiles {
    /// The projected ServiceAccount volume, if mounted.
    pub service_account: Option<PathBuf>,
    /// `hosts`, `hostname` and `resolv.conf`.
    pub etc: PathBuf,
    /// emptyDir volumes by name.
    pub volumes: BTreeMap<String, PathBuf>,
}

/// Why a container cannot be configured (`CreateContainerConfigError`).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Env(#[from] env::EnvError),
    #[error("volume {0:?} is not an emptyDir volume of the pod")]
    Volume(String),
    #[error("the container has no command (the image has no entrypoint)")]
    NoCommand,
    /// The kubelet's `verifyRunAsNonRoot` refusal.
    #[error(
        "container has runAsNonRoot and image will run as root (pod: {pod:?}, container: {container})"
    )]
    RunsAsRoot { pod: String, container: String },
    #[error("seccomp RuntimeDefault needs {path}")]
    NoSeccompProfile { path: &'static str },
    #[error(transparent)]
    Seccomp(#[from] seccomp::SeccompError),
    #[error("unsupported seccomp profile type {0:?}")]
    SeccompType(String),
}

/// Bytes of a memory quantity (`128Mi`, `1G`, `1000`); `None` if not one.
pub fn memory_bytes(quantity: &str) -> Option<i64> {
    let split = quantity
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(quantity.len());
    let (number, unit) = quantity.split_at(split);
    let factor: i64 = match unit {
        "" => 1,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        _ => return None,
    };
    number.parse::<i64>().ok().map(|n| n * factor)
}

/// Millicores of a CPU quantity (`10m`, `0.5`, `2`).
pub fn milli_cpu(quantity: &str) -> Option<u64> {
    match quantity.strip_suffix('m') {
        Some(m) => m.parse().ok(),
        None => quantity.parse::<f64>().ok().map(|c| (c * 1000.0) as u64),
    }
}

/// The seccomp profile type of the container (its own, else the pod's).
fn seccomp_type(pod: &Pod, container: &Container) -> Option<String> {
    let own = container
        .security_context
        .as_ref()
        .and_then(|s| s.seccomp_profile.as_ref());
    let pods = pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.as_ref())
        .and_then(|s| s.seccomp_profile.as_ref());
    own.or(pods).map(|p| p.type_.clone())
}

/// The process's arguments, as the runtime joins the container's
/// `command` and `args` with the image's `ENTRYPOINT` and `CMD`: the
/// container's command replaces the entrypoint and drops `CMD`; its args
/// replace `CMD`.
fn command_line(container: &Container, image: &Image) -> Vec<String> {
    let (command, args) = (container.command.clone(), container.args.clone());
    match command.filter(|c| !c.is_empty()) {
        Some(command) => command
            .into_iter()
            .chain(args.unwrap_or_default())
            .collect(),
        None => {
            let args = args.unwrap_or_else(|| image.config.cmd.clone());
            image
                .config
                .entrypoint
                .iter()
                .cloned()
                .chain(args)
                .collect()
        }
    }
}

/// The user the process runs as, with the pod's extra groups: the
/// container's `runAsUser`/`runAsGroup`, else the pod's, else the image's
/// `USER`; `fsGroup` and `supplementalGroups` join the process's groups
/// (containerd's `additionalGids`). `runAsNonRoot` refuses a root user, as
/// the kubelet does before creating the container.
fn user_of(pod: &Pod, container: &Container, image: &Image) -> Result<UserIds, ConfigError> {
    let own = container.security_context.as_ref();
    let pods = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let (image_uid, image_gid) = image.config.user.unwrap_or((0, 0));
    let uid = own
        .and_then(|s| s.run_as_user)
        .or(pods.and_then(|s| s.run_as_user))
        .map_or(image_uid, |u| u as u32);
    let gid = own
        .and_then(|s| s.run_as_group)
        .or(pods.and_then(|s| s.run_as_group))
        .map_or(image_gid, |g| g as u32);
    let non_root = own
        .and_then(|s| s.run_as_non_root)
        .or(pods.and_then(|s| s.run_as_non_root))
        == Some(true);
    if non_root && uid == 0 {
        return Err(ConfigError::RunsAsRoot {
            pod: pod.metadata.name.clone().unwrap_or_default(),
            container: container.name.clone(),
        });
    }
    let mut additional: Vec<u32> = pods
        .and_then(|s| s.supplemental_groups.clone())
        .unwrap_or_default()
        .into_iter()
        .chain(pods.and_then(|s| s.fs_group))
        .map(|g| g as u32)
        .collect();
    additional.sort_unstable();
    additional.dedup();
    Ok(UserIds {
        uid,
        gid,
        additional,
    })
}

/// The configuration of `container` of `pod` in network namespace `netns`.
#[allow(clippy::too_many_arguments)]
pub fn container_config(
    pod: &Pod,
    container: &Container,
    image: &Image,
    node: &NodeSettings,
    files: &PodFiles,
    sources: &EnvSources,
    netns: PathBuf,
    container_id: &str,
) -> Result<ContainerConfig, ConfigError> {
    let security = container.security_context.as_ref();
    let privileged = security.and_then(|s| s.privileged) == Some(true);
    let caps = capabilities::container_capabilities(security, &node.all_capabilities);
    let seccomp = match seccomp_type(pod, container).as_deref() {
        _ if privileged => None,
        None | Some("Unconfined") => None,
        Some("RuntimeDefault") => {
            let profile = node
                .seccomp_profile
                .as_deref()
                .ok_or(ConfigError::NoSeccompProfile {
                    path: seccomp::CONTAINERS_COMMON_PROFILE,
                })?;
            Some(seccomp::runtime_default(profile, &caps)?)
        }
        Some(other) => return Err(ConfigError::SeccompType(other.to_string())),
    };
    let args = command_line(container, image);
    if args.is_empty() {
        return Err(ConfigError::NoCommand);
    }
    let user = user_of(pod, container, image)?;
    let mut env = env::container_env(pod, container, &image.env, sources, &node.api)?;
    env.extend(node.overlay.env.iter().cloned());
    let mut mounts = image.mounts.clone();
    for name in ["hosts", "hostname", "resolv.conf"] {
        mounts.push(BindMount {
            destination: format!("/etc/{name}"),
            source: files.etc.join(name),
            read_only: false,
        });
    }
    if let Some(dir) = &files.service_account {
        mounts.push(BindMount {
            destination: SERVICE_ACCOUNT_DIR.into(),
            source: dir.clone(),
            read_only: true,
        });
    }
    for mount in container.volume_mounts.iter().flatten() {
        let source = files
            .volumes
            .get(&mount.name)
            .ok_or_else(|| ConfigError::Volume(mount.name.clone()))?;
        mounts.push(BindMount {
            destination: mount.mount_path.clone(),
            source: source.clone(),
            read_only: mount.read_only == Some(true),
        });
    }
    for (source, destination) in &node.overlay.mounts {
        mounts.push(BindMount {
            destination: destination.clone(),
            source: source.clone(),
            read_only: false,
        });
    }
    let resources = container.resources.as_ref();
    let memory_limit = resources
        .and_then(|r| r.limits.as_ref())
        .and_then(|l| l.get("memory"))
        .and_then(|q| memory_bytes(&q.0));
    let cpu_request = resources
        .and_then(|r| r.requests.as_ref())
        .and_then(|l| l.get("cpu"))
        .and_then(|q| milli_cpu(&q.0))
        .unwrap_or(0);
    Ok(ContainerConfig {
        args,
        env,
        user,
        cwd: container.working_dir.clone().unwrap_or_else(|| "/".into()),
        hostname: pod.metadata.name.clone().unwrap_or_default(),
        netns,
        rootfs: image.rootfs.clone(),
        read_only_root: security.and_then(|s| s.read_only_root_filesystem) == Some(true),
        privileged,
        capabilities: caps,
        seccomp,
        mounts,
        devices: Vec::new(),
        cgroups_path: format!("/{}/{container_id}", node.cgroup_parent),
        memory_limit,
        cpu_shares: cpu_shares(cpu_request),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_convert_as_the_kubelet_converts_them() {
        assert_eq!(memory_bytes("128Mi"), Some(128 << 20));
        assert_eq!(memory_bytes("1G"), Some(1_000_000_000));
        assert_eq!(memory_bytes("64"), Some(64));
        assert_eq!(memory_bytes("1Xi"), None);
        assert_eq!(milli_cpu("20m"), Some(20));
        assert_eq!(milli_cpu("0.5"), Some(500));
        assert_eq!(milli_cpu("2"), Some(2000));
    }

    fn image(entrypoint: &[&str], cmd: &[&str], user: Option<(u32, u32)>) -> Image {
        Image {
            rootfs: "/images/x".into(),
            mounts: Vec::new(),
            env: Vec::new(),
            config: crate::image::ImageConfig {
                entrypoint: entrypoint.iter().map(|s| s.to_string()).collect(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                user,
            },
        }
    }

    fn words(list: &[&str]) -> Option<Vec<String>> {
        Some(list.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn command_and_args_combine_with_the_images_entrypoint_and_cmd() {
        let image = image(&["/bin/app"], &["serve"], None);
        let run = |command: Option<Vec<String>>, args: Option<Vec<String>>| {
            let container = Container {
                command,
                args,
                ..Default::default()
            };
            command_line(&container, &image)
        };
        assert_eq!(run(None, None), ["/bin/app", "serve"]);
        assert_eq!(run(None, words(&["uninstall"])), ["/bin/app", "uninstall"]);
        assert_eq!(run(words(&["/bin/other"]), None), ["/bin/other"]);
        assert_eq!(
            run(words(&["/bin/other"]), words(&["-v"])),
            ["/bin/other", "-v"]
        );
    }

    #[test]
    fn the_user_comes_from_the_container_the_pod_or_the_image_and_root_is_refused_when_asked() {
        use k8s_openapi::api::core::v1::{PodSecurityContext, PodSpec, SecurityContext};
        let pod = |security: PodSecurityContext| Pod {
            spec: Some(PodSpec {
                security_context: Some(security),
                ..Default::default()
            }),
            ..Default::default()
        };
        let plain = Container::default();
        let nonroot_image = image(&[], &[], Some((65532, 65532)));
        let root_image = image(&[], &[], None);
        let by_pod = pod(PodSecurityContext {
            run_as_user: Some(1000),
            run_as_group: Some(1001),
            fs_group: Some(2000),
            supplemental_groups: Some(vec![3000, 2000]),
            ..Default::default()
        });
        let user = user_of(&by_pod, &plain, &root_image).unwrap();
        assert_eq!(
            (user.uid, user.gid, user.additional),
            (1000, 1001, vec![2000, 3000])
        );
        let own = Container {
            security_context: Some(SecurityContext {
                run_as_user: Some(7),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(user_of(&by_pod, &own, &root_image).unwrap().uid, 7);
        let image_user = user_of(&Pod::default(), &plain, &nonroot_image).unwrap();
        assert_eq!((image_user.uid, image_user.gid), (65532, 65532));
        let non_root = pod(PodSecurityContext {
            run_as_non_root: Some(true),
            ..Default::default()
        });
        assert!(user_of(&non_root, &plain, &nonroot_image).is_ok());
        let refused = user_of(&non_root, &plain, &root_image).unwrap_err();
        assert!(
            refused
                .to_string()
                .starts_with("container has runAsNonRoot and image will run as root")
        );
    }
}
