//! `tailscale-svc-lb-runtime`: the process in each pod of a Service's proxy
//! DaemonSet.
//!
//! - `tailscale-svc-lb-runtime` (no subcommand): the pods elect one leader
//!   through the Service's Lease ([`election`]); only the leader runs
//!   tailscaled with its state in the state Secret, forwards from its
//!   Tailscale addresses to the Service's ClusterIPs and reports them into
//!   the Secret ([`leader`]); the others wait to take over ([`run`]).
//! - `enable-forwarding`: run by the privileged init container; enables
//!   IPv4 and IPv6 forwarding in the pod's network namespace.
//! - `forward --tailscale-ip IP…` / `unforward --tailscale-ip IP…`: install
//!   or remove the forwarding by hand, to inspect and repair a pod.
//!
//! Settings come from the environment (see [`settings`]); their names are
//! defined in [`svc_lb_contract::env`].
#![deny(unsafe_code)]

mod election;
mod firewall;
mod forwarding;
mod health;
mod leader;
mod reaper;
mod report;
mod run;
mod settings;
mod state_secret;
mod sys;
mod tailscale;
mod tun;

use clap::{Parser, Subcommand};

/// Per-Service proxy runtime of tailscale-svc-lb.
#[derive(Debug, Parser)]
#[command(name = svc_lb_contract::RUNTIME_BINARY, version, about)]
struct Cli {
    /// Log format: `text` (coloured only on a terminal) or `json` (one
    /// object per line).
    #[arg(long, global = true, env = svc_lb_contract::logging::LOG_FORMAT_ENV, default_value = "text")]
    log_format: svc_lb_contract::logging::LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Enable IPv4/IPv6 forwarding in this network namespace (init container).
    EnableForwarding,
    /// Install the forwarding from these Tailscale addresses to the Service.
    Forward(Addresses),
    /// Remove the forwarding and the conntrack entries of its flows.
    Unforward(Addresses),
}

#[derive(Debug, clap::Args)]
struct Addresses {
    /// A Tailscale address of this device (repeat for IPv4 and IPv6).
    #[arg(long = "tailscale-ip", required = true)]
    tailscale_ips: Vec<std::net::IpAddr>,
}

/// The firewall backend the settings ask for.
fn backend() -> anyhow::Result<firewall::apply::Backend> {
    let mode = settings::FirewallMode::from_lookup(|name| std::env::var(name).ok())?;
    Ok(run::backend(mode))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::EnableForwarding) => {
            forwarding::enable_forwarding(std::path::Path::new("/proc/sys"))?;
            Ok(())
        }
        Some(Command::Forward(addresses)) => {
            let service = settings::ServiceSettings::from_env()?;
            let backend = backend()?;
            let plan = firewall::plan::ForwardingPlan::new(
                &addresses.tailscale_ips,
                &service.cluster_ips,
                service.ports,
                service.source_ranges,
            );
            firewall::apply::install(&plan, backend)?;
            Ok(())
        }
        Some(Command::Unforward(addresses)) => {
            firewall::apply::remove(&addresses.tailscale_ips, backend()?)?;
            Ok(())
        }
        None => {
            svc_lb_contract::logging::init(cli.log_format, "info");
            let settings = settings::RuntimeSettings::from_env()?;
            let span = tracing::info_span!(
                "runtime",
                service = %settings.service_ref,
                pod = %settings.pod.name
            );
            // One thread: tailscaled's parent-death signal follows the
            // thread that spawned it (see `sys`).
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(tracing::Instrument::instrument(run::run(settings), span))
        }
    }
}
