//! The RBAC the chart installs (`examples/controller/install.yaml`) is exactly what the
//! controller uses: the controller runs as its ServiceAccount under it (the
//! server authorizes every request), nothing of a full life cycle is
//! denied, every grant is used (or is listed below with the reason it is
//! needed anyway), and a rule taken away breaks the behaviour it serves.

use std::collections::BTreeSet;

use kube::api::DeleteParams;
use serde_json::{Value, json};
use svc_lb_host::controller::USER_AGENT;
use svc_lb_host::controller::leader::ElectionTimings;

use crate::harness::{Cluster, policy_wasm};
use crate::provisioning::report_address;

/// `(group, resource, verb)` granted in every namespace, and in the
/// controller's own.
struct Grants {
    cluster: BTreeSet<(String, String, String)>,
    namespaced: BTreeSet<(String, String, String)>,
}

fn rules(role: &Value) -> BTreeSet<(String, String, String)> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    };
    let mut granted = BTreeSet::new();
    for rule in role["rules"].as_array().into_iter().flatten() {
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    granted.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    granted
}

fn grants() -> Grants {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/controller/install.yaml"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let mut grants = Grants {
        cluster: BTreeSet::new(),
        namespaced: BTreeSet::new(),
    };
    for document in serde_yaml_ng::Deserializer::from_str(&text) {
        let document: Value = serde::Deserialize::deserialize(document).unwrap();
        match document["kind"].as_str() {
            Some("ClusterRole") => grants.cluster.extend(rules(&document)),
            Some("Role") => grants.namespaced.extend(rules(&document)),
            _ => {}
        }
    }
    grants
}

/// Granted though the controller never calls them: it grants them to the
/// proxy pods' Role, and RBAC only lets it grant what it holds.
const HELD_TO_GRANT: &[(&str, &str, &str)] = &[
    ("", "secrets", "update"),
    ("coordination.k8s.io", "leases", "list"),
    ("coordination.k8s.io", "leases", "watch"),
    ("coordination.k8s.io", "leases", "update"),
];

