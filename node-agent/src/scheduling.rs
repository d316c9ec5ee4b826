//! Whether a DaemonSet's pod should run on a node, as the DaemonSet
//! controller decides it (`pkg/controller/daemon`, `NodeShouldRunDaemonPod`,
//! with the scheduler's `nodeaffinity` and `tainttoleration` checks): the
//! node selector and required node affinity must match the node's labels
//! (and `metadata.name` fields), and every `NoSchedule`/`NoExecute` taint
//! must be tolerated — by the pod's tolerations or those the controller adds
//! to every daemon pod (`util.AddOrUpdateDaemonPodTolerations`).
//!
//! An untolerated `NoSchedule` taint keeps new pods away but lets a running
//! one stay; an untolerated `NoExecute` taint, like a selector that no
//! longer matches, removes it.
//!
//! For the pods of Deployments and Jobs, [`pick_node`] plays the
//! scheduler: the same filters with the pod's own tolerations only (a
//! cordoned node carries the `node.kubernetes.io/unschedulable` taint's
//! meaning), then the node with the fewest pods of the same owner (the
//! spreading the chart asks for with its topology spread constraint), by
//! name on a tie.

use k8s_openapi::api::core::v1::{
    Node, NodeSelectorRequirement, NodeSelectorTerm, PodSpec, Taint, Toleration,
};

/// Whether a daemon pod should be created on, and may stay on, a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// A pod should be created there.
    pub should_run: bool,
    /// A pod there may keep running.
    pub should_continue_running: bool,
}

/// The tolerations the DaemonSet controller adds to every daemon pod.
pub fn daemon_tolerations() -> Vec<Toleration> {
    let toleration = |key: &str, effect: &str| Toleration {
        key: Some(key.into()),
        operator: Some("Exists".into()),
        effect: Some(effect.into()),
        ..Default::default()
    };
    vec![
        toleration("node.kubernetes.io/not-ready", "NoExecute"),
        toleration("node.kubernetes.io/unreachable", "NoExecute"),
        toleration("node.kubernetes.io/disk-pressure", "NoSchedule"),
        toleration("node.kubernetes.io/memory-pressure", "NoSchedule"),
        toleration("node.kubernetes.io/pid-pressure", "NoSchedule"),
        toleration("node.kubernetes.io/unschedulable", "NoSchedule"),
    ]
}

/// `Toleration.ToleratesTaint` of `k8s.io/api/core/v1`.
fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if toleration
        .effect
        .as_deref()
        .is_some_and(|e| !e.is_empty() && e != taint.effect)
    {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or_default();
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            toleration.value.as_deref().unwrap_or_default()
                == taint.value.as_deref().unwrap_or_default()
        }
        _ => false,
    }
}

fn requirement_holds(req: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = req.values.as_deref().unwrap_or_default();
    let number = |v: &str| v.parse::<i64>().ok();
    match req.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => !value.is_some_and(|v| values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(actual), Some(bound)) = (
                value.and_then(number),
                values.first().and_then(|v| number(v)),
            ) else {
                return false;
            };
            if req.operator == "Gt" {
                actual > bound
            } else {
                actual < bound
            }
        }
        _ => false,
    }
}

fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let expressions = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    // A term with no requirements matches nothing (`nodeaffinity`).
    if expressions.is_empty() && fields.is_empty() {
        return false;
    }
    expressions
        .iter()
        .all(|r| requirement_holds(r, labels.get(&r.key).map(String::as_str)))
        && fields.iter().all(|r| {
            let value = (r.key == "metadata.name")
                .then_some(node.metadata.name.as_deref())
                .flatten();
            requirement_holds(r, value)
        })
}

/// Whether the pod's selector and required affinity match the node.
fn selected(spec: &PodSpec, node: &Node) -> bool {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let selector_matches = spec
        .node_selector
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    selector_matches
        && required.is_none_or(|r| r.node_selector_terms.iter().any(|t| term_matches(t, node)))
}

/// Whether `node` has a taint of `effect` none of `tolerations` tolerates.
fn untolerated(node: &Node, tolerations: &[Toleration], effect: &str) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .filter(|t| t.effect == effect)
        .any(|t| !tolerations.iter().any(|tol| tolerates(tol, t)))
}

/// Whether the scheduler may put a (non-daemon) pod with `spec` on `node`.
pub fn schedulable(spec: &PodSpec, node: &Node) -> bool {
    let tolerations = spec.tolerations.clone().unwrap_or_default();
    let cordoned = node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true)
        && !tolerations.iter().any(|t| {
            let taint = Taint {
                key: "node.kubernetes.io/unschedulable".into(),
                effect: "NoSchedule".into(),
                ..Default::default()
            };
            tolerates(t, &taint)
        });
    selected(spec, node)
        && !cordoned
        && !untolerated(node, &tolerations, "NoSchedule")
        && !untolerated(node, &tolerations, "NoExecute")
}

/// The node for a new pod with `spec`: a schedulable one with the fewest
/// pods of its owner (`load`: node → count), by name on a tie.
pub fn pick_node(
    spec: &PodSpec,
    nodes: &[Node],
    load: &std::collections::BTreeMap<String, usize>,
) -> Option<String> {
    nodes
        .iter()
        .filter(|n| schedulable(spec, n))
        .filter_map(|n| n.metadata.name.clone())
        .min_by_key(|name| (load.get(name).copied().unwrap_or(0), name.clone()))
}

