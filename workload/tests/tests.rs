//! Integration tests: the real `kafka-workload` binary run against fixture nodes (one
//! correct, the others broken in one way each) and against the project's own node.
//!
//! One test binary (`autotests = false`), one module per area.

mod util;

mod browser;
mod check;
mod cli;
mod cluster;
mod faults;
mod fuzz_corpus;
mod network;
mod real_node;
mod robustness;
