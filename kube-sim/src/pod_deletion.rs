//! Graceful deletion of pods, as the real server's pod strategy does it
//! (`pkg/registry/core/pod/strategy.go`, `CheckGracefulDelete`): the grace
//! period is the request's `gracePeriodSeconds`, else the pod's
//! `terminationGracePeriodSeconds` (default 30); a pod not bound to a node,
//! or already finished, goes at once. With a grace period the pod stays,
//! terminating, until its kubelet has stopped it and deletes it with grace
//! 0 — so a DaemonSet's replacement pod waits for the old one to be gone.

use serde_json::Value;

/// The default `terminationGracePeriodSeconds`.
const DEFAULT_GRACE_SECONDS: i64 = 30;

/// The grace period a deletion of `pod` gets; 0 deletes it at once.
pub fn grace_period(pod: &Value, requested: Option<i64>) -> i64 {
    let bound = pod["spec"]["nodeName"]
        .as_str()
        .is_some_and(|n| !n.is_empty());
    let finished = matches!(
        pod["status"]["phase"].as_str(),
        Some("Failed" | "Succeeded")
    );
    if !bound || finished {
        return 0;
    }
    requested
        .or_else(|| pod["spec"]["terminationGracePeriodSeconds"].as_i64())
        .unwrap_or(DEFAULT_GRACE_SECONDS)
        .max(0)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_a_bound_running_pod_gets_a_grace_period() {
        let bound = json!({"spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 12}});
        assert_eq!(grace_period(&bound, None), 12);
        assert_eq!(grace_period(&bound, Some(0)), 0);
        assert_eq!(grace_period(&bound, Some(5)), 5);
        assert_eq!(grace_period(&json!({"spec": {"nodeName": "n1"}}), None), 30);
        assert_eq!(grace_period(&json!({"spec": {}}), None), 0);
        let done = json!({"spec": {"nodeName": "n1"}, "status": {"phase": "Succeeded"}});
        assert_eq!(grace_period(&done, None), 0);
    }
}
