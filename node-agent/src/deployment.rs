//! The Deployment controller, as `pkg/controller/deployment` and the
//! ReplicaSet controller behave for what a pod and its observers see:
//! `spec.replicas` pods from the template, labelled with the template's
//! hash (`pod-template-hash`), named `<deployment>-<hash>-<random>`, placed
//! by [`crate::scheduling::pick_node`]; a changed template rolls with the
//! `RollingUpdate` budget (`maxSurge` rounded up, `maxUnavailable` rounded
//! down, 25 % each by default) or `Recreate`s; scaling down deletes pods
//! (gracefully: the kubelet sends SIGTERM), the not-ready and newest first;
//! finished pods are replaced. The status carries the replica counts and
//! `observedGeneration`.
//!
//! One level is cut: the pods are owned by the Deployment itself rather
//! than by a ReplicaSet per template (nothing here reads ReplicaSets), and
//! `minReadySeconds`, pausing and `progressDeadlineSeconds` are not
//! modelled. It polls, as the DaemonSet controller here does.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Api;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::scheduling::pick_node;

/// The label with the template's hash.
pub const TEMPLATE_HASH: &str = "pod-template-hash";

/// What the plan needs of one of the Deployment's pods.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaPod {
    pub name: String,
    pub hash: String,
    pub ready: bool,
    /// `Succeeded` or `Failed`: it will not run again.
    pub finished: bool,
    pub terminating: bool,
    /// Creation time and name, for "newest first".
    pub created: String,
}

/// How a template change rolls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rollout {
    Recreate,
    RollingUpdate {
        max_surge: usize,
        max_unavailable: usize,
    },
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Create this many pods of the current template.
    Create(usize),
    /// Delete this pod.
    Delete(String),
}

/// The steps that move `pods` toward `replicas` pods of template `hash`.
pub fn plan(replicas: usize, hash: &str, pods: &[ReplicaPod], rollout: Rollout) -> Vec<Step> {
    let mut steps: Vec<Step> = pods
        .iter()
        .filter(|p| p.finished && !p.terminating)
        .map(|p| Step::Delete(p.name.clone()))
        .collect();
    let live: Vec<&ReplicaPod> = pods
        .iter()
        .filter(|p| !p.finished && !p.terminating)
        .collect();
    // Not-ready first, then newest first: the order pods are given up in.
    fn give_up_order(mut list: Vec<&ReplicaPod>) -> Vec<&ReplicaPod> {
        list.sort_by(|a, b| a.ready.cmp(&b.ready).then(b.created.cmp(&a.created)));
        list
    }
    let current = give_up_order(live.iter().copied().filter(|p| p.hash == hash).collect());
    let old = give_up_order(live.iter().copied().filter(|p| p.hash != hash).collect());
    if current.len() > replicas {
        let extra = current.len() - replicas;
        steps.extend(
            current[..extra]
                .iter()
                .map(|p| Step::Delete(p.name.clone())),
        );
    }
    match rollout {
        Rollout::Recreate => {
            steps.extend(old.iter().map(|p| Step::Delete(p.name.clone())));
            let old_gone = pods.iter().all(|p| p.hash == hash || p.finished);
            if old_gone && current.len() < replicas {
                steps.push(Step::Create(replicas - current.len()));
            }
        }
        Rollout::RollingUpdate {
            max_surge,
            max_unavailable,
        } => {
            let ceiling = replicas + max_surge;
            if current.len() < replicas {
                let room = ceiling.saturating_sub(live.len());
                let wanted = (replicas - current.len()).min(room);
                if wanted > 0 {
                    steps.push(Step::Create(wanted));
                }
            }
            // Old pods go while `replicas - maxUnavailable` stay
            // available (`reconcileOldReplicaSets`): the budget is every
            // live pod, less that floor, less the new pods not yet ready;
            // the unready old pods go first.
            let floor = replicas.saturating_sub(max_unavailable);
            let new_unready = current.iter().filter(|p| !p.ready).count();
            let budget = live.len().saturating_sub(floor + new_unready);
            steps.extend(
                old.iter()
                    .take(budget)
                    .map(|p| Step::Delete(p.name.clone())),
            );
        }
    }
    steps
}

/// A `RollingUpdate` field scaled against `replicas`.
fn scaled(value: Option<&IntOrString>, replicas: usize, default: usize, round_up: bool) -> usize {
    match value {
        None => default,
        Some(IntOrString::Int(n)) => (*n).max(0) as usize,
        Some(IntOrString::String(p)) => {
            let percent: usize = p.trim_end_matches('%').parse().unwrap_or(0);
            if round_up {
                (percent * replicas).div_ceil(100)
            } else {
                percent * replicas / 100
            }
        }
    }
}

/// The Deployment's rollout over `replicas` (`ResolveFenceposts`: when
/// both budgets round to zero, one pod may be unavailable).
pub fn rollout(deployment: &Deployment, replicas: usize) -> Rollout {
    let strategy = deployment.spec.as_ref().and_then(|s| s.strategy.as_ref());
    if strategy.and_then(|s| s.type_.as_deref()) == Some("Recreate") {
        return Rollout::Recreate;
    }
    let rolling = strategy.and_then(|s| s.rolling_update.as_ref());
    let quarter = |up: bool| scaled(Some(&IntOrString::String("25%".into())), replicas, 0, up);
    let max_surge = scaled(
        rolling.and_then(|r| r.max_surge.as_ref()),
        replicas,
        quarter(true),
        true,
    );
    let max_unavailable = scaled(
        rolling.and_then(|r| r.max_unavailable.as_ref()),
        replicas,
        quarter(false),
        false,
    );
    Rollout::RollingUpdate {
        max_surge,
        max_unavailable: if max_surge == 0 && max_unavailable == 0 {
            1
        } else {
            max_unavailable
        },
    }
}

