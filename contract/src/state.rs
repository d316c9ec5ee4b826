//! Keys of the per-Service state Secret.
//!
//! tailscaled keeps its own state in the same Secret (`--state=kube:<secret>`)
//! under keys it chooses; the keys below are the ones the runtime writes for
//! the controller, named in the style of Tailscale's containerboot.

/// The leader's Tailscale IPv4 address (kept from the original project).
pub const TS_IP: &str = "ts-ip";

/// All Tailscale addresses of the device, as a JSON list of strings
/// (containerboot's `device_ips`).
pub const DEVICE_IPS: &str = "device_ips";

/// The device's MagicDNS name, without trailing dot (containerboot's `device_fqdn`).
pub const DEVICE_FQDN: &str = "device_fqdn";

/// The device's stable node id (containerboot's `device_id`).
pub const DEVICE_ID: &str = "device_id";

/// Name of the pod currently holding leadership.
pub const LEADER_POD: &str = "leader_pod";

/// Name of the node the leader runs on.
pub const LEADER_NODE: &str = "leader_node";

/// Login URL printed by tailscaled while it waits for interactive login.
pub const LOGIN_URL: &str = "login_url";

/// Set (to an RFC 3339 time) once the leader has logged out after a
/// deprovisioning request.
pub const LOGGED_OUT: &str = "logged_out";

/// What the device last logged in with (JSON: `tags`, sorted, and
/// `loginServer`), written once a login with them succeeded. Control may
/// grant other tags than those requested (a tagged auth key, Headscale), so
/// a change of settings is told from this, never from the granted tags.
pub const LOGIN_REQUEST: &str = "login_request";

/// Every key the runtime writes; the controller never writes these.
pub const RUNTIME_KEYS: &[&str] = &[
    TS_IP,
    DEVICE_IPS,
    DEVICE_FQDN,
    DEVICE_ID,
    LEADER_POD,
    LEADER_NODE,
    LOGIN_URL,
    LOGGED_OUT,
    LOGIN_REQUEST,
];
