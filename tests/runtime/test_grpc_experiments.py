"""Every process of the mesh starts gRPC with the mesh's experiments, unless told otherwise."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from localmesh.launcher import SERVICES
from meshkit import GRPC_EXPERIMENTS
from meshkit.settings import PROJECT_ROOT

ENTRY_POINTS = [f"{name}.__main__" for name in (*SERVICES, "gateway")]

# Imports an entry point as `python -m` would (without running it) and prints what
# GRPC_EXPERIMENTS held at the moment grpc was first imported: what gRPC's core reads.
_PROBE = """
import importlib, os, sys
seen = []
def hook(event, args):
    if event == "import" and args[0] == "grpc" and not seen:
        seen.append(os.environ.get("GRPC_EXPERIMENTS", "<unset>"))
sys.addaudithook(hook)
importlib.import_module(sys.argv[1])
print(seen[0] if seen else "<grpc never imported>")
"""


def _experiments_at_grpc_import(module: str, **env: str) -> str:
    clean = {key: value for key, value in os.environ.items() if key != "GRPC_EXPERIMENTS"}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, module],
        env={**clean, **env},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_each_entry_point_sets_the_experiments_before_grpc_is_imported(module: str) -> None:
    assert _experiments_at_grpc_import(module) == GRPC_EXPERIMENTS


def test_an_operators_own_value_wins() -> None:
    assert _experiments_at_grpc_import("gateway.__main__", GRPC_EXPERIMENTS="") == ""
    assert (
        _experiments_at_grpc_import("product_service.__main__", GRPC_EXPERIMENTS="fuse_filters")
        == "fuse_filters"
    )
