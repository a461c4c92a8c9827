"""A customer's access tokens stop working everywhere within a second of a deactivation, a
role change or a password change: through the gateway, and on a service called directly."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import grpc
import pytest

from ecommerce.order.v1 import cart_pb2, cart_pb2_grpc
from tests.e2e.conftest import RunningMesh
from tests.e2e.shop import PASSWORD, Person, Shop, assert_problem, auth
from tests.support import eventually

pytestmark = pytest.mark.e2e

# The promise: every process refuses the token within a second of the change.
WITHIN_SECONDS = 1.0


async def _customer_with_a_cart(shop: Shop) -> tuple[Person, str]:
    seller = await shop.seller()
    product = await shop.product(seller, stock=5)
    customer = await shop.customer("revoked")
    added = await shop.client.put(
        f"/v1/cart/items/{product['id']}", json={"quantity": 1}, headers=customer.headers
    )
    assert added.status_code == 200, added.text
    return customer, product["id"]


async def _refused_everywhere(mesh: RunningMesh, token: str, product_id: str) -> None:
    """Every kind of call with `token` is refused, each within the second after the change
    (the clock started by the caller's `changed` mark)."""
    client, headers = mesh.client, auth(token)
    calls: list[Callable[[], Awaitable[int]]] = [
        lambda: _status(client.get("/v1/cart", headers=headers)),
        lambda: _status(
            client.put(f"/v1/cart/items/{product_id}", json={"quantity": 2}, headers=headers)
        ),
        lambda: _status(client.delete("/v1/cart", headers=headers)),
        lambda: _status(client.get("/v1/users/me", headers=headers)),
        lambda: _status(client.get("/v1/orders", headers=headers)),
    ]
    for call in calls:

        async def refused(call: Callable[[], Awaitable[int]] = call) -> bool:
            return await call() == 401

        await eventually(refused, timeout=WITHIN_SECONDS, interval=0.02, message="401")
    body = assert_problem(await client.get("/v1/cart", headers=headers), 401)
    assert body["type"].endswith("/token-revoked"), body

    # Straight to the order service, past the gateway: the service refuses it too.
    async with grpc.aio.insecure_channel(mesh.grpc_address("order_service")) as channel:
        carts = cart_pb2_grpc.CartServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as direct:
            await carts.GetCart(
                cart_pb2.GetCartRequest(), metadata=(("authorization", f"Bearer {token}"),)
            )
    assert direct.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert "revoked" in (direct.value.details() or "")


async def _status(request: Awaitable[object]) -> int:
    response = await request
    return int(getattr(response, "status_code"))  # noqa: B009


async def test_deactivation_revokes_a_customers_token_within_a_second(mesh: RunningMesh) -> None:
    shop = Shop(mesh)
    customer, product_id = await _customer_with_a_cart(shop)
    # Read once everywhere first: the token sits in every verifier's cache.
    assert (await mesh.client.get("/v1/cart", headers=customer.headers)).status_code == 200
    admin = await shop.admin()
    started = time.monotonic()
    deactivated = await mesh.client.delete(f"/v1/users/{customer.id}", headers=admin.headers)
    assert deactivated.status_code == 200
    await _refused_everywhere(mesh, customer.token, product_id)
    assert time.monotonic() - started < 5  # the whole check, five kinds of call and gRPC


async def test_role_change_revokes_old_tokens_not_new_ones(mesh: RunningMesh) -> None:
    shop = Shop(mesh)
    customer, product_id = await _customer_with_a_cart(shop)
    admin = await shop.admin()
    promoted = await mesh.client.patch(
        f"/v1/users/{customer.id}", json={"role": "seller"}, headers=admin.headers
    )
    assert promoted.status_code == 200
    # A sign-in the moment after the change speaks for the new role, and works.
    login = await mesh.client.post(
        "/v1/auth/login", json={"email": customer.email, "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    await _refused_everywhere(mesh, customer.token, product_id)
    me = await mesh.client.get("/v1/users/me", headers=auth(login.json()["access_token"]))
    assert me.status_code == 200
    assert me.json()["role"] == "seller"


async def test_password_change_revokes_every_session(mesh: RunningMesh) -> None:
    shop = Shop(mesh)
    customer, product_id = await _customer_with_a_cart(shop)
    changed = await mesh.client.post(
        "/v1/users/me:changePassword",
        json={"current_password": PASSWORD, "new_password": "another fine password"},
        headers=customer.headers,
    )
    assert changed.status_code == 204, changed.text
    await _refused_everywhere(mesh, customer.token, product_id)
    login = await mesh.client.post(
        "/v1/auth/login", json={"email": customer.email, "password": "another fine password"}
    )
    cart = await mesh.client.get("/v1/cart", headers=auth(login.json()["access_token"]))
    assert cart.status_code == 200
    assert [item["product_id"] for item in cart.json()["items"]] == [product_id]
