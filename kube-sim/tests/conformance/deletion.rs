//! Deletion: finalizers, propagation policies, garbage collection through
//! `ownerReferences`, preconditions and namespace termination.

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use serde_json::json;

use crate::harness::{Cluster, eventually, status_of};

const HOLD: &str = "example.com/hold";

fn config_map(name: &str, finalizers: &[&str]) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": name, "finalizers": finalizers},
        "data": {"k": "v"}
    }))
    .unwrap()
}

/// A ConfigMap owned by `owner`, blocking its foreground deletion.
fn dependent_of(name: &str, owner: &ConfigMap, finalizers: &[&str]) -> ConfigMap {
    let mut dependent = config_map(name, finalizers);
    dependent.metadata.owner_references = Some(vec![
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "name": owner.metadata.name, "uid": owner.metadata.uid,
            "blockOwnerDeletion": true
        }))
        .unwrap(),
    ]);
    dependent
}

/// Creates `owner` and `dependent` (owned by it), each with the given
/// finalizers.
async fn owner_and_dependent(api: &Api<ConfigMap>, owner: &[&str], dependent: &[&str]) {
    let created = api
        .create(&PostParams::default(), &config_map("owner", owner))
        .await
        .unwrap();
    api.create(
        &PostParams::default(),
        &dependent_of("dependent", &created, dependent),
    )
    .await
    .unwrap();
}

async fn release(api: &Api<ConfigMap>, name: &str) {
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
}

async fn gone(api: &Api<ConfigMap>, name: &str) -> bool {
    api.get_opt(name).await.unwrap().is_none()
}

#[tokio::test]
async fn finalizers_hold_deletion_until_they_are_removed() {
    let cluster = Cluster::connect().await;
    let api = cluster.api::<ConfigMap>();
    api.create(&PostParams::default(), &config_map("held", &[HOLD]))
        .await
        .unwrap();
    api.delete("held", &DeleteParams::default()).await.unwrap();
    let mut held = api.get("held").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    held.metadata.finalizers = Some(vec![]);
    api.replace("held", &PostParams::default(), &held)
        .await
        .unwrap();
    let err = api.get("held").await.unwrap_err();
    assert_eq!(status_of(err).0, 404);
    cluster.cleanup().await;
}

#[tokio::test]
async fn deleting_an_owner_collects_its_dependents() {
    let cluster = Cluster::connect().await;
    let api = cluster.api::<ConfigMap>();
    owner_and_dependent(&api, &[], &[]).await;
    api.delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    eventually("the dependent is collected", || gone(&api, "dependent")).await;
    cluster.cleanup().await;
}

#[tokio::test]
async fn dependents_are_collected_only_once_a_finalizer_held_owner_is_gone() {
    let cluster = Cluster::connect().await;
    let api = cluster.api::<ConfigMap>();
    owner_and_dependent(&api, &[HOLD], &[]).await;
    api.delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    assert!(
        !gone(&api, "dependent").await,
        "the owner still exists, held by its finalizer"
    );
    release(&api, "owner").await;
    eventually("the owner is gone", || gone(&api, "owner")).await;
    eventually("the dependent is collected", || gone(&api, "dependent")).await;
    cluster.cleanup().await;
}

#[tokio::test]
async fn foreground_deletion_keeps_the_owner_until_its_dependents_are_gone() {
    let cluster = Cluster::connect().await;
    let api = cluster.api::<ConfigMap>();
    owner_and_dependent(&api, &[], &[HOLD]).await;
    api.delete("owner", &DeleteParams::foreground())
        .await
        .unwrap();
    eventually("the dependent is being deleted", || async {
        api.get("dependent")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    })
    .await;
    let waiting = api.get("owner").await.unwrap().metadata;
    assert!(waiting.deletion_timestamp.is_some());
    assert!(
        waiting
            .finalizers
            .unwrap_or_default()
            .contains(&"foregroundDeletion".to_string())
    );
    release(&api, "dependent").await;
    eventually("the dependent is gone", || gone(&api, "dependent")).await;
    eventually("the owner is gone", || gone(&api, "owner")).await;
    cluster.cleanup().await;
}

#[tokio::test]
async fn orphan_deletion_leaves_dependents_without_the_owner_reference() {
    let cluster = Cluster::connect().await;
    let api = cluster.api::<ConfigMap>();
    owner_and_dependent(&api, &[], &[]).await;
    api.delete("owner", &DeleteParams::orphan()).await.unwrap();
    eventually("the owner is gone", || gone(&api, "owner")).await;
    eventually("the owner reference is dropped", || async {
        api.get("dependent")
            .await
            .unwrap()
            .metadata
            .owner_references
            .unwrap_or_default()
            .is_empty()
    })
    .await;
    cluster.cleanup().await;
}

#[tokio::test]
async fn delete_preconditions_refuse_another_object_of_the_same_name() {
    let cluster = Cluster::connect().await;
    let api = cluster.api::<ConfigMap>();
    let first = api
        .create(&PostParams::default(), &config_map("cm", &[]))
        .await
        .unwrap();
    let stale = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some("00000000-0000-0000-0000-000000000000".into()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    assert_eq!(
        status_of(api.delete("cm", &stale).await.unwrap_err()).0,
        409
    );
    let current = DeleteParams {
        preconditions: Some(Preconditions {
            uid: first.metadata.uid,
            resource_version: first.metadata.resource_version,
        }),
        ..DeleteParams::default()
    };
    api.delete("cm", &current).await.unwrap();
    assert!(gone(&api, "cm").await);
    cluster.cleanup().await;
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_objects_and_refuses_new_ones() {
    let cluster = Cluster::connect().await;
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    let doomed = namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"generateName": "doomed-"}})).unwrap(),
        )
        .await
        .unwrap()
        .metadata
        .name
        .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &doomed);
    api.create(&PostParams::default(), &config_map("held", &[HOLD]))
        .await
        .unwrap();
    api.create(&PostParams::default(), &config_map("plain", &[]))
        .await
        .unwrap();
    namespaces
        .delete(&doomed, &DeleteParams::default())
        .await
        .unwrap();
    let phase = namespaces.get(&doomed).await.unwrap().status.unwrap().phase;
    assert_eq!(phase.as_deref(), Some("Terminating"));
    eventually("the namespace's objects are deleted", || {
        gone(&api, "plain")
    })
    .await;
    let refused = api
        .create(&PostParams::default(), &config_map("late", &[]))
        .await
        .unwrap_err();
    assert_eq!(status_of(refused).0, 403);
    release(&api, "held").await;
    eventually("the namespace is gone", || async {
        namespaces.get_opt(&doomed).await.unwrap().is_none()
    })
    .await;
    cluster.cleanup().await;
}
