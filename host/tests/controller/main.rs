//! End-to-end tests of the controller against an API server: the in-repo
//! one by default, or the cluster of `SVCLB_TEST_KUBECONFIG`. Tests named
//! `in_memory_only_*` inject faults and return early against a real cluster.
//! No kubelet runs, so the runtime's part (writing the Tailscale address
//! into the state Secret, logging out) is played by the tests, through the
//! same Secret keys the runtime uses.

#[path = "../support/controller_rbac.rs"]
mod controller_rbac;
mod harness;
mod oauth;
mod observability;
mod policies;
mod provisioning;
mod rbac;
mod robustness;
#[path = "../support/tailscale_api.rs"]
mod tailscale_api;
mod teardown;
mod uninstall;
