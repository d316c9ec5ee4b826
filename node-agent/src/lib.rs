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

/// How often the controllers look.
const PERIOD: std::time::Duration = std::time::Duration::from_millis(250);

/// A controller's loop, as the DaemonSet, Deployment and Job controllers
/// here run it: they poll rather than watch. Every [`PERIOD`] it lists the
/// objects of kind `K`, the nodes and the pods, and calls `sync` for each
/// object that is not being deleted and that `skip` does not pass over,
/// until `shutdown` turns `true`.
pub(crate) async fn poll_each<K>(
    client: kube::Client,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    skip: impl Fn(&K) -> bool,
    sync: impl AsyncFn(
        &kube::Client,
        &K,
        &[k8s_openapi::api::core::v1::Node],
        &[k8s_openapi::api::core::v1::Pod],
    ) -> Result<(), kube::Error>,
) where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    use k8s_openapi::api::core::v1::{Node, Pod};
    use kube::Api;
    let kind = K::kind(&());
    loop {
        let all = kube::api::ListParams::default();
        let listed = futures::future::try_join3(
            Api::<K>::all(client.clone()).list(&all),
            Api::<Node>::all(client.clone()).list(&all),
            Api::<Pod>::all(client.clone()).list(&all),
        )
        .await;
        match listed {
            Ok((objects, nodes, pods)) => {
                for object in &objects.items {
                    if object.meta().deletion_timestamp.is_some() || skip(object) {
                        continue;
                    }
                    if let Err(error) = sync(&client, object, &nodes.items, &pods.items).await {
                        tracing::warn!(%kind, name = ?object.meta().name, %error, "not synced");
                    }
                }
            }
            Err(error) => tracing::debug!(%kind, %error, "not listed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(PERIOD) => {}
            () = shut_down(&mut shutdown) => return,
        }
    }
}

/// Writes `status` as the `.status` of `object` (a merge patch of its
/// status subresource), as each controller does at the end of a pass.
pub(crate) async fn patch_status<K>(
    client: &kube::Client,
    object: &K,
    status: serde_json::Value,
) -> Result<(), kube::Error>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let meta = object.meta();
    let api: kube::Api<K> = kube::Api::namespaced(
        client.clone(),
        meta.namespace.as_deref().unwrap_or_default(),
    );
    let patch = serde_json::json!({ "status": status });
    api.patch_status(
        meta.name.as_deref().unwrap_or_default(),
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await?;
    Ok(())
}

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
