"""Benchmarks, each run by a make target; the agreed figure is printed last as `name=value`."""
