"""Helpers for end-to-end tests: signing people up, stocking products, waiting on orders."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, RunningMesh
from tests.support import PROBLEM_JSON, eventually, problem

PROBLEM = PROBLEM_JSON
PASSWORD = "a fine password"
ADDRESS = {
    "recipient": "Ada Lovelace",
    "line1": "12 St James's Square",
    "city": "London",
    "postal_code": "SW1Y 4JH",
    "country_code": "GB",
}


def unique_email(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    body = problem(response, status)
    assert body["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    return body


async def register_and_login(client: httpx.AsyncClient, email: str) -> dict[str, Any]:
    response = await client.post(
        "/v1/auth/register", json={"email": email, "password": PASSWORD, "full_name": "E2E"}
    )
    assert response.status_code == 201, response.text
    login = await client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return {"user": response.json(), **login.json()}


@dataclass
class Person:
    id: str
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return auth(self.token)


class Shop:
    def __init__(self, mesh: RunningMesh) -> None:
        self.mesh = mesh
        self.client = mesh.client

    async def admin(self) -> Person:
        token = self.mesh.tokens.get("admin")
        if token is None:
            login = await self.client.post(
                "/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
            )
            assert login.status_code == 200, login.text
            token = self.mesh.tokens["admin"] = login.json()["access_token"]
        me = await self.client.get("/v1/users/me", headers=auth(token))
        return Person(me.json()["id"], ADMIN_EMAIL, token)

    async def customer(self, prefix: str = "customer") -> Person:
        session = await register_and_login(self.client, unique_email(prefix))
        return Person(session["user"]["id"], session["user"]["email"], session["access_token"])

    async def seller(self) -> Person:
        person = await self.customer("seller")
        admin = await self.admin()
        promoted = await self.client.patch(
            f"/v1/users/{person.id}", json={"role": "seller"}, headers=admin.headers
        )
        assert promoted.status_code == 200, promoted.text
        login = await self.client.post(
            "/v1/auth/login", json={"email": person.email, "password": PASSWORD}
        )
        return Person(person.id, person.email, login.json()["access_token"])

    async def product(
        self, seller: Person, *, stock: int, price: int = 1_999, name: str = "Widget"
    ) -> dict[str, Any]:
        response = await self.client.post(
            "/v1/products",
            json={
                "name": name,
                "description": "Made for tests",
                "price": {"amount_minor": price, "currency_code": "USD"},
                "stock": stock,
            },
            headers=seller.headers,
        )
        assert response.status_code == 201, response.text
        product: dict[str, Any] = response.json()
        return product

    async def place(
        self,
        buyer: Person,
        product_id: str,
        quantity: int = 1,
        *,
        method: str = "pm_card_visa",
        key: str | None = None,
    ) -> httpx.Response:
        return await self.client.post(
            "/v1/orders",
            json={
                "items": [{"product_id": product_id, "quantity": quantity}],
                "payment_method": method,
                "shipping_address": ADDRESS,
            },
            headers={**buyer.headers, "Idempotency-Key": key or uuid.uuid4().hex},
        )

    async def wait_status(
        self, buyer: Person, order_id: str, status: str, timeout: float = 30
    ) -> dict[str, Any]:
        async def reached() -> dict[str, Any]:
            response = await self.client.get(f"/v1/orders/{order_id}", headers=buyer.headers)
            order: dict[str, Any] = response.json()
            # Raised, not returned: a wait that runs out says where the order was instead.
            assert order.get("status") == status, f"{response.status_code}: {order}"
            return order

        result: dict[str, Any] = await eventually(
            reached, timeout=timeout, message=f"order {status}"
        )
        return result

    async def stock(self, product_id: str) -> int:
        response = await self.client.get(f"/v1/products/{product_id}")
        return int(response.json()["stock"])

    async def mail(self, to: str, subject: str, timeout: float = 20) -> Any:
        async def arrived() -> Any:
            found = [m for m in self.mesh.smtp.received(to) if m.subject == subject]
            return found[0] if found else None

        return await eventually(arrived, timeout=timeout, message=f"email {subject!r} to {to}")
