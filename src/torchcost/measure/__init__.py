"""Measuring on real hardware: end-to-end latency, per-op times from torch.profiler, and the timing helpers
they share."""
