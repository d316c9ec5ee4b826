//! Length and format limits a client must respect: an Event's note and a
//! Service's status conditions.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use crate::harness::{Cluster, status_of};

fn event(name: &str, note: &str) -> Event {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "reportingController": "example.com/test",
        "reportingInstance": "test-1",
        "action": "Test",
        "reason": "Test",
        "type": "Normal",
        "note": note,
        "regarding": {"kind": "ConfigMap", "name": "x", "apiVersion": "v1"},
    }))
    .unwrap()
}

#[tokio::test]
async fn an_event_note_over_1024_bytes_is_invalid() {
    let cluster = Cluster::connect().await;
    let api = cluster.api::<Event>();
    api.create(&PostParams::default(), &event("fits", &"n".repeat(1024)))
        .await
        .expect("1024 bytes are allowed");
    let err = api
        .create(&PostParams::default(), &event("long", &"n".repeat(1025)))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert_eq!(status_of(err), (422, "Invalid".into()));
    assert!(message.contains("note"), "{message}");
    cluster.cleanup().await;
}

#[tokio::test]
async fn a_service_condition_with_a_long_message_or_bad_reason_is_invalid() {
    let cluster = Cluster::connect().await;
    let api = cluster.api::<Service>();
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"ports": [{"port": 80}]}
    }))
    .unwrap();
    api.create(&PostParams::default(), &service).await.unwrap();
    let condition = |reason: &str, message: String| {
        json!({"status": {"conditions": [{
            "type": "example.com/Ready", "status": "False", "reason": reason,
            "message": message, "lastTransitionTime": "2026-01-01T00:00:00Z",
        }]}})
    };
    let patch = |body: serde_json::Value| {
        let api = api.clone();
        async move {
            api.patch_status("web", &PatchParams::default(), &Patch::Merge(body))
                .await
        }
    };
    patch(condition("Waiting", "m".repeat(32 * 1024)))
        .await
        .expect("32 KiB are allowed");
    for (reason, message) in [
        ("Waiting", "m".repeat(32 * 1024 + 1)),
        ("Not a reason", String::new()),
    ] {
        let err = patch(condition(reason, message)).await.unwrap_err();
        let text = err.to_string();
        assert_eq!(status_of(err), (422, "Invalid".into()), "{text}");
        assert!(text.contains("status.conditions[0]"), "{text}");
    }
    cluster.cleanup().await;
}
