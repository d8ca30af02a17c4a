"""Offline tools over the same analysis path as the daemon: evaluation on labelled sets, benchmarks."""
