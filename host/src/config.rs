//! The controller's configuration: what every rendered object depends on
//! besides the Service and its plan. Validated once, at start.

use crate::validate::{is_dns_label, is_qualified_name, is_tailscale_tag};

/// Default namespace of the controller and every object it manages.
pub const DEFAULT_NAMESPACE: &str = "tailscale-svc-lb";
/// Default runtime image (same version as the controller).
pub const DEFAULT_RUNTIME_IMAGE: &str = concat!(
    "ghcr.io/tailscale-svc-lb/tailscale-svc-lb-runtime:",
    env!("CARGO_PKG_VERSION")
);

/// Everything the rendering needs to know about the installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerConfig {
    /// Namespace of the controller and of every per-Service object.
    pub namespace: String,
    /// The `spec.loadBalancerClass` served.
    pub load_balancer_class: String,
    /// Image of the runtime pods.
    pub runtime_image: String,
    /// Pull policy of the runtime image.
    pub image_pull_policy: ImagePullPolicy,
    /// Secrets (in [`Self::namespace`]) the proxy pods pull their image
    /// with, for a private registry.
    pub image_pull_secrets: Vec<String>,
    /// Secret (in [`Self::namespace`]) holding the auth key.
    pub auth_key_secret: String,
    /// Control server URL (e.g. Headscale); `None` for Tailscale's.
    pub login_server: Option<String>,
    /// Leader election timings of the runtime pods.
    pub lease: LeaseTimings,
    /// Firewall backend of the runtime.
    pub firewall_mode: FirewallMode,
    /// When set, the only tags a plan may carry.
    pub tag_allowlist: Option<Vec<String>>,
    /// What the proxy container may do (see [`ProxyPrivileges`]).
    pub proxy_privileges: ProxyPrivileges,
    /// With a Tailscale OAuth client: one-off keys per proxy and device
    /// deletion after teardown, instead of the shared auth key.
    pub oauth: Option<OAuthConfig>,
    /// The proxies log JSON, as the controller does (`--log-format json`).
    pub json_logs: bool,
}

/// Where the optional Tailscale OAuth client is, and the API it talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthConfig {
    /// Secret (in the controller's namespace) with `client_id` and
    /// `client_secret`, as Tailscale's operator takes them.
    pub secret: String,
    /// Base URL of the Tailscale API.
    pub api_url: String,
    /// The tailnet (`-`: the OAuth client's own).
    pub tailnet: String,
}

/// The privileges of the proxy container.
///
/// tailscaled needs a TUN device. A container's `/dev` has none, so the
/// runtime creates `/dev/net/tun` (character device 10:200) as Tailscale's
/// containerboot does, and the container runtime's device rules must let
/// it open the device: runc's defaults do; crun's and those of runc
/// 1.2.0–1.2.3 do not (there the node is created and opening it fails with
/// EPERM). That is why Tailscale's operator runs its proxies privileged
/// since v1.78, and why it is the default here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProxyPrivileges {
    /// `privileged: true`: works on every container runtime without a
    /// device plugin. Needs the namespace's Pod Security level `privileged`.
    Privileged,
    /// Only `NET_ADMIN`, `NET_RAW` (iptables) and `MKNOD` (the TUN node),
    /// every other capability dropped, no privilege escalation: for
    /// clusters whose container runtime allows the TUN device by default
    /// (containerd or CRI-O with runc outside 1.2.0–1.2.3).
    Minimal,
}

/// Pull policy of the runtime image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImagePullPolicy {
    /// `Always`.
    Always,
    /// `IfNotPresent`.
    IfNotPresent,
    /// `Never`.
    Never,
}

impl ImagePullPolicy {
    /// The pod-spec spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ImagePullPolicy::Always => "Always",
            ImagePullPolicy::IfNotPresent => "IfNotPresent",
            ImagePullPolicy::Never => "Never",
        }
    }
}

/// Firewall backend the runtime uses for forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FirewallMode {
    /// nftables when the kernel supports it, else iptables.
    Auto,
    /// nftables only.
    Nftables,
    /// iptables only.
    Iptables,
}

impl FirewallMode {
    /// The spelling in the runtime's environment.
    pub fn as_str(self) -> &'static str {
        match self {
            FirewallMode::Auto => "auto",
            FirewallMode::Nftables => "nftables",
            FirewallMode::Iptables => "iptables",
        }
    }
}

pub use svc_lb_contract::LeaseTimings;

