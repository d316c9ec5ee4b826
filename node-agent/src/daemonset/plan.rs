//! What the DaemonSet controller does about one DaemonSet, as a plain
//! function of the nodes' placements and the DaemonSet's pods
//! (`pkg/controller/daemon`: `podsShouldBeOnNode` of `manage`, and
//! `rollingUpdate` of `update.go`, for both its `maxSurge` and its
//! `maxUnavailable` branch; `minReadySeconds` 0, so available = ready).
//!
//! - A node that should run a pod and has none (a terminating one counts:
//!   the replacement waits until it is gone) gets one.
//! - A node that may no longer run one loses them all; failed pods are
//!   deleted (and recreated by the next pass).
//! - Rolling update with surge: a node with only an old pod gets a new one
//!   (at most `maxSurge` nodes at once, and always where the old pod is
//!   unavailable); the old pod is deleted once the new one is ready.
//! - Rolling update without surge: at most `maxUnavailable` old pods are
//!   deleted at a time, and the manage step recreates them.

use std::collections::BTreeMap;

use crate::scheduling::Placement;

/// A daemon pod as the plan sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonPod {
    pub name: String,
    pub node: String,
    /// Its `controller-revision-hash` label.
    pub hash: String,
    pub ready: bool,
    pub failed: bool,
    /// Has a deletion timestamp.
    pub terminating: bool,
    /// Creation order (timestamp, then name).
    pub created: String,
}

/// The update strategy, with percentages already scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    OnDelete,
    RollingUpdate {
        max_surge: usize,
        max_unavailable: usize,
    },
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// Create a pod of the current revision on this node.
    Create { node: String },
    /// Delete this pod.
    Delete { pod: String },
}

/// The plan for one pass, given each node's placement, the DaemonSet's
/// pods and its current template `hash`.
pub fn plan(
    nodes: &BTreeMap<String, Placement>,
    pods: &[DaemonPod],
    hash: &str,
    strategy: Strategy,
) -> Vec<Action> {
    let surge = matches!(strategy, Strategy::RollingUpdate { max_surge, .. } if max_surge > 0);
    let mut by_node: BTreeMap<&str, Vec<&DaemonPod>> = BTreeMap::new();
    for pod in pods {
        by_node.entry(&pod.node).or_default().push(pod);
    }
    let mut actions = Vec::new();
    let delete = |pod: &DaemonPod| Action::Delete {
        pod: pod.name.clone(),
    };
    // Pods on nodes that are gone.
    for (node, on_node) in &by_node {
        if !nodes.contains_key(*node) {
            actions.extend(on_node.iter().filter(|p| !p.terminating).map(|p| delete(p)));
        }
    }
    for (node, placement) in nodes {
        let on_node = by_node.get(node.as_str()).cloned().unwrap_or_default();
        if placement.should_run && on_node.is_empty() {
            actions.push(Action::Create { node: node.clone() });
        } else if !placement.should_continue_running {
            actions.extend(on_node.iter().filter(|p| !p.terminating).map(|p| delete(p)));
        } else {
            actions.extend(duplicates_and_failed(&on_node, hash, surge));
        }
    }
    if let Strategy::RollingUpdate {
        max_surge,
        max_unavailable,
    } = strategy
    {
        let update = if surge {
            surge_update(nodes, &by_node, hash, max_surge)
        } else {
            unavailable_update(&by_node, hash, max_unavailable.max(1))
        };
        for action in update {
            if !actions.contains(&action) {
                actions.push(action);
            }
        }
    }
    actions
}

