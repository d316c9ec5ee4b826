//! The fake daemon's Kubernetes state store, as Tailscale's
//! `ipn/store/kubestore` and `kube/kubeclient` use the API: at start, a
//! SelfSubjectAccessReview per verb on the state Secret (`get` and `update`
//! are required, else the store fails; `patch` and `create` are noted); a
//! write reads the Secret, then JSON-patches its keys in (`add
//! /data/<key>`, or `add /data` on a Secret without data) when it may
//! patch, else updates the whole Secret.

use k8s_openapi::ByteString;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Map, Value, json};

/// Whether the pod may `verb` its state Secret.
async fn allowed(
    client: &kube::Client,
    namespace: &str,
    secret: &str,
    verb: &str,
) -> Result<bool, String> {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(namespace.into()),
                verb: Some(verb.into()),
                resource: Some("secrets".into()),
                name: Some(secret.into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<SelfSubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .map(|r| r.status.is_some_and(|s| s.allowed))
        .map_err(|e| e.to_string())
}

/// `CheckSecretPermissions`: `(can patch, can create)`, or why the store
/// cannot work. A review that fails is logged and taken as allowed, as the
/// real client does.
pub async fn check_secret_permissions(
    client: &kube::Client,
    namespace: &str,
    secret: &str,
) -> Result<(bool, bool), String> {
    let mut missing = Vec::new();
    for verb in ["get", "update"] {
        match allowed(client, namespace, secret, verb).await {
            Ok(true) => {}
            Ok(false) => missing.push(format!("missing {verb} permission on secret {secret:?}")),
            Err(error) => eprintln!("error checking {verb} permission on secret {secret}: {error}"),
        }
    }
    if !missing.is_empty() {
        return Err(missing.join("; "));
    }
    let patch = allowed(client, namespace, secret, "patch")
        .await
        .unwrap_or(false);
    let create = allowed(client, namespace, secret, "create")
        .await
        .unwrap_or(false);
    Ok((patch, create))
}

/// Writes `data` into the state Secret (`updateSecret`).
pub async fn write(
    secrets: &Api<Secret>,
    name: &str,
    can_patch: bool,
    data: &[(&str, ByteString)],
) -> Result<(), String> {
    let mut secret = secrets
        .get(name)
        .await
        .map_err(|e| format!("error getting Secret {name}: {e}"))?;
    if can_patch {
        let encoded = |v: &ByteString| serde_json::to_value(v).unwrap_or(Value::Null);
        let ops: Vec<Value> = if secret.data.as_ref().is_none_or(|d| d.is_empty()) {
            let all: Map<String, Value> = data
                .iter()
                .map(|(k, v)| (k.to_string(), encoded(v)))
                .collect();
            vec![json!({"op": "add", "path": "/data", "value": all})]
        } else {
            data.iter()
                .map(|(k, v)| json!({"op": "add", "path": format!("/data/{k}"), "value": encoded(v)}))
                .collect()
        };
        let patch: json_patch::Patch =
            serde_json::from_value(Value::Array(ops)).map_err(|e| e.to_string())?;
        return secrets
            .patch(name, &PatchParams::default(), &Patch::<()>::Json(patch))
            .await
            .map(drop)
            .map_err(|e| format!("error patching Secret {name}: {e}"));
    }
    let stored = secret.data.get_or_insert_default();
    for (k, v) in data {
        stored.insert(k.to_string(), v.clone());
    }
    secrets
        .replace(name, &PostParams::default(), &secret)
        .await
        .map(drop)
        .map_err(|e| format!("error updating Secret {name}: {e}"))
}