/// The template's hash (the ReplicaSet name suffix plays this part).
pub fn template_hash(deployment: &Deployment) -> String {
    let template = deployment.spec.as_ref().map(|s| &s.template);
    let digest = Sha256::digest(serde_json::to_vec(&template).unwrap_or_default());
    digest.iter().take(5).map(|b| format!("{b:02x}")).collect()
}

fn replica_pod(pod: &Pod) -> ReplicaPod {
    let meta = &pod.metadata;
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    let ready = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    ReplicaPod {
        name: meta.name.clone().unwrap_or_default(),
        hash: meta
            .labels
            .as_ref()
            .and_then(|l| l.get(TEMPLATE_HASH).cloned())
            .unwrap_or_default(),
        ready,
        finished: matches!(phase, Some("Succeeded" | "Failed")),
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

/// A new pod of `deployment` on `node`.
pub fn new_pod(deployment: &Deployment, hash: &str, node: &str) -> Pod {
    let name = deployment.metadata.name.clone().unwrap_or_default();
    let template = deployment.spec.clone().unwrap_or_default().template;
    let mut labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(TEMPLATE_HASH.into(), hash.into());
    let mut spec = template.spec.unwrap_or_default();
    spec.node_name = Some(node.into());
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-{hash}-")),
            namespace: deployment.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: template.metadata.and_then(|m| m.annotations),
            owner_references: Some(vec![OwnerReference {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                name,
                uid: deployment.metadata.uid.clone().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// Whether `pod` is controlled by the object with `uid`.
pub(crate) fn controlled_by(pod: &Pod, uid: &str) -> bool {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && o.uid == uid)
}

/// The node of each pod, counted.
pub(crate) fn load_of(pods: &[&Pod]) -> BTreeMap<String, usize> {
    let mut load = BTreeMap::new();
    for pod in pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
    {
        if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) {
            *load.entry(node).or_insert(0) += 1;
        }
    }
    load
}

/// One pass over one Deployment.
async fn sync(
    client: &kube::Client,
    deployment: &Deployment,
    nodes: &[Node],
    pods: &[Pod],
) -> Result<(), kube::Error> {
    let namespace = deployment.metadata.namespace.clone().unwrap_or_default();
    let uid = deployment.metadata.uid.clone().unwrap_or_default();
    let owned: Vec<&Pod> = pods.iter().filter(|p| controlled_by(p, &uid)).collect();
    let replicas = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1)
        .max(0) as usize;
    let hash = template_hash(deployment);
    let views: Vec<ReplicaPod> = owned.iter().map(|p| replica_pod(p)).collect();
    let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let mut load = load_of(&owned);
    let template = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.clone())
        .unwrap_or_default();
    for step in plan(replicas, &hash, &views, rollout(deployment, replicas)) {
        tracing::info!(deployment = ?deployment.metadata.name, ?step, "deployment step");
        match step {
            Step::Create(count) => {
                for _ in 0..count {
                    let Some(node) = pick_node(&template, nodes, &load) else {
                        tracing::warn!(deployment = ?deployment.metadata.name, "no node fits the pod");
                        break;
                    };
                    api.create(&PostParams::default(), &new_pod(deployment, &hash, &node))
                        .await?;
                    *load.entry(node).or_insert(0) += 1;
                }
            }
            Step::Delete(pod) => match api.delete(&pod, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(error) => return Err(error),
            },
        }
    }
    let live: Vec<&ReplicaPod> = views
        .iter()
        .filter(|p| !p.terminating && !p.finished)
        .collect();
    let ready = live.iter().filter(|p| p.ready).count();
    let updated = live.iter().filter(|p| p.hash == hash).count();
    let condition = |kind: &str, holds: bool, reason: &str| json!({"type": kind, "status": if holds { "True" } else { "False" }, "reason": reason});
    let available = ready
        >= replicas.saturating_sub(match rollout(deployment, replicas) {
            Rollout::RollingUpdate {
                max_unavailable, ..
            } => max_unavailable,
            Rollout::Recreate => replicas,
        });
    let complete = updated == replicas && live.len() == replicas && ready == replicas;
    let status = json!({
        // What `kubectl rollout status`, `kubectl wait` and Helm's
        // waiters read.
        "conditions": [
            condition("Available", available,
                      if available { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" }),
            condition("Progressing", true,
                      if complete { "NewReplicaSetAvailable" } else { "ReplicaSetUpdated" }),
        ],
        "replicas": live.len(),
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "unavailableReplicas": replicas.saturating_sub(ready),
        "observedGeneration": deployment.metadata.generation,
    });
    crate::patch_status(client, deployment, status).await
}

/// Runs the controller until `shutdown` turns `true`.
pub async fn run(client: kube::Client, shutdown: watch::Receiver<bool>) {
    crate::poll_each::<Deployment>(client, shutdown, |_| false, sync).await;
}

#[cfg(test)]
#[path = "deployment_tests.rs"]
mod tests;
