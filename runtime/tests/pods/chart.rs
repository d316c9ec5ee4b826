//! The chart as an operator installs it, with real Helm (Helm 4's Go SDK),
//! onto nodes: the node agent's Deployment controller runs the controller's
//! replicas as pods, each node's kubelet runs them in runc containers from
//! the controller's image (`host/image.files`) as the chart's ServiceAccount
//! and non-root user, with the chart's environment; the proxies they render
//! run as in the other tests; at uninstall the Job controller runs the
//! pre-delete hook's pod the same way, and Helm waits for its Job.

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret, Service};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::jiff::Timestamp;
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

use crate::{assert_never_two_forwarders, http_port};
use playground::cluster::{NAMESPACE, Options, PodCluster, within};
use playground::helm_session::Helm;

/// The chart's values: the auth key, the fast lease profile, and what the
/// upgrades change (the runtime image's tag, the controller's memory limit).
fn values(runtime_tag: &str, memory_limit: &str) -> Value {
    json!({
        "tailscale": {"authKey": {"value": "tskey-auth-pods"}},
        "proxy": {
            "image": {"tag": runtime_tag},
            "lease": {"durationSeconds": 4, "renewDeadlineSeconds": 2, "retryPeriodSeconds": 1},
        },
        "controller": {"resources": {"limits": {"memory": memory_limit}}},
    })
}

/// Sends one request to Helm and waits for its answer.
async fn helm_do(helm: Helm, request: Value) -> Helm {
    let (answer, helm) = helm.send(request).await.unwrap();
    assert_eq!(answer["ok"], true, "{answer}");
    helm
}

/// The pods of the controller's Deployment: (name, node, ready).
async fn controller_pods(cluster: &PodCluster) -> Vec<(String, String, bool)> {
    let pods = Api::<Pod>::namespaced(cluster.sim.client(), NAMESPACE)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    pods.into_iter()
        .filter(|p| {
            let owners = p.metadata.owner_references.iter().flatten();
            owners.clone().any(|o| o.kind == "Deployment")
                && p.metadata.deletion_timestamp.is_none()
        })
        .map(|p| {
            let node = p.spec.as_ref().and_then(|s| s.node_name.clone());
            let conditions = p.status.as_ref().and_then(|s| s.conditions.clone());
            let ready = conditions
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            (p.name_any(), node.unwrap_or_default(), ready)
        })
        .collect()
}

/// Waits until the controller's two replicas are ready, none of `old`
/// among them; on two nodes if `spread` (the chart's spread constraint is
/// `ScheduleAnyway`: a fresh install spreads, a rollout's surge pods may
/// share a node, as with the real scheduler).
async fn controllers_ready(cluster: &PodCluster, old: &[String], spread: bool) -> Vec<String> {
    within(
        Duration::from_secs(120),
        "two ready controller pods",
        || async {
            let pods = controller_pods(cluster).await;
            let nodes: std::collections::BTreeSet<&String> = pods.iter().map(|p| &p.1).collect();
            let fresh = pods.iter().all(|p| !old.contains(&p.0));
            let placed = !spread || nodes.len() == 2;
            (pods.len() == 2 && placed && fresh && pods.iter().all(|p| p.2))
                .then(|| pods.iter().map(|p| p.0.clone()).collect())
        },
    )
    .await
}

/// The proxy's Lease: its holder (`None`: nobody, or released), when the
/// holder acquired it and when it last renewed it.
async fn lease_state(cluster: &PodCluster) -> Option<(Option<String>, Timestamp, Timestamp)> {
    let lease = Api::<Lease>::namespaced(cluster.sim.client(), NAMESPACE)
        .get(&PodCluster::names().lease)
        .await
        .ok()?;
    let spec = lease.spec?;
    let holder = spec.holder_identity.filter(|h| !h.is_empty());
    Some((holder, spec.acquire_time?.0, spec.renew_time?.0))
}

/// Who holds the proxy's Lease now.
async fn lease_holder(cluster: &PodCluster) -> Option<String> {
    lease_state(cluster).await?.0
}

/// Follows the Lease's holders: for each change of holder, the time from
/// the old holder's last renewal seen to the new one's acquisition. A
/// holder that released the Lease is followed within a retry period; one
/// that vanished without releasing it, only after the lease duration.
#[derive(Default)]
struct Handovers {
    last: Option<(String, Timestamp)>,
    gaps: Vec<Duration>,
}

