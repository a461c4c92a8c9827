"""/readyz follows each upstream's readiness: an upstream without its database makes it 503."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.app import create_app
from gateway.settings import GatewaySettings
from localmesh.faultproxy import Mode
from meshkit.settings import load_settings
from tests.gateway.conftest import health_only_upstreams
from tests.runtime.dependent_service import dependent_service
from tests.support import eventually

OTHER_UPSTREAMS = ("user_service", "product_service", "payment_service", "notification_service")


@pytest.fixture
async def other_upstreams() -> AsyncIterator[dict[str, str]]:
    """Every upstream but the order service, all SERVING."""
    async with health_only_upstreams(OTHER_UPSTREAMS) as addresses:
        yield addresses


async def test_readyz_names_an_upstream_without_its_database_until_it_is_back(
    postgres_url: str, other_upstreams: dict[str, str]
) -> None:
    async with dependent_service(postgres_url, with_broker=False) as order_service:
        # The order service by a name DNS resolves, as in a cluster.
        addresses = {
            **other_upstreams,
            "order_service_addr": f"dns:///localhost:{order_service.server.port}",
        }
        app = create_app(load_settings(GatewaySettings, env_file=None, **addresses))
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://gateway"
            ) as client,
        ):

            async def readyz(status: int) -> httpx.Response | None:
                response = await client.get("/readyz")
                return response if response.status_code == status else None

            await eventually(lambda: readyz(200), timeout=8, message="/readyz 200")
            order_service.database.set_mode(Mode.RESET)
            response = await eventually(lambda: readyz(503), timeout=8, message="/readyz 503")
            body = response.json()
            assert body["not_serving"] == ["order_service"]
            assert body["upstreams"]["order_service"] == "NOT_SERVING"
            order_service.database.set_mode(Mode.FORWARD)
            await eventually(lambda: readyz(200), timeout=8, message="/readyz 200 again")
