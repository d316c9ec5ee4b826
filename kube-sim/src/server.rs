//! Starting the server on `127.0.0.1` (ephemeral port by default) and
//! handing out what clients need: a `kube::Client`, a kubeconfig file, the
//! CA, tokens.
//!
//! The server speaks HTTPS only, with a CA made at start, and authenticates
//! and authorizes every request as a real one does (`auth`): the admin
//! token of the kubeconfig is in `system:masters`; ServiceAccounts get
//! tokens through TokenRequest and only what RBAC grants them.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use tokio::sync::oneshot;

use crate::auth::tokens::{ADMIN_USER, MASTERS_GROUP, Tokens};
use crate::faults::Faults;
use crate::registry::served;
use crate::requests::RequestCounts;
use crate::store::Store;
use crate::tls::Certificates;

/// State shared by every request.
pub(crate) struct Shared {
    pub store: Store,
    pub faults: Faults,
    pub requests: RequestCounts,
    pub tokens: Tokens,
    pub certificates: Certificates,
}

/// How to start a server.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Address to listen on (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Whether Services may also get IPv6 ClusterIPs.
    pub dual_stack: bool,
    /// More IP addresses or DNS names for the serving certificate, beyond
    /// loopback, `localhost` and the `kubernetes.default.svc` names: every
    /// address a client dials must be one (kube-rs in-cluster configuration
    /// checks `KUBERNETES_SERVICE_HOST` against an IP SAN).
    pub extra_sans: Vec<String>,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            dual_stack: false,
            extra_sans: Vec::new(),
        }
    }
}

/// A running in-memory API server; stops when dropped.
pub struct KubeSim {
    addr: SocketAddr,
    shared: Arc<Shared>,
    admin_token: String,
    stop: Option<oneshot::Sender<()>>,
}

impl KubeSim {
    /// Starts a server on an ephemeral port of `127.0.0.1`, with the
    /// `default` and `kube-system` namespaces and the bootstrap RBAC.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(SimOptions::default()).await
    }

    /// Starts a dual-stack server: Services may also get IPv6 ClusterIPs.
    pub async fn start_dual_stack() -> std::io::Result<Self> {
        Self::start_with(SimOptions {
            dual_stack: true,
            ..SimOptions::default()
        })
        .await
    }

    /// Starts a server on `addr`.
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<Self> {
        Self::start_with(SimOptions {
            listen: addr,
            ..SimOptions::default()
        })
        .await
    }

    /// Starts a server with `options`.
    pub async fn start_with(options: SimOptions) -> std::io::Result<Self> {
        let certificates =
            Certificates::generate(&options.extra_sans).map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared {
            store: Store::new(options.dual_stack),
            faults: Faults::default(),
            requests: RequestCounts::default(),
            tokens: Tokens::default(),
            certificates,
        });
        let fail = |e: crate::error::ApiError| std::io::Error::other(e.to_string());
        for namespace in ["default", "kube-system", "kube-public"] {
            let object = serde_json::json!({"metadata": {"name": namespace}});
            shared
                .store
                .create(served("", "namespaces"), "", object)
                .map_err(fail)?;
        }
        crate::auth::seed(&shared.store).map_err(fail)?;
        crate::root_ca::publish(&shared.store, &shared.certificates.ca_pem);
        let admin_token = shared.tokens.issue_user(ADMIN_USER, &[MASTERS_GROUP]);
        let listener = tokio::net::TcpListener::bind(options.listen).await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .fallback(crate::handler::handle)
            .with_state(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        crate::tls::serve(listener, &shared.certificates, app, stopped);
        Ok(Self {
            addr,
            shared,
            admin_token,
            stop: Some(stop),
        })
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The CA certificate (PEM) clients must trust.
    pub fn ca_pem(&self) -> &str {
        &self.shared.certificates.ca_pem
    }

    /// The admin token (`system:masters`).
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// A new token for `user` in `groups` (and `system:authenticated`), as
    /// a static token file gives them. Tests that must also hold against a
    /// real cluster use ServiceAccount tokens (TokenRequest) instead.
    pub fn issue_token(&self, user: &str, groups: &[&str]) -> String {
        self.shared.tokens.issue_user(user, groups)
    }

    /// A client of the admin user.
    pub fn client(&self) -> kube::Client {
        self.client_with_token(&self.admin_token)
    }

    /// A client configuration for the bearer `token`.
    pub fn config_with_token(&self, token: &str) -> kube::Config {
        config_for(&self.url(), self.ca_pem(), token)
    }

    /// A client presenting the bearer `token`.
    pub fn client_with_token(&self, token: &str) -> kube::Client {
        kube::Client::try_from(self.config_with_token(token)).expect("a client for the server")
    }

    /// Fault injection.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Requests answered so far, by verb and resource, and the denied ones.
    pub fn requests(&self) -> &RequestCounts {
        &self.shared.requests
    }

    /// Forgets the watch history, so resuming from an old version gets 410.
    pub fn compact_history(&self) {
        self.shared.store.compact_history();
    }

    /// A kubeconfig of the admin user, for `kubectl --kubeconfig`.
    pub fn kubeconfig(&self) -> String {
        kubeconfig(&self.url(), self.ca_pem(), &self.admin_token)
    }

    /// Writes [`KubeSim::kubeconfig`] to `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig())
    }
}

