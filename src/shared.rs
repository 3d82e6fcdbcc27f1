//! The state every thread shares: the node's id, the cluster it belongs to, the store, the
//! poll cursor that rotates bounded poll replies over their keys, and the count of replies
//! dropped past the reply deadline.
//!
//! The node id is written once, by the reader, when `init` arrives; the reader sets it before it
//! hands that `init` (or anything after it) to a worker, so every worker that answers a request
//! sees it. `IdSetter` is how that is enforced: only the holder of the one setter that
//! `Shared::new` makes can write the id, and `run` gives it to the reader thread. The cluster
//! (every node's id, from the same `init`) and the store's offset class are set with it.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use compact_str::CompactString;

use crate::cluster::Cluster;
use crate::store::Logs;

/// State shared by all threads.
#[derive(Debug)]
pub struct Shared {
    /// Our node id, once `init` has named it.
    node_id: OnceLock<Box<str>>,
    /// The cluster, set with the node id.
    cluster: OnceLock<Cluster>,
    /// Every key's log and committed offset.
    pub store: Logs,
    /// Where the next poll reply that cannot hold every key starts, as a count of keys visited
    /// by earlier polls (see `rpc.rs`).
    pub(crate) poll_cursor: AtomicU64,
    /// Replies dropped for passing the reply deadline.
    dropped_replies: AtomicU64,
}

impl Shared {
    /// A node that has not been initialised, and the one handle that may set its id.
    pub(crate) fn new() -> (Self, IdSetter) {
        let shared = Self {
            node_id: OnceLock::new(),
            cluster: OnceLock::new(),
            store: Logs::new(),
            poll_cursor: AtomicU64::new(0),
            dropped_replies: AtomicU64::new(0),
        };
        (shared, IdSetter { _only_here: () })
    }

    /// A node already initialised as `node_id`, whose id never changes (for driving the RPCs
    /// directly, without a reader).
    pub fn with_node_id(node_id: &str) -> Self {
        Self::with_cluster(Cluster::alone(node_id))
    }

    /// A node already initialised as a member of `cluster` (for driving the RPCs and the
    /// replication directly, as the simulation test does).
    pub fn with_cluster(cluster: Cluster) -> Self {
        let (shared, setter) = Self::new();
        let me = cluster.my_id().to_owned();
        setter.set(&shared, &me, &cluster.ids);
        shared
    }

    /// The cluster, once `init` has arrived.
    pub fn cluster(&self) -> Option<&Cluster> {
        self.cluster.get()
    }

    /// Our node id, once `init` has arrived.
    pub fn node_id(&self) -> Option<&str> {
        self.node_id.get().map(|id| &**id)
    }

    /// How many replies were dropped for passing the reply deadline.
    pub fn dropped_replies(&self) -> u64 {
        // Relaxed: a statistic; nothing is read on the strength of it.
        self.dropped_replies.load(Ordering::Relaxed)
    }

    /// Counts `n` replies dropped for passing the deadline, `late` after their requests were
    /// read, and says so on stderr: each of the first hundred drops, then every thousandth, so
    /// a stalled stdout cannot flood the log.
    pub(crate) fn dropped(&self, n: u64, late: std::time::Duration, what: impl FnOnce() -> String) {
        // Relaxed: a statistic, as in `dropped_replies`.
        let before = self.dropped_replies.fetch_add(n, Ordering::Relaxed);
        let total = before + n;
        if before < 100 || before / 1000 != total / 1000 {
            crate::diag::note!(
                "dropped {}, {:.1} s after the request was read: past the reply deadline \
                 (MAELSTROM_KAFKA_REPLY_DEADLINE_MS), the client has given up; {total} dropped so far",
                what(),
                late.as_secs_f64()
            );
        }
    }
}

/// The right to set the node id. Made only by [`Shared::new`], one per node.
#[derive(Debug)]
pub(crate) struct IdSetter {
    _only_here: (),
}

impl IdSetter {
    /// Sets the node id, the cluster (`node_ids`) and the store's offset class if they are not
    /// set yet, and returns the id in force: the first one wins.
    pub(crate) fn set<'s>(
        &self,
        shared: &'s Shared,
        node_id: &str,
        node_ids: &[CompactString],
    ) -> &'s str {
        let cluster = shared
            .cluster
            .get_or_init(|| Cluster::from_init(node_id, node_ids));
        // The class before the id: whoever sees the id (every request after init) appends in
        // the right class.
        shared.store.set_class(cluster.class());
        shared.node_id.get_or_init(|| node_id.into())
    }
}
