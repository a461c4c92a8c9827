"""Baselines measured in the same run as the mesh: what the extra hops are compared with."""
