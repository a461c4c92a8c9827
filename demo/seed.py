"""Seeds the demo shop into a running mesh, through the gateway and the services' own commands.

Every step first looks for what it would make, so a second run makes nothing. Accounts, the
catalog and stock go through the public API as any client's would. Two things the API cannot
do are left to the services' own commands, as an operator would run them: the first admin
(`python -m user_service create-admin`) and the past orders (`python -m order_service
demo-history`, development only: the API stamps an order with the moment it is placed).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from demo import history
from demo.accounts import ADMIN, CUSTOMER, SELLER, Account
from demo.catalog import CATEGORIES
from meshkit.process import LAUNCHER_PID_VARIABLE
from meshkit.settings import PROJECT_ROOT

PAGE_SIZE = 100
COMMAND_TIMEOUT_SECONDS = 120.0


class SeedError(Exception):
    """The demo shop could not be seeded; the message says what failed."""


@dataclass(frozen=True)
class Person:
    id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Report:
    """What one run made, and what it found already there."""

    created_accounts: list[Account] = field(default_factory=list)
    existing_accounts: list[Account] = field(default_factory=list)
    categories: tuple[int, int] = (0, 0)  # created, found
    products: tuple[int, int] = (0, 0)
    orders: tuple[int, int] = (0, 0)  # written, found

    @property
    def changed(self) -> bool:
        return bool(
            self.created_accounts or self.categories[0] or self.products[0] or self.orders[0]
        )


def _ok(response: httpx.Response, *statuses: int) -> Any:
    if response.status_code not in statuses:
        raise SeedError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text[:300]}"
        )
    return response.json() if response.content else None


async def _run_command(env: Mapping[str, str], stdin: str, *args: str) -> str:
    """A service's own command, in a process of its own; its standard output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        *args,
        cwd=PROJECT_ROOT,
        # Not the launcher's child: a command told to follow the launcher would stop at once.
        env={name: value for name, value in env.items() if name != LAUNCHER_PID_VARIABLE},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(
            process.communicate(stdin.encode()), COMMAND_TIMEOUT_SECONDS
        )
    except TimeoutError:
        process.kill()
        await process.wait()
        raise SeedError(
            f"python -m {' '.join(args[:2])} did not finish within "
            f"{COMMAND_TIMEOUT_SECONDS:g} s; stopped"
        ) from None
    if process.returncode != 0:
        # The command's own last words say why; the log lines before them rarely do.
        lines = err.decode(errors="replace").strip().splitlines() or [
            f"exit status {process.returncode}"
        ]
        raise SeedError(f"python -m {' '.join(args[:2])} failed: {lines[-1]}")
    return out.decode()


