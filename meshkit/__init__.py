"""The shared runtime of every process in the mesh: settings, logging, gRPC, data, messaging."""

from __future__ import annotations

import os

# gRPC's TCP client and listener on iomgr's poller rather than the EventEngine's: Python's
# grpc.aio already runs a poller thread of its own, and the EventEngine adds threads that hand
# each call's I/O to it. On the mesh those hand-offs cost every proxied request extra context
# switches, and CPU in the gateway and the services alike (bench/README.md has the figures).
# gRPC's core reads this once, when grpc is first imported: every package of the mesh imports
# meshkit first for that reason. An operator's own value (empty: gRPC's defaults) wins.
GRPC_EXPERIMENTS = "-event_engine_client,-event_engine_listener"
os.environ.setdefault("GRPC_EXPERIMENTS", GRPC_EXPERIMENTS)
