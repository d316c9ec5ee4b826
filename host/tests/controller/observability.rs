//! `/healthz`, `/readyz` and `/metrics`.

use serde_json::json;

use crate::harness::{Cluster, eventually};

/// `(status, body)` of a plain HTTP GET.
async fn get(addr: std::net::SocketAddr, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let code = response.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, response.split_once("\r\n\r\n")?.1.to_string()))
}

fn free_address() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

#[tokio::test]
async fn health_readiness_and_metrics_are_served() {
    let cluster = Cluster::connect().await;
    let missing = "policies:\n- name: missing\n  file: missing.wasm\n";
    cluster.put_policies(missing, &[]).await;
    let addr = free_address();
    let mut options = cluster.options("e2e");
    options.metrics_addr = Some(addr);
    let _controller = cluster.start(options);
    let (code, body) = eventually("readiness says why not", || async {
        get(addr, "/readyz")
            .await
            .filter(|(_, body)| body.contains("missing.wasm"))
    })
    .await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(get(addr, "/healthz").await.map(|r| r.0), Some(200));
    cluster.put_policies("policies: []\n", &[]).await;
    eventually("ready with a valid set", || async {
        (get(addr, "/readyz").await?.0 == 200).then_some(())
    })
    .await;
    cluster.create_service("web", json!({})).await;
    let metrics = eventually(
        "metrics count the reconcile and the managed Service",
        || async {
            let (_, body) = get(addr, "/metrics").await?;
            body.contains("svclb_managed_services 1").then_some(body)
        },
    )
    .await;
    for expected in [
        "svclb_reconciles_total{result=\"ok\"}",
        "svclb_reconcile_duration_seconds_count",
        "svclb_policy_evaluation_duration_seconds_count{policy=\"default\"}",
        "svclb_policy_sets_refused_total 1",
    ] {
        assert!(
            metrics.contains(expected),
            "{expected} missing in\n{metrics}"
        );
    }
    cluster.cleanup().await;
}
