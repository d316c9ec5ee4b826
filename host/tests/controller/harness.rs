//! A cluster for one test and a controller running against it.
//!
//! In memory by default; with `SVCLB_TEST_KUBECONFIG` the cluster of that
//! kubeconfig. Each test uses its own namespaces, its own load-balancer class
//! (so controllers of concurrent tests never touch each other's Services),
//! its own node label and its own policy ConfigMap, and deletes what it made.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, Event, LoadBalancerIngress, Namespace, Node, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, ResourceExt};
use kube_sim::KubeSim;
use serde_json::json;
use svc_lb_contract::ProxyNames;
use svc_lb_host::config::ControllerConfig;
use svc_lb_host::controller::{ControllerOptions, ControllerTimings};
use svc_lb_host::policy::EngineLimits;
use tokio_util::sync::CancellationToken;

use crate::controller_rbac::{self, RbacTarget};

/// How long `eventually` waits.
const PATIENCE: Duration = Duration::from_secs(30);

/// The cluster of one test.
pub struct Cluster {
    pub client: kube::Client,
    /// The admin client's configuration.
    pub config: kube::Config,
    pub sim: Option<Arc<KubeSim>>,
    /// Where the controller's RBAC is installed, and its token.
    pub rbac: RbacTarget,
    controller_token: String,
    /// Namespace of the controller and its objects.
    pub system: String,
    /// Namespace of the test's Services.
    pub apps: String,
    /// The load-balancer class this test's controllers serve.
    pub class: String,
    /// Prefix of the Nodes this test creates.
    pub node_prefix: String,
    nodes: std::sync::Mutex<Vec<String>>,
}

async fn namespace(client: &kube::Client, prefix: &str) -> String {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"generateName": format!("{prefix}-")}}))
            .unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace created")
        .name_any()
}

/// The policy ConfigMap with an empty set (the default policy alone), as
/// an installation creates it: the controller requires it.
async fn empty_policy_set(client: &kube::Client, system: &str) {
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": POLICY_CONFIGMAP},
        "data": {"policies.yaml": ""}
    }))
    .unwrap();
    Api::<ConfigMap>::namespaced(client.clone(), system)
        .create(&PostParams::default(), &cm)
        .await
        .expect("policy ConfigMap created");
}

/// Installs the controller RBAC `yaml` (the shipped file, or a variant of
/// it) for namespace `system`.
async fn controller_identity(
    client: &kube::Client,
    system: &str,
    yaml: &str,
) -> (RbacTarget, String) {
    let target = RbacTarget {
        namespace: system.to_string(),
        cluster_name: format!("{system}-controller"),
        policy_configmap: POLICY_CONFIGMAP.to_string(),
    };
    let documents = controller_rbac::adapt(yaml, &target);
    let token = controller_rbac::install(client, &documents).await;
    (target, token)
}

/// The policy ConfigMap every test's controller watches.
pub const POLICY_CONFIGMAP: &str = "policies";

impl Cluster {
    /// Connects and creates the test's namespaces and the controller's
    /// identity (the shipped RBAC).
    pub async fn connect() -> Arc<Self> {
        Self::connect_with_rbac(&controller_rbac::shipped_rbac_yaml()).await
    }

    /// As [`Cluster::connect`], with the controller's RBAC from `yaml`.
    pub async fn connect_with_rbac(yaml: &str) -> Arc<Self> {
        let (config, sim) = kube_sim::connect_config_for_tests().await;
        let client = kube::Client::try_from(config.clone()).expect("a client");
        let sim = sim.map(Arc::new);
        let system = namespace(&client, "svclb-system").await;
        let apps = namespace(&client, "svclb-apps").await;
        let class = format!("{system}.e2e.example.com/lb");
        let (rbac, controller_token) = controller_identity(&client, &system, yaml).await;
        empty_policy_set(&client, &system).await;
        Arc::new(Self {
            client,
            config,
            rbac,
            controller_token,
            sim,
            node_prefix: format!("{system}-node"),
            system,
            apps,
            class,
            nodes: Default::default(),
        })
    }

    /// A second installation in the same cluster: its own namespace and
    /// class, the same Services namespace.
    pub async fn second_installation(&self) -> Self {
        let system = namespace(&self.client, "svclb-other").await;
        let (rbac, controller_token) =
            controller_identity(&self.client, &system, &controller_rbac::shipped_rbac_yaml()).await;
        empty_policy_set(&self.client, &system).await;
        Self {
            client: self.client.clone(),
            config: self.config.clone(),
            rbac,
            controller_token,
            sim: self.sim.clone(),
            node_prefix: format!("{system}-node"),
            class: format!("{system}.e2e.example.com/lb"),
            system,
            apps: self.apps.clone(),
            nodes: Default::default(),
        }
    }

