//! Criterion benchmarks: store (placeholder until the suite lands).

fn main() {}
