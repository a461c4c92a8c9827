"""The HTTP gateway: JWT checks and REST⇄gRPC translation in front of the mesh."""
