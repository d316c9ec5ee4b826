//! `tailscale-svc-lb uninstall`: stops the controller and tears every
//! proxy of the installation down (see the library's
//! `controller::uninstall`). The Helm chart runs it as a pre-delete hook.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use svc_lb_host::controller::ControllerTimings;
use svc_lb_host::controller::uninstall::{UninstallOptions, uninstall};

use super::args::ConfigArgs;

#[derive(Debug, Clone, Args)]
pub(super) struct UninstallArgs {
    /// Kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, or the pod's service account).
    #[arg(long, env = "KUBECONFIG", value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// The controller's Deployment (in --namespace), scaled to zero first;
    /// empty when the controller does not run as one.
    #[arg(long, env = "SVCLB_DEPLOYMENT", default_value = "tailscale-svc-lb")]
    deployment: String,
    /// Seconds the whole uninstall may take.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Seconds a proxy's leader gets to log out of the tailnet.
    #[arg(long, env = "SVCLB_DEPROVISION_TIMEOUT", default_value_t = 30)]
    deprovision_timeout: u64,
    /// Services torn down at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    #[command(flatten)]
    config: ConfigArgs,
}

pub(super) fn run(args: UninstallArgs) -> anyhow::Result<()> {
    svc_lb_contract::logging::init(Default::default(), "info");
    let config = args.config.to_config()?;
    if args.timeout == 0 || args.deprovision_timeout == 0 || args.concurrency == 0 {
        bail!(
            "invalid configuration: timeout, deprovision timeout and concurrency must be positive"
        );
    }
    let options = UninstallOptions {
        config,
        timings: ControllerTimings {
            deprovision_timeout: Duration::from_secs(args.deprovision_timeout),
            ..ControllerTimings::default()
        },
        deployment: Some(args.deployment.clone()).filter(|d| !d.is_empty()),
        timeout: Duration::from_secs(args.timeout),
        concurrency: args.concurrency,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(async {
        let client = super::controller::client(args.kubeconfig.as_ref()).await?;
        anyhow::Ok(uninstall(client, options).await?)
    })?;
    println!(
        "released {} Service(s), removed {} leftover proxy(ies)",
        report.released.len(),
        report.orphans_removed
    );
    if !report.unfinished.is_empty() {
        bail!(
            "not torn down in time: {} (run uninstall again; see the README's Uninstall section)",
            report.unfinished.join(", ")
        );
    }
    Ok(())
}
