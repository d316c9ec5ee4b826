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

mod api;
mod discovery;
pub mod error;
mod faults;
mod gc;
mod ownership;
mod partial;
mod patch;
mod process;
pub mod registry;
mod requests;
mod selector;
mod server;
mod store;
mod strategic;
mod table;
mod time;
mod watch;

pub use axum::http::Method;
pub use faults::Faults;
pub use process::{SimProcess, rss_mib, serve_until_interrupted};
pub use requests::{ApiCall, RequestCounts};
pub use server::{KubeSim, TEST_KUBECONFIG_ENV, client_for, connect_for_tests, kubeconfig};
