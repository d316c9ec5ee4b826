//! Connects to the server under test and gives each test its own namespace.

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use kube_sim::KubeSim;

/// The server under test, and a namespace of this test's own.
pub struct Cluster {
    pub client: kube::Client,
    /// The admin client's configuration (for clients of other identities).
    pub config: kube::Config,
    pub namespace: String,
    /// Present when running in memory.
    pub sim: Option<KubeSim>,
}

impl Cluster {
    /// Connects (in memory unless `SVCLB_TEST_KUBECONFIG` is set) and
    /// creates a fresh namespace.
    pub async fn connect() -> Self {
        let (config, sim) = kube_sim::connect_config_for_tests().await;
        let client = kube::Client::try_from(config.clone()).expect("a client");
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let namespace = namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(
                    serde_json::json!({"metadata": {"generateName": "conformance-"}}),
                )
                .unwrap(),
            )
            .await
            .expect("namespace created");
        Self {
            client,
            config,
            namespace: namespace.metadata.name.unwrap(),
            sim,
        }
    }

    /// `true` when fault injection is available (in memory).
    pub fn sim(&self) -> Option<&KubeSim> {
        self.sim.as_ref()
    }

    /// A namespaced API in this test's namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// A ServiceAccount `name` in the test's namespace and a token for it
    /// from TokenRequest (what `kubectl create token` asks for).
    pub async fn service_account_token(&self, name: &str) -> String {
        use k8s_openapi::api::authentication::v1::TokenRequest;
        use k8s_openapi::api::core::v1::ServiceAccount;
        let accounts: Api<ServiceAccount> = self.api();
        let account: ServiceAccount =
            serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
        accounts
            .create(&PostParams::default(), &account)
            .await
            .expect("service account created");
        let request: TokenRequest = serde_json::from_value(
            serde_json::json!({"spec": {"audiences": [], "expirationSeconds": 3600}}),
        )
        .unwrap();
        let response = accounts
            .create_token_request(name, &PostParams::default(), &request)
            .await
            .expect("token issued");
        response.status.expect("a token").token
    }

    /// A client presenting `token`.
    pub fn client_with_token(&self, token: &str) -> kube::Client {
        kube::Client::try_from(kube_sim::config_with_token(&self.config, token)).unwrap()
    }

    /// A client with no credentials at all.
    pub fn anonymous_client(&self) -> kube::Client {
        let mut config = self.config.clone();
        config.auth_info = Default::default();
        kube::Client::try_from(config).unwrap()
    }

    /// `system:serviceaccount:<test namespace>:<name>`.
    pub fn service_account_user(&self, name: &str) -> String {
        format!("system:serviceaccount:{}:{name}", self.namespace)
    }

    /// Deletes the test's namespace.
    pub async fn cleanup(self) {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let _ = namespaces
            .delete(&self.namespace, &DeleteParams::default())
            .await;
    }
}

/// The HTTP status of a kube error.
pub fn status_of(error: kube::Error) -> (u16, String) {
    match error {
        kube::Error::Api(status) => (status.code, status.reason),
        other => panic!("expected an API error, got {other}"),
    }
}

/// Polls `check` until it holds (a real server's garbage collector and
/// namespace controller work in the background), up to 60 s.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..600 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("timed out waiting until {what}");
}
