//! A kube-runtime `Controller` runs against the server: it reconciles on
//! creates and updates, and keeps doing so after its watches are dropped.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use serde_json::json;

use crate::harness::Cluster;

const SEEN: &str = "example.com/seen";

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct Error(#[from] kube::Error);

/// Copies `data.k` into the annotation `example.com/seen`.
async fn reconcile(cm: Arc<ConfigMap>, api: Arc<Api<ConfigMap>>) -> Result<Action, Error> {
    let value = cm
        .data
        .as_ref()
        .and_then(|d| d.get("k"))
        .cloned()
        .unwrap_or_default();
    let seen = cm
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(SEEN))
        .cloned();
    if seen.as_deref() != Some(value.as_str()) {
        let name = cm.metadata.name.clone().unwrap_or_default();
        let patch = json!({"metadata": {"annotations": {SEEN: value}}});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await?;
    }
    Ok(Action::await_change())
}

async fn wait_for_seen(api: &Api<ConfigMap>, want: &str) {
    for _ in 0..100 {
        let cm = api.get("c").await.unwrap();
        if cm
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(SEEN))
            .map(String::as_str)
            == Some(want)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the controller never reconciled to {want}");
}

#[tokio::test]
async fn a_controller_reconciles_creates_and_updates_even_after_dropped_watches() {
    let cluster = Cluster::connect().await;
    let api = cluster.api::<ConfigMap>();
    let controller = Controller::new(api.clone(), watcher::Config::default())
        .run(
            reconcile,
            |_, _, _| Action::requeue(Duration::from_millis(200)),
            Arc::new(api.clone()),
        )
        .for_each(|_| async {});
    let running = tokio::spawn(controller);

    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"k": "one"}})).unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();
    wait_for_seen(&api, "one").await;

    api.patch(
        "c",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "two"}})),
    )
    .await
    .unwrap();
    wait_for_seen(&api, "two").await;

    if let Some(sim) = cluster.sim() {
        sim.faults().drop_watches();
        api.patch(
            "c",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k": "three"}})),
        )
        .await
        .unwrap();
        wait_for_seen(&api, "three").await;
    }
    running.abort();
    cluster.cleanup().await;
}
