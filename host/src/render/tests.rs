//! Golden tests of rendered objects: the full YAML for a few Services is
//! compared with files under `golden/`. After an intended change, regenerate
//! with `UPDATE_GOLDEN=1 cargo test -p tailscale-svc-lb render::` and review
//! the diff.

use std::path::PathBuf;

use policy_sdk::fixtures::service_from_yaml;
use policy_sdk::{Labels, Plan, Resources, Service, Toleration, TolerationOperator};

use super::*;
use crate::config::ControllerConfig;

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/render/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create)",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{} differs from the rendering; run with UPDATE_GOLDEN=1 and review the diff.\n{actual}",
        path.display()
    );
}

fn default_plan(hostname: &str) -> Plan {
    Plan {
        node_selector: Labels::from([(
            "svc-lb.tailscale.iptables.sh/deploy".into(),
            "true".into(),
        )]),
        hostname: hostname.into(),
        tags: vec!["tag:k8s".into()],
        ..Plan::default()
    }
}

fn web_in(namespace: &str) -> Service {
    service_from_yaml(&format!(
        "metadata: {{name: web, namespace: {namespace}, uid: uid-{namespace}}}\n\
         spec: {{type: LoadBalancer, clusterIP: 10.96.0.20, ports: [{{port: 443}}]}}"
    ))
    .unwrap()
}

#[test]
fn example_service_renders_as_golden() {
    let service = service_from_yaml(include_str!("../../../examples/service.yaml")).unwrap();
    let yaml = render_proxy(
        &service,
        &default_plan("shop-web"),
        &ControllerConfig::defaults(),
    )
    .to_yaml()
    .unwrap();
    golden("example-service.yaml", &yaml);
}

#[test]
fn same_service_name_in_two_namespaces_renders_two_distinct_proxies() {
    let config = ControllerConfig::defaults();
    let a = render_proxy(&web_in("team-a"), &default_plan("team-a-web"), &config);
    let b = render_proxy(&web_in("team-b"), &default_plan("team-b-web"), &config);
    assert_ne!(a.daemonset.metadata.name, b.daemonset.metadata.name);
    assert_ne!(a.state_secret.metadata.name, b.state_secret.metadata.name);
    assert_ne!(
        a.daemonset.spec.as_ref().unwrap().selector,
        b.daemonset.spec.as_ref().unwrap().selector,
        "the DaemonSets must not select each other's pods"
    );
    golden("team-a-web.yaml", &a.to_yaml().unwrap());
    golden("team-b-web.yaml", &b.to_yaml().unwrap());
}

#[test]
fn dual_stack_service_with_every_plan_field_renders_as_golden() {
    let service = service_from_yaml(
        "metadata: {name: dns, namespace: infra, uid: uid-dns, labels: {app: dns}}\n\
         spec:\n  type: LoadBalancer\n  clusterIPs: [10.96.0.53, 'fd00:10:96::53']\n  ipFamilies: [IPv4, IPv6]\n  \
         loadBalancerSourceRanges: [100.64.0.0/10, 'fd7a:115c:a1e0::/48']\n  \
         ports: [{name: dns-udp, port: 53, protocol: UDP}, {name: dns-tcp, port: 53}]",
    )
    .unwrap();
    let plan = Plan {
        node_selector: Labels::from([("pool.example.com/edge".into(), "true".into())]),
        hostname: "infra-dns".into(),
        tags: vec!["tag:dns".into(), "tag:infra".into()],
        pod_labels: Labels::from([("team".into(), "infra".into())]),
        pod_annotations: Labels::from([("example.com/owner".into(), "infra@example.com".into())]),
        tolerations: vec![Toleration {
            key: "dedicated".into(),
            operator: TolerationOperator::Exists,
            value: String::new(),
            effect: "NoExecute".into(),
            toleration_seconds: Some(30),
        }],
        resources: Resources {
            requests: Labels::from([
                ("cpu".into(), "20m".into()),
                ("memory".into(), "32Mi".into()),
            ]),
            limits: Labels::from([("memory".into(), "128Mi".into())]),
        },
        priority_class_name: Some("system-cluster-critical".into()),
        env: Labels::from([("GOMAXPROCS".into(), "1".into())]),
    };
    let config = ControllerConfig {
        login_server: Some("https://headscale.example.com".into()),
        namespace: "svc-lb".into(),
        image_pull_secrets: vec!["registry-credentials".into()],
        ..ControllerConfig::defaults()
    };
    golden(
        "dual-stack-dns.yaml",
        &render_proxy(&service, &plan, &config).to_yaml().unwrap(),
    );
}