#[tokio::test]
async fn in_memory_only_the_controller_uses_exactly_the_rbac_it_ships_with() {
    let cluster = Cluster::connect().await;
    let Some(sim) = cluster.sim.as_ref() else {
        return;
    };
    let files = [("pools.wasm", policy_wasm("node_pools"))];
    let pools = "policies:\n- name: pools\n  file: pools.wasm\n  settings: {pools: {edge: {}}, requireReadyNode: false}\n";
    cluster.put_policies(pools, &files).await;
    // A proxy left from a Service that is gone: the sweep removes it.
    let ghost = cluster.names("ghost").state_secret;
    let orphan: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "metadata": {"name": ghost, "labels": {
            svc_lb_contract::keys::MANAGED_BY_LABEL: svc_lb_contract::keys::MANAGED_BY_VALUE,
            svc_lb_contract::keys::SERVICE_NAMESPACE_LABEL: cluster.apps,
            svc_lb_contract::keys::SERVICE_NAME_LABEL: "ghost"}}
    }))
    .unwrap();
    let secrets = cluster.secrets();
    secrets.create(&Default::default(), &orphan).await.unwrap();
    let mut options = cluster.options("rbac");
    options.policy_configmap = Some("policies".into());
    options.election = Some(ElectionTimings {
        duration: 4,
        grace: 2,
    });
    let controller = cluster.start(options);
    // A full life cycle: create, address, refused policy set, delete (the
    // logout times out), and a clean stop that releases the Lease.
    cluster.create_node("a", json!({})).await;
    cluster.create_service("web", json!({})).await;
    report_address(&cluster, "web", "100.64.0.1").await;
    cluster.wait_for_ingress("web").await;
    // Refused twice for the same reason: the second Event is a repeat,
    // which the recorder writes as a patch of the first.
    for file in ["x.wasm", "y.wasm"] {
        let bad = format!("policies: [{{name: Bad, file: {file}}}]\n");
        cluster.put_policies(&bad, &[]).await;
        cluster
            .wait_for_event(&cluster.system, "policies", "Warning", "PolicySetRefused")
            .await;
    }
    crate::harness::eventually("the repeated Event is patched", || async {
        let calls = sim.requests().calls_by(USER_AGENT);
        calls
            .iter()
            .any(|c| c.resource == "events" && c.verb == "patch")
            .then_some(())
    })
    .await;
    cluster
        .services()
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    crate::harness::eventually("the Service is released", || async {
        cluster
            .services()
            .get_opt("web")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    crate::harness::eventually("the orphan is swept", || async {
        secrets
            .get_opt(&ghost)
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    controller.stop().await;
    let denied = sim.requests().denials_of(&cluster.controller_user());
    assert!(
        denied.is_empty(),
        "denied during a full life cycle: {denied:?}"
    );

    let grants = grants();
    let calls = sim.requests().calls_by(USER_AGENT);
    assert!(!calls.is_empty());
    let mut used = BTreeSet::new();
    for call in &calls {
        let key = (call.group.clone(), call.resource.clone(), call.verb.clone());
        let own_namespace = call.namespace.as_deref() == Some(cluster.system.as_str());
        let granted =
            grants.cluster.contains(&key) || own_namespace && grants.namespaced.contains(&key);
        assert!(granted, "not granted by the shipped RBAC: {call:?}");
        used.insert(key);
    }
    // Server-side apply creates through PATCH, which RBAC checks as create.
    for resource in [
        "daemonsets",
        "secrets",
        "leases",
        "serviceaccounts",
        "roles",
        "rolebindings",
    ] {
        let patched = used.iter().any(|(_, r, v)| r == resource && v == "patch");
        let group = used
            .iter()
            .find(|(_, r, _)| r == resource)
            .map(|(g, _, _)| g.clone());
        if let (true, Some(group)) = (patched, group) {
            used.insert((group, resource.to_string(), "create".to_string()));
        }
    }
    for (group, resource, verb) in HELD_TO_GRANT {
        used.insert((group.to_string(), resource.to_string(), verb.to_string()));
    }
    let unused: Vec<_> = grants
        .cluster
        .union(&grants.namespaced)
        .filter(|g| !used.contains(*g))
        .collect();
    assert!(unused.is_empty(), "granted but never used: {unused:?}");
    cluster.cleanup().await;
}

#[tokio::test]
async fn without_its_services_status_rule_the_controller_cannot_publish_the_address() {
    let shipped = crate::controller_rbac::shipped_rbac_yaml();
    let rule = "  - apiGroups: [\"\"]\n    resources: [services/status]\n    verbs: [patch]";
    assert!(
        shipped.contains(rule),
        "the shipped RBAC has the services/status rule"
    );
    let cluster = Cluster::connect_with_rbac(&shipped.replace(rule, "")).await;
    let controller = cluster.start_default();
    cluster.create_node("a", json!({})).await;
    cluster.create_service("web", json!({})).await;
    cluster.wait_for_daemonset("web").await;
    report_address(&cluster, "web", "100.64.0.1").await;
    if let Some(sim) = cluster.sim.as_ref() {
        crate::harness::eventually("the status write is denied", || async {
            sim.requests()
                .denials_of(&cluster.controller_user())
                .iter()
                .any(|d| d.verb == "patch" && d.resource == "services/status")
                .then_some(())
        })
        .await;
    } else {
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    }
    let service = cluster.services().get("web").await.unwrap();
    let ingress = service
        .status
        .and_then(|s| s.load_balancer)
        .and_then(|l| l.ingress);
    assert!(ingress.as_ref().is_none_or(|i| i.is_empty()), "{ingress:?}");
    controller.stop().await;
    cluster.cleanup().await;
}

/// A token of the proxy pods' ServiceAccount of Service `name`.
async fn proxy_token(cluster: &Cluster, name: &str) -> String {
    use k8s_openapi::api::authentication::v1::TokenRequest;
    use k8s_openapi::api::core::v1::ServiceAccount;
    let accounts: kube::Api<ServiceAccount> = cluster.api(&cluster.system);
    let account = cluster.names(name).service_account;
    crate::harness::eventually("the proxy's ServiceAccount exists", || async {
        accounts.get_opt(&account).await.unwrap().map(|_| ())
    })
    .await;
    let request: TokenRequest =
        serde_json::from_value(json!({"spec": {"audiences": [], "expirationSeconds": 3600}}))
            .unwrap();
    accounts
        .create_token_request(&account, &Default::default(), &request)
        .await
        .unwrap()
        .status
        .unwrap()
        .token
}

#[tokio::test]
async fn the_proxy_role_reaches_its_own_secret_and_lease_and_nothing_else() {
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::{ListParams, Patch, PatchParams, WatchParams};

    let cluster = Cluster::connect().await;
    let controller = cluster.start_default();
    cluster.create_node("a", json!({})).await;
    for name in ["web", "api"] {
        cluster.create_service(name, json!({})).await;
        cluster.wait_for_daemonset(name).await;
    }
    let token = proxy_token(&cluster, "web").await;
    let proxy =
        kube::Client::try_from(kube_sim::config_with_token(&cluster.config, &token)).unwrap();
    let secrets: kube::Api<Secret> = kube::Api::namespaced(proxy.clone(), &cluster.system);
    let leases: kube::Api<Lease> = kube::Api::namespaced(proxy, &cluster.system);
    let own = cluster.names("web");
    let forbidden = |e: kube::Error| matches!(e, kube::Error::Api(s) if s.code == 403);

    crate::harness::eventually("the proxy reads its own Secret", || async {
        secrets.get(&own.state_secret).await.ok().map(|_| ())
    })
    .await;
    let patch = Patch::Merge(json!({"data": {"ts-ip": "MTAwLjY0LjAuMQ=="}}));
    secrets
        .patch(&own.state_secret, &PatchParams::default(), &patch)
        .await
        .unwrap();
    let by_name = ListParams::default().fields(&format!("metadata.name={}", own.state_secret));
    let listed = secrets.list(&by_name).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    let watch = WatchParams::default()
        .fields(&format!("metadata.name={}", own.state_secret))
        .timeout(1);
    let version = listed.metadata.resource_version.unwrap();
    assert!(secrets.watch(&watch, &version).await.is_ok());
    leases.get(&own.lease).await.unwrap();
    let renew = Patch::Merge(json!({"spec": {"holderIdentity": "pod-a"}}));
    leases
        .patch(&own.lease, &PatchParams::default(), &renew)
        .await
        .unwrap();
    let lease_by_name = ListParams::default().fields(&format!("metadata.name={}", own.lease));
    assert_eq!(leases.list(&lease_by_name).await.unwrap().items.len(), 1);

    let other = cluster.names("api");
    assert!(forbidden(
        secrets.get(&other.state_secret).await.unwrap_err()
    ));
    assert!(forbidden(leases.get(&other.lease).await.unwrap_err()));
    assert!(forbidden(
        secrets
            .get(svc_lb_contract::AUTH_KEY_SECRET)
            .await
            .unwrap_err()
    ));
    assert!(forbidden(
        secrets.list(&ListParams::default()).await.unwrap_err()
    ));
    assert!(forbidden(
        secrets
            .delete(&own.state_secret, &Default::default())
            .await
            .unwrap_err()
    ));
    controller.stop().await;
    cluster.cleanup().await;
}
