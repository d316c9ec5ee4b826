//! The Nodes the policies see: one watch on every Node, each converted once
//! per change into the policies' `Node` and served to `list-nodes` from
//! memory. A change a policy could see (labels, taints, readiness, a node
//! added or removed) re-runs the policy chain for every Service; other node
//! updates (heartbeats, images) are ignored.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node as KubeNode;
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use policy_sdk::manifest::NodeManifest;
use policy_sdk::{Labels, Node, Selector};
use tokio::sync::mpsc;

use crate::policy::NodeSource;

/// Every Node, as the policies see it.
#[derive(Debug)]
pub struct NodeCache {
    nodes: RwLock<BTreeMap<String, Node>>,
    synced: tokio::sync::watch::Sender<bool>,
}

impl Default for NodeCache {
    fn default() -> Self {
        Self {
            nodes: RwLock::default(),
            synced: tokio::sync::watch::Sender::new(false),
        }
    }
}

/// The policies' view of a Kubernetes Node; `None` for a nameless object.
pub fn policy_node(node: &KubeNode) -> Option<Node> {
    let manifest: NodeManifest = serde_json::to_value(node)
        .and_then(serde_json::from_value)
        .ok()?;
    let node = manifest.to_node();
    (!node.name.is_empty()).then_some(node)
}

impl NodeCache {
    /// Whether the first full list has arrived.
    pub fn is_synced(&self) -> bool {
        *self.synced.borrow()
    }

    /// Waits until the first full list has arrived.
    pub async fn wait_synced(&self) {
        let _ = self.synced.subscribe().wait_for(|synced| *synced).await;
    }

    /// How many nodes carry every label of `selector`.
    pub fn count_matching(&self, selector: &Labels) -> usize {
        let nodes = self.nodes.read().unwrap_or_else(|p| p.into_inner());
        nodes
            .values()
            .filter(|node| selector.iter().all(|(k, v)| node.labels.get(k) == Some(v)))
            .count()
    }

    /// Replaces one node; `true` when the policies' view changed.
    pub fn upsert(&self, node: Node) -> bool {
        let mut nodes = self.nodes.write().unwrap_or_else(|p| p.into_inner());
        match nodes.get(&node.name) {
            Some(old) if *old == node => false,
            _ => {
                nodes.insert(node.name.clone(), node);
                true
            }
        }
    }

    /// Removes one node; `true` when it was known.
    pub fn remove(&self, name: &str) -> bool {
        let mut nodes = self.nodes.write().unwrap_or_else(|p| p.into_inner());
        nodes.remove(name).is_some()
    }

    /// Replaces every node after a full list; `true` when anything changed.
    pub fn replace_all(&self, fresh: BTreeMap<String, Node>) -> bool {
        let mut nodes = self.nodes.write().unwrap_or_else(|p| p.into_inner());
        let changed = *nodes != fresh;
        *nodes = fresh;
        self.synced.send_replace(true);
        changed
    }

    /// Keeps the cache in step with the cluster until the watch ends,
    /// sending on `changed` (coalesced) whenever the policies' view changes.
    pub async fn run(self: Arc<Self>, api: Api<KubeNode>, changed: mpsc::Sender<()>) {
        let mut listing: Option<BTreeMap<String, Node>> = None;
        let mut events = watcher(api).boxed();
        while let Some(event) = events.next().await {
            let event = match event {
                Ok(event) => event,
                Err(error) => {
                    tracing::warn!(%error, "node watch failed; retrying");
                    continue;
                }
            };
            let touched = match event {
                Event::Init => {
                    listing = Some(BTreeMap::new());
                    false
                }
                Event::InitApply(node) => {
                    if let (Some(listing), Some(node)) = (listing.as_mut(), policy_node(&node)) {
                        listing.insert(node.name.clone(), node);
                    }
                    false
                }
                Event::InitDone => self.replace_all(listing.take().unwrap_or_default()),
                Event::Apply(node) => policy_node(&node).is_some_and(|n| self.upsert(n)),
                Event::Delete(node) => node
                    .metadata
                    .name
                    .as_deref()
                    .is_some_and(|name| self.remove(name)),
            };
            if touched {
                let _ = changed.try_send(());
            }
        }
    }
}

fn watcher(
    api: Api<KubeNode>,
) -> impl futures::Stream<Item = Result<Event<KubeNode>, watcher::Error>> + Send {
    watcher::watcher(api, watcher::Config::default()).default_backoff()
}

impl NodeSource for NodeCache {
    fn visit_matching(&self, selector: &Selector, visit: &mut dyn FnMut(&Node)) {
        let nodes = self.nodes.read().unwrap_or_else(|p| p.into_inner());
        nodes
            .values()
            .filter(|node| selector.matches(&node.labels))
            .for_each(visit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(yaml: &str) -> Node {
        policy_node(&serde_yaml_ng::from_str(yaml).unwrap()).unwrap()
    }

    #[test]
    fn only_changes_a_policy_can_see_count() {
        let cache = NodeCache::default();
        let n1 = "metadata: {name: n1, labels: {pool: a}}\nstatus: {conditions: [{type: Ready, status: 'True'}]}";
        assert!(cache.upsert(node(n1)));
        assert!(!cache.upsert(node(n1)), "same labels, taints and readiness");
        let heartbeat = "metadata: {name: n1, labels: {pool: a}, resourceVersion: '9'}\n\
            status: {conditions: [{type: Ready, status: 'True', lastHeartbeatTime: '2026-01-01T00:00:00Z'}]}";
        assert!(!cache.upsert(node(heartbeat)));
        assert!(cache.upsert(node("metadata: {name: n1, labels: {pool: b}}")));
        assert_eq!(
            cache.count_matching(&[("pool".to_string(), "b".to_string())].into()),
            1
        );
        assert!(cache.remove("n1"));
        assert!(!cache.remove("n1"));
    }
}
