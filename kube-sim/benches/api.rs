//! kube-sim under load, through `kube::Client` over HTTP: 10 000 objects
//! stored (9 000 ConfigMaps, 1 000 Services); p50/p99 of get, of listing the
//! 1 000 Services, and of watch event delivery to 10 watchers; resident
//! memory of the server, running as a process of its own, before and after
//! the load.
//!
//! Run: `cargo bench -p kube-sim --bench api`

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::Api;
use kube::api::{ListParams, PostParams, WatchEvent, WatchParams};
use kube_sim::{SimProcess, rss_mib};
use serde_json::json;

fn report(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at =
        |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e3;
    println!(
        "{label:<44} n={:<6} p50={:>8.3} ms  p99={:>8.3} ms",
        samples.len(),
        at(0.5),
        at(0.99)
    );
}

#[tokio::main]
async fn main() {
    let sim = SimProcess::spawn(std::path::Path::new(env!("CARGO_BIN_EXE_kube-sim")), &[])
        .expect("the kube-sim binary starts");
    let client = sim.client();
    let server_rss = || rss_mib(sim.pid()).unwrap_or(f64::NAN);
    let before = server_rss();
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let started = Instant::now();
    for i in 0..9_000 {
        let cm: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": format!("cm-{i}"), "labels": {"app": "bench", "shard": (i % 10).to_string()}},
            "data": {"key": "value".repeat(8)}
        }))
        .unwrap();
        config_maps
            .create(&PostParams::default(), &cm)
            .await
            .unwrap();
    }
    for i in 0..1_000 {
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": format!("svc-{i}")},
            "spec": {"type": "LoadBalancer", "loadBalancerClass": "svc-lb.tailscale.iptables.sh/lb", "ports": [{"port": 80}]}
        }))
        .unwrap();
        services.create(&PostParams::default(), &svc).await.unwrap();
    }
    println!(
        "created 10 000 objects in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    println!(
        "RSS of the server process: {before:.1} MiB empty, {:.1} MiB with 10 000 objects",
        server_rss()
    );

    let mut gets = Vec::new();
    for i in 0..2_000 {
        let t = Instant::now();
        config_maps.get(&format!("cm-{}", i * 4)).await.unwrap();
        gets.push(t.elapsed());
    }
    report("get one ConfigMap (of 10 000 objects)", gets);

    let mut lists = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        let list = services.list(&ListParams::default()).await.unwrap();
        assert_eq!(list.items.len(), 1_000);
        lists.push(t.elapsed());
    }
    report("list 1 000 Services", lists);

    // Watch delivery: 10 watchers; latency from the start of each create to
    // its arrival at each watcher.
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let version = config_maps
        .list(&ListParams::default().limit(1))
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut watchers = Vec::new();
    for _ in 0..10 {
        let stream = config_maps
            .watch(
                &WatchParams::default().labels("app=watched").timeout(60),
                &version,
            )
            .await
            .unwrap();
        let (sent, latencies) = (sent.clone(), latencies.clone());
        watchers.push(tokio::spawn(async move {
            let mut stream = stream.boxed();
            let mut seen = 0;
            while let Some(event) = stream.next().await {
                let cm = match event {
                    Ok(WatchEvent::Added(cm)) => cm,
                    Ok(WatchEvent::Bookmark(_)) => continue,
                    other => {
                        eprintln!("watch ended: {other:?}");
                        break;
                    }
                };
                let name = cm.metadata.name.unwrap_or_default();
                if let Some(start) = sent.lock().unwrap().get(&name) {
                    latencies.lock().unwrap().push(start.elapsed());
                }
                seen += 1;
                if seen == 200 {
                    break;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..200 {
        let name = format!("watched-{i}");
        let cm: ConfigMap = serde_json::from_value(
            json!({"metadata": {"name": name, "labels": {"app": "watched"}}}),
        )
        .unwrap();
        sent.lock().unwrap().insert(name, Instant::now());
        config_maps
            .create(&PostParams::default(), &cm)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    for watcher in watchers {
        let _ = tokio::time::timeout(Duration::from_secs(30), watcher).await;
    }
    let latencies = latencies.lock().unwrap().clone();
    report("watch delivery, 10 watchers", latencies);
}
