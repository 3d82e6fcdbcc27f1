//! Loom model tests: the lock-free log, the doorbell and the byte budget, each compiled from its
//! own source file against loom's model-checked primitives, with their interleavings explored.
//!
//! Built only with `--cfg loom`, in release mode, in a target directory of its own (loom's
//! exploration is slow unoptimised, and the cfg would otherwise rebuild the normal one):
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release --test loom
//! ```
#![cfg(loom)]
// Test helpers are `pub` for sibling modules; nothing here is a public API.
#![allow(unreachable_pub)]

mod loom_budget;
mod loom_doorbell;
mod loom_log;
