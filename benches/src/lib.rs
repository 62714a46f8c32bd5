//! Shared helpers for the benchmarks (fixture paths).
