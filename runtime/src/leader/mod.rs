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
use crate::firewall::plan::ForwardingPlan;
use crate::health::Role;
use crate::report::Report;
use crate::settings::RuntimeSettings;
use crate::state_secret::StateSecret;
use crate::tailscale::args::{Change, change_needed, set_hostname_args};
use crate::tailscale::daemon::{self, Tailscaled};
use crate::tailscale::status::Phase;

mod deprovision;
mod login;

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
}

/// The next status poll while tailscaled is not running: half as long
/// again as `previous`, at most [`POLL_STARTING_MAX`].
fn next_starting_poll(previous: Duration) -> Duration {
    (previous * 3 / 2).min(POLL_STARTING_MAX)
}

/// Firewall steps one at a time, in the order they were asked for: a step
/// whose caller gave up (the Lease was lost meanwhile) still runs to its end
/// in the blocking pool, and the removal asked for after it must run after
/// it. Each call takes a ticket at once (on the runtime's thread, in call
/// order); a step runs when its ticket is served.
struct Turns {
    next: u64,
    serving: u64,
}
static FIREWALL_TURNS: std::sync::Mutex<Turns> = std::sync::Mutex::new(Turns {
    next: 0,
    serving: 0,
});
static FIREWALL_TURN: std::sync::Condvar = std::sync::Condvar::new();

/// Runs a blocking firewall step off the runtime's only thread, after every
/// step asked for before it.
async fn firewall<T: Send + 'static>(step: impl FnOnce() -> T + Send + 'static) -> T {
    let ticket = {
        let mut turns = FIREWALL_TURNS.lock().unwrap_or_else(|p| p.into_inner());
        turns.next += 1;
        turns.next - 1
    };
    tokio::task::spawn_blocking(move || {
        let mut turns = FIREWALL_TURNS.lock().unwrap_or_else(|p| p.into_inner());
        while turns.serving != ticket {
            turns = FIREWALL_TURN.wait(turns).unwrap_or_else(|p| p.into_inner());
        }
        drop(turns);
        let result = step();
        FIREWALL_TURNS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .serving += 1;
        FIREWALL_TURN.notify_all();
        result
    })
    .await
    .expect("firewall step panicked")
}

