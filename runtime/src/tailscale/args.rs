//! Command lines of tailscaled and the tailscale CLI, built from the
//! settings and the device's current state.
//!
//! How changes reach a device that is already logged in, following the
//! CLI's documentation (`tailscale up`, `tailscale set`):
//! - `tailscale up` does not remember flags between runs, and refuses to
//!   run when a setting changed earlier is left out, so the runtime always
//!   passes `--reset` with every flag it cares about.
//! - A new hostname on a running device is set with `tailscale set
//!   --hostname`, which needs no new login.
//! - New tags need the device to authenticate again: `tailscale up
//!   --force-reauth` with the new `--advertise-tags` (with an auth key this
//!   is unattended; without one a new login URL is reported).

use std::ffi::OsString;
use std::path::Path;

use super::status::Device;
use crate::settings::TailscaleSettings;

/// Arguments of tailscaled: state in the Secret, its own socket and state
/// directory (certificates, DERP map cache, logs: on the pod's writable
/// emptyDir, not the read-only root), userspace networking off (a real
/// `tailscale0` TUN device, so the kernel's DNAT sees the traffic).
pub fn tailscaled_args(settings: &TailscaleSettings, state_secret: &str) -> Vec<OsString> {
    let mut args = vec![OsString::from(format!("--state=kube:{state_secret}"))];
    let mut state_dir = OsString::from("--statedir=");
    state_dir.push(&settings.state_dir);
    args.push(state_dir);
    args.extend(socket_args(settings));
    args.push("--tun=tailscale0".into());
    args
}

/// tailscaled's environment beyond the runtime's (what containerboot sets
/// for it): its kube client reaches the API server at
/// `KUBERNETES_SERVICE_HOST` rather than through cluster DNS, and its
/// firewall mode is the runtime's (left alone, tailscaled picks iptables
/// whenever a binary exists).
pub fn tailscaled_env(firewall: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "TS_KUBERNETES_READ_API_SERVER_ADDRESS_FROM_ENV",
            "true".to_string(),
        ),
        ("TS_DEBUG_FIREWALL_MODE", firewall.to_string()),
    ]
}

/// The CLI's global `--socket` argument.
pub fn socket_args(settings: &TailscaleSettings) -> Vec<OsString> {
    let mut socket = OsString::from("--socket=");
    socket.push(&settings.socket);
    vec![socket]
}

/// What has to change on the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Log in (or bring up) with every flag: `tailscale up --reset …`;
    /// `reauth` adds `--force-reauth` (tags changed).
    Up {
        /// Whether the device must authenticate again.
        reauth: bool,
    },
    /// Only the hostname differs: `tailscale set --hostname`.
    SetHostname,
    /// Nothing.
    None,
}

/// What a login asks control for: the settings that need a new login when
/// they change (recorded in the state Secret once a login with them
/// succeeded).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginRequest {
    /// Requested tags, sorted.
    pub tags: Vec<String>,
    /// The control server, when not Tailscale's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_server: Option<String>,
}

impl LoginRequest {
    /// What `settings` ask for.
    pub fn of(settings: &TailscaleSettings) -> Self {
        let mut tags = settings.tags.clone();
        tags.sort();
        Self {
            tags,
            login_server: settings.login_server.clone(),
        }
    }
}

/// What to change, given the device as it runs (if it is logged in) and
/// what it last logged in with (`recorded`, when known).
///
/// Tags and the control server changed when the recorded request differs
/// from the settings. Control may grant other tags than those requested
/// (a tagged auth key grants its own; so may a Headscale policy), so the
/// granted tags are compared only when nothing was recorded (a state from
/// before the record existed): comparing them always would re-authenticate
/// on every restart and failover, and a single-use key fails the second
/// time.
pub fn change_needed(
    settings: &TailscaleSettings,
    running: Option<&Device>,
    recorded: Option<&LoginRequest>,
) -> Change {
    let Some(device) = running else {
        return Change::Up { reauth: false };
    };
    let wanted = LoginRequest::of(settings);
    let changed = match recorded {
        Some(recorded) => *recorded != wanted,
        None => wanted.tags != device.tags,
    };
    if changed {
        Change::Up { reauth: true }
    } else if settings.hostname != device.hostname {
        Change::SetHostname
    } else {
        Change::None
    }
}

/// `tailscale up` arguments (after the socket argument). The auth key is
/// passed as `file:<key_file>` (the CLI reads it from there), so it never
/// shows in the process list.
pub fn up_args(settings: &TailscaleSettings, reauth: bool, key_file: Option<&Path>) -> Vec<String> {
    let mut args = vec![
        "up".to_string(),
        "--reset".into(),
        format!("--hostname={}", settings.hostname),
        format!("--advertise-tags={}", settings.tags.join(",")),
        // The pod's DNS stays the cluster's.
        "--accept-dns=false".into(),
    ];
    if let Some(server) = &settings.login_server {
        args.push(format!("--login-server={server}"));
    }
    if let Some(file) = key_file {
        args.push(format!("--auth-key=file:{}", file.display()));
    }
    if reauth {
        args.push("--force-reauth".into());
    }
    args
}

