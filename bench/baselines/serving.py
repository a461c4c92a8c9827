"""How the baselines are served: with the gateway's and the services' own settings."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import grpc
import uvicorn
from google.protobuf import wrappers_pb2

from meshkit.rpc.server import SERVER_OPTIONS


def run_http(app: Any, import_path: str, *, port: int, workers: int) -> None:
    """The same call as gateway/__main__.py: uvloop and httptools when installed, no access
    log; uvicorn needs the app's import path to start workers."""
    uvicorn.run(
        app if workers == 1 else import_path,
        host="127.0.0.1",
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=1,
    )


def string_method(
    service: str, method: str, behavior: Callable[..., Awaitable[wrappers_pb2.StringValue]]
) -> grpc.GenericRpcHandler[Any, Any]:
    """A handler of one unary method of `service` taking and answering a StringValue."""
    return grpc.method_handlers_generic_handler(
        service,
        {
            method: grpc.unary_unary_rpc_method_handler(
                behavior,
                request_deserializer=wrappers_pb2.StringValue.FromString,
                response_serializer=wrappers_pb2.StringValue.SerializeToString,
            )
        },
    )


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed, as meshkit.service runs the services."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def serve_grpc(port: int, handler: grpc.GenericRpcHandler[Any, Any]) -> None:
    """Serve `handler` until SIGINT or SIGTERM, with the services' server options
    (meshkit.rpc.server) and nothing else: no interceptors, health or reflection."""
    server = grpc.aio.server(options=list(SERVER_OPTIONS))
    server.add_generic_rpc_handlers((handler,))
    if server.add_insecure_port(f"127.0.0.1:{port}") == 0:
        raise OSError(f"cannot listen on 127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    await stop.wait()
    await server.stop(1)


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run a baseline's server on the services' event loop until it is told to stop."""
    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=loop_factory()) as r:
        r.run(main)
