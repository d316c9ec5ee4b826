//! The DaemonSet controller: for every DaemonSet, the plan of [`plan`] over
//! the cluster's nodes and the DaemonSet's pods, applied — pods created
//! from the template (bound to their node, owned by the DaemonSet, labelled
//! with the template's hash), pods deleted — and the DaemonSet's status
//! written. It polls rather than watches: a pass lists three kinds.
//!
//! Pods are bound to their node directly (`spec.nodeName`), as the
//! controller did before DaemonSet pods went through the scheduler; the
//! placement rules are the scheduler's ([`crate::scheduling`]).

pub mod plan;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Api;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::scheduling::{daemon_tolerations, placement};
use plan::{Action, DaemonPod, Strategy};

/// The label with the template's hash.
pub const REVISION_HASH: &str = "controller-revision-hash";

/// A short hash of a pod template (the controller's ControllerRevision
/// name suffix plays this part).
pub fn template_hash(ds: &DaemonSet) -> String {
    let template = ds.spec.as_ref().map(|s| &s.template);
    let bytes = serde_json::to_vec(&template).unwrap_or_default();
    let digest = Sha256::digest(bytes);
    digest.iter().take(5).map(|b| format!("{b:02x}")).collect()
}

/// `intOrString` scaled against `total` (rounded up, as the controller does).
fn scaled(value: Option<&IntOrString>, total: usize, default: usize) -> usize {
    match value {
        None => default,
        Some(IntOrString::Int(n)) => (*n).max(0) as usize,
        Some(IntOrString::String(p)) => {
            let percent: usize = p.trim_end_matches('%').parse().unwrap_or(0);
            (percent * total).div_ceil(100)
        }
    }
}

/// The DaemonSet's update strategy over `nodes` nodes.
pub fn strategy(ds: &DaemonSet, nodes: usize) -> Strategy {
    let update = ds.spec.as_ref().and_then(|s| s.update_strategy.as_ref());
    if update.and_then(|u| u.type_.as_deref()) == Some("OnDelete") {
        return Strategy::OnDelete;
    }
    let rolling = update.and_then(|u| u.rolling_update.as_ref());
    Strategy::RollingUpdate {
        max_surge: scaled(rolling.and_then(|r| r.max_surge.as_ref()), nodes, 0),
        max_unavailable: scaled(rolling.and_then(|r| r.max_unavailable.as_ref()), nodes, 1),
    }
}

