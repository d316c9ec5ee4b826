//! The controller's identity in tests: the shipped RBAC
//! (the chart's, as `examples/controller/install.yaml` holds it rendered; a
//! test keeps the two equal) applied as it is, adapted only where a
//! test must differ from an installation (its own namespace, cluster-scoped
//! names of its own, its policy ConfigMap's name), and a ServiceAccount
//! token from TokenRequest. The controller under test then runs with
//! exactly the rights an installation gives it, against kube-sim or a real
//! cluster alike. Shared by the controller tests, the runtime's end-to-end
//! test and the scale benchmark (included by path).
#![allow(dead_code)]

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::{Value, json};

/// The namespace, object name and policy ConfigMap the shipped file uses.
const SHIPPED_NAME: &str = "tailscale-svc-lb";
const SHIPPED_CONFIGMAP: &str = "tailscale-svc-lb-policies";

/// The shipped RBAC file's text.
pub fn shipped_rbac_yaml() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/controller/install.yaml"
    );
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Where a test installs the controller's RBAC.
#[derive(Debug, Clone)]
pub struct RbacTarget {
    /// The controller's namespace (the ServiceAccount's, the Role's).
    pub namespace: String,
    /// Name of the ClusterRole and ClusterRoleBinding (unique per test).
    pub cluster_name: String,
    /// The policy ConfigMap the controller watches.
    pub policy_configmap: String,
}

/// The documents of `yaml` (the shipped RBAC, or a variant of it), adapted
/// to `target`; the Namespace document is left out (tests make their own).
pub fn adapt(yaml: &str, target: &RbacTarget) -> Vec<Value> {
    let mut documents = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(yaml) {
        let mut doc: Value = serde::Deserialize::deserialize(document).expect("valid YAML");
        let kind = doc["kind"].as_str().unwrap_or_default().to_string();
        let identity = [
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
        ];
        if doc.is_null() || !identity.contains(&kind.as_str()) {
            continue;
        }
        if doc["metadata"]["namespace"] == SHIPPED_NAME {
            doc["metadata"]["namespace"] = json!(target.namespace);
        }
        if kind.starts_with("Cluster") {
            doc["metadata"]["name"] = json!(target.cluster_name);
        }
        if doc["roleRef"]["kind"] == "ClusterRole" {
            doc["roleRef"]["name"] = json!(target.cluster_name);
        }
        for subject in doc["subjects"].as_array_mut().into_iter().flatten() {
            if subject["namespace"] == SHIPPED_NAME {
                subject["namespace"] = json!(target.namespace);
            }
        }
        for rule in doc["rules"].as_array_mut().into_iter().flatten() {
            for name in rule["resourceNames"].as_array_mut().into_iter().flatten() {
                if name == SHIPPED_CONFIGMAP {
                    *name = json!(target.policy_configmap);
                }
            }
        }
        documents.push(doc);
    }
    documents
}

fn typed<T: serde::de::DeserializeOwned>(doc: &Value) -> T {
    serde_json::from_value(doc.clone()).expect("a valid RBAC object")
}

/// Creates `documents` (adapted RBAC) with the admin `client` and returns
/// a token of the ServiceAccount they define.
pub async fn install(client: &kube::Client, documents: &[Value]) -> String {
    let pp = PostParams::default();
    let mut account = None;
    for doc in documents {
        let namespace = doc["metadata"]["namespace"].as_str().unwrap_or_default();
        match doc["kind"].as_str().unwrap_or_default() {
            "ServiceAccount" => {
                let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
                api.create(&pp, &typed(doc)).await.expect("service account");
                let name = doc["metadata"]["name"].as_str().unwrap().to_string();
                account = Some((namespace.to_string(), name));
            }
            "ClusterRole" => {
                let api: Api<ClusterRole> = Api::all(client.clone());
                api.create(&pp, &typed(doc)).await.expect("cluster role");
            }
            "ClusterRoleBinding" => {
                let api: Api<ClusterRoleBinding> = Api::all(client.clone());
                api.create(&pp, &typed(doc))
                    .await
                    .expect("cluster role binding");
            }
            "Role" => {
                let api: Api<Role> = Api::namespaced(client.clone(), namespace);
                api.create(&pp, &typed(doc)).await.expect("role");
            }
            "RoleBinding" => {
                let api: Api<RoleBinding> = Api::namespaced(client.clone(), namespace);
                api.create(&pp, &typed(doc)).await.expect("role binding");
            }
            other => panic!("unexpected kind {other} in the controller's RBAC"),
        }
    }
    let (namespace, name) = account.expect("the RBAC defines a ServiceAccount");
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &namespace);
    let request: TokenRequest =
        serde_json::from_value(json!({"spec": {"audiences": [], "expirationSeconds": 86400}}))
            .unwrap();
    accounts
        .create_token_request(&name, &pp, &request)
        .await
        .expect("a token for the controller")
        .status
        .expect("a token")
        .token
}

/// Deletes the cluster-scoped objects of `target` (namespaced ones go with
/// the test's namespace).
pub async fn remove_cluster_objects(client: &kube::Client, target: &RbacTarget) {
    let dp = DeleteParams::default();
    let _ = Api::<ClusterRoleBinding>::all(client.clone())
        .delete(&target.cluster_name, &dp)
        .await;
    let _ = Api::<ClusterRole>::all(client.clone())
        .delete(&target.cluster_name, &dp)
        .await;
}

/// A client of the controller's identity: `token`, on the cluster of the
/// admin `config`, naming itself with the controller's user agent.
pub fn controller_client(config: &kube::Config, token: &str) -> kube::Client {
    let mut config = kube_sim::config_with_token(config, token);
    config.headers.push((
        axum::http::header::USER_AGENT,
        axum::http::HeaderValue::from_static(svc_lb_host::controller::USER_AGENT),
    ));
    kube::Client::try_from(config).expect("a client")
}
