//! Bytes as a `poll_ok`'s `msgs`, read in one pass and by serde, alone and inside a node
//! line: the two readings must agree (`kafka_workload::fuzz::poll_msgs`).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = kafka_workload::fuzz::poll_msgs(data);
});
