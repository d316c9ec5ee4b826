//! # kube-sim: an in-memory Kubernetes API server
//!
//! For tests and the local playground: real HTTP, so the real `kube::Client`
//! and `kube-runtime` watchers talk to it exactly as to a cluster.
//!
//! ```text
//! kube::Client ──HTTP──▶ api (paths, verbs) ──▶ store (JSON objects, versions, history)
//!                          ├─ patch (merge, strategic, JSON patch, apply) └─▶ watch streams
//!                          ├─ gc (ownerReferences, propagation, namespaces)
//!                          └─ faults (injected errors, latency, dropped watches)
//! ```
//!
//! Served resources are listed in [`registry::RESOURCES`], one line each.
#![forbid(unsafe_code)]

mod admission;
mod api;
pub mod auth;
mod binding_index;
mod discovery;
pub mod error;
mod faults;
mod fields;
mod gc;
mod handler;
mod openapi;
mod openapi_v2;
mod ownership;
mod partial;
mod patch;
mod pod_deletion;
mod process;
mod protobuf;
mod protobuf_objects;
pub mod registry;
mod requests;
pub mod root_ca;
mod selector;
mod server;
mod store;
mod strategic;
mod strategy;
mod table;
mod time;
mod tls;
mod watch;

pub use axum::http::Method;
pub use faults::Faults;
pub use process::{SimProcess, rss_mib, serve_until_interrupted};
pub use requests::{ApiCall, Denial, RequestCounts};
pub use server::{
    KubeSim, SimOptions, TEST_KUBECONFIG_ENV, config_for, config_with_token,
    connect_config_for_tests, connect_for_tests, kubeconfig,
};
pub use tls::TlsError;
