//! One pod's life on the node, as the kubelet's pod worker runs it: the
//! sandbox (network namespace and address, then the pod's IP in its
//! status), the pod's files, init containers one after another to
//! completion (retried with back-off), then every container started with
//! `runc create` and `runc start`, restarted with back-off when it exits
//! (a pod that runs to completion instead: [`super::completion`]),
//! probed for readiness and liveness; the status written back whenever it
//! changes. Stopping: `preStop` exec hooks, SIGTERM, SIGKILL once the grace
//! period is over, the sandbox removed, and the pod object deleted for good
//! when the API server was waiting for that.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Pod};
use kube::Api;
use kube::api::{DeleteParams, Preconditions};
use tokio::sync::watch;

use super::completion::{completes, run_to_completion};
use super::context::{NodeContext, Sandbox, container_id, now, pod_dir, short_id};
use super::files::make_pod_files;
use super::probe::{self, HttpProbe};
use super::status::{ContainerView, PodView};

/// A stop request: the grace period in seconds.
pub type Stop = Option<i64>;

/// One container of the pod and what the worker knows of it.
struct Running {
    container: Container,
    id: String,
    view: ContainerView,
    started: bool,
    next_start: Instant,
    readiness: Option<HttpProbe>,
    liveness: Option<HttpProbe>,
    next_readiness: Instant,
    next_liveness: Instant,
    readiness_failures: u32,
    liveness_failures: u32,
}

/// Waits for a stop request.
async fn stop_requested(stop: &mut watch::Receiver<Stop>) {
    let _ = stop.wait_for(Option::is_some).await;
}

/// Waits `limit` for a stop request; its grace period if one came.
async fn stopped_within(stop: &mut watch::Receiver<Stop>, limit: Duration) -> Stop {
    let _ = tokio::time::timeout(limit, stop.wait_for(Option::is_some)).await;
    *stop.borrow()
}

/// Runs `pod` on this node until a stop request, then stops it.
pub async fn run_pod(node: Arc<NodeContext>, mut pod: Pod, mut stop: watch::Receiver<Stop>) {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let short = short_id(&pod);
    let dir = pod_dir(&node.dir, &pod);
    let spec = pod.spec.clone().unwrap_or_default();
    let view_of = |c: &Container, reason: &str| ContainerView {
        name: c.name.clone(),
        image: c.image.clone().unwrap_or_default(),
        waiting: Some((reason.into(), String::new())),
        ..Default::default()
    };
    let mut view = PodView {
        host_ip: node.host_ip.clone(),
        start_time: now(),
        init: spec
            .init_containers
            .iter()
            .flatten()
            .map(|c| view_of(c, "PodInitializing"))
            .collect(),
        containers: spec
            .containers
            .iter()
            .map(|c| view_of(c, "ContainerCreating"))
            .collect(),
        completes: completes(&pod),
        retries_failures: spec.restart_policy.as_deref() == Some("OnFailure"),
        ..Default::default()
    };
    let address = {
        let mut used = node.addresses.lock().unwrap_or_else(|p| p.into_inner());
        let address = node.network.allocate(&used);
        if let Some(a) = address {
            used.insert(a);
        }
        address
    };
    let mut sandbox = None;
    if let Some(address) = address {
        match node.network.add_pod(&short, address).await {
            Ok(netns) => sandbox = Some((netns, address)),
            Err(error) => tracing::warn!(pod = %name, %error, "pod network not set up"),
        }
    }
    let mut files = None;
    if let Some((netns, address)) = &sandbox {
        view.pod_ip = Some(address.to_string());
        let status = pod.status.get_or_insert_default();
        status.pod_ip = Some(address.to_string());
        status.host_ip = Some(node.host_ip.clone());
        if let Some(hook) = &node.settings.overlay.network_hook {
            let result = tokio::process::Command::new(hook)
                .env("POD_NETNS", netns)
                .env("POD_NAME", &name)
                .env(
                    "POD_NAMESPACE",
                    pod.metadata.namespace.as_deref().unwrap_or_default(),
                )
                .env("POD_IP", address.to_string())
                .status()
                .await;
            if !result.is_ok_and(|s| s.success()) {
                tracing::warn!(pod = %name, hook = %hook.display(), "network hook failed");
            }
        }
        node.report(&pod, &view).await;
        while files.is_none() {
            match make_pod_files(&node.client, &pod, &address.to_string(), &node.ca_pem, &dir).await
            {
                Ok(made) => files = Some(made),
                Err(error) => {
                    let message = error.to_string();
                    tracing::warn!(pod = %name, error = %message, "pod files not made");
                    for c in &mut view.containers {
                        c.waiting = Some(("CreateContainerConfigError".into(), message.clone()));
                    }
                    node.report(&pod, &view).await;
                    if stopped_within(&mut stop, Duration::from_secs(2))
                        .await
                        .is_some()
                    {
                        break;
                    }
                }
            }
        }
    }
    let mut running: Vec<Running> = Vec::new();
    let started_in = match (&sandbox, &files) {
        (Some((netns, _)), Some(files)) => Some(Sandbox {
            node: &node,
            pod: &pod,
            files,
            netns,
            short: &short,
            dir: &dir,
        }),
        _ => None,
    };
    let initialized = match started_in {
        Some(sandbox) => run_init_containers(sandbox, &mut view, &mut stop).await,
        None => false,
    };
    if let (true, Some(sandbox)) = (initialized, started_in)
        && view.completes
    {
        run_to_completion(sandbox, &mut view, &stop).await;
        stop_requested(&mut stop).await;
    } else if let (true, Some(sandbox)) = (initialized, started_in) {
        let ip = view.pod_ip.clone().unwrap_or_default();
        let now_instant = Instant::now();
        for c in &spec.containers {
            running.push(Running {
                container: c.clone(),
                id: container_id(&node.id_prefix, &short, &c.name),
                view: view_of(c, "ContainerCreating"),
                started: false,
                next_start: now_instant,
                readiness: probe::resolve(c.readiness_probe.as_ref(), c),
                liveness: probe::resolve(c.liveness_probe.as_ref(), c),
                next_readiness: now_instant,
                next_liveness: now_instant,
                readiness_failures: 0,
                liveness_failures: 0,
            });
        }
        loop {
            for r in &mut running {
                tick(sandbox, r, &ip).await;
            }
            let next: Vec<ContainerView> = running.iter().map(|r| r.view.clone()).collect();
            if next != view.containers {
                view.containers = next;
                node.report(&pod, &view).await;
            }
            if stopped_within(&mut stop, Duration::from_millis(200))
                .await
                .is_some()
            {
                break;
            }
        }
    } else {
        stop_requested(&mut stop).await;
    }
    let grace = stop.borrow().unwrap_or(30);
    terminate(&node, &running, grace).await;
    if sandbox.is_some() {
        node.network.remove_pod(&short).await;
    }
    if let Some(address) = address {
        node.addresses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&address);
    }
    finish_deletion(&node, &mut pod).await;
}

