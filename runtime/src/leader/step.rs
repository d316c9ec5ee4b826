//! One look at tailscaled and what follows from it: the phase it reports
//! decides whether to log in, wait for a person (login URL, approval),
//! restart a daemon left without state, wait for its state to be complete,
//! apply a changed hostname or login, forward, and report.

use std::time::Duration;

use super::{
    API_TIMEOUT, Device, Leader, NO_STATE_LIMIT, POLL_LOGIN, POLL_RUNNING, POLL_STARTING,
    STATE_COMPLETION_LIMIT,
};
use crate::health::Role;
use crate::report::Report;
use crate::tailscale::args::{Change, change_needed, set_hostname_args};
use crate::tailscale::daemon;
use crate::tailscale::status::Phase;
use svc_lb_contract::state::problem;

impl Leader<'_> {
    /// One look at tailscaled, and what follows from it. Returns when to
    /// look again.
    pub(super) async fn step(
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
                    if let Some((code, message)) = device.up_problem.clone() {
                        self.report_problem(device, code, message).await;
                    }
                    POLL_STARTING
                }
                Phase::NeedsApproval => {
                    let message = "the device waits for approval by a tailnet admin".into();
                    self.report_problem(device, problem::NEEDS_APPROVAL, message)
                        .await;
                    POLL_LOGIN
                }
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
            match self.forward(&running.ips).await {
                Ok(()) => {
                    device.forwarded = running.ips.clone();
                    self.role.send_replace(Role::Leading { forwarding: true });
                }
                Err((code, message)) => {
                    self.report_problem(device, code, message).await;
                    return POLL_STARTING;
                }
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
}
