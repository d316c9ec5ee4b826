//! A cluster on one machine, from the pieces the product's tests use: the
//! in-repo API server (kube-sim: HTTPS, RBAC), nodes as network namespaces
//! each with the node agent's kubelet running pods in runc containers, the
//! node agent's controllers, the real controller (in this process, or as
//! the chart's Deployment), a Service network with an echo backend, and a
//! fake tailnet (the runtime's fake tailscaled, relayed between the pods'
//! TUN devices and a client namespace, the "laptop").
//!
//! The proxy pod tests and the failover bench build their clusters with
//! it ([`cluster::PodCluster`]), and so does `scripts/playground`.

pub mod cluster;
#[path = "../../host/tests/support/controller_rbac.rs"]
pub mod controller_rbac;
pub mod helm_session;
pub mod node;
pub mod observe;
pub mod oracle;
pub mod relay;
pub mod tailnet;
#[path = "../../host/tests/support/tailscale_api.rs"]
pub mod tailscale_api;
