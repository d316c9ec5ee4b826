//! What the leader does while it holds the Lease: run tailscaled, bring the
//! device up (or surface the login URL), forward from its Tailscale
//! addresses, report into the state Secret, restart tailscaled with backoff
//! if it dies; and how it stops: on losing the Lease or SIGTERM it removes
//! its rules and stops tailscaled; on a deprovisioning request it logs the
//! device out of the tailnet first and records that it did.

use std::net::IpAddr;
use std::time::Duration;

use tokio::process::Child;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::firewall::apply::Backend;
use crate::health::Role;
use crate::report::Report;
use crate::settings::RuntimeSettings;
use crate::state_secret::StateSecret;
use crate::tailscale::daemon::{self, Tailscaled};

mod deprovision;
mod forwarding;
mod login;
mod step;

/// Status polling while tailscaled comes up (growing by half each look up
/// to the cap, so a daemon that stays down is not asked ten times a
/// second for ever), and once it runs.
const POLL_STARTING: Duration = Duration::from_millis(100);
const POLL_STARTING_MAX: Duration = Duration::from_secs(1);
const POLL_RUNNING: Duration = Duration::from_secs(5);
/// Status polling while a login URL waits for someone to open it.
const POLL_LOGIN: Duration = Duration::from_secs(1);
/// tailscaled's time to exit on SIGTERM, and the rules' time to go:
/// together within the stop budget of
/// [`svc_lb_contract::LeaseTimings::STOP_BUDGET`]. Rules still in place when
/// tailscaled is gone forward nothing (no traffic reaches a missing
/// `tailscale0`), and their removal still completes.
const TAILSCALED_GRACE: Duration = Duration::from_millis(500);
const UNFORWARD_BUDGET: Duration = Duration::from_millis(400);
/// How long tailscaled may stay without state (`NoState`: its state store
/// failed; since 1.92 it then runs on without one, refusing every login)
/// before it is restarted.
const NO_STATE_LIMIT: Duration = Duration::from_secs(5);
/// How long a running device may wait for its state to be complete in the
/// Secret before it serves anyway.
const STATE_COMPLETION_LIMIT: Duration = Duration::from_secs(5);
/// Retry backoff of a failing `tailscale up`.
const UP_RETRY_FIRST: Duration = Duration::from_secs(5);
const UP_RETRY_MAX: Duration = Duration::from_secs(60);
/// Bound on one read or write of the state Secret.
const API_TIMEOUT: Duration = Duration::from_secs(5);
/// Restart backoff of a dying tailscaled.
const RESTART_FIRST: Duration = Duration::from_secs(1);
const RESTART_MAX: Duration = Duration::from_secs(30);

/// Why the leader stopped leading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The Lease was lost (renew deadline passed or taken).
    LostLeadership,
    /// SIGTERM.
    Shutdown,
    /// Deprovisioned: logged out, stopped; nobody takes over.
    Deprovisioned,
}

/// What the leader needs.
pub struct Leader<'a> {
    /// Settings.
    pub settings: &'a RuntimeSettings,
    /// Firewall.
    pub backend: Backend,
    /// The state Secret.
    pub secret: &'a StateSecret,
    /// Our role, for `/readyz`.
    pub role: &'a watch::Sender<Role>,
}

/// The running device and what is installed for it.
struct Device {
    daemon: Tailscaled,
    up: Option<Child>,
    /// Tailscale addresses the rules are installed for.
    forwarded: Vec<IpAddr>,
    reported: Option<Report>,
    /// Whether a change was asked of this daemon already (asked once).
    changed: bool,
    /// Failed `tailscale up` runs in a row, and when the next may start.
    up_failures: u32,
    up_retry_at: Option<tokio::time::Instant>,
    /// What the device last logged in with (from the state Secret, then
    /// from each `tailscale up` that succeeded).
    recorded: Option<crate::tailscale::args::LoginRequest>,
    /// Whether tailscaled's state in the Secret was seen complete (or given
    /// up waiting for), since this daemon started.
    state_complete: bool,
    /// Since when the device runs without a complete state known.
    incomplete_since: Option<tokio::time::Instant>,
    /// Since when tailscaled has reported `NoState`.
    no_state_since: Option<tokio::time::Instant>,
    /// What was last said in the log about a wait for a person (a login URL
    /// during re-authentication, device approval), so it is said once.
    announced: Option<String>,
    /// Why the last `tailscale up` failed (a problem code and message),
    /// until one succeeds.
    up_problem: Option<(&'static str, String)>,
    /// Whether `up` waits for the controller's minted auth key (said once).
    awaiting_key: bool,
}

/// The next status poll while tailscaled is not running: half as long
/// again as `previous`, at most [`POLL_STARTING_MAX`].
fn next_starting_poll(previous: Duration) -> Duration {
    (previous * 3 / 2).min(POLL_STARTING_MAX)
}

impl Leader<'_> {
    async fn report(&self, device: &mut Device, report: Report) {
        if device.reported.as_ref() == Some(&report) {
            return;
        }
        match tokio::time::timeout(API_TIMEOUT, self.secret.write(&report)).await {
            Ok(Ok(())) => device.reported = Some(report),
            Ok(Err(error)) => tracing::warn!(%error, "cannot report into the state secret"),
            Err(_) => tracing::warn!("reporting into the state secret timed out"),
        }
    }

    /// Reports that this leader does not serve because of `code`.
    async fn report_problem(&self, device: &mut Device, code: &'static str, message: String) {
        let failing = Report::Failing {
            code,
            message,
            pod: self.settings.pod.name.clone(),
            node: self.settings.pod.node.clone(),
        };
        self.report(device, failing).await;
    }

