//! The controller and the runtime together: the real controller (in this
//! process) renders a Service's DaemonSet; the test plays the kubelet,
//! starting a runtime per node with the environment the pod template
//! declares (values, downward-API fields, the auth-key Secret); the runtime
//! reports the device and the controller publishes its IP; deleting the
//! Service logs the device out and removes everything.

use std::time::Duration;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Secret, Service};
use k8s_openapi::api::rbac::v1::Role;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::json;
use svc_lb_contract::{LeaseTimings, ProxyNames, state};
use svc_lb_host::config::ControllerConfig;
use svc_lb_host::controller::{ControllerOptions, ControllerTimings};
use svc_lb_host::policy::EngineLimits;
use tokio_util::sync::CancellationToken;

use crate::harness::{Cluster, NAMESPACE};

/// The runtime container's environment as the kubelet would set it.
async fn pod_env(
    ds: &DaemonSet,
    pod: &str,
    node: &str,
    pod_ip: &str,
    secrets: &Api<Secret>,
) -> Vec<(String, String)> {
    let spec = ds.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let container = &spec.containers[0];
    let mut env = Vec::new();
    for var in container.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (Some(value), _) => Some(value.clone()),
            (None, Some(from)) => match (&from.field_ref, &from.secret_key_ref) {
                (Some(field), _) => Some(match field.field_path.as_str() {
                    "metadata.name" => pod.to_string(),
                    "metadata.namespace" => NAMESPACE.to_string(),
                    "spec.nodeName" => node.to_string(),
                    "status.podIP" => pod_ip.to_string(),
                    other => panic!("unexpected field {other}"),
                }),
                (None, Some(key)) => secrets
                    .get_opt(&key.name)
                    .await
                    .unwrap()
                    .and_then(|s| s.data?.remove(&key.key))
                    .map(|v| String::from_utf8(v.0).unwrap()),
                _ => panic!("unexpected source {from:?}"),
            },
            (None, None) => Some(String::new()),
        };
        if let Some(value) = value {
            env.push((var.name.clone(), value));
        }
    }
    env
}

/// `(group, resource, verb)` granted by a Role.
fn granted(role: &Role) -> Vec<(String, String, String)> {
    let mut all = Vec::new();
    for rule in role.rules.iter().flatten() {
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    all.push((group.clone(), resource.clone(), verb.clone()));
                }
            }
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_gets_the_runtimes_tailscale_ip_and_deleting_it_leaves_nothing() {
    let mut cluster = Cluster::bare("g", 2, None).await;
    let client = cluster.sim.client();
    for i in 0..2 {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": format!("node-{i}"),
                         "labels": {svc_lb_contract::keys::DEPLOY_NODE_LABEL: "true"}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap();
        Api::<Node>::all(client.clone())
            .create(&PostParams::default(), &node)
            .await
            .unwrap();
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NAMESPACE);
    let auth: Secret = serde_json::from_value(json!({
        "metadata": {"name": svc_lb_contract::AUTH_KEY_SECRET},
        "stringData": {svc_lb_contract::AUTH_KEY_SECRET_KEY: "tskey-auth-e2e"}
    }))
    .unwrap();
    secrets.create(&PostParams::default(), &auth).await.unwrap();

    let mut config = ControllerConfig::defaults();
    config.lease = LeaseTimings::FAST;
    let options = ControllerOptions {
        config,
        timings: ControllerTimings {
            deprovision_timeout: Duration::from_secs(30),
            resync: Duration::from_secs(300),
            retry_base: Duration::from_millis(200),
        },
        limits: EngineLimits::default(),
        policy_configmap: "policies".into(),
        default_policy: true,
        metrics_addr: None,
        election: None,
        identity: "e2e".into(),
        concurrency: 4,
    };
    // The controller runs as its ServiceAccount under the shipped RBAC.
    let target = crate::controller_rbac::RbacTarget {
        namespace: NAMESPACE.into(),
        cluster_name: format!("{NAMESPACE}-controller"),
        policy_configmap: "policies".into(),
    };
    let documents =
        crate::controller_rbac::adapt(&crate::controller_rbac::shipped_rbac_yaml(), &target);
    let token = crate::controller_rbac::install(&client, &documents).await;
    let controller_client = crate::controller_rbac::controller_client(
        &cluster.sim.config_with_token(cluster.sim.admin_token()),
        &token,
    );
    let stop = CancellationToken::new();
    let controller = tokio::spawn(svc_lb_host::controller::run(
        controller_client,
        options,
        stop.clone(),
    ));

    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"type": "LoadBalancer",
                 "loadBalancerClass": svc_lb_contract::DEFAULT_LOAD_BALANCER_CLASS,
                 "clusterIP": "10.96.0.10",
                 "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
    }))
    .unwrap();
    services
        .create(&PostParams::default(), &service)
        .await
        .unwrap();

    let names = ProxyNames::for_service("default", "web");
    let daemonsets: Api<DaemonSet> = Api::namespaced(client.clone(), NAMESPACE);
    let ds = crate::eventually("the DaemonSet", || async {
        daemonsets.get_opt(&names.daemonset).await.unwrap()
    })
    .await;
    for i in 0..2 {
        let pod = format!("{}-pod{i}", names.daemonset);
        let pod_ip = crate::harness::pod_ip(i);
        let env = pod_env(&ds, &pod, &format!("node-{i}"), &pod_ip, &secrets).await;
        cluster.start_pod(i, &pod, env);
    }

    let ingress = crate::eventually("the Service's ingress", || async {
        let status = services.get("web").await.unwrap().status?;
        let ip = status.load_balancer?.ingress?.first()?.ip.clone()?;
        Some(ip)
    })
    .await;
    let reported = secrets.get(&names.state_secret).await.unwrap();
    let ts_ip = reported.data.unwrap()[state::TS_IP].0.clone();
    assert_eq!(
        ingress.as_bytes(),
        ts_ip,
        "the controller publishes the runtime's IP"
    );
    assert!(cluster.reaches_backend(&ingress, Duration::from_secs(10)));

    // Everything the runtime asked of the API server is granted by the
    // Role the controller rendered for its pods.
    let role = Api::<Role>::namespaced(client.clone(), NAMESPACE)
        .get(&names.role)
        .await
        .unwrap();
    let grants = granted(&role);
    let calls = cluster
        .sim
        .requests()
        .calls_by(&format!("{}/", svc_lb_contract::RUNTIME_BINARY));
    assert!(!calls.is_empty(), "the runtime's requests are recorded");
    for call in calls {
        let wanted = (call.group.clone(), call.resource.clone(), call.verb.clone());
        assert!(
            grants.contains(&wanted),
            "{call:?} is not granted by {grants:?}"
        );
        assert_eq!(call.namespace.as_deref(), Some(NAMESPACE), "{call:?}");
    }

    services
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    crate::eventually("the Service to go", || async {
        services
            .get_opt("web")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    assert_eq!(cluster.tailnet_devices(), 0, "the device left the tailnet");
    assert!(
        daemonsets
            .get_opt(&names.daemonset)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        secrets
            .get_opt(&names.state_secret)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(cluster.forwarding_nodes(), Vec::<usize>::new());
    // The kubelet stops the pods of the deleted DaemonSet.
    for i in 0..2 {
        assert!(cluster.terminate(i).success());
    }
    stop.cancel();
    let _ = controller.await;
    assert_eq!(cluster.tailnet_violations(), "");
}
