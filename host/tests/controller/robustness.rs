//! Two replicas and one leader; injected API faults.

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use serde_json::json;
use svc_lb_host::controller::leader::{CONTROLLER_LEASE, ElectionTimings};

use crate::harness::{Cluster, eventually};
use crate::provisioning::report_address;

async fn holder(cluster: &Cluster) -> Option<String> {
    let leases: Api<Lease> = cluster.api(&cluster.system);
    leases
        .get_opt(CONTROLLER_LEASE)
        .await
        .unwrap()?
        .spec?
        .holder_identity
}

#[tokio::test]
async fn two_controllers_elect_one_leader_and_the_other_takes_over_when_it_stops() {
    let cluster = Cluster::connect().await;
    let replica = |identity: &str| {
        let mut options = cluster.options(identity);
        options.election = Some(ElectionTimings {
            duration: 4,
            grace: 2,
        });
        cluster.start(options)
    };
    let (first, second) = (replica("replica-a"), replica("replica-b"));
    let leader = eventually("one replica leads", || holder(&cluster)).await;
    cluster.create_service("web", json!({})).await;
    cluster.wait_for_daemonset("web").await;
    // Stopping the leader releases the Lease at once; the other replica
    // takes it and serves a new Service.
    let (leading, standing_by) = match leader.as_str() {
        "replica-a" => (first, second),
        "replica-b" => (second, first),
        other => panic!("unknown holder {other}"),
    };
    leading.stop().await;
    eventually("the other replica leads", || async {
        holder(&cluster).await.filter(|h| *h != leader)
    })
    .await;
    cluster.create_service("api", json!({})).await;
    cluster.wait_for_daemonset("api").await;
    standing_by.stop().await;
    cluster.cleanup().await;
}

#[tokio::test]
async fn in_memory_only_api_faults_and_dropped_watches_still_converge() {
    let cluster = Cluster::connect().await;
    let Some(sim) = cluster.sim.as_ref() else {
        return;
    };
    let _controller = cluster.start_default();
    // Proxy writes fail for a while, a conflict hits the finalizer write,
    // the API throttles, and every watch is cut.
    let patch = Some(kube_sim::Method::PATCH);
    sim.faults()
        .fail_next(patch.clone(), "/daemonsets/", 3, 500);
    sim.faults().fail_next(patch.clone(), "/services/", 1, 409);
    sim.faults().fail_next(patch, "/secrets/", 2, 429);
    cluster.create_service("web", json!({})).await;
    sim.faults().drop_watches();
    cluster.wait_for_daemonset("web").await;
    sim.faults().drop_watches();
    report_address(&cluster, "web", "100.64.0.5").await;
    cluster.wait_for_ingress("web").await;
    cluster.cleanup().await;
}
