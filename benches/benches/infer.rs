//! Criterion benchmarks of the infer stage (filled in by the infer work).

fn main() {}
