//! The DaemonSet running the runtime on every node the plan selects.
//!
//! Pods follow how Tailscale's operator runs its proxies: no host network; a
//! privileged init container enables IP forwarding in the pod's own network
//! namespace (writing `/proc/sys` needs it, and it exits before the proxy
//! starts); the proxy container runs as root with `NET_ADMIN` only, which it
//! needs to create the `tailscale0` TUN device from `/dev/net/tun` (allowed by
//! the container runtime's default device rules; where a cluster's runtime
//! does not, a policy can request a device-plugin resource such as
//! `squat.ai/tun` through the plan's limits), to set its address and routes,
//! and to install the DNAT rules.
//!
//! Updates surge (`maxSurge: 1, maxUnavailable: 0`): the new pod on a node
//! starts before the old one stops, and the old leader hands its Lease over
//! on SIGTERM, so a Service is never without a forwarder for longer than a
//! graceful handover.

use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetSpec, DaemonSetUpdateStrategy, RollingUpdateDaemonSet,
};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, HTTPGetAction,
    LocalObjectReference, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SeccompProfile, SecurityContext, Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use policy_sdk::{Labels, Plan, Service, TolerationOperator};
use svc_lb_contract::{
    ProxyNames, RUNTIME_BINARY, RUNTIME_ENABLE_FORWARDING_COMMAND, RUNTIME_HEALTH_PORT,
    RUNTIME_RUN_DIR,
};

use super::env::runtime_env;
use super::metadata::{object_meta, selector_labels};
use crate::config::{ControllerConfig, ProxyPrivileges};

/// Name of the proxy container.
pub const PROXY_CONTAINER: &str = "proxy";
/// Name of the init container enabling IP forwarding.
pub const ENABLE_FORWARDING_CONTAINER: &str = "enable-forwarding";
/// Name of the health port.
const HEALTH_PORT_NAME: &str = "health";
/// Time the runtime gets to remove its rules and hand over the Lease.
const TERMINATION_GRACE_SECONDS: i64 = 30;