/// `podsShouldBeOnNode` for a node whose pods may stay.
fn duplicates_and_failed(on_node: &[&DaemonPod], hash: &str, surge: bool) -> Vec<Action> {
    let mut actions = Vec::new();
    let mut running: Vec<&DaemonPod> = Vec::new();
    for pod in on_node.iter().filter(|p| !p.terminating) {
        if pod.failed {
            actions.push(Action::Delete {
                pod: pod.name.clone(),
            });
        } else {
            running.push(pod);
        }
    }
    running.sort_by(|a, b| a.created.cmp(&b.created));
    if !surge {
        actions.extend(running.iter().skip(1).map(|p| Action::Delete {
            pod: p.name.clone(),
        }));
        return actions;
    }
    // With surge, an old and a new pod may share a node until the new one
    // is ready (or the old one is not).
    let (mut oldest_new, mut oldest_old) = (None, None);
    for pod in running {
        let slot = if pod.hash == hash {
            &mut oldest_new
        } else {
            &mut oldest_old
        };
        if slot.is_none() {
            *slot = Some(pod);
        } else {
            actions.push(Action::Delete {
                pod: pod.name.clone(),
            });
        }
    }
    if let (Some(new), Some(old)) = (oldest_new, oldest_old)
        && (!old.ready || new.ready)
    {
        actions.push(Action::Delete {
            pod: old.name.clone(),
        });
    }
    actions
}

/// The new and the old pod of a node (`findUpdatedPodsOnNode`); `None`
/// when it has more than one of either (the manage step cleans up).
fn updated_and_old<'a>(
    pods: &[&'a DaemonPod],
    hash: &str,
) -> Option<(Option<&'a DaemonPod>, Option<&'a DaemonPod>)> {
    let (mut new, mut old) = (None, None);
    for pod in pods.iter().filter(|p| !p.terminating) {
        let slot = if pod.hash == hash { &mut new } else { &mut old };
        if slot.replace(*pod).is_some() {
            return None;
        }
    }
    Some((new, old))
}

fn surge_update(
    nodes: &BTreeMap<String, Placement>,
    by_node: &BTreeMap<&str, Vec<&DaemonPod>>,
    hash: &str,
    max_surge: usize,
) -> Vec<Action> {
    let mut actions = Vec::new();
    let mut candidates = Vec::new();
    let mut surging = 0;
    for (node, pods) in by_node {
        let Some((new, old)) = updated_and_old(pods, hash) else {
            surging += 1;
            continue;
        };
        match (new, old) {
            (_, None) => {}
            (None, Some(old)) if !old.ready => {
                if nodes.get(*node).is_some_and(|p| p.should_run) {
                    actions.push(Action::Create {
                        node: node.to_string(),
                    });
                } else {
                    actions.push(Action::Delete {
                        pod: old.name.clone(),
                    });
                }
            }
            (None, Some(_)) if surging >= max_surge => {}
            (None, Some(_)) => candidates.push(node.to_string()),
            (Some(new), Some(old)) => {
                if new.ready {
                    actions.push(Action::Delete {
                        pod: old.name.clone(),
                    });
                } else {
                    surging += 1;
                }
            }
        }
    }
    let remaining = max_surge.saturating_sub(surging).min(candidates.len());
    actions.extend(
        candidates
            .into_iter()
            .take(remaining)
            .map(|node| Action::Create { node }),
    );
    actions
}

