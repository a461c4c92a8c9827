"""The shop's people and products, made through the gateway as any client makes them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from chaos.settings import ADMIN_EMAIL, ADMIN_PASSWORD

PASSWORD = "a fine chaos password"
# Plenty, so that the well-stocked products never run out in a round.
AMPLE_STOCK = 100_000
# Little, so that one product sells out under a round's load: out-of-stock answers, and the
# last units, are part of what stock must conserve.
SCARCE_STOCK = 40
PRICE_MINOR = 1_999


@dataclass(frozen=True)
class Person:
    id: str
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True)
class Shop:
    admin: Person
    seller: Person
    customers: tuple[Person, ...]


def _ok(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    if response.status_code not in statuses:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text[:300]}"
        )
    body: dict[str, Any] = response.json()
    return body


async def _login(client: httpx.AsyncClient, email: str, password: str) -> str:
    login = _ok(
        await client.post("/v1/auth/login", json={"email": email, "password": password}), 200
    )
    return str(login["access_token"])


async def _signed_up(client: httpx.AsyncClient, prefix: str) -> Person:
    email = f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"
    user = _ok(
        await client.post(
            "/v1/auth/register",
            json={"email": email, "password": PASSWORD, "full_name": prefix.title()},
        ),
        201,
    )
    return Person(str(user["id"]), email, await _login(client, email, PASSWORD))


async def open_shop(client: httpx.AsyncClient, customers: int) -> Shop:
    """The admin (made at start-up from BOOTSTRAP_ADMIN_*), a seller promoted by the admin, and
    `customers` who signed up themselves."""
    admin_token = await _login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    me = _ok(
        await client.get("/v1/users/me", headers={"Authorization": f"Bearer {admin_token}"}), 200
    )
    admin = Person(str(me["id"]), ADMIN_EMAIL, admin_token)
    seller = await _signed_up(client, "seller")
    _ok(
        await client.patch(
            f"/v1/users/{seller.id}", json={"role": "seller"}, headers=admin.headers
        ),
        200,
    )
    # Signed in again: the promotion revoked the token taken as a customer.
    seller = Person(seller.id, seller.email, await _login(client, seller.email, PASSWORD))
    people = [await _signed_up(client, "customer") for _ in range(customers)]
    return Shop(admin=admin, seller=seller, customers=tuple(people))


async def stock_products(client: httpx.AsyncClient, shop: Shop, label: str) -> dict[str, int]:
    """Fresh products for one round, each id with the stock it starts with: two ample, one
    scarce."""
    stocks: dict[str, int] = {}
    for index, stock in enumerate((AMPLE_STOCK, AMPLE_STOCK, SCARCE_STOCK)):
        product = _ok(
            await client.post(
                "/v1/products",
                json={
                    "name": f"Chaos {label} {index}",
                    "description": "Sold while the mesh fails",
                    "price": {"amount_minor": PRICE_MINOR, "currency_code": "USD"},
                    "stock": stock,
                },
                headers=shop.seller.headers,
            ),
            201,
        )
        stocks[str(product["id"])] = stock
    return stocks
