//! maelstrom-kafka
