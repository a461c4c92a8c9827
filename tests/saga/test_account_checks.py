"""A deactivated account places no order. While the order service hears revocations, the
token the deactivation revoked is refused, and placing an order asks the user service
nothing more; without them, the user service is asked for every order."""

from __future__ import annotations

import uuid

import grpc
import pytest
from prometheus_client import REGISTRY

from ecommerce.user.v1 import user_pb2
from order_service.app import DEFINITION as ORDER
from tests.conftest import REDIS_URL
from tests.saga.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Saga, bearer
from tests.support import eventually
from user_service.app import DEFINITION as USER

pytestmark = pytest.mark.integration


def activity_checks() -> float:
    """IsUserActive calls the user service has answered, in this process (services run in
    the test's process)."""
    return (
        REGISTRY.get_sample_value(
            "grpc_server_started_total",
            {
                "grpc_type": "unary",
                "grpc_service": "ecommerce.user.v1.UserService",
                "grpc_method": "IsUserActive",
            },
        )
        or 0.0
    )


async def hearing(caplog: pytest.LogCaptureFixture, listeners: int) -> None:
    """Until `listeners` processes have said they hear revocations."""

    async def heard() -> bool:
        said = [r for r in caplog.records if r.getMessage().startswith("hearing revocations")]
        return len(said) >= listeners

    await eventually(heard, message=f"{listeners} processes hear revocations")


async def deactivate(saga: Saga, user_id: str) -> None:
    admin = await saga.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    await saga.users.DeactivateUser(
        user_pb2.DeactivateUserRequest(id=user_id), metadata=bearer(admin)
    )


async def test_without_revocations_the_user_service_is_asked_for_each_order(
    saga_base: Saga,
) -> None:
    saga = saga_base
    await saga.start("order_service", ORDER)  # no Redis: no revocations heard
    product = await saga.new_product(stock=5)
    before = activity_checks()
    await saga.place(product, key=uuid.uuid4().hex)
    assert activity_checks() == before + 1

    # Its token still valid here (nothing told this service), the account is not.
    await deactivate(saga, saga.customer_id)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await saga.place(product, key=uuid.uuid4().hex)
    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "deactivated" in (refused.value.details() or "")


async def test_while_revocations_are_heard_the_token_check_is_the_account_check(
    saga_base: Saga, caplog: pytest.LogCaptureFixture
) -> None:
    saga = saga_base
    caplog.set_level("INFO", logger="meshkit.identity.revocations")
    # A user service that announces revocations (in place of the fixture's, on its database
    # and keys), and an order service that hears them.
    saga.addresses.pop("user_service")
    await saga.channels.pop("user_service").close(None)
    await saga.start("user_service", USER, jwt_keys_dir=saga.keys_dir, redis_url=REDIS_URL)
    await hearing(caplog, 1)
    await saga.start("order_service", ORDER, redis_url=REDIS_URL)
    await hearing(caplog, 2)
    product = await saga.new_product(stock=5)
    before = activity_checks()
    await saga.place(product, key=uuid.uuid4().hex)
    assert activity_checks() == before

    await deactivate(saga, saga.customer_id)

    async def refused() -> bool:
        try:
            await saga.place(product, key=uuid.uuid4().hex)
        except grpc.aio.AioRpcError as error:
            refusal = (error.code(), "revoked" in (error.details() or ""))
            return refusal == (grpc.StatusCode.UNAUTHENTICATED, True)
        return False

    await eventually(refused, timeout=10, message="the revoked token refused")
    assert activity_checks() == before
