"""The floors of scenarios 1 and 3, their edge half: a bare FastAPI app whose routes each make
one grpc.aio call and answer with what it returned.

Each scenario with everything of the mesh's own taken out (no token checked, no context sent,
no interceptors, no documents built, no cache): the least a gateway and a gRPC hop cost on the
machine, measured beside the scenario. Scenario 1's hop goes to the echo server (a read from
a warm cache is no more than an answer); scenario 3's to `floor_server`, which reads
PostgreSQL as the order service does."""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
from fastapi import FastAPI, Request
from google.protobuf import wrappers_pb2

from bench.baselines.echo_server import ECHO_METHOD
from bench.baselines.floor_server import FLOOR_METHOD
from bench.baselines.serving import run_http

# Read by each worker when it starts: uvicorn imports the app anew in each.
TARGET_VARIABLE = "BENCH_FLOOR_TARGET"
ECHO_TARGET_VARIABLE = "BENCH_FLOOR_ECHO_TARGET"
CALL_TIMEOUT_SECONDS = 5.0


def _string_method(channel: grpc.aio.Channel, method: str) -> Any:
    return channel.unary_unary(
        method,
        request_serializer=wrappers_pb2.StringValue.SerializeToString,
        response_deserializer=wrappers_pb2.StringValue.FromString,
    )


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with (
        grpc.aio.insecure_channel(os.environ[TARGET_VARIABLE]) as floor,
        grpc.aio.insecure_channel(os.environ[ECHO_TARGET_VARIABLE]) as echo,
    ):
        app.state.get_order = _string_method(floor, FLOOR_METHOD)
        app.state.echo = _string_method(echo, ECHO_METHOD)
        yield


app = FastAPI(lifespan=lifespan)


@app.get("/v1/products/{product_id}")
async def get_product(product_id: str, request: Request) -> dict[str, Any]:
    echo: Any = request.app.state.echo
    reply = await echo(wrappers_pb2.StringValue(value=product_id), timeout=CALL_TIMEOUT_SECONDS)
    return {"id": reply.value}


@app.get("/v1/orders/{order_id}")
async def get_order(order_id: str, request: Request) -> dict[str, Any]:
    get: Any = request.app.state.get_order
    reply = await get(wrappers_pb2.StringValue(value=order_id), timeout=CALL_TIMEOUT_SECONDS)
    return {"id": order_id, "status": reply.value}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--target", required=True, help="host:port of floor_server")
    parser.add_argument("--echo-target", required=True, help="host:port of echo_server")
    parser.add_argument("--workers", type=int, default=1, help="as many as the gateway runs")
    args = parser.parse_args()
    os.environ[TARGET_VARIABLE] = args.target
    os.environ[ECHO_TARGET_VARIABLE] = args.echo_target
    run_http(app, "bench.baselines.floor_app:app", port=args.port, workers=args.workers)


if __name__ == "__main__":
    main()