/// Runs the init containers in order, each until it succeeds; `false` if
/// a stop came first.
async fn run_init_containers(
    sandbox: Sandbox<'_>,
    view: &mut PodView,
    stop: &mut watch::Receiver<Stop>,
) -> bool {
    let Sandbox {
        node,
        pod,
        files,
        netns,
        short,
        dir,
    } = sandbox;
    let init = pod
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.clone())
        .unwrap_or_default();
    for (i, container) in init.iter().enumerate() {
        let id = container_id(&node.id_prefix, short, &format!("init-{}", container.name));
        let log = dir.join(format!("{}.log", container.name));
        loop {
            let outcome = match node.bundle(pod, container, files, netns, &id).await {
                Err(waiting) => Err(waiting),
                Ok((bundle, _, _)) => {
                    let run = node.runc.run(&id, &bundle, &log);
                    tokio::select! {
                        code = run => code.map_err(|e| ("RunContainerError".to_string(), e.to_string())),
                        () = stop_requested(stop) => {
                            let _ = node.runc.delete(&id).await;
                            return false;
                        }
                    }
                }
            };
            let c = &mut view.init[i];
            match outcome {
                Ok(0) => {
                    c.exit_code = Some(0);
                    c.waiting = None;
                    node.report(pod, view).await;
                    break;
                }
                Ok(code) => {
                    c.exit_code = Some(code);
                    c.restart_count += 1;
                }
                Err(waiting) => c.waiting = Some(waiting),
            }
            let restarts = c.restart_count;
            node.report(pod, view).await;
            if stopped_within(stop, node.backoff(restarts)).await.is_some() {
                return false;
            }
        }
    }
    true
}

