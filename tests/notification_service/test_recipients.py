"""Recipients are asked of the user service once per customer for a while, never when it fails."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from ecommerce.user.v1 import user_pb2
from meshkit.errors import Unavailable
from notification_service.notifications import Recipients


class CountingUsers:
    """Stands in for the user service's stub: the logic under test is the cache's alone."""

    def __init__(self) -> None:
        self.calls = 0
        self.failing = False

    async def GetUser(self, request: user_pb2.GetUserRequest, **_: Any) -> user_pb2.User:
        self.calls += 1
        if self.failing:
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), None, None
            )
        return user_pb2.User(id=request.id, email=f"{request.id}@example.com", full_name="Ada")


def recipients(ttl_seconds: float) -> tuple[Recipients, CountingUsers]:
    channel = grpc.aio.insecure_channel("127.0.0.1:1")  # never used: the stub is replaced
    found = Recipients(channel, ttl_seconds=ttl_seconds, max_size=2)
    users = CountingUsers()
    found.stub = users  # type: ignore[assignment]
    return found, users


async def test_a_customer_is_looked_up_once_within_the_ttl() -> None:
    found, users = recipients(ttl_seconds=60)
    assert await found.lookup("u1") == ("u1@example.com", "Ada")
    assert await found.lookup("u1") == ("u1@example.com", "Ada")
    assert users.calls == 1


async def test_an_answer_past_its_ttl_is_asked_again() -> None:
    found, users = recipients(ttl_seconds=0)
    await found.lookup("u1")
    await found.lookup("u1")
    assert users.calls == 2


async def test_a_failure_is_unavailable_and_not_remembered() -> None:
    found, users = recipients(ttl_seconds=60)
    users.failing = True
    with pytest.raises(Unavailable):
        await found.lookup("u1")
    users.failing = False
    assert await found.lookup("u1") == ("u1@example.com", "Ada")
    assert users.calls == 2


async def test_no_more_customers_are_kept_than_the_bound() -> None:
    found, users = recipients(ttl_seconds=60)
    for user_id in ("u1", "u2", "u3"):
        await found.lookup(user_id)
    await found.lookup("u1")  # the oldest went first
    assert users.calls == 4
