//! The node's integration tests, as one test binary with a module per area.

// Test helpers are `pub` for sibling modules; nothing here is a public API.
#![allow(unreachable_pub)]

mod bad_input;
mod bounds;
mod concurrency;
mod end_to_end;
mod json_spans;
mod model;
mod protocol;
mod regression;
mod simulation;
mod util;