/// Environment variable naming a kubeconfig: test suites run against that
/// cluster instead of an in-memory server.
pub const TEST_KUBECONFIG_ENV: &str = "SVCLB_TEST_KUBECONFIG";

/// For test suites: a client for the cluster of the kubeconfig named by
/// [`TEST_KUBECONFIG_ENV`], or else a fresh in-memory server (returned too,
/// for fault injection) and an admin client for it.
pub async fn connect_for_tests() -> (kube::Client, Option<KubeSim>) {
    let (config, sim) = connect_config_for_tests().await;
    (kube::Client::try_from(config).expect("a client"), sim)
}

/// As [`connect_for_tests`], the admin client's configuration instead of
/// the client, so a test can make clients of other identities with
/// [`config_with_token`].
pub async fn connect_config_for_tests() -> (kube::Config, Option<KubeSim>) {
    match std::env::var(TEST_KUBECONFIG_ENV) {
        Ok(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(&path)
                .unwrap_or_else(|e| panic!("kubeconfig {path}: {e}"));
            let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .unwrap_or_else(|e| panic!("kubeconfig {path}: {e}"));
            (config, None)
        }
        Err(_) => {
            let sim = KubeSim::start().await.expect("the in-memory server starts");
            (sim.config_with_token(sim.admin_token()), Some(sim))
        }
    }
}

/// `config` with its credentials replaced by the bearer `token` (and
/// nothing else: no client certificate, no exec plugin).
pub fn config_with_token(config: &kube::Config, token: &str) -> kube::Config {
    let mut config = config.clone();
    config.auth_info = Default::default();
    config.auth_info.token = Some(secrecy::SecretString::from(token.to_string()));
    config
}

/// A client configuration for the server at `url` (HTTPS) trusting
/// `ca_pem` and presenting the bearer `token`; default namespace `default`.
pub fn config_for(url: &str, ca_pem: &str, token: &str) -> kube::Config {
    let mut config = kube::Config::new(url.parse().expect("a valid URL"));
    config.default_namespace = "default".into();
    config.root_cert = Some(pem_certificates(ca_pem));
    config.auth_info.token = Some(secrecy::SecretString::from(token.to_string()));
    config
}

/// The DER certificates of a PEM bundle.
fn pem_certificates(pem: &str) -> Vec<Vec<u8>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .filter_map(Result::ok)
        .map(|der| der.to_vec())
        .collect()
}

/// A kubeconfig for the server at `url` trusting `ca_pem` with the bearer
/// `token`.
pub fn kubeconfig(url: &str, ca_pem: &str, token: &str) -> String {
    use base64::Engine as _;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kube-sim\n  cluster:\n    server: {url}\n\
         \x20   certificate-authority-data: {ca}\n\
         contexts:\n- name: kube-sim\n  context:\n    cluster: kube-sim\n    user: kube-sim\n    namespace: default\n\
         current-context: kube-sim\nusers:\n- name: kube-sim\n  user:\n    token: {token}\n"
    )
}

impl Drop for KubeSim {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