/// One pass over a container: start it when due, notice its exit, probe.
async fn tick(sandbox: Sandbox<'_>, r: &mut Running, ip: &str) {
    let Sandbox {
        node,
        pod,
        files,
        netns,
        dir,
        ..
    } = sandbox;
    let now = Instant::now();
    if !r.started {
        if now < r.next_start {
            return;
        }
        let log = dir.join(format!("{}.log", r.container.name));
        let started = match node.bundle(pod, &r.container, files, netns, &r.id).await {
            Err(waiting) => Err(waiting),
            Ok((bundle, cgroup, privileged)) => node
                .start(&bundle, &cgroup, privileged, &r.id, &log)
                .await
                .map_err(|e| ("RunContainerError".to_string(), e)),
        };
        match started {
            Ok(()) => {
                r.started = true;
                r.view.running = true;
                r.view.waiting = None;
                r.view.started_at = Some(self::now());
                r.view.ready = r.readiness.is_none();
                r.readiness_failures = 0;
                r.liveness_failures = 0;
                let delay = |p: &Option<HttpProbe>| {
                    now + p.as_ref().map_or(Duration::ZERO, |p| p.initial_delay)
                };
                r.next_readiness = delay(&r.readiness);
                r.next_liveness = delay(&r.liveness);
            }
            Err(waiting) => {
                tracing::warn!(container = %r.id, reason = %waiting.0, message = %waiting.1, "container not started");
                r.view.waiting = Some(waiting);
                r.next_start = now + Duration::from_secs(2);
            }
        }
        return;
    }
    let alive = node
        .runc
        .state(&r.id)
        .await
        .is_some_and(|s| s.status == "running");
    if !alive {
        let _ = node.runc.delete(&r.id).await;
        r.started = false;
        r.view.running = false;
        r.view.ready = false;
        r.view.restart_count += 1;
        r.view.waiting = Some((
            "CrashLoopBackOff".into(),
            format!("back-off restarting failed container {}", r.container.name),
        ));
        r.next_start = now + node.backoff(r.view.restart_count);
        return;
    }
    if let Some(p) = &r.readiness
        && now >= r.next_readiness
    {
        r.next_readiness = now + p.period;
        if probe::check(p, ip).await {
            r.readiness_failures = 0;
            r.view.ready = true;
        } else {
            r.readiness_failures += 1;
            if r.readiness_failures >= p.failure_threshold || !r.view.ready {
                r.view.ready = false;
            }
        }
    }
    if let Some(p) = &r.liveness
        && now >= r.next_liveness
    {
        r.next_liveness = now + p.period;
        if probe::check(p, ip).await {
            r.liveness_failures = 0;
        } else {
            r.liveness_failures += 1;
            if r.liveness_failures >= p.failure_threshold {
                // As the kubelet kills a container: preStop, SIGTERM, and
                // SIGKILL only after the grace period; restarted next pass.
                tracing::info!(container = %r.id, "liveness probe failed; stopping the container");
                let grace = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
                    .unwrap_or(30);
                terminate(node, std::slice::from_ref(&*r), grace).await;
            }
        }
    }
}

/// Stops the containers: `preStop` exec hooks, SIGTERM, SIGKILL after
/// `grace` seconds, then removes them.
async fn terminate(node: &NodeContext, running: &[Running], grace: i64) {
    let deadline = Instant::now() + Duration::from_secs(grace.max(0) as u64);
    for r in running.iter().filter(|r| r.started) {
        let hook = r
            .container
            .lifecycle
            .as_ref()
            .and_then(|l| l.pre_stop.as_ref());
        if let Some(command) = hook
            .and_then(|h| h.exec.as_ref())
            .and_then(|e| e.command.clone())
        {
            let mut exec = tokio::process::Command::new("runc");
            exec.arg("--root")
                .arg(node.runc.root())
                .args(["exec", &r.id])
                .args(command);
            let _ = tokio::time::timeout_at(deadline.into(), exec.status()).await;
        }
        let _ = node.runc.kill(&r.id, "TERM").await;
    }
    for r in running.iter().filter(|r| r.started) {
        node.stop_by(&r.id, deadline).await;
    }
}

/// Stops what is left of a terminating pod this kubelet runs no worker for
/// (deleted while the kubelet was away, or whose deletion did not finish):
/// its containers (SIGTERM, SIGKILL after `grace` seconds), its network,
/// then the pod object.
pub async fn clean_up(node: Arc<NodeContext>, mut pod: Pod, grace: i64) {
    let short = short_id(&pod);
    let prefix = container_id(&node.id_prefix, &short, "");
    let ids: Vec<String> = node
        .runc
        .list()
        .await
        .into_iter()
        .filter(|id| id.starts_with(&prefix))
        .collect();
    for id in &ids {
        let _ = node.runc.kill(id, "TERM").await;
    }
    let deadline = Instant::now() + Duration::from_secs(grace.max(0) as u64);
    for id in &ids {
        node.stop_by(id, deadline).await;
    }
    node.network.remove_pod(&short).await;
    finish_deletion(&node, &mut pod).await;
}

/// Deletes the pod object for good (grace 0) if the API server kept it
/// for this kubelet to finish.
async fn finish_deletion(node: &NodeContext, pod: &mut Pod) {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(node.client.clone(), &namespace);
    let Ok(current) = api.get(&name).await else {
        return;
    };
    if current.metadata.uid != pod.metadata.uid || current.metadata.deletion_timestamp.is_none() {
        return;
    }
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: pod.metadata.uid.clone(),
            resource_version: None,
        }),
        ..Default::default()
    };
    if let Err(error) = api.delete(&name, &params).await {
        tracing::warn!(pod = %name, %error, "pod not deleted after stopping");
    }
}
