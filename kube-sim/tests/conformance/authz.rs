//! RBAC as a real server decides it: `resourceNames` for get, list and
//! watch (with and without a `metadata.name` field selector), the 403 body,
//! escalation prevention on Roles, the `bind` verb on bindings, and
//! SelfSubjectAccessReview (`kubectl auth can-i`).

use futures::TryStreamExt;
use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Api;
use kube::api::{ListParams, PostParams, WatchEvent, WatchParams};
use serde_json::{Value, json};

use crate::harness::{Cluster, eventually, status_of};

async fn create_role(cluster: &Cluster, name: &str, rules: Value) {
    let roles: Api<Role> = cluster.api();
    let role: Role =
        serde_json::from_value(json!({"metadata": {"name": name}, "rules": rules})).unwrap();
    roles.create(&PostParams::default(), &role).await.unwrap();
}

async fn bind(cluster: &Cluster, role: &str, account: &str) {
    let bindings: Api<RoleBinding> = cluster.api();
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": format!("{role}-{account}")},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": account}],
    }))
    .unwrap();
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
}

fn config_map(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}})).unwrap()
}

/// `kubectl auth can-i VERB configmaps/NAME` as `client`.
async fn can_i(client: &kube::Client, namespace: &str, verb: &str, name: &str) -> bool {
    let reviews: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let review: SelfSubjectAccessReview = serde_json::from_value(json!({"spec": {
        "resourceAttributes": {"namespace": namespace, "verb": verb, "group": "",
                               "resource": "configmaps", "name": name}}}))
    .unwrap();
    reviews
        .create(&PostParams::default(), &review)
        .await
        .unwrap()
        .status
        .unwrap()
        .allowed
}

#[tokio::test]
async fn resource_names_grant_get_and_only_name_selected_lists_and_watches() {
    let cluster = Cluster::connect().await;
    let configmaps: Api<ConfigMap> = cluster.api();
    for name in ["mine", "other"] {
        configmaps
            .create(&PostParams::default(), &config_map(name))
            .await
            .unwrap();
    }
    let token = cluster.service_account_token("named").await;
    create_role(
        &cluster,
        "named",
        json!([{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["mine"],
                "verbs": ["get", "list", "watch"]}]),
    )
    .await;
    bind(&cluster, "named", "named").await;
    let client = cluster.client_with_token(&token);
    let theirs: Api<ConfigMap> = Api::namespaced(client.clone(), &cluster.namespace);
    eventually("the binding takes effect", || async {
        theirs.get("mine").await.is_ok()
    })
    .await;
    assert_eq!(status_of(theirs.get("other").await.unwrap_err()).0, 403);
    assert_eq!(
        status_of(theirs.list(&ListParams::default()).await.unwrap_err()).0,
        403
    );
    let selected = ListParams::default().fields("metadata.name=mine");
    let list = theirs.list(&selected).await.unwrap();
    assert_eq!(list.items.len(), 1);
    let other = ListParams::default().fields("metadata.name=other");
    assert_eq!(status_of(theirs.list(&other).await.unwrap_err()).0, 403);
    let version = list.metadata.resource_version.unwrap();
    let watch = WatchParams::default()
        .fields("metadata.name=mine")
        .timeout(2);
    let events: Vec<WatchEvent<ConfigMap>> = theirs
        .watch(&watch, &version)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(
        events.iter().all(|e| !matches!(e, WatchEvent::Error(_))),
        "{events:?}"
    );
    let unselected = WatchParams::default().timeout(2);
    assert_eq!(
        status_of(theirs.watch(&unselected, &version).await.err().unwrap()).0,
        403
    );
    assert!(can_i(&client, &cluster.namespace, "get", "mine").await);
    assert!(!can_i(&client, &cluster.namespace, "get", "other").await);
    assert!(!can_i(&client, &cluster.namespace, "delete", "mine").await);
    cluster.cleanup().await;
}

#[tokio::test]
async fn a_403_names_the_user_verb_resource_and_namespace() {
    let cluster = Cluster::connect().await;
    let token = cluster.service_account_token("nobody").await;
    let theirs: Api<ConfigMap> =
        Api::namespaced(cluster.client_with_token(&token), &cluster.namespace);
    let kube::Error::Api(status) = theirs.get("settings").await.unwrap_err() else {
        panic!("expected an API error")
    };
    assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        status.message,
        format!(
            "configmaps \"settings\" is forbidden: User \"{}\" cannot get resource \
             \"configmaps\" in API group \"\" in the namespace \"{}\"",
            cluster.service_account_user("nobody"),
            cluster.namespace
        )
    );
    let details = status.details.unwrap();
    assert_eq!(
        (details.name.as_str(), details.kind.as_str()),
        ("settings", "configmaps")
    );
    if let Some(sim) = cluster.sim() {
        let denied = sim
            .requests()
            .denials_of(&cluster.service_account_user("nobody"));
        assert!(
            denied
                .iter()
                .any(|d| d.verb == "get" && d.resource == "configmaps" && d.name == "settings"),
            "{denied:?}"
        );
    }
    cluster.cleanup().await;
}

