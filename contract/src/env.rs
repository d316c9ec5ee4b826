//! Environment variables the controller sets on the runtime container.
//!
//! Every name starts with [`PREFIX`]; policies may add environment variables
//! to the runtime container but never one with this prefix.

/// Prefix reserved for the runtime's settings.
pub const PREFIX: &str = "SVCLB_";

/// Prefixes of variables a policy may not set on the runtime container: the
/// runtime's settings, tailscaled's own knobs (`TS_*`, which could override
/// the controller's choices such as the firewall mode) and the dynamic
/// loader's (`LD_*`).
pub const POLICY_RESERVED_PREFIXES: &[&str] = &[PREFIX, "TS_", "LD_"];

/// Namespace of the Service the proxy serves.
pub const SERVICE_NAMESPACE: &str = "SVCLB_SERVICE_NAMESPACE";
/// Name of the Service the proxy serves.
pub const SERVICE_NAME: &str = "SVCLB_SERVICE_NAME";
/// Comma-separated ClusterIPs of the Service (forwarding targets).
pub const CLUSTER_IPS: &str = "SVCLB_CLUSTER_IPS";
/// The Service's ports, encoded by [`crate::ports::format_ports`].
pub const PORTS: &str = "SVCLB_PORTS";
/// Comma-separated `spec.loadBalancerSourceRanges`; empty allows all sources.
pub const SOURCE_RANGES: &str = "SVCLB_SOURCE_RANGES";
/// Name of the state Secret (tailscaled state and reported addresses).
pub const STATE_SECRET: &str = "SVCLB_STATE_SECRET";
/// Name of the Lease the pods elect their leader with.
pub const LEASE_NAME: &str = "SVCLB_LEASE_NAME";
/// The Tailscale hostname.
pub const HOSTNAME: &str = "SVCLB_HOSTNAME";
/// Comma-separated Tailscale tags to advertise.
pub const TAGS: &str = "SVCLB_TAGS";
/// The auth key (from the auth-key Secret, optional).
pub const AUTH_KEY: &str = "SVCLB_AUTH_KEY";
/// Where the auth key comes from: `secret` ([`AUTH_KEY`], from the shared
/// auth-key Secret) or `state` (a one-off key the controller mints per
/// proxy with its OAuth client and writes into the state Secret under
/// [`crate::state::AUTH_KEY`]; the runtime waits for it, and removes it
/// once the device has logged in).
pub const AUTH_KEY_SOURCE: &str = "SVCLB_AUTH_KEY_SOURCE";
/// Control server URL (e.g. a Headscale server); empty for Tailscale's.
pub const LOGIN_SERVER: &str = "SVCLB_LOGIN_SERVER";
/// The pod's name (downward API).
pub const POD_NAME: &str = "SVCLB_POD_NAME";
/// The pod's namespace (downward API).
pub const POD_NAMESPACE: &str = "SVCLB_POD_NAMESPACE";
/// The node the pod runs on (downward API).
pub const NODE_NAME: &str = "SVCLB_NODE_NAME";
/// The pod's IP (downward API `status.podIP`): the health endpoints listen
/// on it only, so they are not reachable on the device's Tailscale address.
pub const POD_IP: &str = "SVCLB_POD_IP";
/// Lease duration in seconds.
pub const LEASE_DURATION_SECONDS: &str = "SVCLB_LEASE_DURATION_SECONDS";
/// Seconds within which the leader must renew before it stops forwarding.
pub const LEASE_RENEW_DEADLINE_SECONDS: &str = "SVCLB_LEASE_RENEW_DEADLINE_SECONDS";
/// Seconds between attempts to acquire or renew the Lease.
pub const LEASE_RETRY_PERIOD_SECONDS: &str = "SVCLB_LEASE_RETRY_PERIOD_SECONDS";
/// Firewall backend: `auto`, `nftables` or `iptables`.
pub const FIREWALL_MODE: &str = "SVCLB_FIREWALL_MODE";
/// Port of the health endpoints.
pub const HEALTH_PORT: &str = "SVCLB_HEALTH_PORT";

/// Path of the tailscaled binary (optional; default `tailscaled` on `PATH`).
pub const TAILSCALED_BINARY: &str = "SVCLB_TAILSCALED";
/// Path of the tailscale CLI (optional; default `tailscale` on `PATH`).
pub const TAILSCALE_BINARY: &str = "SVCLB_TAILSCALE";
/// Path of tailscaled's LocalAPI socket (optional; default
/// `<RUNTIME_STATE_DIR>/tailscaled.sock`, inside the pod).
pub const TAILSCALED_SOCKET: &str = "SVCLB_TAILSCALED_SOCKET";
/// tailscaled's `--statedir` (optional; default `<RUNTIME_STATE_DIR>/state`).
pub const TAILSCALED_STATE_DIR: &str = "SVCLB_TAILSCALED_STATE_DIR";

/// Log format of the runtime (and of the controller): `text` or `json`
/// (see [`crate::logging`]).
pub const LOG_FORMAT: &str = "SVCLB_LOG_FORMAT";

/// Variables the runtime reads that the controller leaves to their defaults
/// (an image or a test may set them).
pub const OPTIONAL: &[&str] = &[
    LOG_FORMAT,
    TAILSCALED_BINARY,
    TAILSCALE_BINARY,
    TAILSCALED_SOCKET,
    TAILSCALED_STATE_DIR,
];

/// Every variable the controller sets, in the order it renders them.
pub const ALL: &[&str] = &[
    SERVICE_NAMESPACE,
    SERVICE_NAME,
    CLUSTER_IPS,
    PORTS,
    SOURCE_RANGES,
    STATE_SECRET,
    LEASE_NAME,
    HOSTNAME,
    TAGS,
    AUTH_KEY_SOURCE,
    AUTH_KEY,
    LOGIN_SERVER,
    POD_NAME,
    POD_NAMESPACE,
    NODE_NAME,
    POD_IP,
    LEASE_DURATION_SECONDS,
    LEASE_RENEW_DEADLINE_SECONDS,
    LEASE_RETRY_PERIOD_SECONDS,
    FIREWALL_MODE,
    HEALTH_PORT,
];

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn every_variable_carries_the_reserved_prefix_once() {
        for name in ALL.iter().chain(OPTIONAL) {
            assert!(name.starts_with(PREFIX), "{name}");
        }
        let mut sorted: Vec<_> = ALL.iter().chain(OPTIONAL).collect();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), ALL.len() + OPTIONAL.len(), "duplicate names");
    }
}