fn is_ready(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

fn daemon_pod(pod: &Pod) -> DaemonPod {
    let meta = &pod.metadata;
    DaemonPod {
        name: meta.name.clone().unwrap_or_default(),
        node: pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default(),
        hash: meta
            .labels
            .as_ref()
            .and_then(|l| l.get(REVISION_HASH).cloned())
            .unwrap_or_default(),
        ready: is_ready(pod),
        failed: pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed"),
        terminating: meta.deletion_timestamp.is_some(),
        created: format!(
            "{}/{}",
            meta.creation_timestamp
                .as_ref()
                .map(|t| t.0.to_string())
                .unwrap_or_default(),
            meta.name.clone().unwrap_or_default()
        ),
    }
}

/// A new pod of `ds` for `node`.
fn new_pod(ds: &DaemonSet, node: &str, hash: &str) -> Pod {
    let spec = ds.spec.clone().unwrap_or_default();
    let template = spec.template;
    let mut labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(REVISION_HASH.into(), hash.into());
    let mut pod_spec = template.spec.unwrap_or_default();
    pod_spec.node_name = Some(node.into());
    let tolerations = pod_spec.tolerations.get_or_insert_default();
    for toleration in daemon_tolerations() {
        if !tolerations.contains(&toleration) {
            tolerations.push(toleration);
        }
    }
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", ds.metadata.name.clone().unwrap_or_default())),
            namespace: ds.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: template.metadata.and_then(|m| m.annotations),
            owner_references: Some(vec![OwnerReference {
                api_version: "apps/v1".into(),
                kind: "DaemonSet".into(),
                name: ds.metadata.name.clone().unwrap_or_default(),
                uid: ds.metadata.uid.clone().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        },
        spec: Some(pod_spec),
        status: None,
    }
}

/// One pass over one DaemonSet.
async fn sync(
    client: &kube::Client,
    ds: &DaemonSet,
    nodes: &[Node],
    pods: &[Pod],
) -> Result<(), kube::Error> {
    let namespace = ds.metadata.namespace.clone().unwrap_or_default();
    let uid = ds.metadata.uid.clone().unwrap_or_default();
    let owned: Vec<&Pod> = pods
        .iter()
        .filter(|p| {
            p.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.controller == Some(true) && o.uid == uid)
        })
        .collect();
    let template = ds
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.clone())
        .unwrap_or_default();
    let placements: BTreeMap<String, _> = nodes
        .iter()
        .map(|n| {
            (
                n.metadata.name.clone().unwrap_or_default(),
                placement(&template, n),
            )
        })
        .collect();
    let hash = template_hash(ds);
    let views: Vec<DaemonPod> = owned.iter().map(|p| daemon_pod(p)).collect();
    let desired = placements.values().filter(|p| p.should_run).count();
    let actions = plan::plan(&placements, &views, &hash, strategy(ds, desired));
    let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    for action in actions {
        tracing::info!(daemonset = ?ds.metadata.name, ?action, "daemonset step");
        match action {
            Action::Create { node } => {
                api.create(&PostParams::default(), &new_pod(ds, &node, &hash))
                    .await?;
            }
            Action::Delete { pod } => match api.delete(&pod, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(error) => return Err(error),
            },
        }
    }
    let live: Vec<&DaemonPod> = views.iter().filter(|p| !p.terminating).collect();
    let status = json!({
        "desiredNumberScheduled": desired,
        "currentNumberScheduled": live.len(),
        "updatedNumberScheduled": live.iter().filter(|p| p.hash == hash).count(),
        "numberReady": live.iter().filter(|p| p.ready).count(),
        "numberAvailable": live.iter().filter(|p| p.ready).count(),
        "numberUnavailable": desired.saturating_sub(live.iter().filter(|p| p.ready).count()),
        "numberMisscheduled": 0,
        "observedGeneration": ds.metadata.generation,
    });
    crate::patch_status(client, ds, status).await
}

/// Runs the controller until `shutdown` turns `true`.
pub async fn run(client: kube::Client, shutdown: watch::Receiver<bool>) {
    crate::poll_each::<DaemonSet>(client, shutdown, |_| false, sync).await;
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::{
        DaemonSetSpec, DaemonSetUpdateStrategy, RollingUpdateDaemonSet,
    };

    use super::*;

    fn daemonset(surge: IntOrString) -> DaemonSet {
        DaemonSet {
            metadata: ObjectMeta {
                name: Some("ts-default-web-1a2b".into()),
                namespace: Some("svc-lb".into()),
                uid: Some("ds-uid".into()),
                ..Default::default()
            },
            spec: Some(DaemonSetSpec {
                update_strategy: Some(DaemonSetUpdateStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(RollingUpdateDaemonSet {
                        max_surge: Some(surge),
                        max_unavailable: Some(IntOrString::Int(0)),
                    }),
                }),
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn percentages_scale_up_against_the_number_of_nodes() {
        let ds = daemonset(IntOrString::String("10%".into()));
        assert_eq!(
            strategy(&ds, 3),
            Strategy::RollingUpdate {
                max_surge: 1,
                max_unavailable: 0
            }
        );
    }

    #[test]
    fn a_new_pod_is_bound_owned_labelled_and_tolerates_what_daemon_pods_tolerate() {
        let ds = daemonset(IntOrString::Int(1));
        let pod = new_pod(&ds, "node-1", &template_hash(&ds));
        assert_eq!(
            pod.spec.as_ref().unwrap().node_name.as_deref(),
            Some("node-1")
        );
        assert_eq!(
            pod.metadata.generate_name.as_deref(),
            Some("ts-default-web-1a2b-")
        );
        let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.uid.as_str(), owner.controller),
            ("ds-uid", Some(true))
        );
        assert_eq!(
            pod.metadata.labels.as_ref().unwrap()[REVISION_HASH],
            template_hash(&ds)
        );
        assert_eq!(pod.spec.unwrap().tolerations.unwrap().len(), 6);
    }
}
