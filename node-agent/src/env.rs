//! A container's environment, built as the kubelet builds it
//! (`pkg/kubelet/kubelet_pods.go`, `makeEnvironmentVariables`): the API
//! server's Service variables first, then the container's `env` in order,
//! each value's `$(NAME)` references expanded against what came before
//! (`third_party/forked/golang/expansion`), `valueFrom` resolved from the
//! downward API (fields and the container's resources, `resourceFieldRef`,
//! as `pkg/api/v1/resource`'s `ExtractContainerResourceValue` rounds them:
//! up to a whole divisor), Secrets and ConfigMaps. A missing Secret,
//! ConfigMap or key fails the container (`CreateContainerConfigError`)
//! unless `optional`.
//!
//! Not modelled: the variables of the pod namespace's other Services
//! (`enableServiceLinks`), `envFrom`, and a `resourceFieldRef` to a limit
//! the container does not set (the kubelet gives the node's allocatable
//! there, which this agent does not know): each is refused with an error
//! naming it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, EnvVar, Pod, ResourceFieldSelector};

use crate::kubelet::container::{memory_bytes, milli_cpu};

/// What the kubelet looked up for the container's `valueFrom`s.
#[derive(Debug, Default, Clone)]
pub struct EnvSources {
    /// Secrets of the pod's namespace by name: key → value.
    pub secrets: BTreeMap<String, BTreeMap<String, String>>,
    /// ConfigMaps of the pod's namespace by name: key → value.
    pub config_maps: BTreeMap<String, BTreeMap<String, String>>,
}

/// Where the pod reaches the API server (the `kubernetes` Service).
#[derive(Debug, Clone)]
pub struct ApiService {
    /// Its ClusterIP.
    pub host: String,
    /// Its port.
    pub port: u16,
}

/// Why the environment cannot be built (the container is not started).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EnvError {
    /// A Secret or ConfigMap, or a key of it, is missing.
    #[error("{kind} {name:?} {what}")]
    Missing {
        kind: &'static str,
        name: String,
        what: String,
    },
    /// A field path the downward API does not offer.
    #[error("unsupported fieldPath {0:?}")]
    FieldPath(String),
    /// A source this kubelet does not model.
    #[error("{0} is not supported by this node agent")]
    Unsupported(&'static str),
}

/// The Service variables of the `kubernetes` Service (docker links style).
fn api_variables(api: &ApiService) -> Vec<(String, String)> {
    let (host, port) = (&api.host, api.port);
    vec![
        ("KUBERNETES_SERVICE_HOST".into(), host.clone()),
        ("KUBERNETES_SERVICE_PORT".into(), port.to_string()),
        ("KUBERNETES_SERVICE_PORT_HTTPS".into(), port.to_string()),
        ("KUBERNETES_PORT".into(), format!("tcp://{host}:{port}")),
        (
            format!("KUBERNETES_PORT_{port}_TCP"),
            format!("tcp://{host}:{port}"),
        ),
        (format!("KUBERNETES_PORT_{port}_TCP_PROTO"), "tcp".into()),
        (format!("KUBERNETES_PORT_{port}_TCP_PORT"), port.to_string()),
        (format!("KUBERNETES_PORT_{port}_TCP_ADDR"), host.clone()),
    ]
}

