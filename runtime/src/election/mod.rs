//! Leader election among a Service's runtime pods through its Lease.
//!
//! Hand-written rather than `kube-lease-manager` because the runtime needs
//! what that crate does not give: standbys that learn of a release at once
//! through a watch (the crate sleeps until the Lease's expiry, which would
//! make every graceful handover last a whole Lease duration), and a leader
//! that steps down on its own renew deadline (the crate keeps reporting
//! leadership while its renewals fail). The decisions are plain functions in
//! [`record`]; this file only reads, watches and writes the Lease.
//!
//! Writes are updates with the last seen `resourceVersion`, so two pods
//! can never both win one round: the loser gets a 409 and reads again.

pub mod record;

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use kube::api::{Api, PostParams};
use kube::runtime::watcher;
use svc_lb_contract::LeaseTimings;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use record::{Step, held_spec, holder, next_step, released_spec};

/// Field manager of the runtime's writes.
pub const FIELD_MANAGER: &str = "tailscale-svc-lb-runtime";

/// A running election.
pub struct Election {
    /// `true` while this pod holds the Lease and has renewed it within the
    /// renew deadline.
    pub leading: watch::Receiver<bool>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<Option<Lease>>,
    api: Api<Lease>,
    name: String,
    me: String,
}

struct Candidate {
    api: Api<Lease>,
    name: String,
    me: String,
    timings: LeaseTimings,
    /// The Lease as last seen, and when it last changed (local clock).
    seen: Option<Lease>,
    changed_at: Instant,
    /// Start of the last successful write of ours.
    renewed_at: Option<Instant>,
    leading: watch::Sender<bool>,
}

/// Parameters of every Lease write of ours.
fn write_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    }
}

fn spec(lease: Option<&Lease>) -> Option<&LeaseSpec> {
    lease.and_then(|l| l.spec.as_ref())
}

impl Candidate {
    /// Takes a newly seen Lease; a change of holder or renewal restarts the
    /// expiry clock.
    fn observe(&mut self, lease: Option<Lease>) {
        let key =
            |l: Option<&Lease>| spec(l).map(|s| (s.holder_identity.clone(), s.renew_time.clone()));
        if key(lease.as_ref()) != key(self.seen.as_ref()) {
            self.changed_at = Instant::now();
        }
        self.seen = lease;
    }

    async fn refresh(&mut self) {
        // After a conflict the leader's renew deadline still bounds it.
        let read = tokio::time::timeout(self.write_budget(), self.api.get_opt(&self.name));
        match read.await {
            Ok(Ok(lease)) => self.observe(lease),
            Ok(Err(error)) => tracing::warn!(%error, lease = %self.name, "cannot read the lease"),
            Err(_) => tracing::warn!(lease = %self.name, "reading the lease timed out"),
        }
    }

    /// How long one write may take: a retry period, and for the leader
    /// never past its renew deadline (it must be able to step down in time).
    fn write_budget(&self) -> Duration {
        match self.renewed_at.filter(|_| *self.leading.borrow()) {
            Some(renewed) => (renewed + self.timings.renew_deadline)
                .saturating_duration_since(Instant::now())
                .min(self.timings.retry_period),
            None => self.timings.retry_period,
        }
    }

    /// One acquire or renew attempt; a conflict reads the Lease again.
    async fn write(&mut self) {
        let Some(current) = self.seen.clone() else {
            tracing::warn!(lease = %self.name, "the lease does not exist (the controller creates it)");
            return self.refresh().await;
        };
        let started = Instant::now();
        let now = k8s_openapi::jiff::Timestamp::now();
        let mut next = current.clone();
        next.spec = Some(held_spec(
            &self.me,
            current.spec.as_ref(),
            self.timings,
            now,
        ));
        let params = write_params();
        let attempt = tokio::time::timeout(
            self.write_budget(),
            self.api.replace(&self.name, &params, &next),
        );
        match attempt.await {
            Ok(Ok(lease)) => {
                self.seen = Some(lease);
                self.changed_at = started;
                self.renewed_at = Some(started);
                self.leading
                    .send_if_modified(|leading| !std::mem::replace(leading, true));
            }
            Ok(Err(kube::Error::Api(status))) if status.code == 409 => self.refresh().await,
            Ok(Err(error)) => tracing::warn!(%error, lease = %self.name, "cannot write the lease"),
            Err(_) => tracing::warn!(lease = %self.name, "writing the lease timed out"),
        }
    }

