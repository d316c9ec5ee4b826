//! `node-agent`: the DaemonSet, Deployment and Job controllers
//! (`controllers`) or a node's kubelet (`kubelet`), against the cluster of `KUBECONFIG`. Both run until
//! SIGTERM or SIGINT; a stopped kubelet leaves its containers running.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use node_agent::env::ApiService;
use node_agent::image::Image;
use node_agent::kubelet::{
    self, NodeContext, container::NodeSettings, network::PodNetwork, runc::Runc,
};
use node_agent::oci::{capabilities, devices::DeviceRules, seccomp};

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the DaemonSet, Deployment and Job controllers.
    Controllers,
    /// Runs a node's kubelet.
    Kubelet(Box<KubeletArgs>),
}

#[derive(clap::Args)]
struct KubeletArgs {
    /// The node's name.
    #[arg(long)]
    node: String,
    /// The node's address (`status.hostIP` of its pods).
    #[arg(long)]
    host_ip: String,
    /// Folder for the pods' files, bundles, logs and runc's state.
    #[arg(long)]
    dir: PathBuf,
    /// The node's pod range: the first three octets of a /24 (`10.200.0`).
    #[arg(long)]
    pod_range: String,
    /// The node's bridge.
    #[arg(long, default_value = "cbr0")]
    bridge: String,
    /// The `kubernetes` Service the pods reach the API server on.
    #[arg(long, default_value = "10.96.0.1")]
    api_host: String,
    #[arg(long, default_value_t = 443)]
    api_port: u16,
    /// The cluster's CA (PEM), for the pods' ServiceAccount volumes.
    #[arg(long)]
    ca: PathBuf,
    /// An image: `<repository>=<file list>`.
    #[arg(long = "image", value_parser = pair)]
    images: Vec<(String, PathBuf)>,
    /// A binary of the build the images use: `<name>=<path>`.
    #[arg(long = "build", value_parser = pair)]
    builds: Vec<(String, PathBuf)>,
    /// The container runtime's device rules: `runc` or `without-tun`
    /// (crun's and runc 1.2.0-1.2.3's).
    #[arg(long, default_value = "runc", value_parser = |s: &str| DeviceRules::parse(s).ok_or("runc or without-tun"))]
    device_rules: DeviceRules,
    /// The test overlay (JSON), if any.
    #[arg(long)]
    overlay: Option<PathBuf>,
    /// The first restart back-off.
    #[arg(long, default_value_t = 10_000)]
    restart_backoff_ms: u64,
    /// Prefix of the names (containers, namespaces, cgroups) this kubelet
    /// makes; what an earlier run left under it is removed at start.
    #[arg(long, default_value = "svclb-node-")]
    prefix: String,
}

fn pair(text: &str) -> Result<(String, PathBuf), String> {
    let (name, path) = text.split_once('=').ok_or("expected NAME=PATH")?;
    Ok((name.to_string(), PathBuf::from(path)))
}

async fn shutdown_signal() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tx.send_replace(true);
    });
    rx
}

async fn kubelet(client: kube::Client, args: KubeletArgs) -> anyhow::Result<()> {
    let octets: Vec<u8> = args
        .pod_range
        .split('.')
        .filter_map(|o| o.parse().ok())
        .collect();
    let prefix: [u8; 3] = octets
        .try_into()
        .map_err(|_| anyhow::anyhow!("--pod-range: three octets"))?;
    let builds: BTreeMap<String, PathBuf> = args.builds.into_iter().collect();
    let mut images = Vec::new();
    for (i, (repository, list)) in args.images.iter().enumerate() {
        let text = std::fs::read_to_string(list).with_context(|| list.display().to_string())?;
        let root = args.dir.join("images").join(i.to_string());
        images.push((repository.clone(), Image::prepare(&text, &builds, &root)?));
    }
    let overlay = match &args.overlay {
        Some(path) => serde_json::from_slice(&std::fs::read(path)?)?,
        None => Default::default(),
    };
    let context = NodeContext {
        client,
        runc: Runc::new(args.dir.join("runc")),
        network: PodNetwork {
            bridge: args.bridge,
            prefix,
            name_prefix: args.prefix.clone(),
        },
        name: args.node,
        host_ip: args.host_ip,
        images,
        settings: NodeSettings {
            all_capabilities: capabilities::current()?,
            seccomp_profile: std::fs::read_to_string(seccomp::CONTAINERS_COMMON_PROFILE).ok(),
            overlay,
            cgroup_parent: args.prefix.trim_end_matches('-').to_string(),
            api: ApiService {
                host: args.api_host,
                port: args.api_port,
            },
        },
        device_rules: args.device_rules,
        ca_pem: std::fs::read_to_string(&args.ca)?,
        restart_backoff: Duration::from_millis(args.restart_backoff_ms),
        id_prefix: args.prefix,
        addresses: Default::default(),
        dir: args.dir,
    };
    kubelet::run(Arc::new(context), shutdown_signal().await).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let client = kube::Client::try_default()
        .await
        .context("no cluster configuration")?;
    match cli.command {
        Command::Controllers => node_agent::run_controllers(client, shutdown_signal().await).await,
        Command::Kubelet(args) => kubelet(client, *args).await?,
    }
    Ok(())
}
