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
//!
//! Settings come from the environment; their names are defined in
//! [`svc_lb_contract::env`].
#![forbid(unsafe_code)]

mod forwarding;

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
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Some(Command::EnableForwarding) => {
            forwarding::enable_forwarding(std::path::Path::new("/proc/sys"))?;
            Ok(())
        }
        None => anyhow::bail!(
            "the proxy runtime (leader election, tailscaled, forwarding) is not implemented yet"
        ),
    }
}
