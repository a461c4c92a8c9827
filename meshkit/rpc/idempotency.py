"""The methods the protos declare safe to run twice (`option idempotency_level`).

A read (`NO_SIDE_EFFECTS`), or a write that a key makes idempotent (`IDEMPOTENT`, as
CreateOrder is per `idempotency_key`), may be tried again whatever became of the first try.
The channels (`meshkit.rpc.channels`) retry these on CANCELLED too: what a server that stops
gracefully answers the calls it had accepted but not yet started. Only the mesh's own protos
are read: the standard health service, for one, is never retried on CANCELLED.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil

from google.protobuf.descriptor_pb2 import MethodOptions

import ecommerce

_UNKNOWN = MethodOptions.IdempotencyLevel.IDEMPOTENCY_UNKNOWN


@functools.cache
def repeatable_methods() -> tuple[tuple[str, str], ...]:
    """(full service name, method name) of every method of the mesh's protos declared safe
    to run twice, sorted."""
    found: list[tuple[str, str]] = []
    for module in pkgutil.walk_packages(ecommerce.__path__, f"{ecommerce.__name__}."):
        if not module.name.endswith("_pb2"):
            continue
        descriptor = importlib.import_module(module.name).DESCRIPTOR
        for service in descriptor.services_by_name.values():
            found.extend(
                (service.full_name, method.name)
                for method in service.methods
                if method.GetOptions().idempotency_level != _UNKNOWN
            )
    return tuple(sorted(found))