    /// Options for a controller serving this test's class.
    pub fn options(&self, identity: &str) -> ControllerOptions {
        let mut config = ControllerConfig::defaults();
        config.namespace = self.system.clone();
        config.load_balancer_class = self.class.clone();
        ControllerOptions {
            config,
            timings: ControllerTimings {
                deprovision_timeout: Duration::from_secs(2),
                resync: Duration::from_secs(300),
                // Faults are injected on purpose: retry soon.
                retry_base: Duration::from_millis(200),
                pods_grace: Duration::ZERO,
            },
            limits: EngineLimits::default(),
            policy_configmap: Some(POLICY_CONFIGMAP.into()),
            default_policy: true,
            metrics_addr: None,
            election: None,
            identity: identity.into(),
            concurrency: 8,
        }
    }

    /// The client a controller uses: its ServiceAccount's token under the
    /// shipped RBAC, naming itself with the controller's user agent (so the
    /// server can tell its requests from the test's).
    pub fn controller_client(&self) -> kube::Client {
        controller_rbac::controller_client(&self.config, &self.controller_token)
    }

    /// The controller's user name.
    pub fn controller_user(&self) -> String {
        format!("system:serviceaccount:{}:tailscale-svc-lb", self.system)
    }

    /// Starts a controller with `options`; it stops when the handle drops.
    pub fn start(&self, options: ControllerOptions) -> Controller {
        let stop = CancellationToken::new();
        let task = tokio::spawn(svc_lb_host::controller::run(
            self.controller_client(),
            options,
            stop.clone(),
        ));
        Controller {
            stop,
            task: Some(task),
        }
    }

    /// Starts a controller with the default options.
    pub fn start_default(&self) -> Controller {
        self.start(self.options("e2e"))
    }

