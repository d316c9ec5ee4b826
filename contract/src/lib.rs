//! The strings and names that the tailscale-svc-lb controller and its runtime
//! must agree on, defined once.
//!
//! ```text
//!  controller ──renders──▶ DaemonSet ts-… ──runs──▶ runtime pods
//!      ▲                    (env: [`env`])              │
//!      └──── reads ◀── state Secret ts-… ([`state`]) ◀──┘ writes
//! ```
//!
//! Nothing else in the project spells these strings: label and annotation keys
//! ([`keys`]), the names of the per-Service objects ([`ProxyNames`]), the keys
//! of the state Secret ([`state`]), the runtime's environment ([`env`]) and the
//! encoding of Service ports passed through it ([`ports`]); and how both
//! binaries write their logs ([`logging`]).
#![no_std]
#![forbid(unsafe_code)]

// `no_std` so that the policies, which are `#![no_std]` components, can
// use the keys; the controller and runtime link the standard library anyway.
extern crate alloc;
#[cfg(any(test, feature = "logging"))]
extern crate std;

pub mod env;
pub mod keys;
mod lease;
#[cfg(feature = "logging")]
pub mod logging;
mod names;
pub mod ports;
pub mod state;

pub use lease::LeaseTimings;
pub use names::ProxyNames;

/// The `spec.loadBalancerClass` this project serves by default.
pub const DEFAULT_LOAD_BALANCER_CLASS: &str = "svc-lb.tailscale.iptables.sh/lb";

/// Secret (in the controller's namespace) holding the Tailscale auth key.
pub const AUTH_KEY_SECRET: &str = "tailscale-svc-lb";

/// Key of the auth key inside [`AUTH_KEY_SECRET`].
pub const AUTH_KEY_SECRET_KEY: &str = "ts-auth-key";

/// Port of the runtime's health endpoints (`/healthz`, `/readyz`).
pub const RUNTIME_HEALTH_PORT: u16 = 9002;

/// Where the proxy container's writable scratch space is mounted (an
/// emptyDir: the root filesystem is read-only). tailscaled's socket, its
/// state directory and the auth key file live beneath
/// [`RUNTIME_STATE_DIR`]; iptables takes its lock in `/run` too.
pub const RUNTIME_RUN_DIR: &str = "/run";

/// tailscaled's socket, state directory (`--statedir`: certificates, the
/// DERP map cache, logs) and the auth key file, inside the pod.
pub const RUNTIME_STATE_DIR: &str = "/run/tailscale-svc-lb";

/// Name of the runtime binary inside the runtime image.
pub const RUNTIME_BINARY: &str = "tailscale-svc-lb-runtime";

/// Runtime subcommand run by the privileged init container: enables IP
/// forwarding in the pod's network namespace.
pub const RUNTIME_ENABLE_FORWARDING_COMMAND: &str = "enable-forwarding";