/// Expands `$(NAME)` from `defined`; `$$` is a literal `$`; an undefined
/// reference stays as written (the kubelet's `expansion.Expand`).
pub fn expand(value: &str, defined: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
        {
            let name = &inner[..end];
            match defined.get(name) {
                Some(v) => out.push_str(v),
                None => out.push_str(&format!("$({name})")),
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The downward API value of `path` for `pod`.
fn field(pod: &Pod, path: &str) -> Result<String, EnvError> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    let keyed = |prefix: &str, map: &Option<BTreeMap<String, String>>| {
        let key = path.strip_prefix(prefix)?.strip_suffix("']")?;
        Some(map.as_ref()?.get(key).cloned().unwrap_or_default())
    };
    let value = match path {
        "metadata.name" => meta.name.clone(),
        "metadata.namespace" => meta.namespace.clone(),
        "metadata.uid" => meta.uid.clone(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()),
        "status.hostIP" => status.and_then(|s| s.host_ip.clone()),
        "status.podIP" => status.and_then(|s| s.pod_ip.clone()),
        "status.podIPs" => status.map(|s| {
            let ips: Vec<String> = s.pod_ips.iter().flatten().map(|p| p.ip.clone()).collect();
            ips.join(",")
        }),
        _ => keyed("metadata.labels['", &meta.labels)
            .or_else(|| keyed("metadata.annotations['", &meta.annotations))
            .map(Some)
            .ok_or_else(|| EnvError::FieldPath(path.to_string()))?,
    };
    Ok(value.unwrap_or_default())
}

/// Looks `key` up in `kind` `name` of `maps`; `None` where optional and
/// missing.
fn lookup(
    maps: &BTreeMap<String, BTreeMap<String, String>>,
    kind: &'static str,
    name: &str,
    key: &str,
    optional: bool,
) -> Result<Option<String>, EnvError> {
    let missing = |what: String| EnvError::Missing {
        kind,
        name: name.to_string(),
        what,
    };
    match maps.get(name).map(|data| data.get(key)) {
        Some(Some(value)) => Ok(Some(value.clone())),
        _ if optional => Ok(None),
        Some(None) => Err(missing(format!("has no key {key:?}"))),
        None => Err(missing("not found".into())),
    }
}

/// One `env` entry's value (`None`: an optional source that is missing,
/// and the variable is not set).
fn value_of(
    var: &EnvVar,
    pod: &Pod,
    container: &Container,
    sources: &EnvSources,
    defined: &BTreeMap<String, String>,
) -> Result<Option<String>, EnvError> {
    let Some(from) = &var.value_from else {
        return Ok(Some(expand(
            var.value.as_deref().unwrap_or_default(),
            defined,
        )));
    };
    if let Some(f) = &from.field_ref {
        return field(pod, &f.field_path).map(Some);
    }
    if let Some(s) = &from.secret_key_ref {
        let optional = s.optional.unwrap_or(false);
        return lookup(&sources.secrets, "secret", &s.name, &s.key, optional);
    }
    if let Some(c) = &from.config_map_key_ref {
        let optional = c.optional.unwrap_or(false);
        return lookup(&sources.config_maps, "configmap", &c.name, &c.key, optional);
    }
    if let Some(r) = &from.resource_field_ref {
        return resource_value(pod, container, r).map(Some);
    }
    Err(EnvError::Unsupported("an empty valueFrom"))
}

/// A `resourceFieldRef`'s value: the quantity over the divisor, rounded up.
fn resource_value(
    pod: &Pod,
    container: &Container,
    selector: &ResourceFieldSelector,
) -> Result<String, EnvError> {
    let named = selector.container_name.as_deref().filter(|n| !n.is_empty());
    let spec = pod.spec.as_ref();
    let target = match named {
        None => Some(container),
        Some(name) => spec.and_then(|s| s.containers.iter().find(|c| c.name == name)),
    }
    .ok_or_else(|| EnvError::FieldPath(format!("resourceFieldRef container {named:?}")))?;
    let unsupported = || EnvError::FieldPath(format!("resource {:?}", selector.resource));
    let (kind, resource) = selector.resource.split_once('.').ok_or_else(unsupported)?;
    let resources = target.resources.as_ref();
    let quantities = match kind {
        "limits" => resources.and_then(|r| r.limits.as_ref()),
        "requests" => resources.and_then(|r| r.requests.as_ref()),
        _ => return Err(unsupported()),
    };
    let quantity = quantities
        .and_then(|q| q.get(resource))
        .map(|q| q.0.as_str());
    let divisor = selector.divisor.as_ref().map(|d| d.0.as_str());
    match resource {
        "cpu" => {
            let milli = match quantity {
                Some(q) => milli_cpu(q).ok_or_else(unsupported)?,
                None if kind == "requests" => 0,
                None => return Err(EnvError::Unsupported("limits.cpu without a limit")),
            };
            let divisor = milli_cpu(divisor.unwrap_or("1")).filter(|d| *d > 0);
            Ok(milli.div_ceil(divisor.ok_or_else(unsupported)?).to_string())
        }
        "memory" | "ephemeral-storage" => {
            let bytes = match quantity {
                Some(q) => memory_bytes(q)
                    .and_then(|b| u64::try_from(b).ok())
                    .ok_or_else(unsupported)?,
                None if kind == "requests" => 0,
                None => return Err(EnvError::Unsupported("a memory limit that is not set")),
            };
            let divisor = memory_bytes(divisor.unwrap_or("1"))
                .and_then(|d| u64::try_from(d).ok())
                .filter(|d| *d > 0);
            Ok(bytes.div_ceil(divisor.ok_or_else(unsupported)?).to_string())
        }
        _ => Err(unsupported()),
    }
}

/// The environment of `container` in `pod`, after the image's `image_env`.
pub fn container_env(
    pod: &Pod,
    container: &Container,
    image_env: &[(String, String)],
    sources: &EnvSources,
    api: &ApiService,
) -> Result<Vec<(String, String)>, EnvError> {
    if container.env_from.as_ref().is_some_and(|e| !e.is_empty()) {
        return Err(EnvError::Unsupported("envFrom"));
    }
    let mut env: Vec<(String, String)> = image_env.to_vec();
    let set = |env: &mut Vec<(String, String)>, name: String, value: String| {
        env.retain(|(n, _)| *n != name);
        env.push((name, value));
    };
    for (name, value) in api_variables(api) {
        set(&mut env, name, value);
    }
    let mut defined: BTreeMap<String, String> = env.iter().cloned().collect();
    for var in container.env.iter().flatten() {
        if let Some(value) = value_of(var, pod, container, sources, &defined)? {
            defined.insert(var.name.clone(), value.clone());
            set(&mut env, var.name.clone(), value);
        }
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{
        EnvVarSource, ObjectFieldSelector, PodSpec, PodStatus, SecretKeySelector,
    };

    use super::*;

    fn pod() -> Pod {
        Pod {
            metadata: kube::api::ObjectMeta {
                name: Some("ts-web-x7k2p".into()),
                namespace: Some("svc-lb".into()),
                labels: Some([("team".to_string(), "a".to_string())].into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some("node-0".into()),
                ..Default::default()
            }),
            status: Some(PodStatus {
                pod_ip: Some("10.200.0.5".into()),
                ..Default::default()
            }),
        }
    }

    fn literal(name: &str, value: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: Some(value.into()),
            value_from: None,
        }
    }

    fn from(name: &str, source: EnvVarSource) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: None,
            value_from: Some(source),
        }
    }

    fn field_ref(path: &str) -> EnvVarSource {
        EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                api_version: None,
            }),
            ..Default::default()
        }
    }

    fn secret_ref(name: &str, key: &str, optional: bool) -> EnvVarSource {
        EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: name.into(),
                key: key.into(),
                optional: Some(optional),
            }),
            ..Default::default()
        }
    }

    fn api() -> ApiService {
        ApiService {
            host: "10.96.0.1".into(),
            port: 443,
        }
    }

    fn build(env: Vec<EnvVar>, sources: &EnvSources) -> Result<Vec<(String, String)>, EnvError> {
        let container = Container {
            name: "proxy".into(),
            env: Some(env),
            ..Default::default()
        };
        container_env(
            &pod(),
            &container,
            &[("PATH".into(), "/bin".into())],
            sources,
            &api(),
        )
    }

    fn get<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
        env.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn literal_downward_api_and_api_server_variables() {
        let env = build(
            vec![
                literal("A", "1"),
                from("POD", field_ref("metadata.name")),
                from("NODE", field_ref("spec.nodeName")),
                from("IP", field_ref("status.podIP")),
                from("TEAM", field_ref("metadata.labels['team']")),
            ],
            &EnvSources::default(),
        )
        .unwrap();
        assert_eq!(get(&env, "PATH"), Some("/bin"));
        assert_eq!(get(&env, "KUBERNETES_SERVICE_HOST"), Some("10.96.0.1"));
        assert_eq!(get(&env, "KUBERNETES_SERVICE_PORT"), Some("443"));
        assert_eq!(get(&env, "POD"), Some("ts-web-x7k2p"));
        assert_eq!(get(&env, "NODE"), Some("node-0"));
        assert_eq!(get(&env, "IP"), Some("10.200.0.5"));
        assert_eq!(get(&env, "TEAM"), Some("a"));
        assert_eq!(
            env.last().unwrap().0,
            "TEAM",
            "the container's order is kept"
        );
    }

    #[test]
    fn references_expand_to_earlier_variables_only() {
        let env = build(
            vec![
                literal("A", "x"),
                literal("B", "$(A)-$(C)-$$(A)"),
                literal("C", "late"),
            ],
            &EnvSources::default(),
        )
        .unwrap();
        assert_eq!(get(&env, "B"), Some("x-$(C)-$(A)"));
    }

    #[test]
    fn a_missing_optional_secret_leaves_the_variable_unset_and_a_required_one_fails() {
        let sources = EnvSources {
            secrets: [(
                "tailscale-svc-lb".to_string(),
                [("ts-auth-key".to_string(), "tskey-1".to_string())].into(),
            )]
            .into(),
            ..Default::default()
        };
        let env = build(
            vec![
                from("KEY", secret_ref("tailscale-svc-lb", "ts-auth-key", false)),
                from("OPT", secret_ref("absent", "k", true)),
            ],
            &sources,
        )
        .unwrap();
        assert_eq!(get(&env, "KEY"), Some("tskey-1"));
        assert_eq!(get(&env, "OPT"), None);
        let error = build(vec![from("X", secret_ref("absent", "k", false))], &sources);
        assert_eq!(
            error.unwrap_err().to_string(),
            "secret \"absent\" not found"
        );
        let error = build(
            vec![from("X", secret_ref("tailscale-svc-lb", "other", false))],
            &sources,
        );
        assert!(error.unwrap_err().to_string().contains("has no key"));
    }

    #[test]
    fn an_unknown_field_path_fails_the_container() {
        let error = build(
            vec![from("X", field_ref("spec.nope"))],
            &EnvSources::default(),
        );
        assert_eq!(error, Err(EnvError::FieldPath("spec.nope".into())));
    }

    #[test]
    fn a_resource_field_is_the_quantity_over_the_divisor_rounded_up() {
        use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
        let resource = |resource: &str, divisor: &str| EnvVarSource {
            resource_field_ref: Some(ResourceFieldSelector {
                container_name: None,
                resource: resource.into(),
                divisor: Some(Quantity(divisor.into())),
            }),
            ..Default::default()
        };
        let container = Container {
            name: "controller".into(),
            env: Some(vec![
                from("MEM", resource("limits.memory", "1Mi")),
                from("MEM_BYTES", resource("limits.memory", "1")),
                from("CPU", resource("requests.cpu", "1")),
                from("MILLI", resource("requests.cpu", "1m")),
                from("NO_REQUEST", resource("requests.memory", "1Mi")),
            ]),
            resources: Some(k8s_openapi::api::core::v1::ResourceRequirements {
                limits: Some([("memory".to_string(), Quantity("300Mi".into()))].into()),
                requests: Some([("cpu".to_string(), Quantity("50m".into()))].into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let env = container_env(&pod(), &container, &[], &EnvSources::default(), &api()).unwrap();
        assert_eq!(get(&env, "MEM"), Some("300"));
        assert_eq!(get(&env, "MEM_BYTES"), Some("314572800"));
        assert_eq!(get(&env, "CPU"), Some("1"), "50m is rounded up to 1 core");
        assert_eq!(get(&env, "MILLI"), Some("50"));
        assert_eq!(get(&env, "NO_REQUEST"), Some("0"));
        // A limit that is not set would be the node's allocatable.
        let unset = Container {
            env: Some(vec![from("X", resource("limits.cpu", "1"))]),
            ..container
        };
        let error = container_env(&pod(), &unset, &[], &EnvSources::default(), &api());
        assert!(matches!(error, Err(EnvError::Unsupported(_))), "{error:?}");
    }
}