/// Where a DaemonSet's pod with `spec` belongs with regard to `node`.
pub fn placement(spec: &PodSpec, node: &Node) -> Placement {
    if !selected(spec, node) {
        return Placement {
            should_run: false,
            should_continue_running: false,
        };
    }
    let mut tolerations = spec.tolerations.clone().unwrap_or_default();
    tolerations.extend(daemon_tolerations());
    let untolerated = |effect: &str| untolerated(node, &tolerations, effect);
    let evicted = untolerated("NoExecute");
    Placement {
        should_run: !evicted && !untolerated("NoSchedule"),
        should_continue_running: !evicted,
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Affinity, NodeAffinity, NodeSelector, NodeSpec};

    use super::*;

    fn node(labels: &[(&str, &str)], taints: &[(&str, &str)]) -> Node {
        Node {
            metadata: kube::api::ObjectMeta {
                name: Some("node-1".into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                taints: Some(
                    taints
                        .iter()
                        .map(|(k, e)| Taint {
                            key: k.to_string(),
                            effect: e.to_string(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn selecting(key: &str, value: &str) -> PodSpec {
        PodSpec {
            node_selector: Some([(key.to_string(), value.to_string())].into()),
            ..Default::default()
        }
    }

    const DEPLOY: &str = "svc-lb.tailscale.iptables.sh/deploy";

    #[test]
    fn the_node_selector_decides_where_pods_run_and_stay() {
        let spec = selecting(DEPLOY, "true");
        assert!(placement(&spec, &node(&[(DEPLOY, "true")], &[])).should_run);
        let gone = placement(&spec, &node(&[(DEPLOY, "false")], &[]));
        assert!(!gone.should_run && !gone.should_continue_running);
    }

    #[test]
    fn an_untolerated_no_schedule_taint_keeps_new_pods_away_but_not_running_ones() {
        let spec = selecting(DEPLOY, "true");
        let tainted = node(&[(DEPLOY, "true")], &[("dedicated", "NoSchedule")]);
        assert_eq!(
            placement(&spec, &tainted),
            Placement {
                should_run: false,
                should_continue_running: true
            }
        );
        let evicting = node(&[(DEPLOY, "true")], &[("dedicated", "NoExecute")]);
        assert!(!placement(&spec, &evicting).should_continue_running);
        let tolerant = PodSpec {
            tolerations: Some(vec![Toleration {
                key: Some("dedicated".into()),
                operator: Some("Exists".into()),
                ..Default::default()
            }]),
            ..spec
        };
        assert!(placement(&tolerant, &evicting).should_run);
    }

    #[test]
    fn daemon_pods_tolerate_unschedulable_and_unreachable_nodes() {
        let cordoned = node(
            &[],
            &[
                ("node.kubernetes.io/unschedulable", "NoSchedule"),
                ("node.kubernetes.io/unreachable", "NoExecute"),
            ],
        );
        assert!(placement(&PodSpec::default(), &cordoned).should_run);
    }

    #[test]
    fn required_node_affinity_terms_are_ored_and_their_expressions_anded() {
        let requirement = |key: &str, operator: &str, values: &[&str]| NodeSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
        };
        let spec = PodSpec {
            affinity: Some(Affinity {
                node_affinity: Some(NodeAffinity {
                    required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                        node_selector_terms: vec![
                            NodeSelectorTerm {
                                match_expressions: Some(vec![
                                    requirement("zone", "In", &["a", "b"]),
                                    requirement("gpu", "DoesNotExist", &[]),
                                ]),
                                match_fields: None,
                            },
                            NodeSelectorTerm {
                                match_expressions: None,
                                match_fields: Some(vec![requirement(
                                    "metadata.name",
                                    "In",
                                    &["node-1"],
                                )]),
                            },
                        ],
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(placement(&spec, &node(&[("zone", "a")], &[])).should_run);
        // The second term names the node itself.
        assert!(placement(&spec, &node(&[("zone", "c")], &[])).should_run);
        let mut other = node(&[("zone", "c")], &[]);
        other.metadata.name = Some("node-2".into());
        assert!(!placement(&spec, &other).should_run);
        let mut gpu = node(&[("zone", "a"), ("gpu", "1")], &[]);
        gpu.metadata.name = Some("node-3".into());
        assert!(!placement(&spec, &gpu).should_run);
    }

    #[test]
    fn the_scheduler_spreads_over_schedulable_nodes_and_honours_taints_and_cordons() {
        let named = |name: &str, taints: &[(&str, &str)]| Node {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                ..node(&[], taints).metadata
            },
            ..node(&[], taints)
        };
        let mut cordoned = named("node-c", &[]);
        cordoned.spec.get_or_insert_default().unschedulable = Some(true);
        let nodes = [
            named("node-a", &[]),
            named("node-b", &[]),
            named("node-t", &[("dedicated", "NoSchedule")]),
            cordoned,
        ];
        let spec = PodSpec::default();
        let mut load = std::collections::BTreeMap::new();
        assert_eq!(pick_node(&spec, &nodes, &load).as_deref(), Some("node-a"));
        load.insert("node-a".to_string(), 1);
        assert_eq!(pick_node(&spec, &nodes, &load).as_deref(), Some("node-b"));
        load.insert("node-b".to_string(), 1);
        assert_eq!(pick_node(&spec, &nodes, &load).as_deref(), Some("node-a"));
        // Daemon pods' tolerations are not a Deployment pod's.
        assert!(!schedulable(&spec, &nodes[2]) && !schedulable(&spec, &nodes[3]));
        let selective = selecting("pool", "edge");
        assert_eq!(pick_node(&selective, &nodes, &load), None);
    }
}
