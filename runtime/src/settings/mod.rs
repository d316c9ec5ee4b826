//! The runtime's settings, read once from the environment the controller
//! renders (names in [`svc_lb_contract::env`]) and validated before anything
//! starts. Every variable:
//!
//! | variable | format |
//! | --- | --- |
//! | `SVCLB_SERVICE_NAMESPACE`, `SVCLB_SERVICE_NAME` | the Service served (for logs and events) |
//! | `SVCLB_CLUSTER_IPS` | the Service's ClusterIPs, comma-separated (IPv4 and/or IPv6) |
//! | `SVCLB_PORTS` | forwarded ports, `tcp/80,udp/53` |
//! | `SVCLB_SOURCE_RANGES` | `loadBalancerSourceRanges`, comma-separated CIDRs; empty: any source |
//! | `SVCLB_STATE_SECRET` | the state Secret (tailscaled's state, reported addresses) |
//! | `SVCLB_LEASE_NAME` | the Lease the pods elect their leader with |
//! | `SVCLB_LEASE_DURATION_SECONDS`, `SVCLB_LEASE_RENEW_DEADLINE_SECONDS`, `SVCLB_LEASE_RETRY_PERIOD_SECONDS` | election timings (default 15 / 10 / 2; see [`LeaseTimings`]) |
//! | `SVCLB_POD_NAME`, `SVCLB_POD_NAMESPACE`, `SVCLB_NODE_NAME` | this pod (downward API); the namespace holds the Secret and Lease |
//! | `SVCLB_POD_IP` | the pod's IP (downward API): the health endpoints listen there only, not on the Tailscale address |
//! | `SVCLB_HOSTNAME` | the Tailscale hostname (a DNS label) |
//! | `SVCLB_TAGS` | comma-separated `tag:…` to advertise; may be empty |
//! | `SVCLB_AUTH_KEY` | the auth key; unset or empty: interactive login (URL in the log and the Secret) |
//! | `SVCLB_LOGIN_SERVER` | control server URL (Headscale); empty: Tailscale's |
//! | `SVCLB_FIREWALL_MODE` | `auto` (default: nftables if `nft` works here, else iptables), `nftables`, `iptables` |
//! | `SVCLB_HEALTH_PORT` | port of `/healthz` and `/readyz` (default 9002) |
//! | `SVCLB_TAILSCALED`, `SVCLB_TAILSCALE` | paths of tailscaled and the CLI (default: found on `PATH`) |
//! | `SVCLB_TAILSCALED_SOCKET` | tailscaled's socket (default `/tmp/tailscaled.sock`) |

mod service;
mod tailscale;

use std::time::Duration;

use svc_lb_contract::{LeaseTimings, RUNTIME_HEALTH_PORT, env};

pub use service::{FirewallMode, ServiceSettings};
pub use tailscale::{AuthKey, TailscaleSettings};

/// A setting that is missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct InvalidSetting {
    /// The environment variable.
    pub variable: &'static str,
    /// What is wrong.
    pub problem: String,
}

/// Reads variables through a lookup function (the environment, in
/// production; a table, in tests).
pub(crate) struct Reader<F>(pub(crate) F);

impl<F: Fn(&str) -> Option<String>> Reader<F> {
    /// The trimmed value; unset and empty read alike.
    pub(crate) fn optional(&self, variable: &str) -> Option<String> {
        (self.0)(variable)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    pub(crate) fn required(&self, variable: &'static str) -> Result<String, InvalidSetting> {
        self.optional(variable).ok_or(InvalidSetting {
            variable,
            problem: "not set".into(),
        })
    }

    /// A comma-separated list; each element trimmed, empty ones dropped.
    pub(crate) fn list(&self, variable: &str) -> Vec<String> {
        self.optional(variable)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }

    /// A number, or `default` when unset.
    pub(crate) fn number<T: std::str::FromStr>(
        &self,
        variable: &'static str,
        default: T,
    ) -> Result<T, InvalidSetting> {
        match self.optional(variable) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| InvalidSetting {
                variable,
                problem: format!("{v:?} is not a number"),
            }),
        }
    }
}

/// This pod, from the downward API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodIdentity {
    /// The pod's name: its identity in the Lease.
    pub name: String,
    /// The pod's namespace: where the state Secret and the Lease are.
    pub namespace: String,
    /// The node it runs on.
    pub node: String,
    /// Its IP: where the health endpoints listen.
    pub ip: std::net::IpAddr,
}

/// Everything the runtime needs, validated.
#[derive(Debug, Clone)]
pub struct RuntimeSettings {
    /// `<namespace>/<name>` of the Service, for logs.
    pub service_ref: String,
    /// What to forward to.
    pub service: ServiceSettings,
    /// This pod.
    pub pod: PodIdentity,
    /// Name of the state Secret.
    pub state_secret: String,
    /// Name of the Lease.
    pub lease: String,
    /// Election timings.
    pub timings: LeaseTimings,
    /// tailscaled and its login.
    pub tailscale: TailscaleSettings,
    /// Which firewall.
    pub firewall_mode: FirewallMode,
    /// Port of the health endpoints.
    pub health_port: u16,
}

