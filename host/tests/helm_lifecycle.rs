//! The chart installed, upgraded and uninstalled with real Helm (Helm 4's
//! Go SDK, `scripts/chart.py session`) into kube-sim, with the controller
//! binary running as the chart's ServiceAccount with the chart's settings
//! (the Deployment's container environment), and the pre-delete hook Job run
//! as its own ServiceAccount. kube-sim has no Deployment or Job controller,
//! so the test plays them, as the real ones behave for what Helm and the
//! hook look at:
//! - the Deployment controller: replicas scaled to zero stop the pod
//!   (SIGTERM, so the controller releases its Lease);
//! - the Job controller and kubelet: the Job's container runs, with its
//!   ServiceAccount's token and the Job's environment; its exit is recorded
//!   in the Job's status (`succeeded` and the `SuccessCriteriaMet` and
//!   `Complete` conditions of batch/v1 since 1.31), which Helm waits for.
//!
//! No kubelet runs the proxies here (the node agent's tests do): the
//! leader's part (address, logout) is played through the state Secret.

#[path = "support/container_env.rs"]
mod container_env;
#[path = "support/process.rs"]
mod process;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use container_env::container_environment;
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Container, Namespace, Secret, Service, ServiceAccount};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use process::Process;
use serde_json::{Value, json};

const NS: &str = "tailscale-svc-lb";
const CLASS: &str = svc_lb_contract::DEFAULT_LOAD_BALANCER_CLASS;

/// `scripts/chart.py session`: Helm, driven line by line.
struct Helm {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Helm {
    fn start(kubeconfig: &Path) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/chart.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg("session")
            .arg(kubeconfig)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with helm-python-sdk");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Self {
            child,
            stdin,
            stdout,
        }
    }

    /// Sends `request`; the answer, on a blocking thread.
    fn send(&mut self, request: Value) -> tokio::task::JoinHandle<(Value, Self)> {
        writeln!(self.stdin, "{request}").unwrap();
        let mut me = std::mem::replace(self, Helm::placeholder());
        tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            me.stdout.read_line(&mut line).unwrap();
            (serde_json::from_str(&line).expect("a JSON answer"), me)
        })
    }

    fn placeholder() -> Self {
        let mut child = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        Self {
            stdin: child.stdin.take().unwrap(),
            stdout: BufReader::new(child.stdout.take().unwrap()),
            child,
        }
    }
}

