//! A kubelet for one node on runc: it watches the pods bound to its node
//! and runs each in a pod worker ([`pod`]), stops those being deleted (or
//! gone), and removes what an earlier run left behind (runc containers,
//! network namespaces and cgroups of its prefix) when it starts.
//!
//! Like the real kubelet, it leaves running containers alone when it is
//! itself stopped; [`remove_everything`] is what a node that dies — or a
//! test that ends — does to them.

pub mod completion;
pub mod container;
pub mod context;
pub mod files;
pub mod network;
pub mod pod;
pub mod probe;
pub mod runc;
pub mod status;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{ListParams, ObjectMeta, PostParams};
use tokio::sync::watch;

pub use context::NodeContext;

/// How often the kubelet compares its pods with the API server's.
const SYNC_PERIOD: Duration = Duration::from_millis(250);

/// Removes every container, network namespace and cgroup of `prefix`:
/// what a node's death leaves nothing of.
pub async fn remove_everything(
    runc: &runc::Runc,
    network: &network::PodNetwork,
    cgroup_parent: &str,
    prefix: &str,
) {
    for id in runc
        .list()
        .await
        .into_iter()
        .filter(|id| id.starts_with(prefix))
    {
        let _ = runc.kill(&id, "KILL").await;
        let _ = runc.delete(&id).await;
    }
    network.remove_leftovers().await;
    // runc removes a container's cgroups on delete; what a crash left
    // behind goes here (a cgroup folder is removed with rmdir).
    if let Ok(controllers) = std::fs::read_dir("/sys/fs/cgroup") {
        for controller in controllers.flatten() {
            let parent = controller.path().join(cgroup_parent);
            for child in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
                let _ = std::fs::remove_dir(child.path());
            }
        }
    }
}

/// The labels every kubelet puts on its node (`kubeletapis` well-known
/// labels): the real kubelet sets them at registration and, on a node that
/// exists already, reconciles them (`updateDefaultLabels`).
fn well_known_labels(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("kubernetes.io/hostname".to_string(), name.to_string()),
        (
            "kubernetes.io/os".to_string(),
            std::env::consts::OS.to_string(),
        ),
        ("kubernetes.io/arch".to_string(), go_arch().to_string()),
        (
            "beta.kubernetes.io/os".to_string(),
            std::env::consts::OS.to_string(),
        ),
        ("beta.kubernetes.io/arch".to_string(), go_arch().to_string()),
    ])
}

/// The architecture as Go (`runtime.GOARCH`) names it.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Registers the node, retrying as the real kubelet's
/// `registerWithAPIServer` does (from 100 ms, doubling to 7 s), until it
/// succeeds or `shutdown` turns `true`.
async fn register(client: &kube::Client, name: &str, shutdown: &mut watch::Receiver<bool>) {
    let mut wait = Duration::from_millis(100);
    loop {
        match register_once(client, name).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(node = %name, %error, retry_in = ?wait, "node not registered yet")
            }
        }
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            () = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(Duration::from_secs(7));
    }
}

/// Creates the node with the well-known labels, or adds them to a node
/// that exists (the tests create their nodes with their own labels first).
async fn register_once(client: &kube::Client, name: &str) -> kube::Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let labels = well_known_labels(name);
    match nodes.get_opt(name).await? {
        None => {
            let node = Node {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    labels: Some(labels),
                    ..Default::default()
                },
                ..Default::default()
            };
            nodes.create(&PostParams::default(), &node).await.map(drop)
        }
        Some(_) => {
            let patch = serde_json::json!({"metadata": {"labels": labels}});
            nodes
                .patch(
                    name,
                    &kube::api::PatchParams::default(),
                    &kube::api::Patch::Merge(patch),
                )
                .await
                .map(drop)
        }
    }
}

/// The grace period a stop of `pod` gets.
fn grace_of(pod: &Pod) -> i64 {
    pod.metadata
        .deletion_grace_period_seconds
        .or_else(|| pod.spec.as_ref()?.termination_grace_period_seconds)
        .unwrap_or(30)
}

/// Runs the kubelet until `shutdown` turns `true`.
pub async fn run(
    node: Arc<NodeContext>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), network::NetworkError> {
    remove_everything(
        &node.runc,
        &node.network,
        &node.settings.cgroup_parent,
        &node.id_prefix,
    )
    .await;
    node.network.set_up_node().await?;
    register(&node.client, &node.name, &mut shutdown).await;
    let pods: Api<Pod> = Api::all(node.client.clone());
    let on_node = ListParams::default().fields(&format!("spec.nodeName={}", node.name));
    // Pod uid → (stop request, the pod as last seen, worker).
    let mut workers: BTreeMap<
        String,
        (watch::Sender<pod::Stop>, Pod, tokio::task::JoinHandle<()>),
    > = BTreeMap::new();
    loop {
        // A node cut off from the API server must still stop when told.
        let listed = tokio::select! {
            listed = pods.list(&on_node) => listed,
            () = crate::shut_down(&mut shutdown) => return Ok(()),
        };
        match listed {
            Ok(list) => {
                let mut seen = BTreeMap::new();
                for p in list.items {
                    let uid = p.metadata.uid.clone().unwrap_or_default();
                    let terminating = p.metadata.deletion_timestamp.is_some();
                    if let Some((stop, last, _)) = workers.get_mut(&uid) {
                        if terminating && stop.borrow().is_none() {
                            tracing::info!(pod = ?p.metadata.name, "stopping pod");
                            stop.send_replace(Some(grace_of(&p)));
                        }
                        *last = p.clone();
                    } else if !terminating {
                        tracing::info!(pod = ?p.metadata.name, "starting pod");
                        let (stop, stopped) = watch::channel(None);
                        let worker = tokio::spawn(pod::run_pod(node.clone(), p.clone(), stopped));
                        workers.insert(uid.clone(), (stop, p, worker));
                    } else {
                        // Terminating without a worker: finish it (again,
                        // each pass, until the pod object is gone).
                        tracing::info!(pod = ?p.metadata.name, "cleaning up a terminating pod");
                        let grace = grace_of(&p);
                        let (stop, _) = watch::channel(Some(grace));
                        let worker = tokio::spawn(pod::clean_up(node.clone(), p.clone(), grace));
                        workers.insert(uid.clone(), (stop, p, worker));
                    }
                    seen.insert(uid, ());
                }
                for (uid, (stop, last, _)) in &workers {
                    if !seen.contains_key(uid) && stop.borrow().is_none() {
                        stop.send_replace(Some(grace_of(last)));
                    }
                }
            }
            Err(error) => tracing::debug!(%error, "pods not listed"),
        }
        workers.retain(|_, (_, _, worker)| !worker.is_finished());
        tokio::select! {
            _ = tokio::time::sleep(SYNC_PERIOD) => {}
            () = crate::shut_down(&mut shutdown) => return Ok(()),
        }
    }
}
