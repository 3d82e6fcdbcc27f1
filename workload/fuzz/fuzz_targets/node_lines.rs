//! Bytes as a node's stdout, through the runner's reading, the history and the checker
//! (`kafka_workload::fuzz::node_lines`).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = kafka_workload::fuzz::node_lines(data);
});
