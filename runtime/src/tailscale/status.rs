//! The parts of `tailscale status --json` the runtime reads (field names as
//! the real CLI prints them; unknown fields are ignored), and what they mean
//! for the runtime.

use std::net::IpAddr;

use serde::Deserialize;

/// `tailscale status --json`, the fields used.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Status {
    /// `NoState`, `NeedsLogin`, `NeedsMachineAuth`, `Stopped`, `Starting`
    /// or `Running`.
    #[serde(default)]
    pub backend_state: String,
    /// The interactive login URL while tailscaled waits for a login.
    #[serde(rename = "AuthURL", default)]
    pub auth_url: String,
    /// This device, once logged in.
    #[serde(rename = "Self", default)]
    pub self_: Option<PeerStatus>,
}

/// The device itself (`Self`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PeerStatus {
    /// Stable node id.
    #[serde(rename = "ID", default)]
    pub id: String,
    /// The hostname the device registered with.
    #[serde(default)]
    pub host_name: String,
    /// MagicDNS name with a trailing dot.
    #[serde(rename = "DNSName", default)]
    pub dns_name: String,
    /// Its Tailscale addresses.
    #[serde(rename = "TailscaleIPs", default)]
    pub tailscale_ips: Option<Vec<IpAddr>>,
    /// Tags granted by the control server.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

/// The device as the runtime reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Stable node id.
    pub id: String,
    /// MagicDNS name without the trailing dot.
    pub fqdn: String,
    /// Tailscale addresses, IPv4 first.
    pub ips: Vec<IpAddr>,
    /// Registered hostname.
    pub hostname: String,
    /// Granted tags, sorted.
    pub tags: Vec<String>,
}

/// Where tailscaled stands, as far as the runtime cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Logged in and up, with addresses.
    Running(Device),
    /// Up and serving, while a re-authentication waits for a login at this
    /// URL: tailscaled keeps `BackendState` `Running` and sets `AuthURL`
    /// (ipnlocal keeps the old node key until the new login completes).
    Reauthenticating(Device, String),
    /// Logged in, but the tailnet's admin must approve the device
    /// (`NeedsMachineAuth`, device approval).
    NeedsApproval,
    /// Waiting for an interactive login at this URL.
    WaitingForLogin(String),
    /// Logged out or stopped: `tailscale up` must run.
    NeedsUp,
    /// Anything else (no state yet, starting, waiting for approval).
    Starting(String),
}

impl Status {
    /// Parses the CLI's output.
    pub fn parse(json: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(json)
    }

    /// The runtime's view of this status.
    pub fn phase(&self) -> Phase {
        let device = self.self_.as_ref().and_then(|me| {
            let mut ips = me.tailscale_ips.clone().unwrap_or_default();
            ips.sort_by_key(|ip| ip.is_ipv6());
            let mut tags = me.tags.clone().unwrap_or_default();
            tags.sort();
            (!ips.is_empty()).then(|| Device {
                id: me.id.clone(),
                fqdn: me.dns_name.trim_end_matches('.').to_string(),
                ips,
                hostname: me.host_name.clone(),
                tags,
            })
        });
        match (self.backend_state.as_str(), device) {
            ("Running", Some(device)) if !self.auth_url.is_empty() => {
                Phase::Reauthenticating(device, self.auth_url.clone())
            }
            ("Running", Some(device)) => Phase::Running(device),
            ("NeedsMachineAuth", _) => Phase::NeedsApproval,
            (_, _) if !self.auth_url.is_empty() => Phase::WaitingForLogin(self.auth_url.clone()),
            ("NeedsLogin" | "Stopped", _) => Phase::NeedsUp,
            (state, _) => Phase::Starting(state.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trimmed from a real `tailscale status --json` (1.7x).
    const RUNNING: &str = r#"{
      "Version": "1.76.1-t...",
      "TUN": true,
      "BackendState": "Running",
      "AuthURL": "",
      "TailscaleIPs": ["100.101.102.103", "fd7a:115c:a1e0::1f01:6667"],
      "Self": {
        "ID": "nXYZ123CNTRL",
        "PublicKey": "nodekey:abc",
        "HostName": "default-web",
        "DNSName": "default-web.tail1234.ts.net.",
        "OS": "linux",
        "TailscaleIPs": ["fd7a:115c:a1e0::1f01:6667", "100.101.102.103"],
        "Tags": ["tag:k8s"],
        "Online": true
      },
      "Health": [],
      "MagicDNSSuffix": "tail1234.ts.net",
      "CurrentTailnet": {"Name": "example.com", "MagicDNSSuffix": "tail1234.ts.net", "MagicDNSEnabled": true},
      "Peer": {}
    }"#;

    #[test]
    fn a_running_device_reports_its_addresses_ipv4_first_and_its_name_without_the_dot() {
        let Phase::Running(device) = Status::parse(RUNNING.as_bytes()).unwrap().phase() else {
            panic!("running");
        };
        assert_eq!(device.id, "nXYZ123CNTRL");
        assert_eq!(device.fqdn, "default-web.tail1234.ts.net");
        assert_eq!(device.ips[0].to_string(), "100.101.102.103");
        assert_eq!(device.tags, ["tag:k8s"]);
    }

    #[test]
    fn a_login_url_while_running_is_a_reauthentication_that_keeps_the_device() {
        let mut status = Status::parse(RUNNING.as_bytes()).unwrap();
        status.auth_url = "https://login.tailscale.com/a/9z8y".into();
        let Phase::Reauthenticating(device, url) = status.phase() else {
            panic!("reauthenticating");
        };
        assert_eq!(device.id, "nXYZ123CNTRL");
        assert_eq!(url, "https://login.tailscale.com/a/9z8y");
    }

    #[test]
    fn a_login_url_means_waiting_a_fresh_daemon_needs_up_and_otherwise_it_is_starting() {
        let waiting = r#"{"BackendState":"NeedsLogin","AuthURL":"https://login.tailscale.com/a/1f2e3d","Self":{"ID":"","TailscaleIPs":null}}"#;
        assert_eq!(
            Status::parse(waiting.as_bytes()).unwrap().phase(),
            Phase::WaitingForLogin("https://login.tailscale.com/a/1f2e3d".into())
        );
        let fresh = r#"{"BackendState":"NeedsLogin","AuthURL":""}"#;
        assert_eq!(
            Status::parse(fresh.as_bytes()).unwrap().phase(),
            Phase::NeedsUp
        );
        let approval = r#"{"BackendState":"NeedsMachineAuth","AuthURL":""}"#;
        assert_eq!(
            Status::parse(approval.as_bytes()).unwrap().phase(),
            Phase::NeedsApproval
        );
        let starting = r#"{"BackendState":"Starting","AuthURL":""}"#;
        assert_eq!(
            Status::parse(starting.as_bytes()).unwrap().phase(),
            Phase::Starting("Starting".into())
        );
    }
}
