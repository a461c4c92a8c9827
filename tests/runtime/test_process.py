"""Once serving, a process hides its start-up objects from the cyclic collector."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from gateway.app import create_app
from gateway.settings import GatewaySettings
from meshkit.process import freeze_startup_objects


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_freezing_moves_what_survives_out_of_the_collectors_sight() -> None:
    kept = [[index] for index in range(1000)]  # lists are tracked by the collector
    freeze_startup_objects()
    assert gc.get_freeze_count() >= len(kept)
    # Full collections walk the oldest generation; what start-up kept is no longer in it.
    oldest = {id(item) for item in gc.get_objects(generation=2)}
    assert not any(id(item) in oldest for item in kept)


async def test_the_gateway_freezes_once_started() -> None:
    app = create_app(GatewaySettings(_env_file=None))
    assert gc.get_freeze_count() == 0
    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() > 0
