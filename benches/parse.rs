//! Criterion benchmarks: parse (placeholder until the suite lands).

fn main() {}
