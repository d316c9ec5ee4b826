//! The Job controller, as `pkg/controller/job` behaves for a Job that runs
//! one pod to completion (a Helm hook's, with the default `completions`
//! and `parallelism` of 1): a pod from the template, labelled with the
//! Job's name and uid (`batch.kubernetes.io/job-name`,
//! `batch.kubernetes.io/controller-uid` and their legacy twins), owned by
//! the Job and placed by [`crate::scheduling::pick_node`]; a failed pod is
//! replaced until `backoffLimit` (default 6) failures; `activeDeadlineSeconds`
//! fails the Job and stops its pod. The status follows batch/v1 since 1.31:
//! `startTime`, `active`, `ready`, `succeeded`, `failed`, then
//! `SuccessCriteriaMet` and `Complete` (with `completionTime`), or
//! `FailureTarget` and `Failed` — the conditions Helm waits for.
//!
//! Not modelled: several completions or parallel pods, indexed Jobs, pod
//! failure policies, the back-off delay between retries (a new pod comes at
//! once), suspension and the `job-tracking` finalizer.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::deployment::{controlled_by, load_of};
use crate::scheduling::pick_node;

/// The Job's pods, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PodCounts {
    pub active: usize,
    pub ready: usize,
    pub succeeded: usize,
    pub failed: usize,
}

/// What the controller does with a Job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to do: its pod runs (or the Job is finished).
    Wait,
    /// Create its pod.
    Create,
    /// The Job succeeded.
    Complete,
    /// The Job failed: (reason, message); its active pods are stopped.
    Fail(String, String),
}

/// The verdict for a Job with `counts`, started `elapsed` ago.
pub fn verdict(
    counts: PodCounts,
    backoff_limit: usize,
    deadline: Option<Duration>,
    elapsed: Duration,
) -> Verdict {
    if counts.succeeded >= 1 {
        return Verdict::Complete;
    }
    if counts.failed > backoff_limit {
        return Verdict::Fail(
            "BackoffLimitExceeded".into(),
            "Job has reached the specified backoff limit".into(),
        );
    }
    if deadline.is_some_and(|d| elapsed >= d) {
        return Verdict::Fail(
            "DeadlineExceeded".into(),
            "Job was active longer than specified deadline".into(),
        );
    }
    if counts.active == 0 {
        Verdict::Create
    } else {
        Verdict::Wait
    }
}

fn counts(pods: &[&Pod]) -> PodCounts {
    let mut counts = PodCounts::default();
    for pod in pods {
        let status = pod.status.as_ref();
        match status.and_then(|s| s.phase.as_deref()) {
            Some("Succeeded") => counts.succeeded += 1,
            Some("Failed") => counts.failed += 1,
            _ if pod.metadata.deletion_timestamp.is_some() => {}
            _ => {
                counts.active += 1;
                let ready = status
                    .and_then(|s| s.conditions.as_ref())
                    .into_iter()
                    .flatten()
                    .any(|c| c.type_ == "Ready" && c.status == "True");
                counts.ready += usize::from(ready);
            }
        }
    }
    counts
}

/// Whether the Job has a `Complete` or `Failed` condition.
fn finished(job: &Job) -> bool {
    let conditions = job.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions
        .into_iter()
        .flatten()
        .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
}