    /// Removes the rules, stops `up` and tailscaled.
    async fn stop(&self, mut device: Device) {
        let removal = self.unforward(std::mem::take(&mut device.forwarded));
        if tokio::time::timeout(UNFORWARD_BUDGET, removal)
            .await
            .is_err()
        {
            tracing::error!("removing the forwarding is slow: stopping tailscaled meanwhile");
        }
        if let Some(mut up) = device.up.take() {
            let _ = up.kill().await;
        }
        device.daemon.stop(TAILSCALED_GRACE).await;
        if self.settings.tailscale.auth_key.is_some() || self.settings.tailscale.auth_key_in_state {
            let _ = std::fs::remove_file(self.settings.tailscale.socket.with_extension("authkey"));
        }
    }

    fn spawn_device(&self) -> Option<Device> {
        let firewall = match self.backend {
            Backend::Nftables => "nftables",
            Backend::Iptables => "iptables",
        };
        match Tailscaled::spawn(
            &self.settings.tailscale,
            &self.settings.state_secret,
            firewall,
        ) {
            Ok(daemon) => {
                tracing::debug!("tailscaled started");
                Some(Device {
                    daemon,
                    up: None,
                    forwarded: Vec::new(),
                    reported: None,
                    changed: false,
                    up_failures: 0,
                    up_problem: None,
                    awaiting_key: false,
                    up_retry_at: None,
                    announced: None,
                    recorded: None,
                    no_state_since: None,
                    state_complete: false,
                    incomplete_since: None,
                })
            }
            Err(error) => {
                tracing::error!(%error, "cannot start tailscaled");
                None
            }
        }
    }

    /// Leads until the Lease is lost, SIGTERM or deprovisioning.
    pub async fn lead(
        &self,
        leading: &mut watch::Receiver<bool>,
        deprovision: &mut watch::Receiver<bool>,
        shutdown: &CancellationToken,
    ) -> Ended {
        self.role.send_replace(Role::Leading { forwarding: false });
        let watched = *deprovision.borrow();
        let mut recorded = match self.deprovision_requested(leading, shutdown).await {
            Err(ended) => return ended,
            Ok(fresh) if fresh.deprovision_requested || watched => {
                return self.deprovision_while_leading(None, leading).await;
            }
            Ok(fresh) => fresh.login_request,
        };
        let mut backoff = RESTART_FIRST;
        loop {
            if !*leading.borrow() {
                return Ended::LostLeadership;
            }
            let mut device = self.spawn_device();
            if let Some(d) = device.as_mut() {
                d.recorded = recorded.clone();
            }
            let mut poll = POLL_STARTING;
            let next_start = loop {
                let running = device.is_some();
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => {
                        if let Some(d) = device { self.stop(d).await; }
                        return Ended::Shutdown;
                    }
                    () = lost(leading) => {
                        if let Some(d) = device { self.stop(d).await; }
                        return Ended::LostLeadership;
                    }
                    () = requested(deprovision) => {
                        return self.deprovision_while_leading(device, leading).await;
                    }
                    status = async {
                        match device.as_mut() {
                            Some(d) => d.daemon.exited().await.ok(),
                            None => std::future::pending().await,
                        }
                    } => {
                        tracing::error!(?status, restart_in = ?backoff, "tailscaled exited");
                        if let Some(d) = device.take() {
                            recorded = d.recorded.clone();
                            self.stop(d).await;
                        }
                        self.role.send_replace(Role::Leading { forwarding: false });
                        break backoff;
                    }
                    () = tokio::time::sleep(poll), if running => {
                        // The CLI call may hang: it must not delay a stop.
                        let status = tokio::select! {
                            biased;
                            () = shutdown.cancelled() => None,
                            () = lost(leading) => None,
                            status = daemon::status(&self.settings.tailscale) => Some(status),
                        };
                        if let Some(status) = status {
                            let d = device.as_mut().expect("guarded");
                            // A step may wait on the API server or the CLI:
                            // it must not delay the stop either.
                            let next = tokio::select! {
                                biased;
                                () = shutdown.cancelled() => None,
                                () = lost(leading) => None,
                                next = self.step(d, status) => Some(next),
                            };
                            let Some(next) = next else { continue };
                            poll = if next == POLL_STARTING && poll < POLL_RUNNING {
                                next_starting_poll(poll)
                            } else {
                                next
                            };
                            if next == POLL_RUNNING {
                                backoff = RESTART_FIRST;
                            }
                        }
                    }
                    () = tokio::time::sleep(backoff), if !running => break backoff,
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return Ended::Shutdown,
                () = lost(leading) => return Ended::LostLeadership,
                () = tokio::time::sleep(next_start) => {}
            }
            backoff = (backoff * 2).min(RESTART_MAX);
        }
    }
}

/// Resolves once this pod no longer leads. The watch's read guard is
/// released before this returns: held across an await it would block the
/// election's next send, and with it the runtime's only thread.
async fn lost(leading: &mut watch::Receiver<bool>) {
    let _ = leading.wait_for(|l| !*l).await;
}

/// Resolves once deprovisioning is requested; never when the watch ended
/// (a dead watch must not log the device out).
async fn requested(deprovision: &mut watch::Receiver<bool>) {
    if deprovision.wait_for(|d| *d).await.is_err() {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polling_a_daemon_that_is_not_running_slows_down_to_the_cap() {
        let mut poll = POLL_STARTING;
        let mut waited = Duration::ZERO;
        for _ in 0..20 {
            waited += poll;
            poll = next_starting_poll(poll);
        }
        assert_eq!(poll, POLL_STARTING_MAX);
        // Twenty looks span more than ten seconds, not two.
        assert!(waited > Duration::from_secs(10), "{waited:?}");
        assert_eq!(
            next_starting_poll(POLL_STARTING),
            Duration::from_millis(150)
        );
    }
}
