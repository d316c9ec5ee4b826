//! A node agent for tests and the playground: the DaemonSet, Deployment
//! and Job controllers ([`daemonset`], [`deployment`], [`job`]; [`run_controllers`]
//! runs the three, as kube-controller-manager would) and a kubelet ([`kubelet`]) that runs pods as the
//! controller rendered them, in OCI containers with `runc` — one network
//! namespace per pod on a bridge per node, the container as PID 1 of its
//! own PID namespace with a fresh `/dev`, containerd's capabilities,
//! seccomp and device rules, the pod's environment and a ServiceAccount
//! token bound to the pod.
//!
//! Nothing here is test-only code: it is what a real node would do for
//! these pods, cut to what they use (documented per module).

pub mod daemonset;
pub mod deployment;
pub mod env;
pub mod image;
pub mod job;
pub mod kubelet;
pub mod oci;
pub mod scheduling;

/// Waits until `shutdown` turns `true` (or its sender is gone).
pub(crate) async fn shut_down(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// Runs the DaemonSet, Deployment and Job controllers until `shutdown`
/// turns `true`.
pub async fn run_controllers(client: kube::Client, shutdown: tokio::sync::watch::Receiver<bool>) {
    tokio::join!(
        daemonset::run(client.clone(), shutdown.clone()),
        deployment::run(client.clone(), shutdown.clone()),
        job::run(client, shutdown),
    );
}
