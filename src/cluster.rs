//! Who is in the cluster, from `init`: every node's id, and which one we are.

use compact_str::CompactString;

use crate::log::Class;

/// The nodes of the cluster, in `init`'s `node_ids` order, and our place among them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// Every node's id, in the order `init` listed them; at least ours.
    pub ids: Vec<CompactString>,
    /// Our index in `ids`.
    pub me: usize,
}

impl Cluster {
    /// The cluster `init` describes: `node_ids`, with us at `node_id`'s place.
    ///
    /// The parser refuses an `init` whose `node_ids` do not list `node_id` once, or list any id
    /// twice (`protocol.rs`); given one anyway, this makes a cluster of one (the note on stderr
    /// says so): a node that cannot place itself must not share offsets.
    pub fn from_init(node_id: &str, node_ids: &[CompactString]) -> Self {
        match node_ids.iter().position(|id| id == node_id) {
            Some(me) => Self {
                ids: node_ids.to_vec(),
                me,
            },
            None => {
                if !node_ids.is_empty() {
                    crate::diag::note!(
                        "init's node_ids {node_ids:?} do not list {node_id}; running alone"
                    );
                }
                Self::alone(node_id)
            }
        }
    }

    /// A cluster of one.
    pub fn alone(node_id: &str) -> Self {
        Self {
            ids: vec![node_id.into()],
            me: 0,
        }
    }

    /// How many nodes.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the cluster lists no node at all: never true of one built here (`from_init` and
    /// `alone` both list us), but the pair of `len` and `is_empty` is what callers expect. For
    /// "are we the only node", ask `len() == 1`.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The offsets we hand out: `round · n + me`.
    pub fn class(&self) -> Class {
        self.class_of(self.me)
    }

    /// The offsets node `index` hands out.
    pub fn class_of(&self, index: usize) -> Class {
        Class {
            n: self.ids.len() as u64,
            i: index as u64,
        }
    }

    /// The index of the node called `id`.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.ids.iter().position(|known| known == id)
    }

    /// Our id.
    pub fn my_id(&self) -> &str {
        &self.ids[self.me]
    }
}
