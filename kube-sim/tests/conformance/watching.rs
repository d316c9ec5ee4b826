//! Watches through kube-runtime's watcher, and the in-memory-only faults.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event, watcher};
use serde_json::json;

use crate::harness::{Cluster, status_of};

fn config_map(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}})).unwrap()
}

/// Waits (bounded) for the next watcher event about `name`.
async fn next_about<S>(events: &mut S, name: &str) -> Event<ConfigMap>
where
    S: futures::Stream<Item = Result<Event<ConfigMap>, watcher::Error>> + Unpin,
{
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let event = events
                .try_next()
                .await
                .expect("watch error")
                .expect("stream ended");
            let about = match &event {
                Event::Apply(o) | Event::Delete(o) | Event::InitApply(o) => {
                    o.metadata.name.as_deref() == Some(name)
                }
                _ => false,
            };
            if about {
                return event;
            }
        }
    })
    .await
    .expect("no event in time")
}

#[tokio::test]
async fn a_watcher_sees_creates_updates_and_deletes() {
    let cluster = Cluster::connect().await;
    let api = cluster.api::<ConfigMap>();
    let mut events = watcher::watcher(api.clone(), watcher::Config::default()).boxed();
    tokio::spawn({
        let api = api.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            api.create(&PostParams::default(), &config_map("w"))
                .await
                .unwrap();
            api.patch(
                "w",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"k": "v"}})),
            )
            .await
            .unwrap();
            api.delete("w", &DeleteParams::default()).await.unwrap();
        }
    });
    assert!(matches!(
        next_about(&mut events, "w").await,
        Event::Apply(_)
    ));
    match next_about(&mut events, "w").await {
        Event::Apply(cm) => assert_eq!(cm.data.unwrap()["k"], "v"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        next_about(&mut events, "w").await,
        Event::Delete(_)
    ));
    cluster.cleanup().await;
}

#[tokio::test]
async fn a_watch_from_a_version_sees_only_later_changes_and_times_out() {
    let cluster = Cluster::connect().await;
    let api = cluster.api::<ConfigMap>();
    api.create(&PostParams::default(), &config_map("before"))
        .await
        .unwrap();
    let version = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    api.create(&PostParams::default(), &config_map("after"))
        .await
        .unwrap();
    let stream = api
        .watch(&WatchParams::default().timeout(2), &version)
        .await
        .unwrap();
    let events: Vec<_> = stream.try_collect().await.unwrap();
    let names: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            WatchEvent::Added(cm) => cm.metadata.name.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(
        names,
        ["after"],
        "the watch ended by its timeout with only the later object"
    );
    cluster.cleanup().await;
}

#[tokio::test]
async fn in_memory_only_a_dropped_watch_is_resumed_by_the_watcher() {
    let cluster = Cluster::connect().await;
    let Some(sim) = cluster.sim() else { return };
    let api = cluster.api::<ConfigMap>();
    let mut events = watcher::watcher(api.clone(), watcher::Config::default()).boxed();
    api.create(&PostParams::default(), &config_map("one"))
        .await
        .unwrap();
    next_about(&mut events, "one").await;
    sim.faults().drop_watches();
    api.create(&PostParams::default(), &config_map("two"))
        .await
        .unwrap();
    assert!(matches!(
        next_about(&mut events, "two").await,
        Event::Apply(_) | Event::InitApply(_)
    ));
    cluster.cleanup().await;
}

