//! The node's integration tests, as one test binary with a module per area.

mod bad_input;
mod concurrency;
mod end_to_end;
mod loom_log;
mod model;
mod protocol;
mod util;
