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
#[path = "env_tests.rs"]
mod tests;
