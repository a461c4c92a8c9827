"""Baseline: a bare grpc.aio unary echo server, on the event loop the services use."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import wrappers_pb2

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


async def serve(port: int) -> None:
    # The services' server options (meshkit.server), with no interceptors, health or reflection.
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((_handler(),))
    if server.add_insecure_port(f"127.0.0.1:{port}") == 0:
        raise OSError(f"cannot listen on 127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    await stop.wait()
    await server.stop(1)


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed, as meshkit.service runs the services."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=loop_factory()) as r:
        r.run(serve(args.port))


if __name__ == "__main__":
    main()
