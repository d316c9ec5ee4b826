//! The runtime's role as the kubelet sees it: `/healthz` (the process
//! serves) and `/readyz`, ready when this pod is a standby that follows the
//! Lease, or the leader with its forwarding installed (a leader still
//! waiting for tailscaled or a login is not ready), or done after
//! deprovisioning.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::sync::watch;

/// What this pod is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Reading settings, cleaning up, joining the election.
    Starting,
    /// Following the Lease, ready to take over.
    Standby,
    /// Holding the Lease; `forwarding` once the rules are in place.
    Leading {
        /// Whether traffic is forwarded.
        forwarding: bool,
    },
    /// Logged out after a deprovisioning request; waits to be removed.
    Deprovisioned,
    /// Handing over after SIGTERM.
    Stopping,
    /// Cannot run tailscaled here (no TUN device; the log says why): stays
    /// out of the election.
    NoTunDevice,
}

impl Role {
    /// `Ok` when ready, else why not.
    pub fn readiness(&self) -> Result<(), &'static str> {
        match self {
            Role::Standby | Role::Leading { forwarding: true } | Role::Deprovisioned => Ok(()),
            Role::Starting => Err("starting"),
            Role::Leading { forwarding: false } => Err("leader without forwarding yet"),
            Role::Stopping => Err("stopping"),
            Role::NoTunDevice => Err("no TUN device for tailscaled (see the log)"),
        }
    }
}

async fn readyz(State(role): State<watch::Receiver<Role>>) -> (StatusCode, String) {
    let role = role.borrow().clone();
    match role.readiness() {
        Ok(()) => (StatusCode::OK, format!("ok: {role:?}")),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}"),
        ),
    }
}

/// Serves the endpoints on `ip:port` (the pod's IP: the kubelet probes it
/// there, and the leader's Tailscale address, which tailnet devices reach,
/// is not it) until the process ends. Tailscale's operator binds its
/// proxies' health endpoint to the pod IP for the same reason.
pub async fn serve(
    ip: std::net::IpAddr,
    port: u16,
    role: watch::Receiver<Role>,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(role);
    let listener = tokio::net::TcpListener::bind((ip, port)).await?;
    axum::serve(listener, app).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standby_and_a_forwarding_leader_are_ready_and_a_leader_without_rules_is_not() {
        assert!(Role::Standby.readiness().is_ok());
        assert!(Role::Leading { forwarding: true }.readiness().is_ok());
        assert!(Role::Leading { forwarding: false }.readiness().is_err());
        assert!(Role::Starting.readiness().is_err());
    }
}
