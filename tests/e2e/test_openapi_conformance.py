"""The published OpenAPI holds against the running mesh: a schema-based fuzzer sends
thousands of generated requests, as a signed-in admin, and every answer is no server error,
a documented status, the documented content type and a body of the documented schema."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import RunningMesh
from tests.e2e.shop import Shop

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
MIN_CASES = 1000


async def test_generated_requests_get_only_documented_answers(
    mesh: RunningMesh, tmp_path: Path
) -> None:
    admin = await Shop(mesh).admin()
    schemathesis = Path(sys.executable).with_name("st")
    run = await asyncio.create_subprocess_exec(
        str(schemathesis), "run", f"{mesh.mesh.gateway_url}/openapi.json",
        "--checks", ",".join(CHECKS),
        "--max-examples", "25",
        "--phases", "examples,coverage,fuzzing",
        "--header", f"Authorization: Bearer {admin.token}",
        "--workers", "1",
        "--request-timeout", "10",
        "--seed", "20261207",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
    )  # fmt: skip
    output, _ = await run.communicate()
    text = output.decode(errors="replace")
    assert run.returncode == 0, text[-6000:]
    # Its summary: "Test cases: N generated, N passed".
    generated = re.search(r"(\d+) generated", text)
    assert generated is not None and int(generated.group(1)) >= MIN_CASES, text[-3000:]
