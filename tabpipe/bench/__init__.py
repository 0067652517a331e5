"""The benchmarks behind BENCHMARKS.md (`tabpipe bench ...`) and the peers they measure ours against."""