impl Leader<'_> {
    async fn forward(&self, ips: &[IpAddr]) -> bool {
        let service = &self.settings.service;
        let plan = ForwardingPlan::new(
            ips,
            &service.cluster_ips,
            service.ports.clone(),
            service.source_ranges.clone(),
        );
        let ipv4 = plan.pairs.iter().any(|(ts, _)| ts.is_ipv4());
        let ipv6 = plan.pairs.iter().any(|(ts, _)| ts.is_ipv6());
        let proc_sys = std::path::Path::new("/proc/sys");
        if let Err(error) = crate::forwarding::check_forwarding(proc_sys, ipv4, ipv6) {
            tracing::error!(%error, "cannot forward");
            return false;
        }
        let backend = self.backend;
        // The interval this pod forwards is logged on the machine-wide
        // monotonic clock, from before the rules exist (`since_ns`) to after
        // they are gone (`until_ns`): intervals of different pods must
        // never overlap.
        let since_ns = crate::sys::monotonic_ns();
        match firewall(move || crate::firewall::apply::install(&plan, backend)).await {
            Ok(()) => {
                tracing::info!(addresses = ?ips, since_ns, "forwarding installed");
                true
            }
            Err(error) => {
                tracing::error!(%error, "cannot install the forwarding");
                false
            }
        }
    }

    async fn unforward(&self, ips: Vec<IpAddr>) {
        let backend = self.backend;
        // Logged where the removal happens: a stop that stops waiting for it
        // must not leave the interval open in the log.
        firewall(
            move || match crate::firewall::apply::remove(&ips, backend) {
                Ok(()) => {
                    tracing::info!(until_ns = crate::sys::monotonic_ns(), "forwarding removed")
                }
                Err(error) => tracing::error!(%error, "cannot remove the forwarding"),
            },
        )
        .await;
    }

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

    /// One look at tailscaled, and what follows from it. Returns when to
    /// look again.
    async fn step(
        &self,
        device: &mut Device,
        status: Result<crate::tailscale::status::Status, daemon::CliError>,
    ) -> Duration {
        let ts = &self.settings.tailscale;
        let phase = match status {
            Ok(status) => status.phase(),
            Err(error) => {
                tracing::debug!(%error, "no status yet");
                return POLL_STARTING;
            }
        };
        tracing::trace!(?phase, "tailscaled status");
        if !matches!(&phase, Phase::Starting(state) if state == "NoState") {
            device.no_state_since = None;
        }
        let phase = match phase {
            Phase::Reauthenticating(running, url) => {
                if device.announced.as_ref() != Some(&url) {
                    tracing::warn!(login_url = %url, "tailscaled waits for a re-authentication: open the URL (the device keeps serving meanwhile)");
                    device.announced = Some(url);
                }
                Phase::Running(running)
            }
            Phase::Starting(state) if state == "NoState" => {
                let since = *device
                    .no_state_since
                    .get_or_insert_with(tokio::time::Instant::now);
                if since.elapsed() >= NO_STATE_LIMIT {
                    tracing::error!(
                        secret = %self.settings.state_secret,
                        "tailscaled has no state: it cannot use its state secret (check the proxy pods' Role and the API server); restarting it"
                    );
                    device.no_state_since = None;
                    device.daemon.interrupt();
                }
                Phase::Starting(state)
            }
            Phase::NeedsApproval => {
                let note = "approval".to_string();
                if device.announced.as_ref() != Some(&note) {
                    tracing::warn!(
                        "the device waits for approval by a tailnet admin (device approval is on)"
                    );
                    device.announced = Some(note);
                }
                Phase::NeedsApproval
            }
            other => other,
        };
        let (pod, node) = (
            self.settings.pod.name.clone(),
            self.settings.pod.node.clone(),
        );
        let Phase::Running(running) = phase else {
            if !device.forwarded.is_empty() {
                self.unforward(std::mem::take(&mut device.forwarded)).await;
                self.role.send_replace(Role::Leading { forwarding: false });
            }
            return match phase {
                Phase::NeedsUp => {
                    self.start_up(device, false).await;
                    POLL_STARTING
                }
                Phase::NeedsApproval => POLL_LOGIN,
                Phase::WaitingForLogin(url) => {
                    if !matches!(&device.reported, Some(Report::WaitingForLogin { url: u, .. }) if *u == url)
                    {
                        tracing::warn!(login_url = %url, "tailscaled waits for a login: open the URL (or set an auth key)");
                    }
                    self.report(device, Report::WaitingForLogin { url, pod, node })
                        .await;
                    POLL_LOGIN
                }
                _ => POLL_STARTING,
            };
        };
        // A login that finished since the last look changes what the device
        // is known to have logged in with.
        self.reap_up(device).await;
        // Serve only once tailscaled's state is complete in the Secret (a
        // stop right after a first login must not lose it), waiting at most
        // a few seconds.
        if !device.state_complete {
            let since = *device
                .incomplete_since
                .get_or_insert_with(tokio::time::Instant::now);
            let complete =
                tokio::time::timeout(API_TIMEOUT, self.secret.tailscale_state_complete())
                    .await
                    .is_ok_and(|r| r.unwrap_or(false));
            if complete || since.elapsed() >= STATE_COMPLETION_LIMIT {
                if !complete {
                    tracing::warn!(
                        "tailscaled's state is still incomplete in the secret: serving anyway"
                    );
                }
                device.state_complete = true;
            } else {
                return POLL_STARTING;
            }
        }
        match change_needed(ts, Some(&running), device.recorded.as_ref()) {
            Change::None => {}
            Change::SetHostname if !device.changed => {
                device.changed = true;
                tracing::info!(hostname = %ts.hostname, "tailscale set --hostname");
                if let Err(error) = daemon::run_cli(ts, &set_hostname_args(ts)).await {
                    tracing::error!(%error, "cannot change the hostname");
                }
            }
            Change::SetHostname => {}
            Change::Up { reauth } => self.start_up(device, reauth).await,
        }
        if device.forwarded != running.ips {
            if !device.forwarded.is_empty() {
                self.unforward(std::mem::take(&mut device.forwarded)).await;
            }
            if self.forward(&running.ips).await {
                device.forwarded = running.ips.clone();
                self.role.send_replace(Role::Leading { forwarding: true });
            }
        }
        if device.forwarded != running.ips {
            // Not serving yet: nothing to publish.
            return POLL_STARTING;
        }
        self.report(
            device,
            Report::Serving {
                device: running,
                pod,
                node,
                login_request: device.recorded.clone(),
            },
        )
        .await;
        POLL_RUNNING
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
        if self.settings.tailscale.auth_key.is_some() {
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
