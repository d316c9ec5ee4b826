//! Starting the server on `127.0.0.1` (ephemeral port by default) and
//! handing out what clients need: a `kube::Client` or a kubeconfig file.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use tokio::sync::oneshot;

use crate::faults::Faults;
use crate::requests::RequestCounts;
use crate::store::Store;

/// State shared by every request.
pub(crate) struct Shared {
    pub store: Store,
    pub faults: Faults,
    pub requests: RequestCounts,
}

/// A running in-memory API server; stops when dropped.
pub struct KubeSim {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
}

impl KubeSim {
    /// Starts a server on an ephemeral port of `127.0.0.1`, with the
    /// `default` and `kube-system` namespaces.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts a dual-stack server: Services may also get IPv6 ClusterIPs.
    pub async fn start_dual_stack() -> std::io::Result<Self> {
        Self::start_with(SocketAddr::from(([127, 0, 0, 1], 0)), true).await
    }

    /// Starts a server on `addr`.
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<Self> {
        Self::start_with(addr, false).await
    }

    async fn start_with(addr: SocketAddr, dual_stack: bool) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            store: Store::new(dual_stack),
            faults: Faults::default(),
            requests: RequestCounts::default(),
        });
        for namespace in ["default", "kube-system"] {
            let object = serde_json::json!({"metadata": {"name": namespace}});
            let namespaces = &crate::registry::RESOURCES[0];
            shared
                .store
                .create(namespaces, "", object)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
        }
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .fallback(crate::api::handle)
            .with_state(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self {
            addr,
            shared,
            stop: Some(stop),
        })
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A client talking to this server over HTTP.
    pub fn client(&self) -> kube::Client {
        client_for(&self.url())
    }

    /// Fault injection.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Requests answered so far, by verb and resource.
    pub fn requests(&self) -> &RequestCounts {
        &self.shared.requests
    }

    /// Forgets the watch history, so resuming from an old version gets 410.
    pub fn compact_history(&self) {
        self.shared.store.compact_history();
    }

    /// Writes a kubeconfig for `kubectl --kubeconfig <path>`.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, kubeconfig(&self.url()))
    }
}

/// Environment variable naming a kubeconfig: test suites run against that
/// cluster instead of an in-memory server.
pub const TEST_KUBECONFIG_ENV: &str = "SVCLB_TEST_KUBECONFIG";

/// For test suites: a client for the cluster of the kubeconfig named by
/// [`TEST_KUBECONFIG_ENV`], or else a fresh in-memory server (returned too,
/// for fault injection) and a client for it.
pub async fn connect_for_tests() -> (kube::Client, Option<KubeSim>) {
    match std::env::var(TEST_KUBECONFIG_ENV) {
        Ok(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(&path)
                .unwrap_or_else(|e| panic!("kubeconfig {path}: {e}"));
            let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .unwrap_or_else(|e| panic!("kubeconfig {path}: {e}"));
            (kube::Client::try_from(config).expect("a client"), None)
        }
        Err(_) => {
            let sim = KubeSim::start().await.expect("the in-memory server starts");
            (sim.client(), Some(sim))
        }
    }
}

/// A client for the plain-HTTP server at `url`, default namespace `default`.
pub fn client_for(url: &str) -> kube::Client {
    let url = url.parse().expect("a valid URL");
    let mut config = kube::Config::new(url);
    config.default_namespace = "default".into();
    kube::Client::try_from(config).expect("a client for a plain-HTTP server")
}

/// A kubeconfig pointing at `server` with no credentials.
pub fn kubeconfig(server: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kube-sim\n  cluster:\n    server: {server}\n\
         contexts:\n- name: kube-sim\n  context:\n    cluster: kube-sim\n    user: kube-sim\n    namespace: default\n\
         current-context: kube-sim\nusers:\n- name: kube-sim\n  user: {{}}\n"
    )
}

impl Drop for KubeSim {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