    pub fn api<K>(&self, namespace: &str) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), namespace)
    }

    pub fn services(&self) -> Api<Service> {
        self.api(&self.apps)
    }

    pub fn daemonsets(&self) -> Api<DaemonSet> {
        self.api(&self.system)
    }

    pub fn secrets(&self) -> Api<Secret> {
        self.api(&self.system)
    }

    /// The names of the proxy objects of Service `name`.
    pub fn names(&self, name: &str) -> ProxyNames {
        ProxyNames::for_service(&self.apps, name)
    }

    /// Creates a LoadBalancer Service of this test's class.
    pub async fn create_service(&self, name: &str, annotations: serde_json::Value) -> Service {
        let service: Service = serde_json::from_value(json!({
            "metadata": {"name": name, "annotations": annotations},
            "spec": {"type": "LoadBalancer", "loadBalancerClass": self.class,
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
        }))
        .unwrap();
        self.services()
            .create(&PostParams::default(), &service)
            .await
            .expect("service created")
    }

    /// Creates a Ready Node labelled `labels` (plus the default policy's
    /// deploy label), deleted at cleanup.
    pub async fn create_node(&self, suffix: &str, labels: serde_json::Value) -> String {
        let name = format!("{}-{suffix}", self.node_prefix);
        // The labels every kubelet sets on its node, then the deploy label.
        let mut all = json!({
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            svc_lb_contract::keys::DEPLOY_NODE_LABEL: "true",
        });
        for (k, v) in labels.as_object().into_iter().flatten() {
            all[k] = v.clone();
        }
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": all},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap();
        let nodes: Api<Node> = Api::all(self.client.clone());
        nodes
            .create(&PostParams::default(), &node)
            .await
            .expect("node created");
        self.nodes.lock().unwrap().push(name.clone());
        name
    }

    /// Events about the object named `name` in the apps namespace, as
    /// `(type, reason, note)`.
    pub async fn events_for(&self, name: &str) -> Vec<(String, String, String)> {
        self.events_in(&self.apps, name).await
    }

    /// Events about the object named `name` in `namespace`.
    pub async fn events_in(&self, namespace: &str, name: &str) -> Vec<(String, String, String)> {
        let events: Api<k8s_openapi::api::events::v1::Event> = self.api(namespace);
        let mut found: Vec<(String, String, String)> = events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .map(|e| {
                (
                    e.type_.unwrap_or_default(),
                    e.reason.unwrap_or_default(),
                    e.note.unwrap_or_default(),
                )
            })
            .collect();
        // Core Events too, where a cluster mirrors them.
        let core: Api<Event> = self.api(namespace);
        if let Ok(list) = core.list(&ListParams::default()).await {
            for e in list.items {
                if e.involved_object.name.as_deref() == Some(name)
                    && e.reporting_component.as_deref() == Some("tailscale-svc-lb")
                {
                    found.push((
                        e.type_.unwrap_or_default(),
                        e.reason.unwrap_or_default(),
                        e.message.unwrap_or_default(),
                    ));
                }
            }
        }
        found
    }

    /// Puts a policy set into the test's policy ConfigMap.
    pub async fn put_policies(&self, policies_yaml: &str, files: &[(&str, Vec<u8>)]) {
        let binary: serde_json::Map<String, serde_json::Value> = files
            .iter()
            .map(|(name, bytes)| {
                (
                    name.to_string(),
                    serde_json::to_value(k8s_openapi::ByteString(bytes.clone())).unwrap(),
                )
            })
            .collect();
        let cm: ConfigMap = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "policies"},
            "data": {"policies.yaml": policies_yaml},
            "binaryData": binary
        }))
        .unwrap();
        let api: Api<ConfigMap> = self.api(&self.system);
        api.patch(
            "policies",
            &kube::api::PatchParams::apply("e2e-test").force(),
            &kube::api::Patch::Apply(&cm),
        )
        .await
        .expect("policy ConfigMap applied");
    }

    /// Which proxy objects of `service` exist: DaemonSet, state Secret,
    /// Lease, ServiceAccount, Role, RoleBinding.
    pub async fn proxy_objects(&self, service: &str) -> [bool; 6] {
        let names = self.names(service);
        let ns = &self.system;
        [
            exists(self.daemonsets(), &names.daemonset).await,
            exists(self.secrets(), &names.state_secret).await,
            exists(self.api::<Lease>(ns), &names.lease).await,
            exists(self.api::<ServiceAccount>(ns), &names.service_account).await,
            exists(self.api::<Role>(ns), &names.role).await,
            exists(self.api::<RoleBinding>(ns), &names.role_binding).await,
        ]
    }

    /// Waits until the proxy DaemonSet of `service` exists.
    pub async fn wait_for_daemonset(&self, service: &str) -> DaemonSet {
        let name = self.names(service).daemonset;
        eventually(&format!("the DaemonSet of {service} exists"), || async {
            self.daemonsets().get_opt(&name).await.unwrap()
        })
        .await
    }

    /// Waits until `service` shows a `TailscaleProxyReady` condition with
    /// this reason.
    pub async fn wait_for_condition(&self, service: &str, reason: &str) -> Condition {
        eventually(
            &format!("{service} has a condition with reason {reason}"),
            || async {
                let conditions = self
                    .services()
                    .get(service)
                    .await
                    .unwrap()
                    .status?
                    .conditions?;
                conditions
                    .into_iter()
                    .find(|c| c.type_ == "TailscaleProxyReady" && c.reason == reason)
            },
        )
        .await
    }

    /// Waits until `service` shows ingress entries.
    pub async fn wait_for_ingress(&self, service: &str) -> Vec<LoadBalancerIngress> {
        eventually(&format!("{service} shows its address"), || async {
            let ingress = self
                .services()
                .get(service)
                .await
                .unwrap()
                .status?
                .load_balancer?
                .ingress?;
            (!ingress.is_empty()).then_some(ingress)
        })
        .await
    }

    /// Waits for an Event of `type_` and `reason` about `name` in
    /// `namespace`; returns its note.
    pub async fn wait_for_event(
        &self,
        namespace: &str,
        name: &str,
        type_: &str,
        reason: &str,
    ) -> String {
        eventually(
            &format!("a {type_} {reason} event about {name}"),
            || async {
                let events = self.events_in(namespace, name).await;
                events
                    .into_iter()
                    .find(|(t, r, _)| t == type_ && r == reason)
                    .map(|(_, _, note)| note)
            },
        )
        .await
    }

    /// Deletes what the test made.
    pub async fn cleanup(&self) {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let created = self.nodes.lock().unwrap().clone();
        for node in created {
            let _ = nodes.delete(&node, &DeleteParams::default()).await;
        }
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        for ns in [&self.apps, &self.system] {
            let _ = namespaces.delete(ns, &DeleteParams::default()).await;
        }
        controller_rbac::remove_cluster_objects(&self.client, &self.rbac).await;
    }
}

async fn exists<K>(api: Api<K>, name: &str) -> bool
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.get_metadata_opt(name).await.unwrap().is_some()
}

/// A controller running in this process.
pub struct Controller {
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<Result<(), svc_lb_host::controller::RunError>>>,
}

impl Controller {
    /// Stops it as SIGTERM would, and waits until it has.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.await
                .expect("controller task")
                .expect("controller ran");
        }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Polls `check` until it returns `Some`, for up to 30 s.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A compiled policy component from the policies workspace.
pub fn policy_wasm(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("SVCLB_POLICY_WASM_DIR")).join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