impl Handovers {
    fn observe(&mut self, state: Option<(Option<String>, Timestamp, Timestamp)>) {
        let Some((Some(holder), acquired, renewed)) = state else {
            return;
        };
        if let Some((old, old_renewed)) = &self.last
            && *old != holder
        {
            let gap = acquired.duration_since(*old_renewed);
            self.gaps.push(gap.unsigned_abs());
        }
        self.last = Some((holder, renewed));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_runs_on_the_nodes_rolls_a_new_runtime_with_a_leader_and_uninstalls_leaving_nothing()
 {
    let options = Options {
        chart: true,
        ..Options::default()
    };
    let cluster = PodCluster::new("cj", options).await;
    let client = cluster.sim.client();
    let admin = cluster.dir.path().join("admin.kubeconfig");
    cluster.sim.write_kubeconfig(&admin).unwrap();
    let helm = Helm::start(Path::new(&admin));

    // Install: the controller runs as the chart's pods, on two nodes.
    let helm = helm_do(
        helm,
        json!({"op": "install", "values": values("", "256Mi")}),
    )
    .await;
    let first = controllers_ready(&cluster, &[], true).await;

    // A Service of the class is served through the tailnet.
    cluster.create_service(http_port()).await;
    let ip = cluster.ingress(Duration::from_secs(90)).await;
    assert!(cluster.reaches_backend(&ip, Duration::from_secs(20)));
    cluster.all_ready(2, Duration::from_secs(30)).await;
    let device = cluster
        .state(svc_lb_contract::state::DEVICE_ID)
        .await
        .unwrap();
    let daemonsets: Api<DaemonSet> = Api::namespaced(client.clone(), NAMESPACE);
    let proxy = daemonsets
        .get(&PodCluster::names().daemonset)
        .await
        .unwrap();
    let proxy_pods: Vec<String> = cluster.pods().await.iter().map(|p| p.name_any()).collect();

    // An upgrade of controller settings only rolls the controller's pods;
    // the new controller renders the same proxy, so no proxy pod restarts.
    let helm = helm_do(
        helm,
        json!({"op": "upgrade", "values": values("", "300Mi")}),
    )
    .await;
    controllers_ready(&cluster, &first, false).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = daemonsets
        .get(&PodCluster::names().daemonset)
        .await
        .unwrap();
    // (Its status changes as the node agent writes it; its spec does not.)
    assert_eq!(after.metadata.generation, proxy.metadata.generation);
    let now: Vec<String> = cluster.pods().await.iter().map(|p| p.name_any()).collect();
    assert_eq!(now, proxy_pods, "no proxy pod was replaced");

    // An upgrade of the runtime image (a version bump) rolls the proxies,
    // one surge pod per node; the Lease is handed over, never left to
    // expire, and the address keeps its device.
    let helm = helm_do(
        helm,
        json!({"op": "upgrade", "values": values("0.1.1-next", "300Mi")}),
    )
    .await;
    let rolled = |pod: &Pod| {
        let spec = pod.spec.as_ref().unwrap();
        spec.containers[0]
            .image
            .as_deref()
            .is_some_and(|i| i.ends_with(":0.1.1-next"))
    };
    let started = Instant::now();
    let mut handovers = Handovers::default();
    handovers.observe(lease_state(&cluster).await);
    let (mut unanswered, mut longest_unanswered) = (None::<Instant>, Duration::ZERO);
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "the proxies did not roll"
        );
        handovers.observe(lease_state(&cluster).await);
        match (cluster.ask_within(&ip, "1").is_some(), unanswered) {
            (false, None) => unanswered = Some(Instant::now()),
            (true, Some(since)) => {
                longest_unanswered = longest_unanswered.max(since.elapsed());
                unanswered = None;
            }
            _ => {}
        }
        let pods = cluster.pods().await;
        let states = cluster.proxy_states().await;
        if pods.len() == 2 && pods.iter().all(rolled) && states == [(true, true); 2] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rolled_in = started.elapsed();
    // The last old pod may have released the Lease just now: its
    // successor's first try comes within a retry period.
    within(Duration::from_secs(10), "a leader after the roll", || {
        lease_holder(&cluster)
    })
    .await;
    handovers.observe(lease_state(&cluster).await);
    eprintln!(
        "runtime roll: {rolled_in:?}; handovers (old holder's last renewal to the new one's \
         acquisition) {:?}; longest unanswered {longest_unanswered:?}",
        handovers.gaps
    );
    let (_, leader) = cluster.leader().await.expect("a leader");
    let pods: Vec<String> = cluster.pods().await.iter().map(|p| p.name_any()).collect();
    assert!(
        pods.contains(&leader) && !proxy_pods.contains(&leader),
        "a rolled pod leads ({leader} of {pods:?})"
    );
    // Every old leader released the Lease: none was left to expire (4 s).
    assert!(!handovers.gaps.is_empty(), "the Lease changed hands");
    assert!(
        handovers.gaps.iter().all(|g| *g < Duration::from_secs(4)),
        "the Lease was handed over, not left to expire: {:?}",
        handovers.gaps
    );
    assert!(
        longest_unanswered < Duration::from_secs(4),
        "the address answered throughout but for a handover ({longest_unanswered:?})"
    );
    assert!(cluster.reaches_backend(&ip, Duration::from_secs(20)));
    assert_eq!(
        cluster
            .state(svc_lb_contract::state::DEVICE_ID)
            .await
            .unwrap(),
        device,
        "the same device"
    );
    assert_eq!(cluster.tailnet_devices(), 1);
    assert_never_two_forwarders(&cluster);

    // Uninstall: Helm runs the pre-delete hook Job, whose pod (on a node,
    // as its ServiceAccount) scales the controller to zero and tears the
    // proxy down; the leader logs out; then Helm removes the release.
    let uninstall = helm.send(json!({"op": "uninstall"}));
    let hook_node = within(Duration::from_secs(120), "the hook's pod", || async {
        let pods = Api::<Pod>::namespaced(client.clone(), NAMESPACE)
            .list(&ListParams::default().labels("batch.kubernetes.io/job-name"))
            .await
            .ok()?;
        pods.items
            .iter()
            .find_map(|p| p.spec.as_ref()?.node_name.clone())
    })
    .await;
    let (answer, _helm) = uninstall.await.unwrap();
    assert_eq!(answer["ok"], true, "{answer}");
    eprintln!("the uninstall hook ran on {hook_node}");
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let web = services.get("web").await.expect("the Service stays");
    assert!(web.finalizers().is_empty(), "no finalizer left");
    assert!(
        web.status
            .and_then(|s| s.load_balancer)
            .and_then(|l| l.ingress)
            .unwrap_or_default()
            .is_empty(),
        "no address left on the Service"
    );
    assert_eq!(cluster.logged_in_devices(), 0, "the device logged out");
    assert!(
        daemonsets
            .get_opt(&PodCluster::names().daemonset)
            .await
            .unwrap()
            .is_none()
    );
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NAMESPACE);
    assert!(
        secrets
            .get_opt(&PodCluster::names().state_secret)
            .await
            .unwrap()
            .is_none()
    );
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    assert!(
        deployments
            .get_opt("tailscale-svc-lb")
            .await
            .unwrap()
            .is_none()
    );
    let roles: Api<ClusterRole> = Api::all(client.clone());
    assert!(roles.get_opt("tailscale-svc-lb").await.unwrap().is_none());
    let bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
    assert!(
        bindings
            .get_opt("tailscale-svc-lb")
            .await
            .unwrap()
            .is_none()
    );
    // The namespace goes with its pods: the kubelets stop them all.
    within(Duration::from_secs(60), "the namespace to go", || async {
        let gone = Api::<Namespace>::all(client.clone())
            .get_opt(NAMESPACE)
            .await
            .ok()?
            .is_none();
        gone.then_some(())
    })
    .await;
    within(
        Duration::from_secs(30),
        "every container to stop",
        || async {
            cluster
                .nodes
                .iter()
                .all(|n| n.kubelet.containers().is_empty())
                .then_some(())
        },
    )
    .await;
}

