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

/// Why the proxy does not serve, as a code of [`problem`], while it does
/// not; removed once it serves. The controller shows it on the Service.
pub const PROBLEM: &str = "problem";

/// What went wrong, in the words of the failing part (tailscale's output,
/// the kernel's error), with the pod and node it happened on.
pub const PROBLEM_MESSAGE: &str = "problem_message";

/// The codes of [`PROBLEM`] (also the Service condition's reason).
pub mod problem {
    /// Control refused the tags asked for (not owned by the auth key or
    /// OAuth client in the tailnet policy's `tagOwners`).
    pub const TAGS_NOT_PERMITTED: &str = "TagsNotPermitted";
    /// Control refused the auth key (unknown, expired, revoked, used up).
    pub const AUTH_KEY_REJECTED: &str = "AuthKeyRejected";
    /// Logging in failed otherwise.
    pub const LOGIN_FAILED: &str = "LoginFailed";
    /// The device waits for a tailnet admin's approval.
    pub const NEEDS_APPROVAL: &str = "NeedsApproval";
    /// The pod cannot open a TUN device.
    pub const NO_TUN_DEVICE: &str = "NoTunDevice";
    /// IP forwarding is off in the pod.
    pub const FORWARDING_DISABLED: &str = "ForwardingDisabled";
    /// The forwarding rules could not be installed.
    pub const FIREWALL_FAILED: &str = "FirewallFailed";

    /// Every code.
    pub const ALL: &[&str] = &[
        TAGS_NOT_PERMITTED,
        AUTH_KEY_REJECTED,
        LOGIN_FAILED,
        NEEDS_APPROVAL,
        NO_TUN_DEVICE,
        FORWARDING_DISABLED,
        FIREWALL_FAILED,
    ];
}

/// A one-off auth key the controller minted for this proxy (with its OAuth
/// client), for the leader's next login; the runtime removes it (and
/// [`AUTH_KEY_ID`]) once the device has logged in. containerboot's name.
pub const AUTH_KEY: &str = "authkey";

/// The id of [`AUTH_KEY`], so the controller can revoke a key never used.
pub const AUTH_KEY_ID: &str = "authkey_id";

/// The tags [`AUTH_KEY`] was minted with (comma-separated), so a key for
/// tags the plan no longer asks for is replaced.
pub const AUTH_KEY_TAGS: &str = "authkey_tags";

/// Every key the runtime writes; the controller never writes these, but
/// for removing [`PROBLEM`] and [`PROBLEM_MESSAGE`] with a minted key the
/// tailnet refused (the problem was about that key).
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
    PROBLEM,
    PROBLEM_MESSAGE,
];