/// A configuration the controller refuses to start with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct InvalidConfig(pub String);

impl ControllerConfig {
    /// The defaults: namespace `tailscale-svc-lb`, class `svc-lb.tailscale.iptables.sh/lb`.
    pub fn defaults() -> Self {
        Self {
            namespace: DEFAULT_NAMESPACE.into(),
            load_balancer_class: svc_lb_contract::DEFAULT_LOAD_BALANCER_CLASS.into(),
            runtime_image: DEFAULT_RUNTIME_IMAGE.into(),
            image_pull_policy: ImagePullPolicy::IfNotPresent,
            image_pull_secrets: Vec::new(),
            auth_key_secret: svc_lb_contract::AUTH_KEY_SECRET.into(),
            login_server: None,
            lease: LeaseTimings::DEFAULT,
            firewall_mode: FirewallMode::Auto,
            tag_allowlist: None,
            proxy_privileges: ProxyPrivileges::Privileged,
            oauth: None,
            json_logs: false,
        }
    }

    /// Checks every field; the first problem found is reported.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        let fail = |m: String| Err(InvalidConfig(m));
        if !is_dns_label(&self.namespace) {
            return fail(format!("namespace {:?} is not a DNS label", self.namespace));
        }
        if !is_qualified_name(&self.load_balancer_class) {
            return fail(format!(
                "load balancer class {:?} is not a qualified name",
                self.load_balancer_class
            ));
        }
        if self.runtime_image.trim().is_empty() || self.runtime_image.contains(char::is_whitespace)
        {
            return fail(format!(
                "runtime image {:?} is not an image reference",
                self.runtime_image
            ));
        }
        if let Some(bad) = self
            .image_pull_secrets
            .iter()
            .find(|name| !crate::validate::is_dns_subdomain(name))
        {
            return fail(format!("image pull secret {bad:?} is not a valid name"));
        }
        if !crate::validate::is_dns_subdomain(&self.auth_key_secret) {
            return fail(format!(
                "auth key secret {:?} is not a valid name",
                self.auth_key_secret
            ));
        }
        if let Some(url) = &self.login_server
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return fail(format!("login server {url:?} must be an http(s) URL"));
        }
        if let Some(bad) = self
            .tag_allowlist
            .iter()
            .flatten()
            .find(|t| !is_tailscale_tag(t))
        {
            return fail(format!(
                "tag allowlist entry {bad:?} is not of the form tag:[a-z0-9-]+"
            ));
        }
        if let Some(oauth) = &self.oauth {
            if !crate::validate::is_dns_subdomain(&oauth.secret) {
                return fail(format!(
                    "oauth secret {:?} is not a valid name",
                    oauth.secret
                ));
            }
            // The OAuth client's secret goes to this URL: in clear text
            // only to this machine (a test, a local proxy).
            let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
                .iter()
                .any(|p| oauth.api_url.starts_with(p));
            if !(oauth.api_url.starts_with("https://") || loopback) {
                return fail(format!(
                    "oauth: tailscale API URL {:?} must be https (http only to a loopback address)",
                    oauth.api_url
                ));
            }
            if oauth.tailnet.is_empty() || oauth.tailnet.contains(['/', '?', '#']) {
                return fail(format!(
                    "oauth: tailnet {:?} is not a tailnet name",
                    oauth.tailnet
                ));
            }
        }
        self.lease.validate().map_err(InvalidConfig)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(ControllerConfig::defaults().validate(), Ok(()));
    }

    #[test]
    fn each_invalid_field_is_named() {
        type Edit = fn(&mut ControllerConfig);
        let cases: Vec<(Edit, &str)> = vec![
            (|c| c.namespace = "Bad_NS".into(), "namespace"),
            (
                |c| c.load_balancer_class = "no spaces allowed".into(),
                "load balancer class",
            ),
            (|c| c.runtime_image = " ".into(), "runtime image"),
            (
                |c| c.login_server = Some("headscale.local".into()),
                "login server",
            ),
            (
                |c| c.tag_allowlist = Some(vec!["k8s".into()]),
                "tag allowlist",
            ),
            (
                |c| c.lease.renew_deadline = std::time::Duration::from_secs(20),
                "lease timings",
            ),
        ];
        for (edit, field) in cases {
            let mut config = ControllerConfig::defaults();
            edit(&mut config);
            let err = config.validate().unwrap_err();
            assert!(err.0.starts_with(field), "{err} should name {field}");
        }
    }
}
