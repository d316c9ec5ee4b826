//! `playground`: what `scripts/playground` runs. `up` starts a cluster on
//! this machine ([`playground::cluster::PodCluster`]: the API server, two
//! nodes for proxies and a tainted `edge` node, each running pods in runc
//! containers, an echo backend behind the Service network, a fake tailnet
//! with a "laptop" namespace), installs the chart with Helm, applies
//! `examples/playground/service.yaml`, waits for its tailnet address and
//! `curl`s it from the laptop; then stays up until Ctrl-C (or, with
//! `--once`, plays node loss and the Service's deletion, checks what is
//! left, and exits). `exec`, `node kill` and `policies` act on a running
//! `up` from another shell.

mod control;
mod leftovers;
mod steps;
mod unattended;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "A LoadBalancer Service with a tailnet address, on this machine")]
struct Cli {
    /// The playground's folder (kubeconfig, cluster files, control).
    #[arg(long, default_value = "/var/tmp/svclb-playground")]
    state: PathBuf,
    /// The part of every name the playground makes (network namespaces,
    /// links, containers, cgroups), so a later run finds what a crashed
    /// one left; one run per id at a time.
    #[arg(long, default_value = "play")]
    id: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Starts the playground and stays up until Ctrl-C.
    Up {
        /// Play the whole tour without waiting (node loss, deletion), check
        /// that nothing is left, and exit.
        #[arg(long)]
        once: bool,
    },
    /// Runs a command on the laptop (a device of the tailnet).
    Exec {
        #[arg(trailing_var_arg = true, required = true)]
        command: Vec<String>,
    },
    /// Acts on a node of the running playground.
    Node {
        #[command(subcommand)]
        action: NodeAction,
    },
    /// Applies a policy set folder (its policies.yaml; the .wasm files it
    /// names, from the folder or the build) as the controller's ConfigMap.
    Policies { dir: PathBuf },
    /// Lists the tailnet's devices.
    Devices,
}

#[derive(Subcommand)]
enum NodeAction {
    /// Loses a node: its kubelet stops and its containers die, as when the
    /// machine fails.
    Kill { node: String },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if !cfg!(target_os = "linux") {
        bail!("the playground needs Linux (network namespaces, runc)");
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "the playground needs root (network namespaces, runc): as root, or with `sudo -E env \"PATH=$PATH\" scripts/playground`"
        );
    }
    match cli.command {
        Command::Up { once } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            let playground = steps::Playground {
                state: cli.state,
                id: cli.id,
            };
            runtime.block_on(steps::up(&playground, once))
        }
        Command::Exec { command } => {
            let status = std::process::Command::new("ip")
                .args(["netns", "exec", &format!("svclb-pc-{}", cli.id)])
                .args(&command)
                .status()
                .context("ip netns exec")?;
            std::process::exit(status.code().unwrap_or(1));
        }
        Command::Node {
            action: NodeAction::Kill { node },
        } => control::request(&cli.state, &format!("kill-{node}"), Duration::from_secs(30)),
        Command::Policies { dir } => control::request(
            &cli.state,
            &format!("policies {}", dir.canonicalize()?.display()),
            Duration::from_secs(30),
        ),
        Command::Devices => control::request(&cli.state, "devices", Duration::from_secs(10)),
    }
}
