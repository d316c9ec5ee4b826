//! High availability: replicas elect one leader through the Lease
//! `tailscale-svc-lb-controller` in the controller's namespace, with
//! `kube-lease-manager` (built on kube 5; it takes the Lease by server-side
//! apply, so two candidates cannot both win). Only the leader reconciles;
//! on SIGTERM it stops reconciling and releases the Lease, so a standby
//! takes over at once instead of after the Lease expires.

use std::time::Duration;

use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Name of the controller's Lease.
pub const CONTROLLER_LEASE: &str = "tailscale-svc-lb-controller";

/// Timings of the controller's own election.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElectionTimings {
    /// Seconds the Lease is valid without renewal.
    pub duration: u64,
    /// Seconds before expiry at which the holder renews.
    pub grace: u64,
}

impl Default for ElectionTimings {
    fn default() -> Self {
        Self {
            duration: 15,
            grace: 5,
        }
    }
}

impl ElectionTimings {
    /// Checks what `kube-lease-manager` would otherwise panic on.
    pub fn validate(&self) -> Result<(), String> {
        if self.duration == 0 || self.grace == 0 || self.grace >= self.duration {
            return Err(format!(
                "leader election needs 0 < grace ({} s) < duration ({} s)",
                self.grace, self.duration
            ));
        }
        Ok(())
    }
}

/// Resolves once this replica can no longer be sure it holds the Lease: the
/// Lease names another holder, or its last renewal is older than its
/// duration (our renewals are failing, so another replica may take it).
/// `kube-lease-manager` keeps reporting leadership while its renewals fail,
/// so the leader checks for itself, reading the Lease every `grace`
/// seconds.
pub async fn leadership_lost(
    client: kube::Client,
    namespace: &str,
    identity: &str,
    timings: ElectionTimings,
) {
    use k8s_openapi::api::coordination::v1::Lease;
    let leases: kube::Api<Lease> = kube::Api::namespaced(client, namespace);
    let duration = Duration::from_secs(timings.duration);
    let mut confirmed = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(timings.grace)).await;
        match leases.get(CONTROLLER_LEASE).await {
            Ok(lease) => {
                let spec = lease.spec.unwrap_or_default();
                if spec.holder_identity.as_deref() != Some(identity) {
                    tracing::warn!(holder = ?spec.holder_identity, "the controller lease names another holder");
                    return;
                }
                let renewed = spec.renew_time.map(|t| t.0);
                let now = k8s_openapi::jiff::Timestamp::now();
                match renewed {
                    Some(at) if now.duration_since(at).unsigned_abs() < duration => {
                        confirmed = tokio::time::Instant::now();
                    }
                    _ => {
                        tracing::warn!("the controller lease was not renewed in time");
                        return;
                    }
                }
            }
            Err(error) if confirmed.elapsed() >= duration => {
                tracing::warn!(%error, "cannot read the controller lease");
                return;
            }
            Err(_) => {}
        }
    }
}

/// A running election: `is_leader` follows this replica's state.
pub struct Election {
    /// `true` while this replica holds the Lease.
    pub is_leader: watch::Receiver<bool>,
    task: JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>,
}

impl Election {
    /// Joins the election as `identity`.
    pub async fn join(
        client: kube::Client,
        namespace: &str,
        identity: &str,
        timings: ElectionTimings,
    ) -> Result<Self, LeaseManagerError> {
        let manager = LeaseManagerBuilder::new(client, CONTROLLER_LEASE)
            .with_namespace(namespace)
            .with_identity(identity)
            .with_duration(timings.duration)
            .with_grace(timings.grace)
            .build()
            .await?;
        let (is_leader, task) = manager.watch().await;
        Ok(Self { is_leader, task })
    }

    /// Leaves the election, releasing the Lease if held (bounded wait).
    pub async fn leave(self) {
        drop(self.is_leader);
        match tokio::time::timeout(Duration::from_secs(5), self.task).await {
            Ok(Ok(Ok(_))) => tracing::info!("released the controller lease"),
            Ok(Ok(Err(error))) => tracing::warn!(%error, "could not release the controller lease"),
            Ok(Err(error)) => tracing::warn!(%error, "the election task failed"),
            Err(_) => tracing::warn!("releasing the controller lease timed out"),
        }
    }
}