#[test]
fn plan_pod_labels_never_replace_the_selector_labels() {
    let service = web_in("team-a");
    let mut plan = default_plan("h");
    plan.pod_labels.insert(
        svc_lb_contract::keys::SERVICE_NAME_LABEL.into(),
        "other".into(),
    );
    let ds = render_proxy(&service, &plan, &ControllerConfig::defaults()).daemonset;
    let pod_labels = ds.spec.unwrap().template.metadata.unwrap().labels.unwrap();
    assert_eq!(pod_labels[svc_lb_contract::keys::SERVICE_NAME_LABEL], "web");
}

#[test]
fn every_runtime_setting_is_rendered_once() {
    let ds = render_proxy(
        &web_in("a"),
        &default_plan("h"),
        &ControllerConfig::defaults(),
    )
    .daemonset;
    let pod = ds.spec.unwrap().template.spec.unwrap();
    let env: Vec<String> = pod.containers[0]
        .env
        .clone()
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    let expected: Vec<String> = svc_lb_contract::env::ALL
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(env, expected);
}

#[test]
fn the_minimal_proxy_has_only_the_capabilities_it_needs_and_every_proxy_requests_resources() {
    let mut config = ControllerConfig::defaults();
    config.proxy_privileges = crate::config::ProxyPrivileges::Minimal;
    let objects = render_proxy(&web_in("team"), &default_plan("team-web"), &config);
    let pod = objects.daemonset.spec.unwrap().template.spec.unwrap();
    let proxy = &pod.containers[0];
    let security = proxy.security_context.as_ref().unwrap();
    assert_eq!(security.privileged, None);
    assert_eq!(security.allow_privilege_escalation, Some(false));
    let capabilities = security.capabilities.as_ref().unwrap();
    assert_eq!(capabilities.drop.as_deref(), Some(&["ALL".to_string()][..]));
    assert_eq!(
        capabilities.add.as_deref(),
        Some(&["NET_ADMIN".to_string(), "NET_RAW".into(), "MKNOD".into()][..])
    );
    let requests = proxy.resources.as_ref().unwrap().requests.as_ref().unwrap();
    assert!(requests.contains_key("cpu") && requests.contains_key("memory"));
    let seccomp = pod.security_context.unwrap().seccomp_profile.unwrap();
    assert_eq!(seccomp.type_, "RuntimeDefault");
}

#[test]
fn a_controller_logging_json_has_its_proxies_log_json() {
    let service = web_in("team-a");
    let plan = default_plan("h");
    let env_of = |config: &ControllerConfig| {
        let objects = render_proxy(&service, &plan, config);
        let pod = objects.daemonset.spec.unwrap().template.spec.unwrap();
        pod.containers[0].env.clone().unwrap()
    };
    let format = |env: &[k8s_openapi::api::core::v1::EnvVar]| {
        env.iter()
            .find(|e| e.name == svc_lb_contract::env::LOG_FORMAT)
            .and_then(|e| e.value.clone())
    };
    assert_eq!(format(&env_of(&ControllerConfig::defaults())), None);
    let json = ControllerConfig {
        json_logs: true,
        ..ControllerConfig::defaults()
    };
    assert_eq!(format(&env_of(&json)).as_deref(), Some("json"));
}