    /// Steps down when the renew deadline passed or another pod holds it.
    fn check_leadership(&mut self) {
        if !*self.leading.borrow() {
            return;
        }
        let expired = self
            .renewed_at
            .is_none_or(|t| t.elapsed() >= self.timings.renew_deadline);
        let lost = holder(spec(self.seen.as_ref())) != Some(self.me.as_str());
        if expired || lost {
            tracing::warn!(lease = %self.name, expired, lost, "leadership lost");
            self.renewed_at = None;
            self.leading.send_replace(false);
        }
    }

    /// When to act next.
    fn wake_at(&self, now: Instant) -> Instant {
        let step = next_step(
            &self.me,
            spec(self.seen.as_ref()),
            self.changed_at,
            now,
            self.timings,
        );
        let mut wake = match step {
            Step::Renew | Step::Acquire => now + self.timings.retry_period,
            Step::WaitUntil(at) => at,
        };
        if let Some(renewed) = self.renewed_at.filter(|_| *self.leading.borrow()) {
            wake = wake.min(renewed + self.timings.renew_deadline);
        }
        wake
    }

    async fn run(mut self, cancel: CancellationToken) -> Option<Lease> {
        let config = watcher::Config::default().fields(&format!("metadata.name={}", self.name));
        let mut events = watcher::watcher(self.api.clone(), config).boxed();
        self.refresh().await;
        let mut act_now = true;
        loop {
            if act_now {
                let now = Instant::now();
                let step = next_step(
                    &self.me,
                    spec(self.seen.as_ref()),
                    self.changed_at,
                    now,
                    self.timings,
                );
                // A leader past its deadline steps down before anything else.
                self.check_leadership();
                if matches!(step, Step::Renew | Step::Acquire) {
                    self.write().await;
                }
            }
            self.check_leadership();
            let wake = self.wake_at(Instant::now());
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep_until(wake) => act_now = true,
                event = events.next() => {
                    act_now = false;
                    match event {
                        Some(Ok(watcher::Event::Apply(lease) | watcher::Event::InitApply(lease))) => {
                            let released = holder(lease.spec.as_ref()).is_none();
                            self.observe(Some(lease));
                            // A released Lease is taken at once.
                            act_now = released;
                        }
                        Some(Ok(watcher::Event::Delete(_))) => self.observe(None),
                        Some(Ok(_)) => {}
                        Some(Err(error)) => {
                            tracing::debug!(%error, "lease watch interrupted");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        None => {}
                    }
                }
            }
        }
        self.leading.send_replace(false);
        self.seen
    }
}

impl Election {
    /// Joins the election for Lease `name` as `me`.
    pub fn start(api: Api<Lease>, name: &str, me: &str, timings: LeaseTimings) -> Self {
        let (sender, leading) = watch::channel(false);
        let candidate = Candidate {
            api: api.clone(),
            name: name.into(),
            me: me.into(),
            timings,
            seen: None,
            changed_at: Instant::now(),
            renewed_at: None,
            leading: sender,
        };
        let cancel = CancellationToken::new();
        let task = tokio::spawn(candidate.run(cancel.clone()));
        Self {
            leading,
            cancel,
            task,
            api,
            name: name.into(),
            me: me.into(),
        }
    }

    /// Leaves the election; a Lease still held is released so a standby
    /// takes over at once (bounded wait: an unreachable API server only
    /// delays the takeover until expiry).
    pub async fn release(self) {
        self.cancel.cancel();
        let Ok(Some(lease)) = self.task.await else {
            return;
        };
        if holder(lease.spec.as_ref()) != Some(self.me.as_str()) {
            return;
        }
        let params = write_params();
        let write = async {
            let mut lease = lease;
            // One retry after a conflict (the controller may have applied
            // the Lease's metadata meanwhile), if the Lease is still ours.
            for _ in 0..2 {
                let mut released = lease.clone();
                let now = k8s_openapi::jiff::Timestamp::now();
                released.spec = Some(released_spec(&lease.spec.clone().unwrap_or_default(), now));
                match self.api.replace(&self.name, &params, &released).await {
                    Err(kube::Error::Api(status)) if status.code == 409 => {
                        lease = self.api.get(&self.name).await?;
                        if holder(lease.spec.as_ref()) != Some(self.me.as_str()) {
                            return Ok(lease);
                        }
                    }
                    other => return other,
                }
            }
            Ok(lease)
        };
        match tokio::time::timeout(Duration::from_secs(2), write).await {
            Ok(Ok(_)) => tracing::info!(lease = %self.name, "released the lease"),
            Ok(Err(error)) => {
                tracing::warn!(%error, lease = %self.name, "cannot release the lease")
            }
            Err(_) => tracing::warn!(lease = %self.name, "releasing the lease timed out"),
        }
    }
}
