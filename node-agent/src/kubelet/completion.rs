//! The containers of a pod that runs to completion (`restartPolicy`
//! `Never` or `OnFailure`, as a Job's pods are): each runs in the
//! foreground with `runc run`, so its exit code is known, and is started
//! again only under `OnFailure` after a non-zero exit (with the kubelet's
//! back-off). The pod's phase then becomes `Succeeded` or `Failed` and its
//! containers stay down until the pod is deleted, as the kubelet leaves a
//! finished pod.
//!
//! Unlike a long-running container, one started this way gets no device
//! rules between `create` and `start` (`runc run` does both): the same
//! simplification as for init containers, which the proxies' privileged
//! pods do not notice.

use std::time::{Duration, Instant};

use futures::future::join_all;
use k8s_openapi::api::core::v1::Pod;
use tokio::sync::{Mutex, watch};

use super::context::{NodeContext, Sandbox, container_id, now};
use super::pod::Stop;
use super::status::PodView;

/// Whether `pod`'s containers run to completion.
pub fn completes(pod: &Pod) -> bool {
    let policy = pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref());
    matches!(policy, Some("Never" | "OnFailure"))
}

/// Runs every container of `pod` until it completes (or a stop request);
/// the pod's view is kept and reported as they go.
pub async fn run_to_completion(
    sandbox: Sandbox<'_>,
    view: &mut PodView,
    stop: &watch::Receiver<Stop>,
) {
    let Sandbox {
        node,
        pod,
        files,
        netns,
        short,
        dir,
    } = sandbox;
    let spec = pod.spec.clone().unwrap_or_default();
    let retry = spec.restart_policy.as_deref() == Some("OnFailure");
    let shared = Mutex::new(std::mem::take(view));
    let runs = spec.containers.iter().enumerate().map(|(i, container)| {
        let shared = &shared;
        let mut stop = stop.clone();
        async move {
            let id = container_id(&node.id_prefix, short, &container.name);
            let log = dir.join(format!("{}.log", container.name));
            loop {
                let bundle = node.bundle(pod, container, files, netns, &id).await;
                let outcome = match bundle {
                    Err(waiting) => Err(waiting),
                    Ok((bundle, _, _)) => {
                        {
                            let mut v = shared.lock().await;
                            let c = &mut v.containers[i];
                            (c.running, c.waiting, c.exit_code) = (true, None, None);
                            c.started_at = Some(now());
                            node.report(pod, &v).await;
                        }
                        let stopped = tokio::select! {
                            code = node.runc.run(&id, &bundle, &log) => Ok(code),
                            stopped = stop.wait_for(Option::is_some) => {
                                Err(stopped.ok().and_then(|s| *s).unwrap_or(30))
                            }
                        };
                        match stopped {
                            Ok(code) => code
                                .map_err(|e| ("RunContainerError".to_string(), e.to_string())),
                            Err(grace) => {
                                stop_container(node, &id, grace).await;
                                return;
                            }
                        }
                    }
                };
                let mut v = shared.lock().await;
                let c = &mut v.containers[i];
                c.running = false;
                // A container that could not be made is tried again (it
                // never ran); one that exited, only under `OnFailure`.
                let wait = match outcome {
                    Ok(code) => {
                        c.exit_code = Some(code);
                        if !(retry && code != 0) {
                            node.report(pod, &v).await;
                            return;
                        }
                        c.restart_count += 1;
                        node.backoff(c.restart_count)
                    }
                    Err(waiting) => {
                        tracing::warn!(container = %id, reason = %waiting.0, message = %waiting.1, "container not started");
                        c.waiting = Some(waiting);
                        Duration::from_secs(2)
                    }
                };
                node.report(pod, &v).await;
                drop(v);
                if tokio::time::timeout(wait, stop.wait_for(Option::is_some))
                    .await
                    .is_ok()
                {
                    return;
                }
            }
        }
    });
    join_all(runs).await;
    *view = shared.into_inner();
}

/// Stops a container `runc run` is running: SIGTERM, SIGKILL once `grace`
/// seconds are over, then removes it.
async fn stop_container(node: &NodeContext, id: &str, grace: i64) {
    let _ = node.runc.kill(id, "TERM").await;
    let deadline = Instant::now() + Duration::from_secs(grace.max(0) as u64);
    node.stop_by(id, deadline).await;
}