class Seeder:
    """One run: accounts first (the catalog needs its admin and seller), then the catalog,
    then the customer's past orders (which name the catalog's products)."""

    def __init__(self, client: httpx.AsyncClient, env: Mapping[str, str]) -> None:
        self.client = client
        self.env = env
        self.report = Report()

    async def run(self) -> Report:
        admin = await self._admin()
        seller = await self._seller(admin)
        customer = await self._member(CUSTOMER)
        plan = history.plan()
        categories = await self._categories(admin)
        products = await self._products(seller, categories, history.sold_units(plan))
        await self._history(plan, customer, products)
        return self.report

    async def _sign_in(self, account: Account) -> tuple[Person, str] | None:
        """The account signed in, with its role; None when it cannot sign in (no such
        account yet)."""
        response = await self.client.post(
            "/v1/auth/login", json={"email": account.email, "password": account.password}
        )
        if response.status_code == 401:
            return None
        person = Person("", str(_ok(response, 200)["access_token"]))
        me = _ok(await self.client.get("/v1/users/me", headers=person.headers), 200)
        return Person(str(me["id"]), person.token), str(me["role"])

    async def _found(self, account: Account) -> Person | None:
        signed_in = await self._sign_in(account)
        if signed_in is None or signed_in[1] != account.role:
            return None
        self.report.existing_accounts.append(account)
        return signed_in[0]

    async def _admin(self) -> Person:
        if (found := await self._found(ADMIN)) is not None:
            return found
        # No request makes an admin: the user service's own command does (create or promote).
        await _run_command(
            self.env,
            ADMIN.password + "\n",
            "user_service",
            "create-admin",
            "--email",
            ADMIN.email,
            "--password-stdin",
        )
        return await self._created(ADMIN)

    async def _created(self, account: Account) -> Person:
        signed_in = await self._sign_in(account)
        if signed_in is None or signed_in[1] != account.role:
            raise SeedError(f"{account.email} cannot sign in as {account.role} once made")
        self.report.created_accounts.append(account)
        return signed_in[0]

    async def _register(self, account: Account) -> str:
        response = await self.client.post(
            "/v1/auth/register",
            json={
                "email": account.email,
                "password": account.password,
                "full_name": account.full_name,
            },
        )
        if response.status_code == 409:
            raise SeedError(
                f"{account.email} exists with another password: the demo cannot sign in as it"
            )
        return str(_ok(response, 201)["id"])

    async def _member(self, account: Account) -> Person:
        if (found := await self._found(account)) is not None:
            return found
        await self._register(account)
        return await self._created(account)

    async def _seller(self, admin: Person) -> Person:
        if (found := await self._found(SELLER)) is not None:
            return found
        # Registered by a run that stopped before promoting it, or not at all.
        signed_in = await self._sign_in(SELLER)
        user_id = signed_in[0].id if signed_in else await self._register(SELLER)
        _ok(
            await self.client.patch(
                f"/v1/users/{user_id}", json={"role": "seller"}, headers=admin.headers
            ),
            200,
        )
        # Signed in again: the promotion revoked any token taken before it.
        return await self._created(SELLER)

    async def _pages(self, path: str, key: str, **params: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        token = ""
        while True:
            query = {
                **params,
                "page_size": str(PAGE_SIZE),
                **({"page_token": token} if token else {}),
            }
            page = _ok(await self.client.get(path, params=query), 200)
            found.extend(page[key])
            token = page.get("next_page_token", "")
            if not token:
                return found

    async def _categories(self, admin: Person) -> dict[str, str]:
        """Each demo category's id by name, made where missing."""
        existing = {
            c["name"].casefold(): c["id"] for c in await self._pages("/v1/categories", "categories")
        }
        ids: dict[str, str] = {}
        created = 0
        for category in CATEGORIES:
            if (found := existing.get(category.name.casefold())) is not None:
                ids[category.name] = found
                continue
            made = _ok(
                await self.client.post(
                    "/v1/categories",
                    json={"name": category.name, "description": category.description},
                    headers=admin.headers,
                ),
                201,
            )
            ids[category.name] = str(made["id"])
            created += 1
        self.report.categories = (created, len(CATEGORIES) - created)
        return ids

    async def _products(
        self, seller: Person, categories: Mapping[str, str], sold: Mapping[str, int]
    ) -> dict[str, dict[str, Any]]:
        """The seller's demo products by name, made where missing, with the stock the past
        sales left."""
        existing = {
            p["name"]: p for p in await self._pages("/v1/products", "products", seller_id=seller.id)
        }
        created = total = 0
        for category in CATEGORIES:
            for item in category.items:
                total += 1
                if item.name in existing:
                    continue
                existing[item.name] = _ok(
                    await self.client.post(
                        "/v1/products",
                        json={
                            "name": item.name,
                            "description": item.description,
                            "price": {
                                "amount_minor": item.price_minor,
                                "currency_code": category.currency_code,
                            },
                            "stock": max(0, item.stock - sold.get(item.name, 0)),
                            "category_id": categories[category.name],
                        },
                        headers=seller.headers,
                    ),
                    201,
                )
                created += 1
        self.report.products = (created, total - created)
        return existing

    async def _history(
        self,
        plan: tuple[history.PlannedOrder, ...],
        customer: Person,
        products: Mapping[str, Mapping[str, Any]],
    ) -> None:
        now = datetime.now(UTC)
        orders = [history.as_json(order, now, customer.id, products) for order in plan]
        out = await _run_command(self.env, json.dumps(orders), "order_service", "demo-history")
        try:
            counts = json.loads(out.strip().splitlines()[-1])
        except (IndexError, ValueError):
            raise SeedError(
                f"order_service demo-history printed no counts: {out[-300:]!r}"
            ) from None
        self.report.orders = (int(counts["written"]), int(counts["present"]))


async def seed(gateway_url: str, env: Mapping[str, str]) -> Report:
    """Seed the mesh behind `gateway_url`; its services' commands run with `env`."""
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30.0) as client:
        try:
            ready = await client.get("/readyz")
        except httpx.HTTPError as error:
            raise SeedError(
                f"no gateway answers at {gateway_url} ({type(error).__name__}): "
                "start the mesh with `make run` first"
            ) from None
        if ready.status_code != 200:
            raise SeedError(f"the mesh at {gateway_url} is not ready: {ready.text[:300]}")
        try:
            return await Seeder(client, env).run()
        except httpx.HTTPError as error:
            raise SeedError(
                f"the gateway stopped answering ({type(error).__name__}: {error})"
            ) from None
