//! The wasm side of the contract: generated bindings and the conversions
//! between them and the SDK's types. Policy authors never see this module;
//! [`crate::export_policy!`] wires a [`crate::Policy`] to it.

use crate::cluster::{Cluster, LogLevel};
use crate::model::{
    IpFamily, Labels, Node, Plan, Protocol, Resources, Service, ServicePort, Taint, Toleration,
    TolerationOperator,
};
use crate::prelude::*;
use crate::selector::{Operator, Selector};
use crate::{Policy, run_evaluate, run_validate_settings};

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "placement-policy",
        pub_export_macro: true,
        default_bindings_module: "::policy_sdk::__guest::bindings",
        runtime_path: "::policy_sdk::__guest::wit_bindgen_rt",
    });
}

#[doc(hidden)]
pub use wit_bindgen::rt as wit_bindgen_rt;

pub use bindings::exports::svc_lb::policy::policy::Guest;
use bindings::svc_lb::policy::host;
use bindings::svc_lb::policy::types as wit;

/// Bindings type of the Service argument.
pub type WitService = wit::Service;
/// Bindings type of the plan.
pub type WitPlan = wit::Plan;
/// Bindings type of the decision.
pub type WitDecision = wit::Decision;

/// `validate-settings` for policy `P`.
pub fn validate_settings<P: Policy>(settings: &str) -> Result<(), String> {
    run_validate_settings::<P>(settings)
}

/// `evaluate` for policy `P`.
pub fn evaluate<P: Policy>(service: WitService, settings: &str, plan: WitPlan) -> WitDecision {
    let cluster = Cluster::host();
    match run_evaluate::<P>(
        &service_from_wit(service),
        settings,
        plan_from_wit(plan),
        &cluster,
    ) {
        Ok(plan) => wit::Decision::Accept(plan_to_wit(plan)),
        Err(rejection) if rejection.is_do_not_serve() => {
            wit::Decision::DoNotServe(rejection.reason().to_string())
        }
        Err(rejection) => wit::Decision::Reject(rejection.reason().to_string()),
    }
}

pub(crate) fn log(level: LogLevel, message: &str) {
    let level = match level {
        LogLevel::Debug => host::LogLevel::Debug,
        LogLevel::Info => host::LogLevel::Info,
        LogLevel::Warn => host::LogLevel::Warn,
        LogLevel::Error => host::LogLevel::Error,
    };
    host::log(level, message);
}

pub(crate) fn list_nodes(selector: &Selector, label_keys: Option<&[&str]>) -> Vec<Node> {
    let requirements: Vec<wit::SelectorRequirement> = selector
        .requirements
        .iter()
        .map(|r| wit::SelectorRequirement {
            key: r.key.clone(),
            operator: match r.operator {
                Operator::In => wit::SelectorOperator::In,
                Operator::NotIn => wit::SelectorOperator::NotIn,
                Operator::Exists => wit::SelectorOperator::Exists,
                Operator::DoesNotExist => wit::SelectorOperator::DoesNotExist,
            },
            values: r.values.clone(),
        })
        .collect();
    let label_keys: Option<Vec<String>> =
        label_keys.map(|keys| keys.iter().map(|k| k.to_string()).collect());
    host::list_nodes(&requirements, label_keys.as_deref())
        .into_iter()
        .map(|n| Node {
            name: n.name,
            labels: labels_from_wit(n.labels),
            taints: n
                .taints
                .into_iter()
                .map(|t| Taint {
                    key: t.key,
                    value: t.value,
                    effect: t.effect,
                })
                .collect(),
            ready: n.ready,
        })
        .collect()
}

fn labels_from_wit(pairs: Vec<wit::KeyValue>) -> Labels {
    // Inserted one by one rather than collected: `collect` sorts first,
    // which links a sort (about 5 KB) into every component.
    let mut labels = Labels::new();
    for kv in pairs {
        labels.insert(kv.key, kv.value);
    }
    labels
}

fn labels_to_wit(labels: Labels) -> Vec<wit::KeyValue> {
    labels
        .into_iter()
        .map(|(key, value)| wit::KeyValue { key, value })
        .collect()
}

fn service_from_wit(s: wit::Service) -> Service {
    Service {
        namespace: s.namespace,
        name: s.name,
        uid: s.uid,
        labels: labels_from_wit(s.labels),
        annotations: labels_from_wit(s.annotations),
        ports: s
            .ports
            .into_iter()
            .map(|p| ServicePort {
                name: p.name,
                protocol: match p.protocol {
                    wit::Protocol::Tcp => Protocol::Tcp,
                    wit::Protocol::Udp => Protocol::Udp,
                    wit::Protocol::Sctp => Protocol::Sctp,
                },
                port: p.port,
            })
            .collect(),
        cluster_ips: s.cluster_ips,
        ip_families: s
            .ip_families
            .into_iter()
            .map(|f| match f {
                wit::IpFamily::Ipv4 => IpFamily::IPv4,
                wit::IpFamily::Ipv6 => IpFamily::IPv6,
            })
            .collect(),
        load_balancer_source_ranges: s.load_balancer_source_ranges,
    }
}

fn plan_from_wit(p: wit::Plan) -> Plan {
    Plan {
        node_selector: labels_from_wit(p.node_selector),
        hostname: p.hostname,
        tags: p.tags,
        pod_labels: labels_from_wit(p.pod_labels),
        pod_annotations: labels_from_wit(p.pod_annotations),
        tolerations: p
            .tolerations
            .into_iter()
            .map(|t| Toleration {
                key: t.key,
                operator: match t.operator {
                    wit::TolerationOperator::Equal => TolerationOperator::Equal,
                    wit::TolerationOperator::Exists => TolerationOperator::Exists,
                },
                value: t.value,
                effect: t.effect,
                toleration_seconds: t.toleration_seconds,
            })
            .collect(),
        resources: Resources {
            requests: labels_from_wit(p.resources.requests),
            limits: labels_from_wit(p.resources.limits),
        },
        priority_class_name: Some(p.priority_class_name).filter(|n| !n.is_empty()),
        env: labels_from_wit(p.env),
    }
}

fn plan_to_wit(p: Plan) -> wit::Plan {
    wit::Plan {
        node_selector: labels_to_wit(p.node_selector),
        hostname: p.hostname,
        tags: p.tags,
        pod_labels: labels_to_wit(p.pod_labels),
        pod_annotations: labels_to_wit(p.pod_annotations),
        tolerations: p
            .tolerations
            .into_iter()
            .map(|t| wit::Toleration {
                key: t.key,
                operator: match t.operator {
                    TolerationOperator::Equal => wit::TolerationOperator::Equal,
                    TolerationOperator::Exists => wit::TolerationOperator::Exists,
                },
                value: t.value,
                effect: t.effect,
                toleration_seconds: t.toleration_seconds,
            })
            .collect(),
        resources: wit::Resources {
            requests: labels_to_wit(p.resources.requests),
            limits: labels_to_wit(p.resources.limits),
        },
        priority_class_name: p.priority_class_name.unwrap_or_default(),
        env: labels_to_wit(p.env),
    }
}
