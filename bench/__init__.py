"""Benchmarks that print ratios against bare baselines measured in the same run."""
