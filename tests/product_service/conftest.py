"""The product service in-process on PostgreSQL, with a real user service for its tokens."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2, status_pb2
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from ecommerce.common.v1 import money_pb2
from ecommerce.product.v1 import product_pb2, product_pb2_grpc
from ecommerce.user.v1 import auth_pb2, auth_pb2_grpc, user_pb2, user_pb2_grpc
from meshkit.service import ServiceDefinition, running_service
from meshkit.settings import load_settings
from product_service.app import DEFINITION as PRODUCT_SERVICE
from product_service.app import build
from product_service.cache import DEFAULT_PREFIX, CircuitBreaker, Clock, RedisCatalogCache
from product_service.settings import ProductSettings
from user_service.app import DEFINITION as USER_SERVICE
from user_service.settings import UserSettings

# Database 14 is this suite's own; the gateway tests use 15, the end-to-end tests 13.
CACHE_REDIS_URL = "redis://127.0.0.1:6379/14"
ADMIN_EMAIL, ADMIN_PASSWORD = "catalog-admin@example.com", "catalog admin password"
PASSWORD = "a fine password"
SERVICE_CLIENT, SERVICE_SECRET = "order_service", "insecure-dev-service-secret"

Metadata = tuple[tuple[str, str], ...]


def bearer(token: str) -> Metadata:
    return (("authorization", f"Bearer {token}"),)


def violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
    """The field violations (google.rpc.BadRequest) of an INVALID_ARGUMENT status."""
    entries: list[tuple[str, str | bytes]] = list(error.trailing_metadata() or ())  # type: ignore[arg-type]
    for key, value in entries:
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            found: dict[str, str] = {}
            for detail in status_pb2.Status.FromString(value).details:
                bad_request = error_details_pb2.BadRequest()
                if detail.Unpack(bad_request):
                    found.update({v.field: v.description for v in bad_request.field_violations})
            return found
    return {}


async def expect(code: grpc.StatusCode, call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    assert raised.value.code() is code, raised.value.details()
    return raised.value


def metric(name: str, kind: str) -> float:
    return REGISTRY.get_sample_value(name, {"kind": kind}) or 0.0


@dataclass
class Person:
    id: str
    token: str

    @property
    def auth(self) -> Metadata:
        return bearer(self.token)


@dataclass
class Identity:
    """A running user service and the callers the tests act as."""

    address: str
    admin: Person
    seller: Person
    other_seller: Person
    customer: Person
    service: Person


async def _person(
    users: user_pb2_grpc.UserServiceAsyncStub,
    auth: auth_pb2_grpc.AuthServiceAsyncStub,
    email: str,
    role: user_pb2.Role.ValueType | None = None,
    admin_token: str = "",
) -> Person:
    user = await users.Register(
        user_pb2.RegisterRequest(email=email, password=PASSWORD, full_name=email.split("@")[0])
    )
    if role is not None:
        await users.UpdateUser(
            user_pb2.UpdateUserRequest(
                user=user_pb2.User(id=user.id, role=role),
                update_mask=field_mask_pb2.FieldMask(paths=["role"]),
            ),
            metadata=bearer(admin_token),
        )
    pair = await auth.Login(auth_pb2.LoginRequest(email=email, password=PASSWORD))
    return Person(user.id, pair.access_token)


@pytest.fixture(scope="session")
async def identity(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Identity]:
    """One user service for the whole session: it only issues tokens here."""
    workdir = tmp_path_factory.mktemp("identity")
    settings = load_settings(
        UserSettings,
        env_file=None,
        grpc_host="127.0.0.1",
        grpc_port=0,
        database_url=f"sqlite+aiosqlite:///{workdir / 'users.db'}",
        jwt_keys_dir=workdir / "keys",
        bootstrap_admin_email=ADMIN_EMAIL,
        bootstrap_admin_password=ADMIN_PASSWORD,
        # Cheap hashing: these tests are about the catalog, not argon2's cost.
        argon2_memory_kib=1024,
        argon2_time_cost=1,
    )
    async with (
        running_service(USER_SERVICE, settings) as server,
        grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        users = user_pb2_grpc.UserServiceStub(channel)
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        admin_pair = await auth.Login(
            auth_pb2.LoginRequest(email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
        )
        admin_id = (
            await users.GetCurrentUser(
                user_pb2.GetCurrentUserRequest(), metadata=bearer(admin_pair.access_token)
            )
        ).id
        admin = Person(admin_id, admin_pair.access_token)
        service = await auth.IssueServiceToken(
            auth_pb2.IssueServiceTokenRequest(
                client_id=SERVICE_CLIENT, client_secret=SERVICE_SECRET
            )
        )
        yield Identity(
            address=f"127.0.0.1:{server.port}",
            admin=admin,
            seller=await _person(
                users, auth, "seller@example.com", user_pb2.ROLE_SELLER, admin.token
            ),
            other_seller=await _person(
                users, auth, "other-seller@example.com", user_pb2.ROLE_SELLER, admin.token
            ),
            customer=await _person(users, auth, "customer@example.com"),
            service=Person(SERVICE_CLIENT, service.access_token),
        )


@dataclass
class CatalogApi:
    """A running product service, a stub to it, and shortcuts for the usual calls."""

    address: str
    stub: product_pb2_grpc.ProductServiceAsyncStub
    identity: Identity

    async def create_category(self, name: str, description: str = "") -> product_pb2.Category:
        return await self.stub.CreateCategory(
            product_pb2.CreateCategoryRequest(
                category=product_pb2.Category(name=name, description=description)
            ),
            metadata=self.identity.admin.auth,
        )

    async def create_product(
        self,
        name: str = "Widget",
        *,
        price: int = 1000,
        stock: int = 10,
        description: str = "",
        category_id: str = "",
        by: Person | None = None,
        currency: str = "USD",
    ) -> product_pb2.Product:
        return await self.stub.CreateProduct(
            product_pb2.CreateProductRequest(
                product=product_pb2.Product(
                    name=name,
                    description=description,
                    price=money_pb2.Money(amount_minor=price, currency_code=currency),
                    stock=stock,
                    category_id=category_id,
                )
            ),
            metadata=(by or self.identity.seller).auth,
        )

    async def update_product(
        self, product_id: str, by: Person | None = None, **fields: Any
    ) -> product_pb2.Product:
        return await self.stub.UpdateProduct(
            product_pb2.UpdateProductRequest(
                product=product_pb2.Product(id=product_id, **fields),
                update_mask=field_mask_pb2.FieldMask(paths=sorted(fields)),
            ),
            metadata=(by or self.identity.seller).auth,
        )

    async def get_product(self, product_id: str) -> product_pb2.Product:
        return await self.stub.GetProduct(product_pb2.GetProductRequest(id=product_id))

    async def list_products(self, **request: Any) -> product_pb2.ListProductsResponse:
        return await self.stub.ListProducts(product_pb2.ListProductsRequest(**request))

    async def list_all(self, page_size: int = 100, **request: Any) -> list[product_pb2.Product]:
        """Every page of a listing, in order."""
        products: list[product_pb2.Product] = []
        token = ""
        while True:
            page = await self.list_products(page_size=page_size, page_token=token, **request)
            products.extend(page.products)
            token = page.next_page_token
            if not token:
                return products

    async def reserve(
        self, order_id: str, *items: tuple[str, int], by: Person | None = None
    ) -> product_pb2.ReserveStockResponse:
        return await self.stub.ReserveStock(
            product_pb2.ReserveStockRequest(
                order_id=order_id,
                items=[product_pb2.StockItem(product_id=p, quantity=q) for p, q in items],
            ),
            metadata=(by or self.identity.service).auth,
        )

    async def release(self, order_id: str) -> bool:
        response = await self.stub.ReleaseStock(
            product_pb2.ReleaseStockRequest(order_id=order_id), metadata=self.identity.service.auth
        )
        return response.released

    async def stock_of(self, product_id: str) -> int:
        return (await self.get_product(product_id)).stock


StartCatalog = Callable[..., AbstractAsyncContextManager[CatalogApi]]


@pytest.fixture
def start_catalog(identity: Identity, postgres_url: str) -> StartCatalog:
    """Starts the product service on this test's database; keyword arguments are settings.

    `clock` replaces the monotonic clock of the cache's circuit breaker.
    """

    @asynccontextmanager
    async def start(
        clock: Callable[[], float] | None = None, **overrides: Any
    ) -> AsyncIterator[CatalogApi]:
        values: dict[str, Any] = {
            "grpc_host": "127.0.0.1",
            "grpc_port": 0,
            "database_url": postgres_url,
            "user_service_addr": identity.address,
            "redis_url": None,
            # The Redis tier alone, unless a test asks for the in-process one too.
            "near_cache_ttl_seconds": 0,
            **overrides,
        }
        settings = load_settings(ProductSettings, env_file=None, **values)
        definition = PRODUCT_SERVICE
        if clock is not None:
            definition = ServiceDefinition(
                settings_cls=ProductSettings,
                build=functools.partial(build, clock=clock),
                migrations=PRODUCT_SERVICE.migrations,
            )
        async with (
            running_service(definition, settings) as server,
            grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel,
        ):
            yield CatalogApi(
                f"127.0.0.1:{server.port}", product_pb2_grpc.ProductServiceStub(channel), identity
            )

    return start


@pytest.fixture
async def catalog(start_catalog: StartCatalog) -> AsyncIterator[CatalogApi]:
    """The product service with no cache."""
    async with start_catalog() as api:
        yield api


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    """This suite's Redis database, emptied for each test."""
    client = Redis.from_url(CACHE_REDIS_URL)
    await client.flushdb()
    yield client
    await client.aclose()


def redis_catalog_cache(
    client: Redis, *, prefix: str = DEFAULT_PREFIX, timeout: float = 1.0, clock: Clock | None = None
) -> RedisCatalogCache:
    """The Redis tier with the service's default lifetimes, over a client of the test's."""
    return RedisCatalogCache(
        client,
        product_ttl=60,
        listing_ttl=30,
        popular_ttl=600,
        popular_reads=20,
        timeout_seconds=timeout,
        breaker=CircuitBreaker(5, clock) if clock else CircuitBreaker(5),
        prefix=prefix,
    )