pub(super) fn render_daemonset(
    service: &Service,
    plan: &Plan,
    config: &ControllerConfig,
    names: &ProxyNames,
) -> DaemonSet {
    let selector = selector_labels(service);
    let mut pod_labels = plan.pod_labels.clone();
    pod_labels.extend(selector.clone());
    DaemonSet {
        metadata: object_meta(service, config, &names.daemonset),
        spec: Some(DaemonSetSpec {
            selector: LabelSelector {
                match_labels: Some(selector),
                match_expressions: None,
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: (!plan.pod_annotations.is_empty())
                        .then(|| plan.pod_annotations.clone()),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod_spec(service, plan, config, names)),
            },
            update_strategy: Some(DaemonSetUpdateStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDaemonSet {
                    max_surge: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            revision_history_limit: Some(3),
            min_ready_seconds: None,
        }),
        status: None,
    }
}

fn pod_spec(
    service: &Service,
    plan: &Plan,
    config: &ControllerConfig,
    names: &ProxyNames,
) -> PodSpec {
    let image = Some(config.runtime_image.clone());
    let pull_policy = Some(config.image_pull_policy.as_str().to_string());
    let enable_forwarding = Container {
        name: ENABLE_FORWARDING_CONTAINER.into(),
        image: image.clone(),
        image_pull_policy: pull_policy.clone(),
        command: Some(vec![
            RUNTIME_BINARY.into(),
            RUNTIME_ENABLE_FORWARDING_COMMAND.into(),
        ]),
        security_context: Some(SecurityContext {
            privileged: Some(true),
            ..SecurityContext::default()
        }),
        ..Container::default()
    };
    let probe = |path: &str| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String(HEALTH_PORT_NAME.into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(5),
        ..Probe::default()
    };
    let proxy = Container {
        name: PROXY_CONTAINER.into(),
        image,
        image_pull_policy: pull_policy,
        command: Some(vec![RUNTIME_BINARY.into()]),
        env: Some(runtime_env(service, plan, config, names)),
        ports: Some(vec![ContainerPort {
            name: Some(HEALTH_PORT_NAME.into()),
            container_port: i32::from(RUNTIME_HEALTH_PORT),
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        readiness_probe: Some(probe("/readyz")),
        liveness_probe: Some(probe("/healthz")),
        resources: resources(plan),
        security_context: Some(proxy_security_context(config.proxy_privileges)),
        // The root filesystem is read-only: tailscaled's socket, state
        // directory and the auth key file go to /run (with iptables' lock),
        // temporary files to /tmp, both emptyDirs.
        volume_mounts: Some(
            SCRATCH
                .iter()
                .map(|(name, path)| VolumeMount {
                    name: name.to_string(),
                    mount_path: path.to_string(),
                    ..VolumeMount::default()
                })
                .collect(),
        ),
        ..Container::default()
    };
    PodSpec {
        service_account_name: Some(names.service_account.clone()),
        image_pull_secrets: (!config.image_pull_secrets.is_empty()).then(|| {
            config
                .image_pull_secrets
                .iter()
                .map(|name| LocalObjectReference { name: name.clone() })
                .collect()
        }),
        node_selector: Some(node_selector(plan)),
        tolerations: (!plan.tolerations.is_empty())
            .then(|| plan.tolerations.iter().map(toleration).collect()),
        priority_class_name: plan.priority_class_name.clone(),
        termination_grace_period_seconds: Some(TERMINATION_GRACE_SECONDS),
        init_containers: Some(vec![enable_forwarding]),
        containers: vec![proxy],
        volumes: Some(
            SCRATCH
                .iter()
                .map(|(name, _)| Volume {
                    name: name.to_string(),
                    empty_dir: Some(EmptyDirVolumeSource::default()),
                    ..Volume::default()
                })
                .collect(),
        ),
        // The container runtime's default syscall filter; a privileged
        // container runs without one whatever is asked.
        security_context: Some(PodSecurityContext {
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                localhost_profile: None,
            }),
            ..PodSecurityContext::default()
        }),
        ..PodSpec::default()
    }
}

/// The proxy container's writable emptyDirs: `(volume, mount path)`.
const SCRATCH: [(&str, &str); 2] = [("run", RUNTIME_RUN_DIR), ("tmp", "/tmp")];

/// The proxy container's security context for `privileges`.
fn proxy_security_context(privileges: ProxyPrivileges) -> SecurityContext {
    match privileges {
        ProxyPrivileges::Privileged => SecurityContext {
            privileged: Some(true),
            run_as_user: Some(0),
            read_only_root_filesystem: Some(true),
            ..SecurityContext::default()
        },
        ProxyPrivileges::Minimal => SecurityContext {
            run_as_user: Some(0),
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities {
                add: Some(["NET_ADMIN", "NET_RAW", "MKNOD"].map(String::from).to_vec()),
                drop: Some(vec!["ALL".into()]),
            }),
            ..SecurityContext::default()
        },
    }
}

fn quantities(map: &Labels) -> Option<std::collections::BTreeMap<String, Quantity>> {
    (!map.is_empty()).then(|| {
        map.iter()
            .map(|(k, v)| (k.clone(), Quantity(v.clone())))
            .collect()
    })
}

/// Requests of a proxy whose plan asks for none: what an idle leader uses
/// (the runtime's RSS is about 10 MiB, tailscaled's some tens), so the
/// scheduler counts it; no limits, since tailscaled grows with the tailnet.
const DEFAULT_REQUESTS: [(&str, &str); 2] = [("cpu", "10m"), ("memory", "64Mi")];

fn resources(plan: &Plan) -> Option<ResourceRequirements> {
    let requests = quantities(&plan.resources.requests).or_else(|| {
        Some(
            DEFAULT_REQUESTS
                .iter()
                .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                .collect(),
        )
    });
    let limits = quantities(&plan.resources.limits);
    Some(ResourceRequirements {
        requests,
        limits,
        ..ResourceRequirements::default()
    })
}

fn toleration(t: &policy_sdk::Toleration) -> Toleration {
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    Toleration {
        key: non_empty(&t.key),
        operator: Some(
            match t.operator {
                TolerationOperator::Equal => "Equal",
                TolerationOperator::Exists => "Exists",
            }
            .into(),
        ),
        value: non_empty(&t.value),
        effect: non_empty(&t.effect),
        toleration_seconds: t.toleration_seconds,
    }
}

/// The well-known node label every kubelet sets to its operating system.
pub const OS_LABEL: &str = "kubernetes.io/os";

/// The plan's node selector, and always Linux nodes: the runtime image is
/// Linux-only, and in a cluster with Windows nodes a plan selecting by pool
/// alone would otherwise place pods that cannot start there. A plan may
/// not select another OS (validation keeps `kubernetes.io/os` to `linux`).
pub fn node_selector(plan: &Plan) -> Labels {
    let mut selector = plan.node_selector.clone();
    selector.insert(OS_LABEL.into(), "linux".into());
    selector
}
