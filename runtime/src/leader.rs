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
use crate::tailscale::args::{Change, change_needed, logout_args, set_hostname_args, up_args};
use crate::tailscale::daemon::{self, Tailscaled};
use crate::tailscale::status::Phase;

/// Status polling while tailscaled comes up, and once it runs.
const POLL_STARTING: Duration = Duration::from_millis(100);
const POLL_RUNNING: Duration = Duration::from_secs(5);
/// tailscaled's time to exit on SIGTERM; within the stop budget of
/// [`svc_lb_contract::LeaseTimings::STOP_BUDGET`].
const TAILSCALED_GRACE: Duration = Duration::from_millis(500);
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
}

/// Runs a blocking firewall step off the runtime's only thread.
async fn firewall<T: Send + 'static>(step: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(step)
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
        match firewall(move || crate::firewall::apply::install(&plan, backend)).await {
            Ok(()) => {
                tracing::info!(addresses = ?ips, "forwarding installed");
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
        if let Err(error) = firewall(move || crate::firewall::apply::remove(&ips, backend)).await {
            tracing::error!(%error, "cannot remove the forwarding");
        }
    }

    async fn report(&self, device: &mut Device, report: Report) {
        if device.reported.as_ref() == Some(&report) {
            return;
        }
        match self.secret.write(&report).await {
            Ok(()) => device.reported = Some(report),
            Err(error) => tracing::warn!(%error, "cannot report into the state secret"),
        }
    }

    fn start_up(&self, device: &mut Device, reauth: bool) {
        let running = device
            .up
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none());
        if running || (device.changed && reauth) {
            return;
        }
        tracing::info!(
            reauth,
            auth_key = self.settings.tailscale.auth_key.is_some(),
            "tailscale up"
        );
        match daemon::spawn_cli(
            &self.settings.tailscale,
            &up_args(&self.settings.tailscale, reauth),
        ) {
            Ok(child) => device.up = Some(child),
            Err(error) => tracing::error!(%error, "cannot run tailscale up"),
        }
        device.changed |= reauth;
    }

    /// One look at tailscaled, and what follows from it. Returns whether
    /// the device runs.
    async fn step(&self, device: &mut Device) -> bool {
        let ts = &self.settings.tailscale;
        let phase = match daemon::status(ts).await {
            Ok(status) => status.phase(),
            Err(error) => {
                tracing::debug!(%error, "no status yet");
                return false;
            }
        };
        tracing::debug!(?phase, "tailscaled status");
        let (pod, node) = (
            self.settings.pod.name.clone(),
            self.settings.pod.node.clone(),
        );
        let Phase::Running(running) = phase else {
            if !device.forwarded.is_empty() {
                self.unforward(std::mem::take(&mut device.forwarded)).await;
                self.role.send_replace(Role::Leading { forwarding: false });
            }
            match phase {
                Phase::NeedsUp => self.start_up(device, false),
                Phase::WaitingForLogin(url) => {
                    if !matches!(&device.reported, Some(Report::WaitingForLogin { url: u, .. }) if *u == url)
                    {
                        tracing::warn!(login_url = %url, "tailscaled waits for a login: open the URL (or set an auth key)");
                    }
                    self.report(device, Report::WaitingForLogin { url, pod, node })
                        .await;
                }
                _ => {}
            }
            return false;
        };
        match change_needed(ts, Some(&running)) {
            Change::None => {}
            Change::SetHostname if !device.changed => {
                device.changed = true;
                tracing::info!(hostname = %ts.hostname, "tailscale set --hostname");
                if let Err(error) = daemon::run_cli(ts, &set_hostname_args(ts)).await {
                    tracing::error!(%error, "cannot change the hostname");
                }
            }
            Change::SetHostname => {}
            Change::Up { reauth } => self.start_up(device, reauth),
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
        self.report(
            device,
            Report::Serving {
                device: running,
                pod,
                node,
            },
        )
        .await;
        true
    }

    /// Removes the rules, stops `up` and tailscaled.
    async fn stop(&self, mut device: Device) {
        self.unforward(std::mem::take(&mut device.forwarded)).await;
        if let Some(mut up) = device.up.take() {
            let _ = up.kill().await;
        }
        device.daemon.stop(TAILSCALED_GRACE).await;
    }

    fn spawn_device(&self) -> Option<Device> {
        match Tailscaled::spawn(&self.settings.tailscale, &self.settings.state_secret) {
            Ok(daemon) => {
                tracing::debug!("tailscaled started");
                Some(Device {
                    daemon,
                    up: None,
                    forwarded: Vec::new(),
                    reported: None,
                    changed: false,
                })
            }
            Err(error) => {
                tracing::error!(%error, "cannot start tailscaled");
                None
            }
        }
    }

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
        for _ in 0..50 {
            match daemon::status(ts).await.map(|s| s.phase()) {
                Ok(Phase::Starting(_)) | Err(_) => tokio::time::sleep(POLL_STARTING).await,
                Ok(_) => break,
            }
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
        let at = k8s_openapi::jiff::Timestamp::now().to_string();
        match self.secret.write(&Report::LoggedOut(at)).await {
            Ok(()) => tracing::info!("logged out of the tailnet"),
            Err(error) => tracing::error!(%error, "logged out, but cannot record it"),
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
        // A fresh read: a deprovisioning request may predate our watch.
        if *deprovision.borrow() || self.secret.deprovision_requested().await.unwrap_or(false) {
            self.deprovision(None).await;
            return Ended::Deprovisioned;
        }
        let mut backoff = RESTART_FIRST;
        loop {
            let mut device = self.spawn_device();
            let mut poll = POLL_STARTING;
            let next_start = loop {
                let running = device.is_some();
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => {
                        if let Some(d) = device { self.stop(d).await; }
                        return Ended::Shutdown;
                    }
                    _ = leading.wait_for(|l| !*l) => {
                        if let Some(d) = device { self.stop(d).await; }
                        return Ended::LostLeadership;
                    }
                    _ = deprovision.wait_for(|d| *d) => {
                        self.deprovision(device).await;
                        return Ended::Deprovisioned;
                    }
                    status = async {
                        match device.as_mut() {
                            Some(d) => d.daemon.exited().await.ok(),
                            None => std::future::pending().await,
                        }
                    } => {
                        tracing::error!(?status, restart_in = ?backoff, "tailscaled exited");
                        if let Some(d) = device.take() { self.stop(d).await; }
                        self.role.send_replace(Role::Leading { forwarding: false });
                        break backoff;
                    }
                    () = tokio::time::sleep(poll), if running => {
                        let d = device.as_mut().expect("guarded");
                        if self.step(d).await {
                            poll = POLL_RUNNING;
                            backoff = RESTART_FIRST;
                        } else {
                            poll = POLL_STARTING;
                        }
                    }
                    () = tokio::time::sleep(backoff), if !running => break backoff,
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return Ended::Shutdown,
                _ = leading.wait_for(|l| !*l) => return Ended::LostLeadership,
                () = tokio::time::sleep(next_start) => {}
            }
            backoff = (backoff * 2).min(RESTART_MAX);
        }
    }
}
