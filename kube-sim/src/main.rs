//! `kube-sim`: runs the in-memory API server as a process of its own (so a
//! benchmark can measure a controller's memory without the server's).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

/// In-memory Kubernetes API server for tests and the local playground.
#[derive(Debug, Parser)]
#[command(name = "kube-sim", version, about)]
struct Args {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Write a kubeconfig pointing at the server to this file.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    kube_sim::serve_until_interrupted(args.listen, args.kubeconfig.as_deref()).await?;
    Ok(())
}
