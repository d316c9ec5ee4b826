//! The leader's forwarding: installing and removing the DNAT rules of its
//! device's addresses, each firewall step off the runtime's only thread and
//! in the order asked for, and each forwarding interval logged on the
//! monotonic clock (the failover tests' overlap oracle reads them).

use std::net::IpAddr;

use svc_lb_contract::state::problem;

use super::Leader;
use crate::firewall::plan::ForwardingPlan;

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
    /// Installs the forwarding from `ips`; the error is a problem code and
    /// message for the Service's owner.
    pub(super) async fn forward(&self, ips: &[IpAddr]) -> Result<(), (&'static str, String)> {
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
            return Err((problem::FORWARDING_DISABLED, error.to_string()));
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
                Ok(())
            }
            Err(error) => {
                tracing::error!(%error, "cannot install the forwarding");
                Err((problem::FIREWALL_FAILED, error.to_string()))
            }
        }
    }

    pub(super) async fn unforward(&self, ips: Vec<IpAddr>) {
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
}
