//! Arguments shared by commands: the controller configuration, the policy
//! engine's limits and where policies come from.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;

use svc_lb_host::config::{
    ControllerConfig, FirewallMode, ImagePullPolicy, LeaseTimings, OAuthConfig, ProxyPrivileges,
};
use svc_lb_host::policy::{DefaultPolicySpec, EngineLimits, PolicyEntry, PolicySetSpec};
use svc_lb_host::validate::PlanRules;

/// The controller configuration (also read from the environment).
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// Namespace of the controller and of every object it creates.
    #[arg(long, env = "SVCLB_NAMESPACE", default_value = svc_lb_host::config::DEFAULT_NAMESPACE)]
    pub namespace: String,
    /// The spec.loadBalancerClass served.
    #[arg(long, env = "SVCLB_LOAD_BALANCER_CLASS", default_value = svc_lb_contract::DEFAULT_LOAD_BALANCER_CLASS)]
    pub load_balancer_class: String,
    /// Image of the runtime pods.
    #[arg(long, env = "SVCLB_RUNTIME_IMAGE", default_value = svc_lb_host::config::DEFAULT_RUNTIME_IMAGE)]
    pub runtime_image: String,
    /// Pull policy of the runtime image.
    #[arg(
        long,
        env = "SVCLB_IMAGE_PULL_POLICY",
        value_enum,
        default_value = "if-not-present"
    )]
    pub image_pull_policy: ImagePullPolicy,
    /// Secret (in --namespace) the proxy pods pull their image with, for a
    /// private registry (repeat, or comma-separated).
    #[arg(
        long = "image-pull-secret",
        env = "SVCLB_IMAGE_PULL_SECRETS",
        value_delimiter = ','
    )]
    pub image_pull_secrets: Vec<String>,
    /// Secret (in --namespace) whose key ts-auth-key holds the Tailscale auth key.
    #[arg(long, env = "SVCLB_AUTH_KEY_SECRET", default_value = svc_lb_contract::AUTH_KEY_SECRET)]
    pub auth_key_secret: String,
    /// Control server URL, e.g. a Headscale server (default: Tailscale's).
    #[arg(long, env = "SVCLB_LOGIN_SERVER")]
    pub login_server: Option<String>,
    /// Seconds a runtime Lease is valid without renewal.
    #[arg(long, env = "SVCLB_LEASE_DURATION", default_value_t = LeaseTimings::DEFAULT.duration.as_secs())]
    pub lease_duration: u64,
    /// Seconds the leader keeps trying to renew before it stops forwarding.
    #[arg(long, env = "SVCLB_LEASE_RENEW_DEADLINE", default_value_t = LeaseTimings::DEFAULT.renew_deadline.as_secs())]
    pub lease_renew_deadline: u64,
    /// Seconds between Lease acquire/renew attempts.
    #[arg(long, env = "SVCLB_LEASE_RETRY_PERIOD", default_value_t = LeaseTimings::DEFAULT.retry_period.as_secs())]
    pub lease_retry_period: u64,
    /// Firewall backend of the runtime.
    #[arg(long, env = "SVCLB_FIREWALL_MODE", value_enum, default_value = "auto")]
    pub firewall_mode: FirewallMode,
    /// Comma-separated tags plans may carry; anything else is refused.
    #[arg(long, env = "SVCLB_TAG_ALLOWLIST", value_delimiter = ',')]
    pub tag_allowlist: Option<Vec<String>>,
    /// Privileges of the proxy container: `privileged` works on every
    /// container runtime; `minimal` (NET_ADMIN, NET_RAW, MKNOD) needs one
    /// that allows the TUN device (runc, except 1.2.0–1.2.3).
    #[arg(
        long,
        env = "SVCLB_PROXY_PRIVILEGES",
        value_enum,
        default_value = "privileged"
    )]
    pub proxy_privileges: ProxyPrivileges,
    /// Secret (in --namespace) holding a Tailscale OAuth client (`client_id`,
    /// `client_secret`): each proxy then gets a one-off auth key with its
    /// tags, and its device is deleted from the tailnet after teardown.
    #[arg(long, env = "SVCLB_OAUTH_SECRET")]
    pub oauth_secret: Option<String>,
    /// Base URL of the Tailscale API (with --oauth-secret).
    #[arg(long, env = "SVCLB_TAILSCALE_API_URL", default_value = svc_lb_host::tailscale_api::DEFAULT_API_URL)]
    pub tailscale_api_url: String,
    /// The tailnet (with --oauth-secret; `-` is the OAuth client's own).
    #[arg(long, env = "SVCLB_TAILNET", default_value = "-")]
    pub tailnet: String,
}

impl ConfigArgs {
    /// The validated configuration.
    pub fn to_config(&self) -> anyhow::Result<ControllerConfig> {
        let config = ControllerConfig {
            namespace: self.namespace.clone(),
            load_balancer_class: self.load_balancer_class.clone(),
            runtime_image: self.runtime_image.clone(),
            image_pull_policy: self.image_pull_policy,
            image_pull_secrets: self.image_pull_secrets.clone(),
            auth_key_secret: self.auth_key_secret.clone(),
            login_server: self.login_server.clone().filter(|s| !s.is_empty()),
            lease: LeaseTimings {
                duration: Duration::from_secs(self.lease_duration),
                renew_deadline: Duration::from_secs(self.lease_renew_deadline),
                retry_period: Duration::from_secs(self.lease_retry_period),
            },
            firewall_mode: self.firewall_mode,
            tag_allowlist: self.tag_allowlist.clone(),
            proxy_privileges: self.proxy_privileges,
            oauth: self
                .oauth_secret
                .clone()
                .filter(|s| !s.is_empty())
                .map(|secret| OAuthConfig {
                    secret,
                    api_url: self.tailscale_api_url.clone(),
                    tailnet: self.tailnet.clone(),
                }),
            json_logs: false,
        };
        config.validate()?;
        Ok(config)
    }
}

