//! Deprovisioning: the device logs out of the tailnet and the logout is
//! recorded; a new leader first checks whether that was requested.

use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{API_TIMEOUT, Device, Ended, Leader, POLL_STARTING, lost};
use crate::report::Report;
use crate::state_secret::FreshState;
use crate::tailscale::args::logout_args;
use crate::tailscale::daemon;
use crate::tailscale::status::Phase;

impl Leader<'_> {
    /// Logs the device out of the tailnet (starting tailscaled on the
    /// stored state if it does not run), stops everything and records it.
    async fn deprovision(&self, device: Option<Device>) {
        tracing::info!("deprovisioning requested: logging out of the tailnet");
        let Some(mut device) = device.or_else(|| self.spawn_device()) else {
            return;
        };
        let ts = &self.settings.tailscale;
        self.unforward(std::mem::take(&mut device.forwarded)).await;
        // Wait (bounded) for tailscaled to load its state.
        let mut loaded = false;
        for _ in 0..50 {
            match daemon::status(ts).await.map(|s| s.phase()) {
                Ok(Phase::Starting(_)) | Err(_) => tokio::time::sleep(POLL_STARTING).await,
                Ok(_) => {
                    loaded = true;
                    break;
                }
            }
        }
        // Without its state tailscaled "logs out" of nothing and says it
        // succeeded: the device would stay in the tailnet while the
        // controller is told it left. Record nothing; the controller's
        // deprovisioning then times out and says so.
        if !loaded {
            tracing::error!(
                secret = %self.settings.state_secret,
                "cannot log out: tailscaled did not load its state (check the proxy pods' Role and the API server)"
            );
            self.stop(device).await;
            return;
        }
        let mut logged_out = false;
        for attempt in 1..=3 {
            match daemon::run_cli(ts, &logout_args()).await {
                Ok(_) => {
                    logged_out = true;
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, attempt, "tailscale logout failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        self.stop(device).await;
        if !logged_out {
            tracing::error!("the device could not log out; it may remain in the tailnet");
            return;
        }
        let report = Report::LoggedOut(k8s_openapi::jiff::Timestamp::now().to_string());
        for attempt in 1..=5 {
            match tokio::time::timeout(API_TIMEOUT, self.secret.write(&report)).await {
                Ok(Ok(())) => return tracing::info!("logged out of the tailnet"),
                Ok(Err(error)) => tracing::warn!(%error, attempt, "cannot record the logout"),
                Err(_) => tracing::warn!(attempt, "recording the logout timed out"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        tracing::error!(
            "logged out, but cannot record it; the controller's deprovision timeout applies"
        );
    }

    /// Whether deprovisioning is requested, read afresh (a request may
    /// predate our watch); a failed read is retried, never taken as "no".
    pub(super) async fn deprovision_requested(
        &self,
        leading: &mut watch::Receiver<bool>,
        shutdown: &CancellationToken,
    ) -> Result<FreshState, Ended> {
        loop {
            match tokio::time::timeout(API_TIMEOUT, self.secret.read_fresh()).await {
                Ok(Ok(fresh)) => return Ok(fresh),
                Ok(Err(error)) => tracing::warn!(%error, "cannot read the state secret"),
                Err(_) => tracing::warn!("reading the state secret timed out"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return Err(Ended::Shutdown),
                () = lost(leading) => return Err(Ended::LostLeadership),
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// Deprovisions unless the Lease is lost meanwhile (then whoever leads
    /// next does it; dropping the device kills tailscaled).
    pub(super) async fn deprovision_while_leading(
        &self,
        device: Option<Device>,
        leading: &mut watch::Receiver<bool>,
    ) -> Ended {
        tokio::select! {
            () = self.deprovision(device) => Ended::Deprovisioned,
            () = lost(leading) => Ended::LostLeadership,
        }
    }
}
