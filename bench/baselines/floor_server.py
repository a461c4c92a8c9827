"""The floor of scenario 3, its service half: a bare grpc.aio server that reads an order and
its items with the order service's own statement, from a database of its own holding the same
orders, on a pool of the order service's size, and answers with the order's status. No
interceptors, no token, no message built."""

from __future__ import annotations

import argparse
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import grpc
from google.protobuf import wrappers_pb2
from sqlalchemy.ext.asyncio import create_async_engine

from bench.baselines.serving import run, serve_grpc, string_method
from meshkit.data.db import driver_pool_size
from meshkit.settings import DEFAULT_DB_POOL_SIZE
from order_service.models import Order, OrderItem, metadata
from order_service.reads import ORDER_BY_ID

FLOOR_METHOD = "/bench.v1.Floor/GetOrder"


def _handler(pool: Any) -> grpc.GenericRpcHandler[Any, Any]:
    async def get_order(
        request: wrappers_pb2.StringValue, context: Any
    ) -> wrappers_pb2.StringValue:
        async with pool.acquire() as connection:
            rows = await connection.fetch(ORDER_BY_ID, request.value)
        if not rows:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such order")
        return wrappers_pb2.StringValue(value=rows[0]["status"])

    return string_method("bench.v1.Floor", "GetOrder", get_order)


async def _create_tables(dsn: str) -> None:
    """The order service's two tables, as its models define them, for the seed to fill."""
    engine = create_async_engine(dsn.replace("postgresql://", "postgresql+asyncpg://", 1))
    try:
        async with engine.begin() as connection:
            tables = [metadata.tables[model.__tablename__] for model in (Order, OrderItem)]
            await connection.run_sync(metadata.create_all, tables=tables)
    finally:
        await engine.dispose()


async def _serve(port: int, dsn: str) -> None:
    await _create_tables(dsn)
    pool_size = driver_pool_size(DEFAULT_DB_POOL_SIZE)
    async with asyncpg.create_pool(dsn, min_size=1, max_size=pool_size) as pool:
        await serve_grpc(port, _handler(pool))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dsn", required=True, help="an empty database of its own")
    args = parser.parse_args()
    run(_serve(args.port, args.dsn))


if __name__ == "__main__":
    main()