impl RuntimeSettings {
    /// Reads and validates every setting through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, InvalidSetting> {
        let read = Reader(lookup);
        let seconds = |variable: &'static str, default: Duration| {
            read.number(variable, default.as_secs())
                .map(Duration::from_secs)
        };
        let defaults = LeaseTimings::DEFAULT;
        let timings = LeaseTimings {
            duration: seconds(env::LEASE_DURATION_SECONDS, defaults.duration)?,
            renew_deadline: seconds(env::LEASE_RENEW_DEADLINE_SECONDS, defaults.renew_deadline)?,
            retry_period: seconds(env::LEASE_RETRY_PERIOD_SECONDS, defaults.retry_period)?,
        };
        timings.validate().map_err(|problem| InvalidSetting {
            variable: env::LEASE_DURATION_SECONDS,
            problem,
        })?;
        Ok(Self {
            service_ref: format!(
                "{}/{}",
                read.required(env::SERVICE_NAMESPACE)?,
                read.required(env::SERVICE_NAME)?
            ),
            service: ServiceSettings::read(&read)?,
            pod: PodIdentity {
                name: read.required(env::POD_NAME)?,
                namespace: read.required(env::POD_NAMESPACE)?,
                node: read.required(env::NODE_NAME)?,
                ip: {
                    let ip = read.required(env::POD_IP)?;
                    ip.parse().map_err(|_| InvalidSetting {
                        variable: env::POD_IP,
                        problem: format!("{ip:?} is not an IP address"),
                    })?
                },
            },
            state_secret: read.required(env::STATE_SECRET)?,
            lease: read.required(env::LEASE_NAME)?,
            timings,
            tailscale: TailscaleSettings::read(&read)?,
            firewall_mode: FirewallMode::read(&read)?,
            health_port: read.number(env::HEALTH_PORT, RUNTIME_HEALTH_PORT)?,
        })
    }

    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Self, InvalidSetting> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A lookup over fixed pairs.
    pub(crate) fn table(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    /// What the controller renders for a typical Service.
    pub(crate) const RENDERED: &[(&str, &str)] = &[
        (env::SERVICE_NAMESPACE, "default"),
        (env::SERVICE_NAME, "web"),
        (env::CLUSTER_IPS, "10.96.0.10"),
        (env::PORTS, "tcp/80"),
        (env::SOURCE_RANGES, ""),
        (env::STATE_SECRET, "ts-default-web-1a2b3c4d"),
        (env::LEASE_NAME, "ts-default-web-1a2b3c4d"),
        (env::HOSTNAME, "default-web"),
        (env::TAGS, "tag:k8s, tag:web"),
        (env::AUTH_KEY, "tskey-auth-secret"),
        (env::LOGIN_SERVER, ""),
        (env::POD_NAME, "ts-default-web-1a2b3c4d-x7k2p"),
        (env::POD_NAMESPACE, "tailscale-svc-lb"),
        (env::NODE_NAME, "node-1"),
        (env::POD_IP, "10.244.1.7"),
        (env::LEASE_DURATION_SECONDS, "4"),
        (env::LEASE_RENEW_DEADLINE_SECONDS, "2"),
        (env::LEASE_RETRY_PERIOD_SECONDS, "1"),
        (env::FIREWALL_MODE, "auto"),
        (env::HEALTH_PORT, "9002"),
    ];

    fn with(changes: &[(&str, &str)]) -> Result<RuntimeSettings, InvalidSetting> {
        let mut pairs: Vec<(&str, &str)> = RENDERED
            .iter()
            .filter(|(k, _)| !changes.iter().any(|(c, _)| c == k))
            .copied()
            .collect();
        pairs.extend(changes.iter().filter(|(_, v)| !v.is_empty()).copied());
        RuntimeSettings::from_lookup(table(&pairs))
    }

    #[test]
    fn what_the_controller_renders_is_read_completely() {
        let settings = with(&[]).unwrap();
        assert_eq!(settings.service_ref, "default/web");
        assert_eq!(settings.pod.node, "node-1");
        assert_eq!(settings.timings, LeaseTimings::FAST);
        assert_eq!(settings.tailscale.tags, ["tag:k8s", "tag:web"]);
        assert_eq!(settings.tailscale.login_server, None);
        assert_eq!(settings.health_port, 9002);
        assert_eq!(settings.pod.ip.to_string(), "10.244.1.7");
        assert_eq!(
            with(&[(env::POD_IP, "pod-ip")]).unwrap_err().variable,
            env::POD_IP
        );
        // The auth key never shows in a debug print (and so in a log).
        let printed = format!("{settings:?}");
        assert!(!printed.contains("tskey-auth-secret"), "{printed}");
    }

    #[test]
    fn timings_default_to_the_gentle_profile_and_must_keep_the_margin() {
        let settings = with(&[
            (env::LEASE_DURATION_SECONDS, ""),
            (env::LEASE_RENEW_DEADLINE_SECONDS, ""),
            (env::LEASE_RETRY_PERIOD_SECONDS, ""),
        ])
        .unwrap();
        assert_eq!(settings.timings, LeaseTimings::DEFAULT);
        let unsafe_timings = with(&[(env::LEASE_DURATION_SECONDS, "2")]).unwrap_err();
        assert_eq!(unsafe_timings.variable, env::LEASE_DURATION_SECONDS);
        let not_a_number = with(&[(env::LEASE_RETRY_PERIOD_SECONDS, "1s")]).unwrap_err();
        assert_eq!(not_a_number.variable, env::LEASE_RETRY_PERIOD_SECONDS);
    }

    #[test]
    fn each_required_variable_is_named_when_missing() {
        for variable in [
            env::SERVICE_NAMESPACE,
            env::STATE_SECRET,
            env::LEASE_NAME,
            env::POD_NAME,
            env::NODE_NAME,
            env::POD_IP,
            env::HOSTNAME,
        ] {
            let err = with(&[(variable, "")]).unwrap_err();
            assert_eq!(err.variable, variable);
        }
    }
}
