//! The server's certificates and its HTTPS listener.
//!
//! As a real cluster's PKI: a CA generated at start (what a kubeconfig's
//! `certificate-authority-data` and a pod's `ca.crt` hold) and a separate
//! serving certificate signed by it (webpki refuses a CA certificate used as
//! a leaf). The serving certificate names every address clients dial:
//! loopback, `localhost`, the in-cluster names of the `kubernetes` Service,
//! and whatever else the caller asks for (kube-rs in-cluster configuration
//! dials the IP in `KUBERNETES_SERVICE_HOST` and checks it against an IP SAN).
//!
//! The listener is written here rather than taken from a crate because it is
//! a dozen lines over `tokio-rustls` and hyper, and it must drop every open
//! connection (watches included) when the server stops.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

/// Names every serving certificate carries, as kubeadm's does.
const DEFAULT_SANS: &[&str] = &[
    "127.0.0.1",
    "::1",
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

/// The CA and the serving certificate of one server.
pub(crate) struct Certificates {
    /// The CA certificate, PEM: what clients trust.
    pub ca_pem: String,
    server: Arc<rustls::ServerConfig>,
}

/// A failure to make the certificates.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// rcgen could not make a certificate (e.g. an invalid name).
    #[error("certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// rustls refused the certificate or key.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

impl Certificates {
    /// A fresh CA and a serving certificate for the default names plus
    /// `extra_sans` (IP addresses or DNS names).
    pub fn generate(extra_sans: &[String]) -> Result<Self, TlsError> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "kube-sim-ca");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let mut names: Vec<String> = DEFAULT_SANS.iter().map(|s| s.to_string()).collect();
        for san in extra_sans {
            if !names.contains(san) {
                names.push(san.clone());
            }
        }
        let mut leaf_params = CertificateParams::new(names)?;
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        leaf_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_key = KeyPair::generate()?;
        let leaf_cert = leaf_params.signed_by(&leaf_key, &issuer)?;

        let chain = vec![
            CertificateDer::from(leaf_cert.der().to_vec()),
            CertificateDer::from(ca_cert.der().to_vec()),
        ];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        // HTTP/1.1 only: kubectl and client-go then stay on HTTP/1.1, which
        // is what the server speaks (watches are chunked responses).
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            ca_pem: ca_cert.pem(),
            server: Arc::new(server),
        })
    }
}

/// Serves `app` over HTTPS on `listener` until `stop` fires; then every
/// open connection is dropped.
pub(crate) fn serve(
    listener: TcpListener,
    certificates: &Certificates,
    app: Router,
    stop: oneshot::Receiver<()>,
) {
    let acceptor = TlsAcceptor::from(certificates.server.clone());
    tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        let mut stop = std::pin::pin!(stop);
        loop {
            let (stream, _peer): (_, SocketAddr) = tokio::select! {
                _ = &mut stop => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(_) => continue,
                },
                // Reap finished connections so the set does not grow.
                Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            };
            // As the real server: no Nagle delay on small responses.
            let _ = stream.set_nodelay(true);
            let acceptor = acceptor.clone();
            let service = TowerToHyperService::new(app.clone());
            connections.spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                // One buffer per response (not vectored writes): over TLS
                // that is one record instead of one per part.
                let _ = hyper::server::conn::http1::Builder::new()
                    .writev(false)
                    .serve_connection(TokioIo::new(tls), service)
                    .with_upgrades()
                    .await;
            });
        }
        // Dropping the set aborts every connection, watches included.
        drop(connections);
    });
}
