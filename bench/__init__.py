"""Side-by-side benchmarks against the peers (see docs/benchmarks.md)."""
