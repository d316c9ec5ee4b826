//! `up --once`: the tour the playground prints, played and checked. The
//! leader's node is lost (the address answers from the other node), the
//! example policy set is applied (node-pools moves the proxy to the edge
//! node, and the address still answers), then the Service is deleted: its
//! device logs out and none of its proxy's objects is left.

use std::path::Path;
use std::time::Duration;

use anyhow::bail;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Api;
use playground::cluster::{NAMESPACE, PodCluster, within};

use crate::steps::{Progress, apply_policies, curl};

/// Which of the Service's proxy objects are still there.
async fn proxy_objects_left(cluster: &PodCluster) -> anyhow::Result<Vec<String>> {
    let names = PodCluster::names();
    let client = cluster.sim.client();
    let mut left = Vec::new();
    macro_rules! check {
        ($kind:ty, $name:expr) => {
            if Api::<$kind>::namespaced(client.clone(), NAMESPACE)
                .get_opt(&$name)
                .await?
                .is_some()
            {
                left.push(format!("{} {}", stringify!($kind), $name));
            }
        };
    }
    check!(DaemonSet, names.daemonset);
    check!(Secret, names.state_secret);
    check!(Lease, names.lease);
    check!(ServiceAccount, names.service_account);
    check!(Role, names.role);
    check!(RoleBinding, names.role_binding);
    Ok(left)
}

pub async fn tour(
    cluster: &mut PodCluster,
    progress: &Progress,
    id: &str,
    ip: &str,
) -> anyhow::Result<()> {
    let t = progress.begin("killing the leader's node");
    let (node, pod) = within(Duration::from_secs(20), "the leader", || cluster.leader()).await;
    tokio::task::block_in_place(|| cluster.lose_node(node));
    if !curl(id, ip, Duration::from_secs(30)).await {
        bail!("{ip} no longer answers after node-{node} was lost");
    }
    let (now, _) = cluster.new_leader(&pod, Duration::from_secs(20)).await;
    progress.done(
        &format!("node-{node} lost; {ip} answers from node-{now}"),
        t,
    );

    let t = progress
        .begin("applying examples/policy-set (default + node-pools + namespace-pod-settings)");
    let set = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/policy-set");
    apply_policies(cluster, &set).await?;
    let edge = cluster.nodes.len() - 1;
    within(
        Duration::from_secs(60),
        "the leader on the edge node",
        || async {
            let (node, _) = cluster.leader().await?;
            (node == edge).then_some(())
        },
    )
    .await;
    if !curl(id, ip, Duration::from_secs(30)).await {
        bail!("{ip} does not answer from the edge node");
    }
    progress.done(
        &format!("the proxy moved to node-{edge} (edge); {ip} answers from there"),
        t,
    );

    let t = progress.begin("deleting the Service");
    cluster.delete_service(Duration::from_secs(60)).await;
    let left = proxy_objects_left(cluster).await?;
    if !left.is_empty() {
        bail!("left after the Service's deletion: {left:?}");
    }
    if cluster.logged_in_devices() != 0 {
        bail!("the device did not log out");
    }
    progress.done(
        "the device logged out, none of its proxy's objects is left",
        t,
    );
    Ok(())
}
