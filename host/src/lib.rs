//! # tailscale-svc-lb (controller)
//!
//! Gives Kubernetes LoadBalancer Services of class
//! `svc-lb.tailscale.iptables.sh/lb` an address on a tailnet. For each such
//! Service the controller runs the policy chain, renders a proxy DaemonSet
//! (with its RBAC, state Secret and Lease) and applies it.
//!
//! ```text
//! Service ──service_input──▶ policy input ──policy::PolicyChain──▶ Plan
//!    ──validate──▶ valid Plan ──render::render_proxy──▶ ProxyObjects ──▶ apply
//! ```
//!
//! Decisions are pure functions ([`service_input`], [`validate`], [`render`]);
//! only the binary's edges do I/O.
#![forbid(unsafe_code)]

pub mod config;
pub mod controller;
pub mod policy;
pub mod quantile;
pub mod render;
pub mod scaffold;
pub mod service_input;
pub mod tailscale_api;
pub mod validate;
