//! `tailscale-svc-lb-runtime`: the process in each pod of a Service's proxy
//! DaemonSet.
//!
//! What it will do (the leader election, tailscaled and forwarding are not
//! built yet): the pods elect one leader through the Service's Lease; only
//! the leader runs tailscaled (state in the state Secret) and installs DNAT
//! from its Tailscale IP to the Service's ClusterIP; it reports its
//! addresses into the state Secret for the controller.
//!
//! What it does today:
//! - `tailscale-svc-lb-runtime enable-forwarding` — run by the privileged
//!   init container: enables IPv4 and IPv6 forwarding in the pod's network
//!   namespace.
//! - `tailscale-svc-lb-runtime forward --tailscale-ip IP…` — installs the
//!   forwarding from those addresses to the Service (settings from the
//!   environment, see [`settings`]) and exits; `unforward --tailscale-ip IP…`
//!   removes it with the conntrack entries of its flows. The leader will do
//!   the same; the commands exist to inspect and repair a pod by hand.
//!
//! Settings come from the environment; their names are defined in
//! [`svc_lb_contract::env`].
#![forbid(unsafe_code)]

mod firewall;
mod forwarding;
mod settings;

use clap::{Parser, Subcommand};

/// Per-Service proxy runtime of tailscale-svc-lb.
#[derive(Debug, Parser)]
#[command(name = svc_lb_contract::RUNTIME_BINARY, version, about)]
struct Cli {
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
    use firewall::apply::Backend;
    Ok(
        match settings::FirewallMode::from_lookup(|name| std::env::var(name).ok())? {
            settings::FirewallMode::Auto => Backend::detect(),
            settings::FirewallMode::Nftables => Backend::Nftables,
            settings::FirewallMode::Iptables => Backend::Iptables,
        },
    )
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
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
        None => anyhow::bail!(
            "the proxy runtime (leader election, tailscaled, forwarding) is not implemented yet"
        ),
    }
}
