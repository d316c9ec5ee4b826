//! A policy (a later one in the chain, or one an attacker got into the set)
//! cannot reach into the proxy's runtime, tailscaled or the node through the
//! plan: every environment variable they read and every annotation a cluster
//! acts on is refused unless the operator allows it, with a message naming
//! the key and the policy. Runs the real components through the chain.

mod support;

use std::sync::Arc;

use serde_json::json;
use support::{engine, example_service, wasm};
use svc_lb_host::policy::{
    ChainError, DEFAULT_POLICY_WASM, PolicyChain, PolicyEngine, PolicyErrorKind, StaticNodes,
};
use svc_lb_host::validate::PlanRules;

/// Environment variables the proxy container's processes read, by reader.
/// The runtime's own settings (`SVCLB_*`) are added from the contract.
const ENV_READ: &[(&str, &[&str])] = &[
    // The runtime finds tailscaled, tailscale, nft and iptables on PATH;
    // std's home_dir (HOME) locates a kubeconfig.
    ("runtime (std)", &["PATH", "HOME"]),
    // kube-client 5: Config::infer (in-cluster and kubeconfig), its proxy
    // and no-proxy settings, its debug overrides.
    (
        "runtime (kube-client)",
        &[
            "KUBECONFIG",
            "KUBERNETES_SERVICE_HOST",
            "KUBERNETES_SERVICE_PORT",
            "HTTPS_PROXY",
            "https_proxy",
            "NO_PROXY",
            "no_proxy",
            "KUBE_RS_DEBUG_IMPERSONATE_USER",
            "KUBE_RS_DEBUG_IMPERSONATE_GROUP",
            "KUBE_RS_DEBUG_OVERRIDE_URL",
        ],
    ),
    // rustls-native-certs: the trust roots for the API server.
    ("runtime (rustls)", &["SSL_CERT_FILE", "SSL_CERT_DIR"]),
    // tracing-subscriber's EnvFilter.
    ("runtime (logs)", &["RUST_LOG"]),
    // iptables loads its extensions from these directories.
    ("iptables", &["XTABLES_LIBDIR", "IPTABLES_LIB_DIR"]),
    // The dynamic loader (reserved prefix) and glibc's charset modules.
    ("loader", &["LD_PRELOAD", "LD_LIBRARY_PATH", "GCONV_PATH"]),
    // tailscaled: envknob knobs (TS_ prefix, reserved) and those without it.
    (
        "tailscaled (envknob)",
        &[
            "TS_DEBUG_FIREWALL_MODE",
            "TS_DEBUG_MTU",
            "TS_DEBUG_USE_DERP_HTTP",
            "TS_DEBUG_ENV_FILE",
            "TS_DEBUG_FAKE_PROXY_AUTH",
            "TS_NO_LOGS_NO_SUPPORT",
            "TS_LOGS_DIR",
            "TS_PERMIT_CERT_UID",
            "TS_KUBE_SECRET",
            "TS_AUTHKEY",
            "TS_KUBERNETES_READ_API_SERVER_ADDRESS_FROM_ENV",
            "TAILSCALE_USE_WIP_CODE",
        ],
    ),
    // tailscaled: Go's net/http proxy and TLS settings (SSLKEYLOGFILE
    // writes session keys to a file), the Go runtime, the API address.
    (
        "tailscaled (Go)",
        &[
            "HTTP_PROXY",
            "http_proxy",
            "REQUEST_METHOD",
            "SSLKEYLOGFILE",
            "GODEBUG",
            "GOGC",
            "GOMEMLIMIT",
            "GOMAXPROCS",
            "GOTRACEBACK",
            "KUBERNETES_SERVICE_PORT_HTTPS",
            "XDG_CONFIG_HOME",
        ],
    ),
];

/// Pod annotation keys some part of a cluster gives meaning to.
const MEANINGFUL_ANNOTATIONS: &[&str] = &[
    "container.apparmor.security.beta.kubernetes.io/tailscale",
    "seccomp.security.alpha.kubernetes.io/pod",
    "container.seccomp.security.alpha.kubernetes.io/tailscale",
    "io.kubernetes.cri-o.Devices",
    "io.kubernetes.cri-o.userns-mode",
    "io.kubernetes.cri-o.ShmSize",
    "run.oci.keep_original_groups",
    "k8s.v1.cni.cncf.io/networks",
    "v1.multus-cni.io/default-network",
    "kubernetes.io/ingress-bandwidth",
    "kubernetes.io/egress-bandwidth",
    "cluster-autoscaler.kubernetes.io/safe-to-evict",
    "sidecar.istio.io/inject",
    "linkerd.io/inject",
];

/// The default policy, then `hostile` (the add-to-plan guest) adding `add`.
fn chain_adding(
    engine: &Arc<PolicyEngine>,
    add: serde_json::Value,
    rules: PlanRules,
) -> PolicyChain {
    let policies = vec![
        engine.load("default", DEFAULT_POLICY_WASM, "{}").unwrap(),
        engine
            .load("hostile", &wasm("test_guest_add_to_plan"), &add.to_string())
            .unwrap(),
    ];
    PolicyChain::new(engine.clone(), policies, rules)
}

/// The message of the chain's refusal, asserting it blames `hostile`.
fn refusal(engine: &Arc<PolicyEngine>, add: serde_json::Value, rules: PlanRules) -> String {
    let nodes = Arc::new(StaticNodes::default());
    match chain_adding(engine, add.clone(), rules).evaluate(&example_service(), nodes) {
        Err(ChainError::Policy(e)) => {
            assert_eq!(e.policy, "hostile", "{e}");
            assert!(matches!(e.kind, PolicyErrorKind::InvalidPlan(_)), "{e}");
            e.to_string()
        }
        Ok(outcome) => panic!("{add} was accepted: {:?}", outcome.plan),
        Err(other) => panic!("{add}: {other}"),
    }
}

