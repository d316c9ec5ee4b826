//! A pod's status as the kubelet reports it (`pkg/kubelet/status`,
//! `generateAPIPodStatus`), computed from what the agent knows of its
//! containers: phase, the `PodScheduled`, `Initialized`, `ContainersReady`
//! and `Ready` conditions, and one status per container.

use serde_json::{Value, json};

/// What the agent knows of one container.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerView {
    pub name: String,
    pub image: String,
    /// Running now.
    pub running: bool,
    /// Readiness (a container without a readiness probe is ready while it
    /// runs).
    pub ready: bool,
    pub restart_count: i32,
    /// Why it is not running: (reason, message).
    pub waiting: Option<(String, String)>,
    /// Exit code of a finished (init) container.
    pub exit_code: Option<i32>,
    /// When it last started (RFC 3339).
    pub started_at: Option<String>,
}

/// What the agent knows of one pod.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodView {
    pub pod_ip: Option<String>,
    pub host_ip: String,
    pub start_time: String,
    pub init: Vec<ContainerView>,
    pub containers: Vec<ContainerView>,
    /// The pod's containers run to completion (`restartPolicy` `Never` or
    /// `OnFailure`).
    pub completes: bool,
    /// `OnFailure`: a failed container is started again, so the pod never
    /// fails (it runs until every container has succeeded).
    pub retries_failures: bool,
}

fn container_status(c: &ContainerView) -> Value {
    let state = if c.running {
        json!({"running": {"startedAt": c.started_at}})
    } else if let Some(code) = c.exit_code {
        json!({"terminated": {"exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" }}})
    } else {
        let (reason, message) = c
            .waiting
            .clone()
            .unwrap_or(("ContainerCreating".into(), String::new()));
        json!({"waiting": {"reason": reason, "message": message}})
    };
    json!({
        "name": c.name,
        "image": c.image,
        "imageID": "",
        "ready": c.ready,
        "started": c.running,
        "restartCount": c.restart_count,
        "state": state,
    })
}

fn condition(kind: &str, holds: bool, now: &str) -> Value {
    json!({
        "type": kind,
        "status": if holds { "True" } else { "False" },
        "lastTransitionTime": now,
    })
}

/// The pod's phase (`getPhase`): a pod that completes is `Succeeded` once
/// every container exited 0 and, under `Never`, `Failed` once all exited
/// with one failing (under `OnFailure` it is `Running` while the failed one
/// is restarted); otherwise `Running` once a container ran, else `Pending`.
fn phase(view: &PodView, initialized: bool) -> &'static str {
    let containers = &view.containers;
    let finished = !containers.is_empty()
        && containers
            .iter()
            .all(|c| !c.running && c.exit_code.is_some() && c.waiting.is_none());
    if view.completes && initialized && finished {
        if containers.iter().all(|c| c.exit_code == Some(0)) {
            "Succeeded"
        } else if view.retries_failures {
            "Running"
        } else {
            "Failed"
        }
    } else if initialized && containers.iter().any(|c| c.running || c.restart_count > 0) {
        "Running"
    } else {
        "Pending"
    }
}

/// The `status` of the pod.
pub fn pod_status(view: &PodView, now: &str) -> Value {
    let initialized = view.init.iter().all(|c| c.exit_code == Some(0));
    let ready =
        initialized && !view.containers.is_empty() && view.containers.iter().all(|c| c.ready);
    let phase = phase(view, initialized);
    let mut status = json!({
        "phase": phase,
        "hostIP": view.host_ip,
        "hostIPs": [{"ip": view.host_ip}],
        "startTime": view.start_time,
        "conditions": [
            condition("PodScheduled", true, now),
            condition("Initialized", initialized, now),
            condition("ContainersReady", ready, now),
            condition("Ready", ready, now),
        ],
        "initContainerStatuses": view.init.iter().map(container_status).collect::<Vec<_>>(),
        "containerStatuses": view.containers.iter().map(container_status).collect::<Vec<_>>(),
    });
    if let Some(ip) = &view.pod_ip {
        status["podIP"] = json!(ip);
        status["podIPs"] = json!([{"ip": ip}]);
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(ready: bool) -> ContainerView {
        ContainerView {
            name: "proxy".into(),
            running: true,
            ready,
            ..Default::default()
        }
    }

    #[test]
    fn a_pod_is_ready_when_initialised_and_every_container_is_ready() {
        let mut view = PodView {
            pod_ip: Some("10.200.0.2".into()),
            host_ip: "10.201.0.1".into(),
            init: vec![ContainerView {
                name: "enable-forwarding".into(),
                exit_code: Some(0),
                ..Default::default()
            }],
            containers: vec![running(false)],
            ..Default::default()
        };
        let status = pod_status(&view, "t");
        assert_eq!(status["phase"], "Running");
        assert_eq!(status["podIP"], "10.200.0.2");
        assert_eq!(status["conditions"][3]["type"], "Ready");
        assert_eq!(status["conditions"][3]["status"], "False");
        view.containers[0].ready = true;
        assert_eq!(pod_status(&view, "t")["conditions"][3]["status"], "True");
    }

    #[test]
    fn a_pod_whose_init_container_failed_stays_pending_and_says_why() {
        let view = PodView {
            init: vec![ContainerView {
                name: "init".into(),
                exit_code: Some(1),
                restart_count: 2,
                ..Default::default()
            }],
            containers: vec![ContainerView {
                name: "proxy".into(),
                waiting: Some(("PodInitializing".into(), String::new())),
                ..Default::default()
            }],
            ..Default::default()
        };
        let status = pod_status(&view, "t");
        assert_eq!(status["phase"], "Pending");
        assert_eq!(status["conditions"][1]["status"], "False");
        assert_eq!(
            status["initContainerStatuses"][0]["state"]["terminated"]["exitCode"],
            1
        );
        assert_eq!(
            status["containerStatuses"][0]["state"]["waiting"]["reason"],
            "PodInitializing"
        );
        assert!(status.get("podIP").is_none());
    }

    #[test]
    fn a_pod_that_completes_succeeds_when_every_container_exited_zero_and_fails_otherwise() {
        let exited = |code| ContainerView {
            name: "uninstall".into(),
            exit_code: Some(code),
            ..Default::default()
        };
        let mut view = PodView {
            containers: vec![exited(0)],
            completes: true,
            ..Default::default()
        };
        assert_eq!(pod_status(&view, "t")["phase"], "Succeeded");
        assert_eq!(
            pod_status(&view, "t")["containerStatuses"][0]["state"]["terminated"]["reason"],
            "Completed"
        );
        view.containers.push(exited(2));
        assert_eq!(pod_status(&view, "t")["phase"], "Failed");
        // Under OnFailure the failed container is restarted: never Failed.
        view.retries_failures = true;
        assert_eq!(pod_status(&view, "t")["phase"], "Running");
        view.retries_failures = false;
        view.containers[1].running = true;
        assert_eq!(pod_status(&view, "t")["phase"], "Running");
        // The same exits in a pod that restarts: never a final phase.
        view.containers[1].running = false;
        view.completes = false;
        assert_eq!(pod_status(&view, "t")["phase"], "Pending");
    }
}
