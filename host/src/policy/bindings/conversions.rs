// Conversions between one version's generated WIT types (`wit`, an alias
// the including module sets) and the SDK's plain types. Included, not a
// module, once per contract version: the generated types of 0.1.0 and 0.2.0
// are distinct Rust types of the same shape, and one text keeps the two
// conversions from drifting apart.

use policy_sdk::{
    IpFamily, Labels, Node, Operator, Plan, Protocol, Requirement, Resources, Selector, Service,
    Toleration, TolerationOperator,
};

use crate::validate::{InvalidPlan, MAX_LARGE_LIST, MAX_PLAN_BYTES, MAX_SMALL_LIST};

fn labels_to_wit(labels: &Labels) -> Vec<wit::KeyValue> {
    labels
        .iter()
        .map(|(key, value)| wit::KeyValue {
            key: key.clone(),
            value: value.clone(),
        })
        .collect()
}

fn labels_from_wit(pairs: Vec<wit::KeyValue>) -> Labels {
    pairs.into_iter().map(|kv| (kv.key, kv.value)).collect()
}

/// The Service as the policy receives it.
pub fn service_to_wit(service: &Service) -> wit::Service {
    wit::Service {
        namespace: service.namespace.clone(),
        name: service.name.clone(),
        uid: service.uid.clone(),
        labels: labels_to_wit(&service.labels),
        annotations: labels_to_wit(&service.annotations),
        ports: service
            .ports
            .iter()
            .map(|p| wit::ServicePort {
                name: p.name.clone(),
                protocol: match p.protocol {
                    Protocol::Tcp => wit::Protocol::Tcp,
                    Protocol::Udp => wit::Protocol::Udp,
                    Protocol::Sctp => wit::Protocol::Sctp,
                },
                port: p.port,
            })
            .collect(),
        cluster_ips: service.cluster_ips.clone(),
        ip_families: service
            .ip_families
            .iter()
            .map(|f| match f {
                IpFamily::IPv4 => wit::IpFamily::Ipv4,
                IpFamily::IPv6 => wit::IpFamily::Ipv6,
            })
            .collect(),
        load_balancer_source_ranges: service.load_balancer_source_ranges.clone(),
    }
}

/// The plan as the policy receives it.
pub fn plan_to_wit(plan: &Plan) -> wit::Plan {
    wit::Plan {
        node_selector: labels_to_wit(&plan.node_selector),
        hostname: plan.hostname.clone(),
        tags: plan.tags.clone(),
        pod_labels: labels_to_wit(&plan.pod_labels),
        pod_annotations: labels_to_wit(&plan.pod_annotations),
        tolerations: plan
            .tolerations
            .iter()
            .map(|t| wit::Toleration {
                key: t.key.clone(),
                operator: match t.operator {
                    TolerationOperator::Equal => wit::TolerationOperator::Equal,
                    TolerationOperator::Exists => wit::TolerationOperator::Exists,
                },
                value: t.value.clone(),
                effect: t.effect.clone(),
                toleration_seconds: t.toleration_seconds,
            })
            .collect(),
        resources: wit::Resources {
            requests: labels_to_wit(&plan.resources.requests),
            limits: labels_to_wit(&plan.resources.limits),
        },
        priority_class_name: plan.priority_class_name.clone().unwrap_or_default(),
        env: labels_to_wit(&plan.env),
    }
}

/// The plan a policy returned, in the SDK's types.
///
/// List lengths are checked first, so an oversized result is refused before
/// it is copied into maps (see [`super::memory`]).
pub fn plan_from_wit(plan: wit::Plan) -> Result<Plan, InvalidPlan> {
    for (field, count, max) in [
        ("nodeSelector", plan.node_selector.len(), MAX_SMALL_LIST),
        ("tags", plan.tags.len(), MAX_SMALL_LIST),
        ("podLabels", plan.pod_labels.len(), MAX_LARGE_LIST),
        ("podAnnotations", plan.pod_annotations.len(), MAX_LARGE_LIST),
        ("tolerations", plan.tolerations.len(), MAX_SMALL_LIST),
        (
            "resources.requests",
            plan.resources.requests.len(),
            MAX_SMALL_LIST,
        ),
        (
            "resources.limits",
            plan.resources.limits.len(),
            MAX_SMALL_LIST,
        ),
        ("env", plan.env.len(), MAX_LARGE_LIST),
    ] {
        if count > max {
            return Err(InvalidPlan::TooMany { field, count, max });
        }
    }
    let pairs = |list: &[wit::KeyValue]| -> usize {
        list.iter().map(|kv| kv.key.len() + kv.value.len()).sum()
    };
    let bytes = plan.hostname.len()
        + plan.priority_class_name.len()
        + plan.tags.iter().map(String::len).sum::<usize>()
        + pairs(&plan.node_selector)
        + pairs(&plan.pod_labels)
        + pairs(&plan.pod_annotations)
        + pairs(&plan.resources.requests)
        + pairs(&plan.resources.limits)
        + pairs(&plan.env)
        + plan
            .tolerations
            .iter()
            .map(|t| t.key.len() + t.value.len() + t.effect.len())
            .sum::<usize>();
    if bytes > MAX_PLAN_BYTES {
        return Err(InvalidPlan::TooLarge {
            field: "plan",
            bytes,
            max: MAX_PLAN_BYTES,
        });
    }
    Ok(Plan {
        node_selector: labels_from_wit(plan.node_selector),
        hostname: plan.hostname,
        tags: plan.tags,
        pod_labels: labels_from_wit(plan.pod_labels),
        pod_annotations: labels_from_wit(plan.pod_annotations),
        tolerations: plan
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
            requests: labels_from_wit(plan.resources.requests),
            limits: labels_from_wit(plan.resources.limits),
        },
        priority_class_name: Some(plan.priority_class_name).filter(|n| !n.is_empty()),
        env: labels_from_wit(plan.env),
    })
}

/// A selector a policy passed to `list-nodes`.
pub fn selector_from_wit(requirements: Vec<wit::SelectorRequirement>) -> Selector {
    Selector {
        requirements: requirements
            .into_iter()
            .map(|r| Requirement {
                key: r.key,
                operator: match r.operator {
                    wit::SelectorOperator::In => Operator::In,
                    wit::SelectorOperator::NotIn => Operator::NotIn,
                    wit::SelectorOperator::Exists => Operator::Exists,
                    wit::SelectorOperator::DoesNotExist => Operator::DoesNotExist,
                },
                values: r.values,
            })
            .collect(),
    }
}

/// A node as the policy receives it: with only the labels in `label_keys`,
/// when given.
pub fn node_to_wit(node: &Node, label_keys: Option<&[String]>) -> wit::Node {
    let labels = match label_keys {
        None => labels_to_wit(&node.labels),
        Some(keys) => keys
            .iter()
            .filter_map(|key| {
                node.labels.get(key).map(|value| wit::KeyValue {
                    key: key.clone(),
                    value: value.clone(),
                })
            })
            .collect(),
    };
    wit::Node {
        name: node.name.clone(),
        labels,
        taints: node
            .taints
            .iter()
            .map(|t| wit::Taint {
                key: t.key.clone(),
                value: t.value.clone(),
                effect: t.effect.clone(),
            })
            .collect(),
        ready: node.ready,
    }
}
