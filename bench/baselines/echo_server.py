"""Baseline: a bare grpc.aio unary echo server, on the event loop the services use."""

from __future__ import annotations

import argparse
from typing import Any

from google.protobuf import wrappers_pb2

from bench.baselines.serving import run, serve_grpc, string_method

ECHO_METHOD = "/bench.v1.Echo/Echo"


async def _echo(request: wrappers_pb2.StringValue, context: Any) -> wrappers_pb2.StringValue:
    return request


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    run(serve_grpc(args.port, string_method("bench.v1.Echo", "Echo", _echo)))


if __name__ == "__main__":
    main()