/// A new pod of `job` on `node`.
pub fn new_pod(job: &Job, node: &str) -> Pod {
    let name = job.metadata.name.clone().unwrap_or_default();
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let template = job.spec.clone().unwrap_or_default().template;
    let mut labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    for (key, value) in [
        ("batch.kubernetes.io/controller-uid", &uid),
        ("batch.kubernetes.io/job-name", &name),
        ("controller-uid", &uid),
        ("job-name", &name),
    ] {
        labels.insert(key.into(), value.clone());
    }
    let mut spec = template.spec.unwrap_or_default();
    spec.node_name = Some(node.into());
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            namespace: job.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: template.metadata.and_then(|m| m.annotations),
            owner_references: Some(vec![OwnerReference {
                api_version: "batch/v1".into(),
                kind: "Job".into(),
                name,
                uid,
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

fn condition(kind: &str, reason: &str, message: &str, now: &str) -> Value {
    json!({"type": kind, "status": "True", "reason": reason, "message": message,
           "lastProbeTime": now, "lastTransitionTime": now})
}

/// One pass over one Job.
async fn sync(
    client: &kube::Client,
    job: &Job,
    nodes: &[Node],
    pods: &[Pod],
) -> Result<(), kube::Error> {
    let namespace = job.metadata.namespace.clone().unwrap_or_default();
    let name = job.metadata.name.clone().unwrap_or_default();
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let owned: Vec<&Pod> = pods.iter().filter(|p| controlled_by(p, &uid)).collect();
    let spec = job.spec.clone().unwrap_or_default();
    let now = Timestamp::now();
    let start = job
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map_or(now, |t| t.0);
    let elapsed = now.duration_since(start).unsigned_abs();
    let counts = counts(&owned);
    let verdict = verdict(
        counts,
        spec.backoff_limit.unwrap_or(6).max(0) as usize,
        spec.active_deadline_seconds
            .map(|s| Duration::from_secs(s.max(0) as u64)),
        elapsed,
    );
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let stamp = now.to_string();
    let mut status = json!({
        "startTime": start.to_string(),
        "active": counts.active,
        "ready": counts.ready,
        "succeeded": counts.succeeded,
        "failed": counts.failed,
    });
    match verdict {
        Verdict::Wait => {}
        Verdict::Create => {
            let template = spec.template.spec.clone().unwrap_or_default();
            match pick_node(&template, nodes, &load_of(&owned)) {
                Some(node) => {
                    pods_api
                        .create(&PostParams::default(), &new_pod(job, &node))
                        .await?;
                    status["active"] = json!(1);
                }
                None => tracing::warn!(job = %name, "no node fits the pod"),
            }
        }
        Verdict::Complete => {
            status["completionTime"] = json!(stamp);
            status["conditions"] = json!([
                condition(
                    "SuccessCriteriaMet",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                    &stamp
                ),
                condition(
                    "Complete",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                    &stamp
                ),
            ]);
        }
        Verdict::Fail(reason, message) => {
            for pod in owned
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
            {
                let pod_name = pod.metadata.name.clone().unwrap_or_default();
                let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
                if !matches!(phase, Some("Succeeded" | "Failed")) {
                    let _ = pods_api.delete(&pod_name, &DeleteParams::default()).await;
                }
            }
            status["active"] = json!(0);
            status["conditions"] = json!([
                condition("FailureTarget", &reason, &message, &stamp),
                condition("Failed", &reason, &message, &stamp),
            ]);
        }
    }
    crate::patch_status(client, job, status).await
}

/// Runs the controller until `shutdown` turns `true`.
pub async fn run(client: kube::Client, shutdown: watch::Receiver<bool>) {
    crate::poll_each::<Job>(client, shutdown, finished, sync).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_DEADLINE: Option<Duration> = None;

    fn with(active: usize, succeeded: usize, failed: usize) -> PodCounts {
        PodCounts {
            active,
            ready: 0,
            succeeded,
            failed,
        }
    }

    #[test]
    fn a_job_runs_one_pod_and_completes_when_it_succeeds() {
        let zero = Duration::ZERO;
        assert_eq!(
            verdict(with(0, 0, 0), 6, NO_DEADLINE, zero),
            Verdict::Create
        );
        assert_eq!(verdict(with(1, 0, 0), 6, NO_DEADLINE, zero), Verdict::Wait);
        assert_eq!(
            verdict(with(0, 1, 1), 6, NO_DEADLINE, zero),
            Verdict::Complete
        );
    }

    #[test]
    fn failures_are_retried_up_to_the_backoff_limit_and_the_deadline_ends_the_job() {
        let zero = Duration::ZERO;
        assert_eq!(
            verdict(with(0, 0, 2), 2, NO_DEADLINE, zero),
            Verdict::Create
        );
        let exceeded = verdict(with(0, 0, 3), 2, NO_DEADLINE, zero);
        assert!(matches!(exceeded, Verdict::Fail(ref r, _) if r == "BackoffLimitExceeded"));
        let late = verdict(
            with(1, 0, 0),
            2,
            Some(Duration::from_secs(360)),
            Duration::from_secs(361),
        );
        assert!(matches!(late, Verdict::Fail(ref r, _) if r == "DeadlineExceeded"));
    }

    #[test]
    fn a_pod_carries_the_jobs_labels_and_owner() {
        let job = Job {
            metadata: ObjectMeta {
                name: Some("tailscale-svc-lb-uninstall".into()),
                namespace: Some("tailscale-svc-lb".into()),
                uid: Some("j-uid".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let pod = new_pod(&job, "node-0");
        let labels = pod.metadata.labels.clone().unwrap();
        assert_eq!(
            labels["batch.kubernetes.io/job-name"],
            "tailscale-svc-lb-uninstall"
        );
        assert_eq!(labels["controller-uid"], "j-uid");
        assert!(controlled_by(&pod, "j-uid"));
        assert_eq!(pod.spec.unwrap().node_name.as_deref(), Some("node-0"));
    }
}
