//! Authentication as a real server does it: HTTPS with the cluster CA,
//! anonymous requests, bearer tokens (bad, ServiceAccount, deleted
//! ServiceAccount), SelfSubjectReview (`kubectl auth whoami`) and
//! impersonation.

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::json;

use crate::harness::{Cluster, eventually, status_of};

/// `kubectl auth whoami`: the user the server sees.
async fn whoami(client: &kube::Client) -> Result<(String, Vec<String>), kube::Error> {
    let reviews: Api<SelfSubjectReview> = Api::all(client.clone());
    let review: SelfSubjectReview = serde_json::from_value(json!({})).unwrap();
    let answer = reviews.create(&PostParams::default(), &review).await?;
    let info = answer.status.and_then(|s| s.user_info).unwrap_or_default();
    Ok((
        info.username.unwrap_or_default(),
        info.groups.unwrap_or_default(),
    ))
}

/// Status code and body of a raw GET.
async fn raw_get(client: &kube::Client, path: &str) -> (u16, serde_json::Value) {
    let request = axum::http::Request::get(path).body(Vec::new()).unwrap();
    let response = client
        .send(request.map(kube::client::Body::from))
        .await
        .unwrap();
    let code = response.status().as_u16();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    (
        code,
        serde_json::from_slice(&bytes).unwrap_or(json!(String::from_utf8_lossy(&bytes))),
    )
}

#[tokio::test]
async fn tls_is_verified_against_the_cluster_ca() {
    let cluster = Cluster::connect().await;
    // The test's own client trusts the kubeconfig's CA and works.
    let _ = whoami(&cluster.client).await.unwrap();
    // A client that trusts only the public roots refuses the certificate.
    let mut untrusting = cluster.config.clone();
    untrusting.root_cert = None;
    let client = kube::Client::try_from(untrusting).unwrap();
    let err = whoami(&client).await.unwrap_err();
    assert!(!matches!(err, kube::Error::Api(_)), "{err}");
    cluster.cleanup().await;
}

#[tokio::test]
async fn anonymous_requests_reach_health_and_version_and_get_403_for_resources() {
    let cluster = Cluster::connect().await;
    let anonymous = cluster.anonymous_client();
    for path in ["/healthz", "/livez", "/readyz", "/version"] {
        assert_eq!(raw_get(&anonymous, path).await.0, 200, "{path}");
    }
    let path = format!("/api/v1/namespaces/{}/configmaps", cluster.namespace);
    let (code, body) = raw_get(&anonymous, &path).await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(body["reason"], "Forbidden");
    assert_eq!(
        body["message"],
        format!(
            "configmaps is forbidden: User \"system:anonymous\" cannot list resource \
             \"configmaps\" in API group \"\" in the namespace \"{}\"",
            cluster.namespace
        )
    );
    cluster.cleanup().await;
}

#[tokio::test]
async fn a_bad_token_is_401() {
    let cluster = Cluster::connect().await;
    let client = cluster.client_with_token("not-a-token-this-server-issued");
    let (code, body) = raw_get(&client, "/api/v1/namespaces").await;
    assert_eq!(
        (code, &body["reason"]),
        (401, &json!("Unauthorized")),
        "{body}"
    );
    assert_eq!(body["message"], "Unauthorized");
    cluster.cleanup().await;
}

#[tokio::test]
async fn a_service_account_token_names_its_account_until_the_account_is_deleted() {
    let cluster = Cluster::connect().await;
    let token = cluster.service_account_token("reader").await;
    let client = cluster.client_with_token(&token);
    let (user, groups) = whoami(&client).await.unwrap();
    assert_eq!(user, cluster.service_account_user("reader"));
    for group in [
        "system:serviceaccounts".to_string(),
        format!("system:serviceaccounts:{}", cluster.namespace),
        "system:authenticated".to_string(),
    ] {
        assert!(groups.contains(&group), "{groups:?} lacks {group}");
    }
    // Without a grant it may not read ConfigMaps.
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &cluster.namespace);
    assert_eq!(
        status_of(configmaps.list(&Default::default()).await.unwrap_err()).0,
        403
    );
    let accounts: Api<ServiceAccount> = cluster.api();
    accounts
        .delete("reader", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the deleted account's token is refused", || async {
        matches!(whoami(&client).await, Err(kube::Error::Api(s)) if s.code == 401)
    })
    .await;
    cluster.cleanup().await;
}

#[tokio::test]
async fn impersonation_needs_the_impersonate_verb_on_the_user() {
    let cluster = Cluster::connect().await;
    let token = cluster.service_account_token("impersonator").await;
    let name = format!("{}-impersonate", cluster.namespace);
    let roles: Api<ClusterRole> = Api::all(cluster.client.clone());
    let role: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": name},
        "rules": [{"apiGroups": [""], "resources": ["users"], "resourceNames": ["alice"],
                   "verbs": ["impersonate"]}],
    }))
    .unwrap();
    roles.create(&PostParams::default(), &role).await.unwrap();
    let bindings: Api<ClusterRoleBinding> = Api::all(cluster.client.clone());
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": "impersonator",
                      "namespace": cluster.namespace}],
    }))
    .unwrap();
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let as_user = |user: &str| {
        let mut config = kube_sim::config_with_token(&cluster.config, &token);
        config.headers.push((
            axum::http::HeaderName::from_static("impersonate-user"),
            axum::http::HeaderValue::from_str(user).unwrap(),
        ));
        kube::Client::try_from(config).unwrap()
    };
    eventually("alice is impersonated", || async {
        whoami(&as_user("alice"))
            .await
            .is_ok_and(|(user, groups)| user == "alice" && groups == ["system:authenticated"])
    })
    .await;
    let err = whoami(&as_user("bob")).await.unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("expected a 403, got {err}")
    };
    assert_eq!(status.code, 403);
    assert_eq!(
        status.message,
        format!(
            "users \"bob\" is forbidden: User \"{}\" cannot impersonate resource \"users\" in \
             API group \"\" at the cluster scope",
            cluster.service_account_user("impersonator")
        )
    );
    let _ = bindings.delete(&name, &DeleteParams::default()).await;
    let _ = roles.delete(&name, &DeleteParams::default()).await;
    cluster.cleanup().await;
}

#[tokio::test]
async fn token_lifetimes_outside_the_api_limits_are_refused() {
    use k8s_openapi::api::authentication::v1::TokenRequest;
    let cluster = Cluster::connect().await;
    let _ = cluster.service_account_token("short").await;
    let accounts: Api<ServiceAccount> = cluster.api();
    for seconds in [60_i64, 1 << 40] {
        let request: TokenRequest = serde_json::from_value(
            json!({"spec": {"audiences": [], "expirationSeconds": seconds}}),
        )
        .unwrap();
        let err = accounts
            .create_token_request("short", &PostParams::default(), &request)
            .await
            .unwrap_err();
        assert_eq!(status_of(err).0, 422, "{seconds}");
    }
    cluster.cleanup().await;
}
