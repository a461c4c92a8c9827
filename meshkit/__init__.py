"""The shared runtime of every process in the mesh: settings, logging, gRPC, data, messaging."""
