//! Criterion benchmarks of the georef stage (filled in by the georef work).

fn main() {}
