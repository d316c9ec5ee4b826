//! The controller: a `kube-runtime` Controller over Services in every
//! namespace, acting only on LoadBalancers of the configured class.
//!
//! ```text
//! Services (all namespaces) ──▶ Controller ──reconcile──▶ provision | teardown
//! DaemonSets, Secrets (ours) ──┘   ▲  ▲
//! Nodes ──NodeCache───────────────-┘  │ reconcile all on a change the policies can see
//! ConfigMap policies ──PolicySource───┘ reconcile all when a new set is active
//! ```
//!
//! Every replica keeps the node cache and the policy set warm; only the
//! holder of the controller Lease runs the Controller (see [`leader`]).

mod apply;
mod context;
mod error;
mod finalizer;
mod http;
mod index;
pub mod leader;
mod metrics;
mod nodes;
mod policy_source;
mod problems;
mod reconcile;
mod run;
mod service_status;
mod status;
mod sweep;
mod tailnet;
mod teardown;
mod text_limits;
pub mod uninstall;

pub use apply::{RENDER_DIGEST_ANNOTATION, render_digest};
pub use context::USER_AGENT;
pub use context::{ControllerTimings, FIELD_MANAGER};
pub use error::ReconcileError;
pub use nodes::{NodeCache, policy_node};
pub use policy_source::{ActivePolicies, PolicySource, SetChange};
pub use problems::{
    PodsCheck, PodsNotCreated, ProblemContext, pods_not_created, problem_condition,
};
pub use run::{ControllerOptions, DEFAULT_POLICY_CONFIGMAP, RunError, run};
pub use status::{PROXY_READY, ProxyReport, Readiness, with_proxy_condition};
pub use sweep::is_orphaned;
pub use tailnet::{CLIENT_ID_KEY, CLIENT_SECRET_KEY, KeyAction, key_action};
pub use teardown::{Deprovision, deprovision_step};
pub use text_limits::{CONDITION_MESSAGE_LIMIT, EVENT_NOTE_LIMIT};
