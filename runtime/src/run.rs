//! The runtime's main loop: clean up what a crashed predecessor may have
//! left, serve the health endpoints, join the election, lead while holding
//! the Lease, and on SIGTERM hand over (rules removed, tailscaled stopped,
//! Lease released) so a standby takes over at once.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::election::Election;
use crate::firewall::apply::{self, Backend};
use crate::health::{self, Role};
use crate::leader::{Ended, Leader};
use crate::settings::{FirewallMode, RuntimeSettings};
use crate::state_secret::StateSecret;

/// The firewall the settings ask for.
pub fn backend(mode: FirewallMode) -> Backend {
    match mode {
        FirewallMode::Auto => Backend::detect(),
        FirewallMode::Nftables => Backend::Nftables,
        FirewallMode::Iptables => Backend::Iptables,
    }
}

/// A token cancelled on SIGTERM or SIGINT. The handler is installed before
/// this returns: the runtime is PID 1 in its container, and PID 1 ignores a
/// signal it has no handler for (so an early SIGTERM would be lost and the
/// pod killed only after its grace period).
fn cancel_on_termination() -> std::io::Result<CancellationToken> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let shutdown = CancellationToken::new();
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = interrupt.recv() => {}
            }
            shutdown.cancel();
        }
    });
    Ok(shutdown)
}

/// Runs until SIGTERM.
pub async fn run(settings: RuntimeSettings) -> anyhow::Result<()> {
    let shutdown = cancel_on_termination()?;
    crate::reaper::start_if_pid_one();
    let backend = backend(settings.firewall_mode);
    tracing::info!(?backend, timings = ?settings.timings, "starting");
    // A runtime killed with SIGKILL leaves its rules; its tailscaled died
    // with it, so they forward nothing now but must not wait for a restart.
    tokio::task::spawn_blocking(move || apply::remove(&[], backend)).await??;

    let (role, role_watch) = watch::channel(Role::Starting);
    let port = settings.health_port;
    let ip = settings.pod.ip;
    tokio::spawn(async move {
        if let Err(error) = health::serve(ip, port, role_watch).await {
            tracing::error!(%error, port, "cannot serve the health endpoints");
        }
    });

    let mut config = kube::Config::infer().await?;
    // `<binary>/<version>`: the runtime's requests stand apart from
    // tailscaled's, made with the same ServiceAccount.
    let agent = format!(
        "{}/{}",
        svc_lb_contract::RUNTIME_BINARY,
        env!("CARGO_PKG_VERSION")
    );
    config.headers.push((
        axum::http::header::USER_AGENT,
        axum::http::HeaderValue::from_str(&agent)?,
    ));
    let client = kube::Client::try_from(config)?;
    let namespace = &settings.pod.namespace;
    let secret = StateSecret::new(
        Api::<Secret>::namespaced(client.clone(), namespace),
        &settings.state_secret,
    );
    // Without a TUN device tailscaled cannot run: say so once (in the log
    // and, for the Service's owner, in the state Secret), stay unready and
    // out of the election, and look again now and then (a device plugin
    // may still provide it).
    let mut said = false;
    let mut written = None;
    while let Err(error) = crate::tun::ensure_tun(std::path::Path::new("/dev")) {
        if !said {
            tracing::error!(%error, "no TUN device");
            role.send_replace(Role::NoTunDevice);
            let message = format!(
                "{error} (pod {} on node {})",
                settings.pod.name, settings.pod.node
            );
            let write = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                secret.write_problem(svc_lb_contract::state::problem::NO_TUN_DEVICE, &message),
            )
            .await;
            match write {
                Ok(Ok(true)) => written = Some(message),
                Ok(Ok(false)) => {}
                _ => tracing::warn!("cannot report the missing TUN device into the state secret"),
            }
            said = true;
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(std::time::Duration::from_secs(10)) => {}
        }
    }
    // The device appeared (a device plugin): what this pod reported is
    // over.
    if let Some(message) = written
        && let Err(error) = secret.clear_problem(&message).await
    {
        tracing::warn!(%error, "cannot clear the reported problem");
    }
    let mut deprovision = secret.watch_deprovision();
    let mut election = Election::start(
        Api::<Lease>::namespaced(client, namespace),
        &settings.lease,
        &settings.pod.name,
        settings.timings,
    );
    role.send_replace(Role::Standby);
    let leader = Leader {
        settings: &settings,
        backend,
        secret: &secret,
        role: &role,
    };
    let mut deprovisioned = false;
    let mut served_again = deprovision.clone();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            // The Service was served again during its teardown: the
            // controller re-created the state Secret without the request.
            // Start over as a fresh pod would (a deleted Secret does not
            // count: the request stays until one exists without it).
            changed = served_again.changed(), if deprovisioned => {
                // Only a change seen after the deprovisioning counts (a
                // lagging watch still saying "no request" must not).
                if changed.is_ok() && !*served_again.borrow_and_update() {
                    tracing::info!("the state secret was re-created: serving again");
                    deprovisioned = false;
                    role.send_replace(Role::Standby);
                }
            }
            true = async { election.leading.wait_for(|l| *l).await.is_ok() }, if !deprovisioned => {
                tracing::info!("leading");
                match leader.lead(&mut election.leading, &mut deprovision, &shutdown).await {
                    Ended::LostLeadership => {
                        tracing::warn!("stopped leading");
                        role.send_replace(Role::Standby);
                    }
                    Ended::Shutdown => break,
                    Ended::Deprovisioned => {
                        // Keep the Lease: no standby takes over a device
                        // that left the tailnet.
                        deprovisioned = true;
                        served_again.mark_unchanged();
                        role.send_replace(Role::Deprovisioned);
                    }
                }
            }
        }
    }
    role.send_replace(Role::Stopping);
    election.release().await;
    tracing::info!("stopped");
    Ok(())
}