#[tokio::test]
async fn a_role_may_grant_only_what_its_writer_holds_unless_it_may_escalate() {
    let cluster = Cluster::connect().await;
    let token = cluster.service_account_token("author").await;
    create_role(
        &cluster,
        "author",
        json!([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"],
                "verbs": ["create"]},
               {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]),
    )
    .await;
    bind(&cluster, "author", "author").await;
    let theirs: Api<Role> = Api::namespaced(cluster.client_with_token(&token), &cluster.namespace);
    let role = |name: &str, resource: &str| -> Role {
        serde_json::from_value(json!({"metadata": {"name": name}, "rules": [
            {"apiGroups": [""], "resources": [resource], "verbs": ["get"]}]}))
        .unwrap()
    };
    eventually("a held rule may be granted", || async {
        theirs
            .create(&PostParams::default(), &role("held", "configmaps"))
            .await
            .is_ok()
    })
    .await;
    let kube::Error::Api(status) = theirs
        .create(&PostParams::default(), &role("secrets", "secrets"))
        .await
        .unwrap_err()
    else {
        panic!("expected an API error")
    };
    assert_eq!(status.code, 403);
    assert!(
        status
            .message
            .contains("is attempting to grant RBAC permissions not currently held")
            && status
                .message
                .contains(r#"{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}"#),
        "{}",
        status.message
    );
    create_role(
        &cluster,
        "escalate",
        json!([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"],
                "verbs": ["escalate"]}]),
    )
    .await;
    bind(&cluster, "escalate", "author").await;
    eventually("escalate lets it grant what it does not hold", || async {
        theirs
            .create(&PostParams::default(), &role("secrets", "secrets"))
            .await
            .is_ok()
    })
    .await;
    cluster.cleanup().await;
}

#[tokio::test]
async fn a_binding_needs_the_roles_rules_or_the_bind_verb() {
    let cluster = Cluster::connect().await;
    let token = cluster.service_account_token("binder").await;
    create_role(
        &cluster,
        "binder",
        json!([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["rolebindings"],
                "verbs": ["create"]}]),
    )
    .await;
    bind(&cluster, "binder", "binder").await;
    create_role(
        &cluster,
        "powerful",
        json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]),
    )
    .await;
    let theirs: Api<RoleBinding> =
        Api::namespaced(cluster.client_with_token(&token), &cluster.namespace);
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "grab"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "powerful"},
        "subjects": [{"kind": "ServiceAccount", "name": "binder"}],
    }))
    .unwrap();
    eventually("the binding is refused for lack of the role's rules", || async {
        matches!(
            theirs.create(&PostParams::default(), &binding).await,
            Err(kube::Error::Api(s)) if s.code == 403
                && s.message.contains("is attempting to grant RBAC permissions not currently held")
        )
    })
    .await;
    create_role(
        &cluster,
        "bind-powerful",
        json!([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"],
                "resourceNames": ["powerful"], "verbs": ["bind"]}]),
    )
    .await;
    bind(&cluster, "bind-powerful", "binder").await;
    eventually("bind on the role allows the binding", || async {
        theirs
            .create(&PostParams::default(), &binding)
            .await
            .is_ok()
    })
    .await;
    cluster.cleanup().await;
}

#[tokio::test]
async fn paths_with_empty_segments_reach_nothing() {
    let cluster = Cluster::connect().await;
    let token = cluster.service_account_token("prober").await;
    let mut config = kube_sim::config_with_token(&cluster.config, &token);
    config.default_retry = false;
    let client = kube::Client::try_from(config).unwrap();
    for path in [
        "/apis//v1/secrets".to_string(),
        format!("/api/v1/namespaces/{}//secrets", cluster.namespace),
    ] {
        let request = axum::http::Request::get(path.as_str())
            .body(Vec::new())
            .unwrap();
        let status = client
            .send(request.map(kube::client::Body::from))
            .await
            .unwrap()
            .status()
            .as_u16();
        assert!(status == 403 || status == 404, "{path}: {status}");
    }
    cluster.cleanup().await;
}
