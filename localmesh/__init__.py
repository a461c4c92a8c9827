"""Tools for running the mesh on a developer's machine."""
