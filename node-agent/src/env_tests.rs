//! The container environment, without a node.

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