impl Drop for Helm {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

async fn until<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A kubeconfig of the ServiceAccount `account` in `NS`, as its pods get it.
async fn account_kubeconfig(
    sim: &kube_sim::KubeSim,
    account: &str,
    dir: &Path,
) -> std::path::PathBuf {
    let accounts: Api<ServiceAccount> = Api::namespaced(sim.client(), NS);
    let request: TokenRequest = serde_json::from_value(json!({"spec": {"audiences": []}})).unwrap();
    let token = accounts
        .create_token_request(account, &PostParams::default(), &request)
        .await
        .unwrap()
        .status
        .unwrap()
        .token;
    let path = dir.join(format!("{account}.kubeconfig"));
    std::fs::write(&path, sim.kubeconfig().replace(sim.admin_token(), &token)).unwrap();
    path
}

/// Runs `container` as the binary would run in its pod.
fn run_container(container: &Container, pod: &str, kubeconfig: &Path) -> Process {
    let mut env = container_environment(container, pod);
    // Several tests may run at once on this machine: no fixed port.
    env.insert("SVCLB_METRICS_ADDRESS".into(), "127.0.0.1:0".into());
    env.insert("KUBECONFIG".into(), kubeconfig.display().to_string());
    Process::spawn(
        env!("CARGO_BIN_EXE_tailscale-svc-lb"),
        &container.args.clone().unwrap_or_default(),
        &env,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_installs_serves_upgrades_and_uninstalls_leaving_nothing() {
    let sim = kube_sim::KubeSim::start().await.unwrap();
    let client = sim.client();
    let dir = tempfile::tempdir().unwrap();
    let admin = dir.path().join("admin.kubeconfig");
    sim.write_kubeconfig(&admin).unwrap();
    let mut helm = Helm::start(&admin);

    // Install.
    let values = json!({"tailscale": {"authKey": {"value": "tskey-auth-chart"}}});
    let (answer, h) = helm
        .send(json!({"op": "install", "values": values}))
        .await
        .unwrap();
    helm = h;
    assert_eq!(answer["ok"], true, "{answer}");
    let namespace = Api::<Namespace>::all(client.clone()).get(NS).await.unwrap();
    assert_eq!(
        namespace.labels()["pod-security.kubernetes.io/enforce"],
        "privileged"
    );
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let deployment = deployments.get("tailscale-svc-lb").await.unwrap();
    let container = deployment
        .spec
        .clone()
        .unwrap()
        .template
        .spec
        .unwrap()
        .containers[0]
        .clone();

    // The controller, as the chart's ServiceAccount with the chart's settings.
    let controller_config = account_kubeconfig(&sim, "tailscale-svc-lb", dir.path()).await;
    let mut controller = run_container(&container, "tailscale-svc-lb-0", &controller_config);

    // A Service of the class gets its proxy.
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "shop"}})).unwrap(),
        )
        .await
        .unwrap();
    let services: Api<Service> = Api::namespaced(client.clone(), "shop");
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"type": "LoadBalancer", "loadBalancerClass": CLASS, "ports": [{"port": 80}]}
    }))
    .unwrap();
    services
        .create(&PostParams::default(), &service)
        .await
        .unwrap();
    let names = svc_lb_contract::ProxyNames::for_service("shop", "web");
    let daemonsets: Api<DaemonSet> = Api::namespaced(client.clone(), NS);
    let proxy = until("the proxy DaemonSet", Duration::from_secs(60), || async {
        daemonsets.get_opt(&names.daemonset).await.unwrap()
    })
    .await;
    // The leader joins the tailnet (played: no kubelet here).
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    let joined = json!({"data": {
        svc_lb_contract::state::DEVICE_IPS: ByteString(br#"["100.64.0.9"]"#.to_vec()),
        svc_lb_contract::state::DEVICE_ID: ByteString(b"nCHART1".to_vec()),
    }});
    secrets
        .patch(
            &names.state_secret,
            &PatchParams::default(),
            &Patch::Merge(joined),
        )
        .await
        .unwrap();
    until(
        "the address on the Service",
        Duration::from_secs(30),
        || async {
            let status = services.get("web").await.ok()?.status?;
            status.load_balancer?.ingress?.first()?.ip.clone()
        },
    )
    .await;

    // Upgrade of controller settings only: no proxy pod would restart.
    let values = json!({"tailscale": {"authKey": {"value": "tskey-auth-chart"}},
                        "controller": {"resources": {"limits": {"memory": "300Mi"}}}});
    let (answer, h) = helm
        .send(json!({"op": "upgrade", "values": values}))
        .await
        .unwrap();
    helm = h;
    assert_eq!(answer["ok"], true, "{answer}");
    // (The Deployment controller would restart the controller; the render
    // of the proxy does not change, so its DaemonSet is not written.)
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = daemonsets.get(&names.daemonset).await.unwrap();
    assert_eq!(after.resource_version(), proxy.resource_version());

    // Uninstall: Helm runs the pre-delete hook and waits for its Job.
    let uninstall = helm.send(json!({"op": "uninstall"}));
    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    let job = until(
        "the uninstall hook Job",
        Duration::from_secs(60),
        || async { jobs.get_opt("tailscale-svc-lb-uninstall").await.unwrap() },
    )
    .await;
    let hook_config = account_kubeconfig(&sim, "tailscale-svc-lb-uninstall", dir.path()).await;
    let hook_container = job.spec.clone().unwrap().template.spec.unwrap().containers[0].clone();
    let mut hook = run_container(
        &hook_container,
        "tailscale-svc-lb-uninstall-x",
        &hook_config,
    );
    // The Deployment controller: scaled to zero, the pod gets SIGTERM.
    until(
        "the controller scaled to zero",
        Duration::from_secs(60),
        || async {
            let replicas = deployments
                .get("tailscale-svc-lb")
                .await
                .ok()?
                .spec?
                .replicas?;
            (replicas == 0).then_some(())
        },
    )
    .await;
    controller.terminate();
    // The leader logs out when asked (played).
    until("the logout request", Duration::from_secs(60), || async {
        let secret = secrets.get(&names.state_secret).await.ok()?;
        secret
            .annotations()
            .contains_key(svc_lb_contract::keys::DEPROVISION_ANNOTATION)
            .then_some(())
    })
    .await;
    let logged_out = json!({"data": {
        svc_lb_contract::state::LOGGED_OUT: ByteString(b"2026-01-01T00:00:00Z".to_vec()),
    }});
    secrets
        .patch(
            &names.state_secret,
            &PatchParams::default(),
            &Patch::Merge(logged_out),
        )
        .await
        .unwrap();
    let status = hook.wait(Duration::from_secs(120));
    assert!(status.success(), "the hook failed: {}", hook.output());
    // The hook released the Service: no finalizer, no proxy, the
    // controller scaled to zero.
    let web = services.get("web").await.expect("the Service stays");
    assert!(web.finalizers().is_empty(), "no finalizer left");
    assert!(
        daemonsets
            .get_opt(&names.daemonset)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        secrets
            .get_opt(&names.state_secret)
            .await
            .unwrap()
            .is_none()
    );
    let replicas = deployments
        .get("tailscale-svc-lb")
        .await
        .unwrap()
        .spec
        .unwrap()
        .replicas;
    assert_eq!(replicas, Some(0));
    // The Job controller records the pod's success; Helm goes on.
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let complete = json!({"status": {
        "succeeded": 1, "startTime": now, "completionTime": now,
        "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": now},
            {"type": "Complete", "status": "True", "lastTransitionTime": now},
        ],
    }});
    jobs.patch_status(
        &job.name_any(),
        &PatchParams::default(),
        &Patch::Merge(complete),
    )
    .await
    .unwrap();
    let (answer, _helm) = uninstall.await.unwrap();
    assert_eq!(answer["ok"], true, "{answer}");
    // No chart object is left (the namespace goes with its contents).
    assert!(
        deployments
            .get_opt("tailscale-svc-lb")
            .await
            .unwrap()
            .is_none()
    );
    let roles: Api<k8s_openapi::api::rbac::v1::ClusterRole> = Api::all(client.clone());
    assert!(roles.get_opt("tailscale-svc-lb").await.unwrap().is_none());
    let bindings: Api<k8s_openapi::api::rbac::v1::ClusterRoleBinding> = Api::all(client.clone());
    assert!(
        bindings
            .get_opt("tailscale-svc-lb")
            .await
            .unwrap()
            .is_none()
    );
    let namespace = Api::<Namespace>::all(client.clone())
        .get_opt(NS)
        .await
        .unwrap();
    assert!(
        namespace.is_none_or(|ns| ns.metadata.deletion_timestamp.is_some()),
        "the namespace goes"
    );
}
