//! Where the nodes a policy asks for come from.
//!
//! The CLI serves them from a file; the controller from its watch cache.
//! Policies only pay for the nodes they ask for: nothing is copied into the
//! guest unless it calls `list-nodes`.

use policy_sdk::{Node, Selector};

/// A read-only view of the cluster's nodes.
pub trait NodeSource: Send + Sync {
    /// Calls `visit` for every node matching `selector`, in name order.
    fn visit_matching(&self, selector: &Selector, visit: &mut dyn FnMut(&Node));
}

/// A fixed list of nodes.
#[derive(Debug, Clone, Default)]
pub struct StaticNodes(Vec<Node>);

impl StaticNodes {
    /// The given nodes, sorted by name.
    pub fn new(mut nodes: Vec<Node>) -> Self {
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        Self(nodes)
    }
}

impl NodeSource for StaticNodes {
    fn visit_matching(&self, selector: &Selector, visit: &mut dyn FnMut(&Node)) {
        self.0
            .iter()
            .filter(|node| selector.matches(&node.labels))
            .for_each(visit);
    }
}