/// `tailscale set` arguments for a new hostname.
pub fn set_hostname_args(settings: &TailscaleSettings) -> Vec<String> {
    vec!["set".into(), format!("--hostname={}", settings.hostname)]
}

/// `tailscale status --json --peers=false`: the device itself, without
/// every peer of the tailnet (which the runtime never reads, and which in
/// a large tailnet is most of the output).
pub fn status_args() -> Vec<String> {
    vec!["status".into(), "--json".into(), "--peers=false".into()]
}

/// `tailscale logout`: the device leaves the tailnet.
pub fn logout_args() -> Vec<String> {
    vec!["logout".into()]
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::settings::RuntimeSettings;
    use crate::settings::tests::table;

    fn settings() -> TailscaleSettings {
        let mut pairs = crate::settings::tests::RENDERED.to_vec();
        pairs.push((
            svc_lb_contract::env::LOGIN_SERVER,
            "https://headscale.example",
        ));
        pairs.retain(|(k, v)| *k != svc_lb_contract::env::LOGIN_SERVER || !v.is_empty());
        RuntimeSettings::from_lookup(table(&pairs))
            .unwrap()
            .tailscale
    }

    fn device(hostname: &str, tags: &[&str]) -> Device {
        Device {
            id: "n1".into(),
            fqdn: format!("{hostname}.tail.ts.net"),
            ips: vec!["100.64.0.1".parse().unwrap()],
            hostname: hostname.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn tailscaled_keeps_its_state_in_the_secret_and_its_own_socket() {
        let mut s = settings();
        s.socket = PathBuf::from("/run/ts/sock");
        let args = tailscaled_args(&s, "ts-default-web-1a2b3c4d");
        assert_eq!(
            args,
            [
                "--state=kube:ts-default-web-1a2b3c4d",
                "--statedir=/run/tailscale-svc-lb/state",
                "--socket=/run/ts/sock",
                "--tun=tailscale0"
            ]
            .map(OsString::from)
        );
    }

    #[test]
    fn up_names_every_flag_with_reset_and_the_key_only_when_present() {
        let s = settings();
        assert_eq!(
            up_args(&s, false, Some(Path::new("/tmp/tailscaled.authkey"))),
            [
                "up",
                "--reset",
                "--hostname=default-web",
                "--advertise-tags=tag:k8s,tag:web",
                "--accept-dns=false",
                "--login-server=https://headscale.example",
                "--auth-key=file:/tmp/tailscaled.authkey",
            ]
        );
        let interactive = TailscaleSettings {
            auth_key: None,
            login_server: None,
            tags: vec![],
            ..s
        };
        let args = up_args(&interactive, true, None);
        assert!(args.contains(&"--advertise-tags=".to_string()), "{args:?}");
        assert!(!args.iter().any(|a| a.starts_with("--auth-key")));
        assert_eq!(args.last().unwrap(), "--force-reauth");
    }

    #[test]
    fn tags_changes_need_reauth_and_a_hostname_change_only_set() {
        let s = settings();
        assert_eq!(change_needed(&s, None, None), Change::Up { reauth: false });
        let same = device("default-web", &["tag:k8s", "tag:web"]);
        assert_eq!(change_needed(&s, Some(&same), None), Change::None);
        let renamed = device("old-name", &["tag:k8s", "tag:web"]);
        assert_eq!(change_needed(&s, Some(&renamed), None), Change::SetHostname);
        let retagged = device("default-web", &["tag:k8s"]);
        assert_eq!(
            change_needed(&s, Some(&retagged), None),
            Change::Up { reauth: true }
        );
    }

    #[test]
    fn granted_tags_other_than_the_requested_ones_need_no_new_login() {
        let s = settings();
        let granted = device(&s.hostname, &["tag:from-the-key"]);
        let recorded = super::LoginRequest::of(&s);
        assert_eq!(
            change_needed(&s, Some(&granted), Some(&recorded)),
            Change::None
        );
        let mut moved = s.clone();
        moved.login_server = Some("https://headscale.example.com".into());
        assert_eq!(
            change_needed(&moved, Some(&granted), Some(&recorded)),
            Change::Up { reauth: true },
            "a new control server needs a new login"
        );
    }

    #[test]
    fn tailscaled_finds_the_api_server_without_dns_and_uses_the_runtime_s_firewall() {
        let env = tailscaled_env("nftables");
        assert!(env.contains(&(
            "TS_KUBERNETES_READ_API_SERVER_ADDRESS_FROM_ENV",
            "true".into()
        )));
        assert!(env.contains(&("TS_DEBUG_FIREWALL_MODE", "nftables".into())));
        let mut s = settings();
        s.state_dir = PathBuf::from("/run/x/state");
        let args = tailscaled_args(&s, "secret");
        assert!(args.contains(&"--statedir=/run/x/state".into()), "{args:?}");
    }

    #[test]
    fn status_asks_for_the_device_without_the_tailnet_s_peers() {
        assert_eq!(super::status_args(), ["status", "--json", "--peers=false"]);
    }
}
