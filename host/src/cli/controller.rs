//! `tailscale-svc-lb controller` (also what runs with no subcommand): the
//! controller against the cluster of the kubeconfig (`--kubeconfig`,
//! `$KUBECONFIG`, `~/.kube/config`) or, inside a pod, its service account.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use svc_lb_host::controller::leader::ElectionTimings;
use svc_lb_host::controller::{ControllerOptions, ControllerTimings, DEFAULT_POLICY_CONFIGMAP};
use svc_lb_host::policy::check_memory_limit;
use tokio_util::sync::CancellationToken;

use super::args::{ConfigArgs, EngineArgs};

#[derive(Debug, Clone, Args)]
pub(super) struct ControllerArgs {
    /// Kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, or the pod's service account).
    #[arg(long, env = "KUBECONFIG", value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// ConfigMap (in --namespace) holding policies.yaml and the .wasm files;
    /// it must exist. Empty: no ConfigMap, the bundled default policy alone.
    #[arg(long, env = "SVCLB_POLICY_CONFIGMAP", default_value = DEFAULT_POLICY_CONFIGMAP)]
    policy_configmap: String,
    /// Do not run the bundled default policy first.
    #[arg(long, env = "SVCLB_NO_DEFAULT_POLICY")]
    no_default_policy: bool,
    /// Log format: `text` (coloured only on a terminal) or `json` (one
    /// object per line).
    #[arg(long, env = svc_lb_contract::logging::LOG_FORMAT_ENV, default_value = "text")]
    log_format: svc_lb_contract::logging::LogFormat,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "SVCLB_METRICS_ADDRESS", default_value = "0.0.0.0:9090")]
    metrics_address: SocketAddr,
    /// Seconds teardown waits for the proxy leader to log out of the tailnet.
    #[arg(long, env = "SVCLB_DEPROVISION_TIMEOUT", default_value_t = 30)]
    deprovision_timeout: u64,
    /// Seconds between re-checks of every served Service.
    #[arg(long, env = "SVCLB_RESYNC_PERIOD", default_value_t = 300)]
    resync_period: u64,
    /// Run without leader election (only for a single replica).
    #[arg(long, env = "SVCLB_NO_LEADER_ELECTION")]
    no_leader_election: bool,
    /// Seconds the controller Lease is valid without renewal.
    #[arg(long, env = "SVCLB_ELECTION_LEASE_DURATION", default_value_t = ElectionTimings::default().duration)]
    election_lease_duration: u64,
    /// Seconds before expiry at which the leader renews the controller Lease.
    #[arg(long, env = "SVCLB_ELECTION_RENEW_GRACE", default_value_t = ElectionTimings::default().grace)]
    election_renew_grace: u64,
    /// This replica's identity in the election and in Events (the pod name).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Services reconciled at once.
    #[arg(long, env = "SVCLB_CONCURRENCY", default_value_t = 16)]
    concurrency: u16,
    /// The controller container's memory limit in MiB (set it from the
    /// pod's `limits.memory`); default: the cgroup's limit. The policy
    /// engine's worst case must fit in it, or the controller does not start.
    #[arg(long, env = "SVCLB_MEMORY_LIMIT_MIB")]
    memory_limit_mib: Option<usize>,
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    config: ConfigArgs,
}

impl ControllerArgs {
    fn to_options(&self) -> anyhow::Result<ControllerOptions> {
        let election = ElectionTimings {
            duration: self.election_lease_duration,
            grace: self.election_renew_grace,
        };
        if !self.no_leader_election {
            election
                .validate()
                .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        }
        if self.deprovision_timeout == 0 || self.resync_period == 0 || self.concurrency == 0 {
            bail!(
                "invalid configuration: deprovision timeout, resync period and concurrency must be positive"
            );
        }
        let identity = match &self.identity {
            Some(identity) if !identity.is_empty() => identity.clone(),
            _ => fallback_identity(),
        };
        let limits = self.engine.to_limits()?;
        let memory_limit = match self.memory_limit_mib {
            Some(mib) => Some(mib << 20),
            None => cgroup_memory_limit(),
        };
        if let Some(limit) = memory_limit {
            check_memory_limit(&limits, limit)
                .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        }
        let mut config = self.config.to_config()?;
        config.json_logs = matches!(self.log_format, svc_lb_contract::logging::LogFormat::Json);
        Ok(ControllerOptions {
            config,
            timings: ControllerTimings {
                deprovision_timeout: Duration::from_secs(self.deprovision_timeout),
                resync: Duration::from_secs(self.resync_period),
                ..ControllerTimings::default()
            },
            limits,
            policy_configmap: Some(self.policy_configmap.clone()).filter(|n| !n.is_empty()),
            default_policy: !self.no_default_policy,
            metrics_addr: Some(self.metrics_address),
            election: (!self.no_leader_election).then_some(election),
            identity,
            concurrency: self.concurrency,
        })
    }
}

/// The memory limit of this process's cgroup (v2 `memory.max`, else v1
/// `memory.limit_in_bytes`), if it has one. In a container the cgroup
/// namespace makes the container's own cgroup the root of `/sys/fs/cgroup`.
fn cgroup_memory_limit() -> Option<usize> {
    let v2 = std::fs::read_to_string("/sys/fs/cgroup/memory.max");
    let v1 = || std::fs::read_to_string("/sys/fs/cgroup/memory/memory.limit_in_bytes");
    let text = v2.or_else(|_| v1()).ok()?;
    // "max" (v2) or a page-rounded i64::MAX (v1) mean no limit.
    text.trim()
        .parse::<u64>()
        .ok()
        .filter(|&bytes| bytes < 1 << 60)
        .map(|bytes| bytes as usize)
}

/// An identity unique to this process without `POD_NAME`: the host name
/// (the pod name inside a pod) and the start time, since the process id is
/// the same in every container.
fn fallback_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{host}-{}-{started:x}", std::process::id())
}

pub(super) async fn client(kubeconfig: Option<&PathBuf>) -> anyhow::Result<kube::Client> {
    let mut config = match kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?
        }
        None => kube::Config::infer().await?,
    };
    config.headers.push((
        axum::http::header::USER_AGENT,
        axum::http::HeaderValue::from_static(svc_lb_host::controller::USER_AGENT),
    ));
    Ok(kube::Client::try_from(config)?)
}

pub(super) fn run(args: ControllerArgs) -> anyhow::Result<()> {
    let options = args.to_options()?;
    svc_lb_contract::logging::init(args.log_format, "info,kube_lease_manager=warn");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let client = client(args.kubeconfig.as_ref()).await?;
        let shutdown = CancellationToken::new();
        let signal = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down");
            signal.cancel();
        });
        svc_lb_host::controller::run(client, options, shutdown).await?;
        Ok(())
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut terminate) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
