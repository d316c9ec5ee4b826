//! Conformance suite, written only against `kube::Client`. It runs against
//! the in-memory server by default, or against the cluster of the kubeconfig
//! named by `SVCLB_TEST_KUBECONFIG`. Tests whose names start with
//! `in_memory_only_` need fault injection and skip a real cluster.

mod authn;
mod authz;
mod controller;
mod crud;
mod deletion;
mod harness;
mod limits;
mod patching;
mod pods;
mod watching;