#[tokio::test]
async fn in_memory_only_resuming_from_compacted_history_is_410_gone() {
    let cluster = Cluster::connect().await;
    let Some(sim) = cluster.sim() else { return };
    let api = cluster.api::<ConfigMap>();
    api.create(&PostParams::default(), &config_map("a"))
        .await
        .unwrap();
    api.create(&PostParams::default(), &config_map("b"))
        .await
        .unwrap();
    sim.compact_history();
    let mut stream = api
        .watch(&WatchParams::default().timeout(2), "1")
        .await
        .unwrap()
        .boxed();
    match stream.try_next().await.unwrap() {
        Some(WatchEvent::Error(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"))
        }
        other => panic!("expected 410, got {other:?}"),
    }
    cluster.cleanup().await;
}

/// The status code of a raw `GET path`, without client-side retries.
async fn raw_get_status(config: &kube::Config, path: &str) -> u16 {
    let mut config = config.clone();
    config.default_retry = false;
    let client = kube::Client::try_from(config).unwrap();
    let request = axum::http::Request::get(path)
        .body(Vec::new())
        .expect("a valid request");
    client
        .send(request.map(kube::client::Body::from))
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn in_memory_only_injected_faults_fail_exactly_the_next_requests() {
    let cluster = Cluster::connect().await;
    let Some(sim) = cluster.sim() else { return };
    let path = format!("/api/v1/namespaces/{}/configmaps", cluster.namespace);
    sim.faults().fail_next(None, "/configmaps", 2, 500);
    assert_eq!(raw_get_status(&cluster.config, &path).await, 500);
    assert_eq!(raw_get_status(&cluster.config, &path).await, 500);
    assert_eq!(raw_get_status(&cluster.config, &path).await, 200);
    sim.faults().fail_next(None, "/configmaps", 1, 429);
    assert_eq!(raw_get_status(&cluster.config, &path).await, 429);
    assert_eq!(raw_get_status(&cluster.config, &path).await, 200);
    // A 409 on a write reaches the client as a conflict.
    let api = cluster.api::<ConfigMap>();
    sim.faults()
        .fail_next(Some(axum_method_post()), "/configmaps", 1, 409);
    assert_eq!(
        status_of(
            api.create(&PostParams::default(), &config_map("f"))
                .await
                .unwrap_err()
        )
        .0,
        409
    );
    api.create(&PostParams::default(), &config_map("f"))
        .await
        .unwrap();
    cluster.cleanup().await;
}

#[tokio::test]
async fn in_memory_only_injected_latency_delays_every_request_until_cleared() {
    let cluster = Cluster::connect().await;
    let Some(sim) = cluster.sim() else { return };
    let api = cluster.api::<ConfigMap>();
    let delay = std::time::Duration::from_millis(300);
    sim.faults().set_latency(Some(delay));
    for _ in 0..2 {
        let started = std::time::Instant::now();
        api.get_opt("absent").await.unwrap();
        assert!(started.elapsed() >= delay, "{:?}", started.elapsed());
    }
    sim.faults().set_latency(None);
    // Without the fault the request is not delayed: far below the injected
    // delay even on a slow machine.
    let started = std::time::Instant::now();
    api.get_opt("absent").await.unwrap();
    assert!(started.elapsed() < delay, "{:?}", started.elapsed());
    cluster.cleanup().await;
}

fn axum_method_post() -> kube_sim::Method {
    kube_sim::Method::POST
}

#[tokio::test]
async fn many_concurrent_watchers_each_see_every_change_and_get_bookmarks() {
    let cluster = Cluster::connect().await;
    let api = cluster.api::<ConfigMap>();
    let version = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut watchers = Vec::new();
    for _ in 0..20 {
        let stream = api
            .watch(&WatchParams::default().timeout(5), &version)
            .await
            .unwrap();
        watchers.push(tokio::spawn(async move {
            let events: Vec<WatchEvent<ConfigMap>> = stream.try_collect().await.unwrap();
            // Only this test's objects: a real namespace also gets its
            // kube-root-ca.crt ConfigMap, possibly after the list.
            let added = events
                .iter()
                .filter(|e| {
                    matches!(e, WatchEvent::Added(cm)
                        if cm.metadata.name.as_deref().is_some_and(|n| n.starts_with("m")))
                })
                .count();
            let bookmarks = events
                .iter()
                .filter(|e| matches!(e, WatchEvent::Bookmark(_)))
                .count();
            (added, bookmarks)
        }));
    }
    for i in 0..5 {
        api.create(&PostParams::default(), &config_map(&format!("m{i}")))
            .await
            .unwrap();
    }
    for watcher in watchers {
        let (added, bookmarks) = watcher.await.unwrap();
        assert_eq!(added, 5);
        // A real server sends bookmarks about once a minute; this one every second.
        if cluster.sim().is_some() {
            assert!(bookmarks > 0, "a 5 s watch that allows bookmarks got none");
        }
    }
    cluster.cleanup().await;
}

#[tokio::test]
async fn in_memory_only_requests_are_counted_by_verb_and_resource() {
    let cluster = Cluster::connect().await;
    let Some(sim) = cluster.sim() else { return };
    let api = cluster.api::<ConfigMap>();
    let before = sim.requests().snapshot();
    api.create(&PostParams::default(), &config_map("counted"))
        .await
        .unwrap();
    api.get("counted").await.unwrap();
    api.get("counted").await.unwrap();
    api.list(&Default::default()).await.unwrap();
    let after = sim.requests().snapshot();
    let delta =
        |key: &str| after.get(key).copied().unwrap_or(0) - before.get(key).copied().unwrap_or(0);
    assert_eq!(
        (
            delta("CREATE configmaps"),
            delta("GET configmaps"),
            delta("LIST configmaps")
        ),
        (1, 2, 1)
    );
    cluster.cleanup().await;
}

#[tokio::test]
async fn metadata_only_lists_and_watches_carry_the_metadata() {
    let cluster = Cluster::connect().await;
    let api = cluster.api::<ConfigMap>();
    api.create(&PostParams::default(), &config_map("meta"))
        .await
        .unwrap();
    // The namespace also holds kube-root-ca.crt: select this test's object.
    let only_meta = ListParams::default().fields("metadata.name=meta");
    let list = api.list_metadata(&only_meta).await.unwrap();
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].metadata.name.as_deref(), Some("meta"));
    let one = api.get_metadata("meta").await.unwrap();
    assert!(one.metadata.uid.is_some());
    let metadata: kube::Api<kube::core::PartialObjectMeta<ConfigMap>> =
        kube::Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let mut events = watcher(
        metadata,
        watcher::Config::default().fields("metadata.name=meta"),
    )
    .applied_objects()
    .boxed();
    let seen = tokio::time::timeout(std::time::Duration::from_secs(10), events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(seen.metadata.name.as_deref(), Some("meta"));
    cluster.cleanup().await;
}

/// Watch-list (KEP-3157): the current objects as initial events, the end
/// of them marked by a bookmark, then the changes; what client-go's
/// informers (and so Helm's waiters) ask for.
#[tokio::test]
async fn a_streaming_list_sends_the_current_objects_then_marks_their_end() {
    let cluster = Cluster::connect().await;
    let api = cluster.api::<ConfigMap>();
    api.create(&PostParams::default(), &config_map("before"))
        .await
        .unwrap();
    let config = watcher::Config::default().streaming_lists();
    let mut events = watcher::watcher(api.clone(), config).boxed();
    let mut initial = Vec::new();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), events.try_next())
            .await
            .expect("the initial events end")
            .unwrap()
            .unwrap();
        match event {
            Event::Init => {}
            Event::InitApply(cm) => initial.push(cm.metadata.name.unwrap()),
            Event::InitDone => break,
            other => panic!("{other:?} before the end of the initial events"),
        }
    }
    assert!(initial.contains(&"before".to_string()), "{initial:?}");
    api.create(&PostParams::default(), &config_map("after"))
        .await
        .unwrap();
    assert!(matches!(
        next_about(&mut events, "after").await,
        Event::Apply(_)
    ));
    cluster.cleanup().await;
}
