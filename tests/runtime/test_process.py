"""Once serving, a process hides its start-up objects from the cyclic collector; the gateway
collects young objects less often, yet still frees cyclic garbage."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from gateway.app import create_app
from gateway.settings import GatewaySettings
from meshkit.process import GATEWAY_YOUNG_COLLECTION_THRESHOLD, prepare_collector_for_serving
from meshkit.settings import load_settings


@pytest.fixture(autouse=True)
def collector_as_it_was() -> Iterator[None]:
    thresholds = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_freezing_moves_what_survives_out_of_the_collectors_sight() -> None:
    kept = [[index] for index in range(1000)]  # lists are tracked by the collector
    prepare_collector_for_serving()
    assert gc.get_freeze_count() >= len(kept)
    # Full collections walk the oldest generation; what start-up kept is no longer in it.
    oldest = {id(item) for item in gc.get_objects(generation=2)}
    assert not any(id(item) in oldest for item in kept)


class _Node:
    def __init__(self) -> None:
        self.peer: _Node = self


def test_services_keep_the_default_young_threshold() -> None:
    before = gc.get_threshold()
    prepare_collector_for_serving()
    assert gc.get_threshold() == before


def test_young_collections_are_rarer_but_cyclic_garbage_is_still_freed() -> None:
    prepare_collector_for_serving(GATEWAY_YOUNG_COLLECTION_THRESHOLD)
    assert gc.get_threshold()[0] == GATEWAY_YOUNG_COLLECTION_THRESHOLD > 700

    cycle = _Node()
    freed = weakref.ref(cycle)
    del cycle
    assert freed() is not None  # a cycle: reference counting alone never frees it
    # Enough garbage cycles to reach the threshold: the collector runs by itself.
    for _ in range(GATEWAY_YOUNG_COLLECTION_THRESHOLD):
        _Node()
    assert freed() is None


async def test_the_gateway_prepares_the_collector_once_started() -> None:
    app = create_app(load_settings(GatewaySettings, env_file=None))
    assert gc.get_freeze_count() == 0
    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] == GATEWAY_YOUNG_COLLECTION_THRESHOLD
