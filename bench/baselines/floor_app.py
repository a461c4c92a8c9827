"""The floor of scenario 3, its edge half: a bare FastAPI app whose one route makes one
grpc.aio call to `floor_server` and answers with two fields.

Scenario 3 with everything of the mesh's own taken out (no token checked, no context sent,
no interceptors, no documents built): the least a gateway, a gRPC hop and a PostgreSQL read
cost on the machine, measured beside the scenario."""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
from fastapi import FastAPI, Request
from google.protobuf import wrappers_pb2

from bench.baselines.floor_server import FLOOR_METHOD
from bench.baselines.serving import run_http

# Read by each worker when it starts: uvicorn imports the app anew in each.
TARGET_VARIABLE = "BENCH_FLOOR_TARGET"
CALL_TIMEOUT_SECONDS = 5.0


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with grpc.aio.insecure_channel(os.environ[TARGET_VARIABLE]) as channel:
        app.state.get_order = channel.unary_unary(
            FLOOR_METHOD,
            request_serializer=wrappers_pb2.StringValue.SerializeToString,
            response_deserializer=wrappers_pb2.StringValue.FromString,
        )
        yield


app = FastAPI(lifespan=lifespan)


@app.get("/v1/orders/{order_id}")
async def get_order(order_id: str, request: Request) -> dict[str, Any]:
    get: Any = request.app.state.get_order
    reply = await get(wrappers_pb2.StringValue(value=order_id), timeout=CALL_TIMEOUT_SECONDS)
    return {"id": order_id, "status": reply.value}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--target", required=True, help="host:port of floor_server")
    parser.add_argument("--workers", type=int, default=1, help="as many as the gateway runs")
    args = parser.parse_args()
    os.environ[TARGET_VARIABLE] = args.target
    run_http(app, "bench.baselines.floor_app:app", port=args.port, workers=args.workers)


if __name__ == "__main__":
    main()
