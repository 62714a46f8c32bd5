//! Criterion benchmarks of the ingest stage (filled in by the ingest work).

fn main() {}
