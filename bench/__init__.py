"""Benchmarks of the mesh."""