fn accepted(engine: &Arc<PolicyEngine>, add: serde_json::Value, rules: PlanRules) {
    let nodes = Arc::new(StaticNodes::default());
    if let Err(e) = chain_adding(engine, add.clone(), rules).evaluate(&example_service(), nodes) {
        panic!("{add} was refused: {e}");
    }
}

#[test]
fn every_environment_variable_the_proxy_reads_is_refused_naming_it_and_the_policy() {
    let engine = engine();
    let runtime_own = svc_lb_contract::env::ALL
        .iter()
        .chain(svc_lb_contract::env::OPTIONAL);
    let names = ENV_READ
        .iter()
        .flat_map(|(_, names)| names.iter())
        .chain(runtime_own);
    let mut checked = 0;
    for name in names {
        let message = refusal(&engine, json!({"env": {*name: "x"}}), PlanRules::default());
        assert!(message.contains("policy hostile"), "{message}");
        assert!(
            message.contains(&format!("environment variable {name} ")),
            "{message}"
        );
        checked += 1;
    }
    assert!(checked > 60, "the table shrank to {checked}");
}

#[test]
fn an_operator_allowed_variable_passes_but_reserved_prefixes_cannot_be_allowed() {
    let engine = engine();
    let rules = PlanRules {
        allowed_env: vec!["HTTPS_PROXY".into()],
        ..PlanRules::default()
    };
    accepted(
        &engine,
        json!({"env": {"HTTPS_PROXY": "http://proxy:3128"}}),
        rules.clone(),
    );
    let message = refusal(&engine, json!({"env": {"NO_PROXY": "x"}}), rules);
    assert!(message.contains("planRules.allowedEnv"), "{message}");

    let reserved = PlanRules {
        allowed_env: vec!["TS_DEBUG_MTU".into()],
        ..PlanRules::default()
    };
    assert!(reserved.check().is_err());
    let message = refusal(&engine, json!({"env": {"TS_DEBUG_MTU": "9000"}}), reserved);
    assert!(message.contains("TS_DEBUG_MTU is reserved"), "{message}");
}

#[test]
fn every_annotation_a_cluster_acts_on_is_refused_naming_it_and_the_policy() {
    let engine = engine();
    for key in MEANINGFUL_ANNOTATIONS {
        let add = json!({"podAnnotations": {*key: "unconfined"}});
        let message = refusal(&engine, add, PlanRules::default());
        assert!(message.contains("policy hostile"), "{message}");
        assert!(
            message.contains(&format!("pod annotation {key} ")),
            "{message}"
        );
    }
    // Keys and prefixes the operator lists are allowed.
    refusal(
        &engine,
        json!({"podAnnotations": {"owner": "team-a"}}),
        PlanRules::default(),
    );
    let rules = PlanRules {
        allowed_pod_annotations: vec!["prometheus.io/*".into(), "owner".into()],
        ..PlanRules::default()
    };
    accepted(
        &engine,
        json!({"podAnnotations": {"owner": "team-a"}}),
        rules.clone(),
    );
    accepted(
        &engine,
        json!({"podAnnotations": {"prometheus.io/scrape": "true"}}),
        rules.clone(),
    );
    refusal(
        &engine,
        json!({"podAnnotations": {"linkerd.io/inject": "enabled"}}),
        rules,
    );
}

#[test]
fn control_plane_and_catch_all_tolerations_and_system_priorities_need_the_operator() {
    let engine = engine();
    for (add, key) in [
        (
            json!({"tolerations": [{"operator": "Exists"}]}),
            "every taint",
        ),
        (
            json!({"tolerations": [{"operator": "Exists", "effect": "NoExecute"}]}),
            "every taint",
        ),
        (
            json!({"tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]}),
            "node-role.kubernetes.io/control-plane",
        ),
        (
            json!({"tolerations": [{"key": "node-role.kubernetes.io/master", "operator": "Exists"}]}),
            "node-role.kubernetes.io/master",
        ),
        (
            json!({"priorityClassName": "system-node-critical"}),
            "system-node-critical",
        ),
        (
            json!({"priorityClassName": "system-cluster-critical"}),
            "system-cluster-critical",
        ),
    ] {
        let message = refusal(&engine, add, PlanRules::default());
        assert!(message.contains("policy hostile"), "{message}");
        assert!(message.contains(key), "{message}");
    }
    let dedicated =
        json!({"tolerations": [{"key": "dedicated", "value": "edge", "effect": "NoSchedule"}]});
    accepted(&engine, dedicated, PlanRules::default());
    let rules = PlanRules {
        allowed_tolerations: vec!["node-role.kubernetes.io/control-plane".into()],
        allowed_priority_classes: vec!["system-node-critical".into()],
        ..PlanRules::default()
    };
    let add = json!({
        "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}],
        "priorityClassName": "system-node-critical",
    });
    accepted(&engine, add, rules);
}

#[test]
fn a_later_policy_cannot_add_a_tag_the_namespace_may_not_use() {
    let engine = engine();
    let rules: PlanRules =
        serde_yaml_ng::from_str("allowedTags: {shop: ['tag:shop'], '*': ['tag:k8s']}").unwrap();
    // The example Service (namespace shop) asks for tag:shop: allowed.
    accepted(&engine, json!({"tags": ["tag:k8s"]}), rules.clone());
    let message = refusal(&engine, json!({"tags": ["tag:admin"]}), rules);
    assert!(message.contains("policy hostile"), "{message}");
    assert!(
        message.contains("namespace shop may not use tag tag:admin")
            && message.contains("allowed: tag:shop, tag:k8s"),
        "{message}"
    );
}
