//! # policy-sdk: placement policies for tailscale-svc-lb
//!
//! A policy is a WebAssembly component that the tailscale-svc-lb controller
//! runs for every LoadBalancer Service of its class. Policies form a chain:
//!
//! ```text
//! empty plan ─▶ default policy ─▶ your policy ─▶ … ─▶ validated ─▶ DaemonSet ts-…
//! ```
//!
//! Each one receives the [`Service`], its own settings (JSON written by the
//! operator) and the [`Plan`] built so far, and returns the next plan or a
//! [`Rejection`]: [`Rejection::new`] says the input is invalid (the Service
//! keeps the proxy it had, so a typo never takes it offline), and
//! [`Rejection::do_not_serve`] says the Service must not be exposed (its
//! proxy is removed and the device logs out). Nodes are available through
//! [`Cluster::nodes`], fetched from the controller only when asked for;
//! [`Cluster::nodes_with_labels`] copies only the labels the policy reads.
//!
//! ## A complete policy
//!
//! With settings (a `serde` type) and a native test:
//!
//! ```
//! // In the policy's crate, src/lib.rs begins with `#![no_std]`.
//! use policy_sdk::prelude::*; // String, Vec, format!, …
//! use policy_sdk::{Plan, Policy, Rejection, Request, Requirement, Selector};
//! use serde::Deserialize;
//!
//! /// Runs the proxies of Services labelled `tier=edge` on edge nodes only.
//! pub struct EdgeNodes;
//!
//! #[derive(Deserialize)]
//! #[serde(deny_unknown_fields)]
//! pub struct Settings {
//!     /// Node label marking edge nodes.
//!     edge_label: String,
//! }
//!
//! impl Policy for EdgeNodes {
//!     type Settings = Settings;
//!
//!     fn validate_settings(settings: &Settings) -> Result<(), String> {
//!         if settings.edge_label.is_empty() {
//!             return Err("edge_label must not be empty".into());
//!         }
//!         Ok(())
//!     }
//!
//!     fn evaluate(request: &Request<'_, Settings>, mut plan: Plan) -> Result<Plan, Rejection> {
//!         if request.service.label("tier") != Some("edge") {
//!             return Ok(plan);
//!         }
//!         let label = &request.settings.edge_label;
//!         let edge = request.cluster.nodes(&Selector::everything().and(Requirement::exists(label)));
//!         if edge.is_empty() {
//!             return Err(Rejection::new("no edge nodes in the cluster"));
//!         }
//!         plan.node_selector.insert(label.clone(), "true".into());
//!         Ok(plan)
//!     }
//! }
//!
//! // Exports the policy when built for wasm32-wasip2; nothing natively.
//! policy_sdk::export_policy!(EdgeNodes);
//!
//! // A native test, as it would stand in the policy's `#[cfg(test)]` module.
//! use policy_sdk::fixtures::{nodes_from_yaml, service_from_yaml};
//! use policy_sdk::testing::Testcase;
//!
//! let service = service_from_yaml(
//!     "metadata: {name: web, namespace: shop, labels: {tier: edge}}\nspec: {type: LoadBalancer}",
//! ).unwrap();
//! let nodes = nodes_from_yaml("metadata: {name: n1, labels: {edge: 'true'}}").unwrap();
//! let outcome = Testcase::new(service)
//!     .settings(r#"{"edge_label": "edge"}"#)
//!     .nodes(nodes)
//!     .evaluate::<EdgeNodes>();
//! assert_eq!(outcome.result.unwrap().node_selector["edge"], "true");
//! ```
//!
//! ## The crate around it
//!
//! `tailscale-svc-lb policy new NAME` writes a ready crate: this policy's
//! shape, settings, native tests with YAML fixtures, a lockfile, and the
//! build settings below. By hand, the manifest needs:
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib", "rlib"]   # the component, and the native tests
//!
//! [dependencies]
//! policy-sdk = { version = "0.1", default-features = false }
//! # for your Settings; without `std`, as the policy is `#![no_std]`
//! serde = { version = "1", default-features = false, features = ["alloc", "derive"] }
//!
//! [dev-dependencies]
//! policy-sdk = { version = "0.1", features = ["fixtures"] }   # fixtures::*
//!
//! [profile.release]   # small components: a ConfigMap holds 1 MiB in all
//! opt-level = "s"
//! lto = true
//! codegen-units = 1
//! strip = true
//! panic = "abort"
//! ```
//!
//! and a 64 KiB stack (`-C link-arg=-zstack-size=65536` for `wasm32`, e.g.
//! from a `build.rs` with `cargo::rustc-link-arg-cdylib`): each evaluation
//! runs in a fresh instance, whose cost grows with the memory it sets up.
//! The feature `fixtures` (on by default) reads Services and Nodes from
//! YAML; the component does not need it. Build with
//! `cargo build --release --target wasm32-wasip2`; the `.wasm` in
//! `target/wasm32-wasip2/release` is the component. `tailscale-svc-lb policy
//! check` reports its size, stack and speed, and `policy bench` measures it.
//! On the controller's command line (`render --policy x.wasm`) a policy is
//! named after its file, lower-cased with `_` as `-`; in `policies.yaml`, by
//! its `name`.
//!
//! ## `#![no_std]`, and the `std` feature
//!
//! A policy crate starts with `#![no_std]` and `use
//! policy_sdk::prelude::*;` (`String`, `Vec`, `BTreeMap`, `format!`,
//! `vec!`). Without the standard library's panic, formatting and I/O code
//! the component is about 20–30 KB smaller (the default policy: 98 KB
//! instead of 125). For such a component, built for wasm32-wasip2 without
//! the feature `std`, the SDK supplies what the standard library would:
//! the allocator (wasi-libc's `malloc`, as the standard library uses it),
//! the canonical ABI's `cabi_realloc`, and a panic handler that writes
//! `panicked at FILE:LINE:COL: MESSAGE` (at most 1 KiB) to the
//! controller's log before the instance traps; the controller shows that
//! line as the policy's error. Natively (`cargo test`) the standard
//! library is always there.
//!
//! The feature `std` (on by default; `fixtures` turns it on) links the
//! standard library into the component instead. A build links it when any
//! crate in it does; with the SDK's runtime beside it, the build fails with
//! "found duplicate lang item `panic_impl`". That happens when
//! - the crate lacks `#![no_std]` (a policy written before the SDK had
//!   this mode, with `default-features = false`): add `#![no_std]` and
//!   the prelude, or turn on `std`;
//! - a dependency needs the standard library, such as `serde` with its
//!   default features: turn them off (`default-features = false,
//!   features = ["alloc"]`), or turn on policy-sdk's `std` feature, drop
//!   `#![no_std]` and keep the dependency as it is.
//!
//! Cargo unifies features across the packages of one build: in a workspace
//! that builds several policies at once, one member that turns on
//! policy-sdk's `std` turns it on for all of them (they build, bigger), and
//! one that keeps serde's default features fails every `#![no_std]` member
//! as above.
//!
//! ## A policy without settings
//!
//! ```
//! use policy_sdk::{NoSettings, Plan, Policy, Rejection, Request};
//!
//! /// Every proxy also advertises `tag:k8s-proxy`.
//! pub struct ProxyTag;
//!
//! impl Policy for ProxyTag {
//!     type Settings = NoSettings; // accepts `{}` (or nothing), refuses any field
//!
//!     fn evaluate(_: &Request<'_, NoSettings>, mut plan: Plan) -> Result<Plan, Rejection> {
//!         plan.add_tag("tag:k8s-proxy"); // no duplicate if a policy before added it
//!         Ok(plan)
//!     }
//! }
//!
//! policy_sdk::export_policy!(ProxyTag);
//! ```
//!
//! Settings are read as JSON into any `serde::Deserialize` type, with
//! serde_json's error messages; floating-point numbers are not supported
//! (Kubernetes APIs avoid them too): write `"0.5"` as a string.
//!
//! ## What a policy may do
//!
//! A policy has no file system, network, environment or real clock (the clock
//! and random source are fixed so the same input always gives the same plan),
//! and is stopped when it runs past its deadline or memory cap. Its plan is
//! checked by the controller before use: the hostname must be a DNS label,
//! tags `tag:[a-z0-9-]+`, labels and quantities valid Kubernetes syntax, and
//! environment variables may not start with `SVCLB_`.
#![no_std]
#![deny(missing_docs)]
#![cfg_attr(not(target_arch = "wasm32"), forbid(unsafe_code))]

