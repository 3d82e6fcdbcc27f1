//! Bytes as one line of a node's stdout, read in one pass without serde, by `parse_line`
//! and by the explaining path: the readings must agree (`kafka_workload::fuzz::one_line`).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = kafka_workload::fuzz::one_line(data);
});
