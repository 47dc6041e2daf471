"""Sensors that look at queue depth and request drain runs; they never do the work."""
