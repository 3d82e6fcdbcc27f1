//! Criterion benchmarks: pipeline (placeholder until the suite lands).

fn main() {}
