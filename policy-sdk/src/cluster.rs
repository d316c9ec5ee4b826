//! The policy's window on the cluster: node look-ups and logging.
//!
//! Inside the controller these calls go to the host; in a policy's native
//! tests they are served from fixture nodes and the log is kept for asserts.

use crate::prelude::*;
use core::cell::RefCell;

use crate::model::Node;
use crate::selector::Selector;

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Detail for policy authors.
    Debug,
    /// Normal operation.
    Info,
    /// Something the operator should look at.
    Warn,
    /// A failure.
    Error,
}

/// Access to the cluster during one evaluation.
pub struct Cluster {
    #[cfg(not(target_arch = "wasm32"))]
    nodes: Vec<Node>,
    logs: RefCell<Vec<(LogLevel, String)>>,
}

impl Cluster {
    /// The nodes matching `selector`, sorted by name.
    ///
    /// Nodes are copied into the policy only when asked for, which costs time
    /// in proportion to the nodes returned: pass a selector that narrows them.
    pub fn nodes(&self, selector: &Selector) -> Vec<Node> {
        self.lookup(selector, None)
    }

    /// Like [`Cluster::nodes`], with each node carrying only the labels
    /// named in `label_keys` (name, readiness and taints stay whole): a
    /// policy that reads a few labels of every node pays for those only.
    pub fn nodes_with_labels(&self, selector: &Selector, label_keys: &[&str]) -> Vec<Node> {
        self.lookup(selector, Some(label_keys))
    }

    /// Writes a line to the controller's log, tagged with the policy's name.
    pub fn log(&self, level: LogLevel, message: impl Into<String>) {
        let message = message.into();
        // Inside the controller the host keeps the log; natively, tests read it here.
        #[cfg(target_arch = "wasm32")]
        crate::guest::log(level, &message);
        #[cfg(not(target_arch = "wasm32"))]
        self.logs.borrow_mut().push((level, message));
    }

    /// The lines logged so far during this evaluation (native tests only;
    /// inside the controller the host keeps them).
    pub fn logs(&self) -> Vec<(LogLevel, String)> {
        self.logs.borrow().clone()
    }
}

#[cfg(target_arch = "wasm32")]
impl Cluster {
    pub(crate) fn host() -> Self {
        Self {
            logs: RefCell::new(Vec::new()),
        }
    }

    fn lookup(&self, selector: &Selector, label_keys: Option<&[&str]>) -> Vec<Node> {
        crate::guest::list_nodes(selector, label_keys)
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Cluster {
    /// A cluster of the given nodes, for native tests.
    pub fn with_nodes(nodes: Vec<Node>) -> Self {
        Self {
            nodes,
            logs: RefCell::new(Vec::new()),
        }
    }

    fn lookup(&self, selector: &Selector, label_keys: Option<&[&str]>) -> Vec<Node> {
        let mut nodes: Vec<Node> = self
            .nodes
            .iter()
            .filter(|node| selector.matches(&node.labels))
            .cloned()
            .map(|mut node| {
                if let Some(keys) = label_keys {
                    node.labels.retain(|key, _| keys.contains(&key.as_str()));
                }
                node
            })
            .collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        nodes
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::model::Labels;

    fn node(name: &str, labels: &[(&str, &str)]) -> Node {
        Node {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Labels>(),
            taints: Vec::new(),
            ready: true,
        }
    }

    #[test]
    fn nodes_with_labels_keeps_only_the_keys_asked_for() {
        let cluster = Cluster::with_nodes(vec![
            node("b", &[("zone", "z1"), ("pool", "edge"), ("os", "linux")]),
            node("a", &[("os", "linux")]),
        ]);
        let all = cluster.nodes(&Selector::everything());
        assert_eq!(all[0].name, "a", "sorted by name");
        assert_eq!(all[1].labels.len(), 3);
        let some = cluster.nodes_with_labels(&Selector::everything(), &["zone", "pool"]);
        assert_eq!(some[0].labels.len(), 0);
        assert_eq!(
            some[1].labels.keys().collect::<Vec<_>>(),
            vec!["pool", "zone"]
        );
    }
}
