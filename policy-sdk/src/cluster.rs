//! The policy's window on the cluster: node look-ups and logging.
//!
//! Inside the controller these calls go to the host; in a policy's native
//! tests they are served from fixture nodes and the log is kept for asserts.

use std::cell::RefCell;

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
        self.lookup(selector)
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

    fn lookup(&self, selector: &Selector) -> Vec<Node> {
        crate::guest::list_nodes(selector)
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

    fn lookup(&self, selector: &Selector) -> Vec<Node> {
        let mut nodes: Vec<Node> = self
            .nodes
            .iter()
            .filter(|node| selector.matches(&node.labels))
            .cloned()
            .collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        nodes
    }
}