/// Bounds on every policy call.
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// Milliseconds one policy call may run.
    #[arg(long, env = "SVCLB_POLICY_DEADLINE_MS", default_value_t = 100)]
    pub policy_deadline_ms: u64,
    /// MiB of memory one policy instance may use.
    #[arg(long, env = "SVCLB_POLICY_MEMORY_MIB", default_value_t = EngineLimits::default().max_memory_bytes >> 20)]
    pub policy_memory_mib: usize,
    /// Policy instances that may run at once; further calls wait for one.
    #[arg(long, env = "SVCLB_POLICY_INSTANCES", default_value_t = EngineLimits::default().max_concurrent_instances)]
    pub policy_instances: u32,
}

impl EngineArgs {
    /// The engine limits.
    pub fn to_limits(&self) -> anyhow::Result<EngineLimits> {
        const MAX_MEMORY_MIB: usize = 4096;
        const MAX_INSTANCES: u32 = 64;
        if self.policy_deadline_ms == 0
            || !(1..=MAX_MEMORY_MIB).contains(&self.policy_memory_mib)
            || !(1..=MAX_INSTANCES).contains(&self.policy_instances)
        {
            bail!(
                "invalid configuration: policy deadline must be positive, memory cap \
                 1..={MAX_MEMORY_MIB} MiB and instances 1..={MAX_INSTANCES}"
            );
        }
        Ok(EngineLimits {
            deadline: Duration::from_millis(self.policy_deadline_ms),
            max_memory_bytes: self.policy_memory_mib << 20,
            max_concurrent_instances: self.policy_instances,
            ..EngineLimits::default()
        })
    }
}

/// Where policies come from.
#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    /// A policy set directory: policies.yaml plus the .wasm files it lists.
    #[arg(long, value_name = "DIR", conflicts_with = "policy")]
    pub policies: Option<PathBuf>,
    /// A policy component, optionally with a settings file (JSON or YAML):
    /// `p.wasm` or `p.wasm=settings.json`. Repeat to chain; order is kept.
    #[arg(long, value_name = "WASM[=SETTINGS]")]
    pub policy: Vec<String>,
    /// Do not run the bundled default policy first.
    #[arg(long)]
    pub no_default_policy: bool,
    /// The plan rules (the `planRules` section of policies.yaml, as its own
    /// YAML file) for policies given with --policy.
    #[arg(long, value_name = "FILE", conflicts_with = "policies")]
    pub plan_rules: Option<PathBuf>,
}

impl PolicyArgs {
    /// The policy set and the directory its files are relative to.
    pub fn to_policy_set(&self) -> anyhow::Result<(PolicySetSpec, PathBuf)> {
        let (mut spec, dir) = match &self.policies {
            Some(dir) => (PolicySetSpec::from_dir(dir)?, dir.clone()),
            None => {
                let policies = self
                    .policy
                    .iter()
                    .map(|arg| policy_entry(arg))
                    .collect::<anyhow::Result<_>>()?;
                let plan_rules = match &self.plan_rules {
                    Some(path) => serde_json::from_value(read_settings(path)?)
                        .with_context(|| format!("{} holds no plan rules", path.display()))?,
                    None => PlanRules::default(),
                };
                let spec = PolicySetSpec {
                    default_policy: DefaultPolicySpec::default(),
                    policies,
                    plan_rules,
                };
                spec.check()?;
                (spec, PathBuf::from("."))
            }
        };
        if self.no_default_policy {
            spec.default_policy.enabled = false;
        }
        Ok((spec, dir))
    }
}

/// Reads a settings file as JSON (YAML is accepted too).
pub fn read_settings(path: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read settings {}", path.display()))?;
    serde_yaml_ng::from_str(&text)
        .with_context(|| format!("settings {} are neither JSON nor YAML", path.display()))
}

/// The name of a policy given as a file: its stem, lower-cased, `_` as `-`
/// (`team_env.wasm` is `team-env`, the crate `policy new` made it from).
pub fn policy_name_from_file(file: &std::path::Path) -> Option<String> {
    file.file_stem()
        .and_then(|s| s.to_str())
        .map(|s| s.to_ascii_lowercase().replace('_', "-"))
}

fn policy_entry(arg: &str) -> anyhow::Result<PolicyEntry> {
    let (wasm, settings) = match arg.rsplit_once('=') {
        Some((wasm, settings)) if wasm.ends_with(".wasm") => (wasm, Some(settings)),
        _ => (arg, None),
    };
    let file = PathBuf::from(wasm);
    let name =
        policy_name_from_file(&file).with_context(|| format!("--policy {arg}: no file name"))?;
    let settings = match settings {
        Some(path) => read_settings(std::path::Path::new(path))?,
        None => serde_json::json!({}),
    };
    Ok(PolicyEntry {
        name,
        file,
        settings,
    })
}
