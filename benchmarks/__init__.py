"""Benchmarks: JAX vs PyTorch throughput, depthwise micro-benchmark, compile time."""
