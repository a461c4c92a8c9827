"""An OTLP/gRPC trace receiver that discards what it is sent: what tracing's cost is measured
against, so that the figures are the mesh's and not a collector's. On SIGTERM it prints, as
JSON, how many export requests and bytes it took: proof that the mesh did export."""

from __future__ import annotations

import argparse
import json
from typing import Any

import grpc

from bench.baselines.serving import run, serve_grpc

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


class Sink:
    def __init__(self) -> None:
        self.requests = 0
        self.bytes = 0

    async def export(self, request: bytes, context: Any) -> bytes:
        self.requests += 1
        self.bytes += len(request)
        # An empty ExportTraceServiceResponse, which says every span was accepted.
        return b""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    sink = Sink()
    # The bodies stay bytes: parsing them would only measure this process.
    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"Export": grpc.unary_unary_rpc_method_handler(sink.export)}
    )
    run(serve_grpc(args.port, handler))
    print(json.dumps({"requests": sink.requests, "bytes": sink.bytes}), flush=True)


if __name__ == "__main__":
    main()