extern crate alloc;
// Native builds (tests, the controller's CLI) and the `std` feature link
// the standard library; a `#![no_std]` component gets [`runtime`] instead.
#[cfg(any(feature = "std", not(target_arch = "wasm32")))]
extern crate std;

// Lets the generated bindings name this crate by the path users see.
#[cfg(target_arch = "wasm32")]
extern crate self as policy_sdk;

mod cluster;
#[cfg(feature = "fixtures")]
pub mod fixtures;
pub mod manifest;
mod model;
pub mod prelude;
#[cfg(any(
    test,
    all(target_arch = "wasm32", target_os = "wasi", not(feature = "std"))
))]
mod runtime;
mod selector;
mod settings;
pub mod syntax;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod __guest {
    //! Re-exported for [`crate::export_policy!`]; not part of the API.
    pub use crate::guest::*;
}
#[cfg(target_arch = "wasm32")]
mod guest;

// The runtime links wasi-libc, which other wasm32 targets lack.
#[cfg(all(target_arch = "wasm32", not(target_os = "wasi"), not(feature = "std")))]
compile_error!("policy-sdk without its `std` feature builds components for wasm32-wasip2 only");

use crate::prelude::*;

pub use cluster::{Cluster, LogLevel};

/// How the report of a policy's panic begins: in the controller's log,
/// where a `#![no_std]` policy's panic handler writes `panicked at
/// FILE:LINE:COL: MESSAGE`, and on stderr, where the standard library's
/// hook writes the same words. The controller shows that report as the
/// policy's error.
pub const PANIC_LINE_PREFIX: &str = "panicked at ";
pub use model::{
    IpFamily, Labels, Node, Plan, Protocol, Rejection, Resources, Service, ServicePort, Taint,
    Toleration, TolerationOperator,
};
pub use selector::{Operator, Requirement, Selector};
pub use settings::{NoSettings, parse_settings};

