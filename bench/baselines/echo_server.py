"""Baseline: a bare grpc.aio unary echo server, on the event loop the services use."""

from __future__ import annotations

import argparse
from typing import Any

import grpc
from google.protobuf import wrappers_pb2

from bench.baselines.serving import run, serve_grpc

ECHO_METHOD = "/bench.v1.Echo/Echo"


async def _echo(request: wrappers_pb2.StringValue, context: Any) -> wrappers_pb2.StringValue:
    return request


def _handler() -> grpc.GenericRpcHandler[Any, Any]:
    return grpc.method_handlers_generic_handler(
        "bench.v1.Echo",
        {
            "Echo": grpc.unary_unary_rpc_method_handler(
                _echo,
                request_deserializer=wrappers_pb2.StringValue.FromString,
                response_serializer=wrappers_pb2.StringValue.SerializeToString,
            )
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    run(serve_grpc(args.port, _handler()))


if __name__ == "__main__":
    main()