fn unavailable_update(
    by_node: &BTreeMap<&str, Vec<&DaemonPod>>,
    hash: &str,
    max_unavailable: usize,
) -> Vec<Action> {
    let mut replace = Vec::new();
    let mut candidates = Vec::new();
    let mut unavailable = 0;
    for pods in by_node.values() {
        match updated_and_old(pods, hash) {
            None | Some((None, None)) | Some((Some(_), Some(_))) => unavailable += 1,
            Some((Some(new), None)) => unavailable += usize::from(!new.ready),
            Some((None, Some(old))) if !old.ready => replace.push(old.name.clone()),
            Some((None, Some(_))) if unavailable >= max_unavailable => {}
            Some((None, Some(old))) => candidates.push(old.name.clone()),
        }
    }
    let remaining = max_unavailable
        .saturating_sub(unavailable)
        .min(candidates.len());
    replace
        .into_iter()
        .chain(candidates.into_iter().take(remaining))
        .map(|pod| Action::Delete { pod })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: Placement = Placement {
        should_run: true,
        should_continue_running: true,
    };
    const GONE: Placement = Placement {
        should_run: false,
        should_continue_running: false,
    };
    const SURGE: Strategy = Strategy::RollingUpdate {
        max_surge: 1,
        max_unavailable: 0,
    };

    fn nodes(list: &[(&str, Placement)]) -> BTreeMap<String, Placement> {
        list.iter().map(|(n, p)| (n.to_string(), *p)).collect()
    }

    fn pod(name: &str, node: &str, hash: &str, ready: bool) -> DaemonPod {
        DaemonPod {
            name: name.into(),
            node: node.into(),
            hash: hash.into(),
            ready,
            failed: false,
            terminating: false,
            created: name.into(),
        }
    }

    fn create(node: &str) -> Action {
        Action::Create { node: node.into() }
    }

    fn delete(pod: &str) -> Action {
        Action::Delete { pod: pod.into() }
    }

    #[test]
    fn every_matching_node_gets_one_pod_and_a_node_that_stops_matching_loses_it() {
        let actions = plan(
            &nodes(&[("a", RUN), ("b", RUN), ("c", GONE)]),
            &[pod("p1", "a", "h1", true), pod("p2", "c", "h1", true)],
            "h1",
            SURGE,
        );
        assert_eq!(actions, [create("b"), delete("p2")]);
    }

    #[test]
    fn a_terminating_pod_is_replaced_only_once_it_is_gone() {
        let mut old = pod("p1", "a", "h1", true);
        old.terminating = true;
        assert_eq!(plan(&nodes(&[("a", RUN)]), &[old], "h1", SURGE), []);
        assert_eq!(plan(&nodes(&[("a", RUN)]), &[], "h1", SURGE), [create("a")]);
    }

    #[test]
    fn a_surge_update_adds_the_new_pod_first_and_removes_the_old_one_once_it_is_ready() {
        let n = nodes(&[("a", RUN), ("b", RUN)]);
        let old = [pod("p1", "a", "h1", true), pod("p2", "b", "h1", true)];
        // Step 1: one new pod (maxSurge 1), next to the old one.
        assert_eq!(plan(&n, &old, "h2", SURGE), [create("a")]);
        // Step 2: the new pod is not ready: both stay, nothing else surges.
        let mut pods = old.to_vec();
        pods.push(pod("p3", "a", "h2", false));
        assert_eq!(plan(&n, &pods, "h2", SURGE), []);
        // Step 3: ready: the old pod of that node goes, and with node a
        // no longer surging, node b's turn comes in the same pass.
        pods[2].ready = true;
        assert_eq!(plan(&n, &pods, "h2", SURGE), [delete("p1"), create("b")]);
    }

    #[test]
    fn an_unready_old_pod_is_replaced_at_once_whatever_the_surge_budget() {
        let n = nodes(&[("a", RUN), ("b", RUN)]);
        let pods = [
            pod("p1", "a", "h1", true),
            pod("p3", "a", "h2", false),
            pod("p2", "b", "h1", false),
        ];
        assert_eq!(plan(&n, &pods, "h2", SURGE), [create("b")]);
    }

    #[test]
    fn without_surge_old_pods_are_deleted_up_to_max_unavailable() {
        let n = nodes(&[("a", RUN), ("b", RUN)]);
        let pods = [pod("p1", "a", "h1", true), pod("p2", "b", "h1", true)];
        let strategy = Strategy::RollingUpdate {
            max_surge: 0,
            max_unavailable: 1,
        };
        assert_eq!(plan(&n, &pods, "h2", strategy), [delete("p1")]);
        assert_eq!(plan(&n, &pods, "h2", Strategy::OnDelete), []);
    }

    #[test]
    fn failed_pods_and_duplicates_are_deleted() {
        let n = nodes(&[("a", RUN)]);
        let mut failed = pod("p1", "a", "h1", false);
        failed.failed = true;
        let pods = [
            failed,
            pod("p2", "a", "h1", true),
            pod("p3", "a", "h1", true),
        ];
        assert_eq!(plan(&n, &pods, "h1", SURGE), [delete("p1"), delete("p3")]);
    }
}