/// What a policy sees of one evaluation.
pub struct Request<'a, S> {
    /// The Service being placed.
    pub service: &'a Service,
    /// The operator's settings for this policy.
    pub settings: &'a S,
    /// Node look-ups and logging.
    pub cluster: &'a Cluster,
}

/// A placement policy.
pub trait Policy {
    /// The settings the operator writes for this policy (JSON).
    type Settings: serde::de::DeserializeOwned;

    /// Checks settings beyond their shape; called once when the policy is
    /// loaded, so mistakes surface before any Service depends on them.
    fn validate_settings(settings: &Self::Settings) -> Result<(), String> {
        let _ = settings;
        Ok(())
    }

    /// Returns the plan for `request.service`, starting from `plan` (what the
    /// policies before this one decided), or rejects the Service.
    fn evaluate(request: &Request<'_, Self::Settings>, plan: Plan) -> Result<Plan, Rejection>;
}

pub(crate) fn run_validate_settings<P: Policy>(json: &str) -> Result<(), String> {
    let settings = parse_settings::<P::Settings>(json)?;
    P::validate_settings(&settings)
}

pub(crate) fn run_evaluate<P: Policy>(
    service: &Service,
    settings_json: &str,
    plan: Plan,
    cluster: &Cluster,
) -> Result<Plan, Rejection> {
    let settings = parse_settings::<P::Settings>(settings_json).map_err(Rejection::new)?;
    P::evaluate(
        &Request {
            service,
            settings: &settings,
            cluster,
        },
        plan,
    )
}

/// Exports a [`Policy`] as the component's implementation of the
/// `svc-lb:policy` world. Expands to nothing when not building for wasm, so
/// the same crate runs its tests natively.
#[macro_export]
macro_rules! export_policy {
    ($policy:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct SvcLbPolicyExport;
            impl $crate::__guest::Guest for SvcLbPolicyExport {
                fn validate_settings(
                    settings: $crate::prelude::String,
                ) -> ::core::result::Result<(), $crate::prelude::String> {
                    $crate::__guest::validate_settings::<$policy>(&settings)
                }
                fn evaluate(
                    service: $crate::__guest::WitService,
                    settings: $crate::prelude::String,
                    plan: $crate::__guest::WitPlan,
                ) -> $crate::__guest::WitDecision {
                    $crate::__guest::evaluate::<$policy>(service, &settings, plan)
                }
            }
            $crate::__guest::bindings::export!(SvcLbPolicyExport with_types_in $crate::__guest::bindings);
        };
    };
}