/// The commands of the README's Install section (its first `sh` block).
fn readme_install_commands() -> Vec<String> {
    let readme = include_str!("../../../README.md");
    let section = readme
        .split("\n## Install\n")
        .nth(1)
        .expect("an Install section");
    let block = section.split("```sh\n").nth(1).expect("a sh block");
    let block = block.split("```").next().unwrap();
    block
        .lines()
        .map(|l| l.split("  #").next().unwrap().trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Runs `command` as a user types it, with the cluster's kubeconfig.
fn run_as_typed(command: &str, kubeconfig: &Path) -> std::process::Output {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::process::Command::new("bash")
        .args(["-c", command])
        .current_dir(repo)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .expect("bash")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_install_commands_give_the_example_service_a_tailnet_address() {
    let commands = readme_install_commands();
    assert!(
        commands.iter().any(|c| c.starts_with("helm install")),
        "{commands:?}"
    );
    let options = Options {
        chart: true,
        deploy_label: false,
        ..Options::default()
    };
    let cluster = PodCluster::new("i", options).await;
    let kubeconfig = cluster.dir.path().join("admin.kubeconfig");
    cluster.sim.write_kubeconfig(&kubeconfig).unwrap();
    let (last, steps) = commands.split_last().unwrap();
    for command in steps {
        // `<node>` stands for each node the operator picks: here, all.
        let typed: Vec<String> = if command.contains("<node>") {
            (0..cluster.nodes.len())
                .map(|i| command.replace("<node>", &format!("node-{i}")))
                .collect()
        } else {
            vec![command.clone()]
        };
        for typed in typed {
            let output = run_as_typed(&typed, &kubeconfig);
            assert!(
                output.status.success(),
                "`{typed}` failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    // The last command shows the address once the proxy has joined.
    let shown = within(Duration::from_secs(120), "an EXTERNAL-IP", || async {
        let output = run_as_typed(last, &kubeconfig);
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next()?.split_whitespace().collect();
        let column = header.iter().position(|h| *h == "EXTERNAL-IP")?;
        let row: Vec<&str> = lines.next()?.split_whitespace().collect();
        row.get(column)?.starts_with("100.").then_some(text)
    })
    .await;
    eprintln!("{last}\n{shown}");
}
