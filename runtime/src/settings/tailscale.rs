//! tailscaled's settings: the binaries, the socket, and what `tailscale up`
//! logs in with. The auth key is kept in a type that never prints it.

use std::fmt;
use std::path::PathBuf;

use policy_sdk::syntax::{is_dns_label, is_tailscale_tag};
use svc_lb_contract::env;

use super::{InvalidSetting, Reader};

/// Default socket path; inside the pod (its writable emptyDir), so never
/// shared with another tailscaled.
const DEFAULT_SOCKET: &str = "/run/tailscale-svc-lb/tailscaled.sock";
/// Default `--statedir`.
const DEFAULT_STATE_DIR: &str = "/run/tailscale-svc-lb/state";

/// An auth key. `Debug` and `Display` print `<redacted>`; only
/// [`AuthKey::expose`] gives the value, for the one argument that needs it.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthKey(String);

impl AuthKey {
    /// Wraps `key`.
    pub fn new(key: String) -> Self {
        Self(key)
    }

    /// The key itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How tailscaled runs and logs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailscaleSettings {
    /// The device's hostname.
    pub hostname: String,
    /// Tags to advertise (`tag:…`).
    pub tags: Vec<String>,
    /// The auth key; without one, the login URL is reported.
    pub auth_key: Option<AuthKey>,
    /// The auth key comes from the state Secret (minted per proxy by the
    /// controller), not from [`Self::auth_key`]: wait for it there.
    pub auth_key_in_state: bool,
    /// Control server URL (Headscale); `None`: Tailscale's.
    pub login_server: Option<String>,
    /// tailscaled's binary.
    pub tailscaled: PathBuf,
    /// The tailscale CLI.
    pub tailscale: PathBuf,
    /// tailscaled's LocalAPI socket.
    pub socket: PathBuf,
    /// tailscaled's `--statedir`.
    pub state_dir: PathBuf,
}

impl TailscaleSettings {
    pub(super) fn read<F: Fn(&str) -> Option<String>>(
        read: &Reader<F>,
    ) -> Result<Self, InvalidSetting> {
        let hostname = read.required(env::HOSTNAME)?;
        if !is_dns_label(&hostname) {
            return Err(InvalidSetting {
                variable: env::HOSTNAME,
                problem: format!("{hostname:?} is not a lowercase DNS label"),
            });
        }
        let tags = read.list(env::TAGS);
        if let Some(bad) = tags.iter().find(|t| !is_tailscale_tag(t)) {
            return Err(InvalidSetting {
                variable: env::TAGS,
                problem: format!("{bad:?} is not of the form tag:[a-z0-9-]+"),
            });
        }
        let login_server = read.optional(env::LOGIN_SERVER);
        if let Some(url) = &login_server
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(InvalidSetting {
                variable: env::LOGIN_SERVER,
                problem: format!("{url:?} is not an http(s) URL"),
            });
        }
        let auth_key_in_state = match read.optional(env::AUTH_KEY_SOURCE).as_deref() {
            None | Some("secret") => false,
            Some("state") => true,
            Some(other) => {
                return Err(InvalidSetting {
                    variable: env::AUTH_KEY_SOURCE,
                    problem: format!("{other:?} is neither \"secret\" nor \"state\""),
                });
            }
        };
        let path = |variable, default: &str| {
            PathBuf::from(read.optional(variable).unwrap_or_else(|| default.into()))
        };
        Ok(Self {
            hostname,
            tags,
            auth_key: read.optional(env::AUTH_KEY).map(AuthKey),
            auth_key_in_state,
            login_server,
            tailscaled: path(env::TAILSCALED_BINARY, "tailscaled"),
            tailscale: path(env::TAILSCALE_BINARY, "tailscale"),
            socket: path(env::TAILSCALED_SOCKET, DEFAULT_SOCKET),
            state_dir: path(env::TAILSCALED_STATE_DIR, DEFAULT_STATE_DIR),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::tests::table;

    fn read(pairs: &[(&str, &str)]) -> Result<TailscaleSettings, InvalidSetting> {
        TailscaleSettings::read(&Reader(table(pairs)))
    }

    #[test]
    fn binaries_and_socket_have_defaults_and_an_empty_key_means_interactive_login() {
        let settings = read(&[(env::HOSTNAME, "web"), (env::AUTH_KEY, " ")]).unwrap();
        assert_eq!(settings.auth_key, None);
        assert_eq!(settings.tailscaled, PathBuf::from("tailscaled"));
        assert_eq!(settings.socket, PathBuf::from(DEFAULT_SOCKET));
        assert!(settings.tags.is_empty());
    }

    #[test]
    fn bad_hostnames_tags_and_login_servers_are_refused() {
        let cases = [
            (vec![(env::HOSTNAME, "Web_1")], env::HOSTNAME),
            (vec![(env::HOSTNAME, "web"), (env::TAGS, "k8s")], env::TAGS),
            (
                vec![(env::HOSTNAME, "web"), (env::LOGIN_SERVER, "headscale.lan")],
                env::LOGIN_SERVER,
            ),
        ];
        for (pairs, variable) in cases {
            assert_eq!(read(&pairs).unwrap_err().variable, variable, "{pairs:?}");
        }
    }
}
