"""Reference handlers the benchmarks measure ours against (never deployed)."""
