"""Filter normalization, page tokens, update masks and the circuit breaker: no I/O."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from google.protobuf import field_mask_pb2

from ecommerce.product.v1 import product_pb2
from meshkit.errors import InvalidArgument
from meshkit.rpc import PageTokenCodec
from product_service.cache import CircuitBreaker
from product_service.grpc_api import PRODUCT_UPDATABLE, update_paths
from product_service.listing import (
    DEFAULT_ORDER_BY,
    Cursor,
    ListingTokens,
    ProductFilter,
    like_pattern,
    normalize_filter,
)
from tests.support import FakeClock

TOKENS = ListingTokens(PageTokenCodec(b"unit-test-secret"))


def fields_of(error: pytest.ExceptionInfo[InvalidArgument]) -> set[str]:
    return {violation.field for violation in error.value.violations}


def test_defaults() -> None:
    listing = normalize_filter()
    assert listing == ProductFilter()
    assert listing.order_by == DEFAULT_ORDER_BY == "-created_at"
    assert (listing.sort.field, listing.sort.descending) == ("created_at", True)


def test_equal_requests_normalize_to_one_filter() -> None:
    one = normalize_filter(query="  Red   KITE red ", category_id=" c1 ", order_by=" price ")
    other = normalize_filter(query="kite red", category_id="c1", order_by="price")
    assert one == other
    assert one.words == ("kite", "red")
    assert one.canonical == other.canonical


def test_every_filter_changes_the_canonical_form() -> None:
    variants = [
        normalize_filter(),
        normalize_filter(query="kite"),
        normalize_filter(category_id="c1"),
        normalize_filter(seller_id="s1"),
        normalize_filter(min_price=0),
        normalize_filter(max_price=0),
        normalize_filter(in_stock=True),
        normalize_filter(in_stock=False),
        *(normalize_filter(order_by=order) for order in ("price", "-price", "name")),
    ]
    assert len({variant.canonical for variant in variants}) == len(variants)


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"order_by": "id"}, "order_by"),
        ({"order_by": "-name"}, "order_by"),
        ({"min_price": -1}, "min_price"),
        ({"max_price": -1}, "max_price"),
        ({"min_price": 10, "max_price": 9}, "max_price"),
        ({"query": "x" * 201}, "query"),
        ({"query": " ".join("abcdefghi")}, "query"),
        ({"category_id": "c" * 65}, "category_id"),
        ({"seller_id": "s" * 65}, "seller_id"),
    ],
)
def test_invalid_filters_name_the_field(arguments: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        normalize_filter(**arguments)  # type: ignore[arg-type]
    assert fields_of(raised) == {field}


def test_every_invalid_filter_is_reported_at_once() -> None:
    with pytest.raises(InvalidArgument) as raised:
        normalize_filter(order_by="cheapest", min_price=-5)
    assert fields_of(raised) == {"order_by", "min_price"}


def test_like_pattern_escapes_wildcards() -> None:
    assert like_pattern("kite") == "%kite%"
    assert like_pattern("100%") == "%100\\%%"
    assert like_pattern("a_b\\c") == "%a\\_b\\\\c%"


@pytest.mark.parametrize(
    ("order_by", "key"),
    [
        ("price", 1999),
        ("-price", 0),
        ("name", "blue kite"),
        ("-created_at", datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)),
    ],
)
def test_page_tokens_round_trip(order_by: str, key: int | str | datetime) -> None:
    listing = normalize_filter(order_by=order_by, query="kite")
    token = TOKENS.encode(listing, Cursor(key, "id-1"))
    assert TOKENS.decode(listing, token) == Cursor(key, "id-1")
    assert TOKENS.decode(listing, "") is None


def test_page_tokens_are_opaque_and_signed() -> None:
    listing = normalize_filter(order_by="price")
    token = TOKENS.encode(listing, Cursor(500, "id-1"))
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    signature, payload = raw[:12], raw[12:]
    forged = json.loads(payload)
    forged["c"][0] = 0  # jump back to the start
    forged_token = (
        base64.urlsafe_b64encode(signature + json.dumps(forged, separators=(",", ":")).encode())
        .rstrip(b"=")
        .decode()
    )
    for bad in (forged_token, token[:-1], token + "x", "garbage"):
        with pytest.raises(InvalidArgument) as raised:
            TOKENS.decode(listing, bad)
        assert fields_of(raised) == {"page_token"}


def test_page_tokens_belong_to_their_filter() -> None:
    token = TOKENS.encode(normalize_filter(order_by="price"), Cursor(500, "id-1"))
    for other in (
        normalize_filter(order_by="-price"),
        normalize_filter(order_by="price", in_stock=True),
        normalize_filter(order_by="price", query="kite"),
    ):
        with pytest.raises(InvalidArgument):
            TOKENS.decode(other, token)
    # Another secret (another deployment) does not accept it either.
    with pytest.raises(InvalidArgument):
        ListingTokens(PageTokenCodec(b"other")).decode(normalize_filter(order_by="price"), token)


@pytest.mark.parametrize(
    ("order_by", "cursor"),
    [
        ("price", ["500", "id"]),
        ("price", [True, "id"]),
        ("name", [5, "id"]),
        ("-created_at", ["yesterday", "id"]),
        ("-created_at", ["2026-01-02T03:04:05", "id"]),  # no time zone
        ("price", [500]),
        ("price", [500, 7]),
    ],
)
def test_signed_cursors_of_the_wrong_shape_are_refused(order_by: str, cursor: list[object]) -> None:
    listing = normalize_filter(order_by=order_by)
    token = TOKENS.codec.encode(cursor, listing.canonical)
    with pytest.raises(InvalidArgument):
        TOKENS.decode(listing, token)


def test_update_paths_use_the_mask_or_the_fields_set() -> None:
    message = product_pb2.Product(id="p1", name="Kite", stock=3)
    mask = field_mask_pb2.FieldMask(paths=["description"])
    assert update_paths(mask, message, PRODUCT_UPDATABLE) == {"description"}
    assert update_paths(field_mask_pb2.FieldMask(), message, PRODUCT_UPDATABLE) == {
        "name",
        "stock",
    }
    with pytest.raises(InvalidArgument):
        update_paths(field_mask_pb2.FieldMask(), product_pb2.Product(id="p1"), PRODUCT_UPDATABLE)
    with pytest.raises(InvalidArgument):
        update_paths(field_mask_pb2.FieldMask(paths=["archived"]), message, PRODUCT_UPDATABLE)


def test_breaker_skips_redis_after_a_failure_then_lets_one_probe_through() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(retry_after=5, clock=clock, first_pause=0.5)
    assert breaker.allow() and not breaker.is_open
    breaker.record_failure()
    assert not breaker.allow()
    clock.advance(0.4)
    assert not breaker.allow()
    clock.advance(0.1)
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # everyone else waits for it
    assert breaker.record_success() is True
    assert breaker.allow() and breaker.allow()
    assert breaker.record_success() is False


def test_breaker_pauses_twice_as_long_after_each_failed_probe_up_to_retry_after() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(retry_after=5, clock=clock, first_pause=0.5)
    breaker.record_failure()
    pauses = []
    for _ in range(6):
        waited = 0.0
        while not breaker.allow():
            clock.advance(0.1)
            waited += 0.1
        pauses.append(round(waited, 1))
        breaker.record_failure()  # the probe fails
    assert pauses == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    clock.advance(5)
    assert breaker.allow()
    breaker.record_success()
    breaker.record_failure()  # down again: the short pause first
    clock.advance(0.5)
    assert breaker.allow()


def test_failures_of_calls_made_before_it_opened_do_not_lengthen_the_pause() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(retry_after=5, clock=clock, first_pause=0.5)
    # A stall times out a burst of reads in flight together.
    for _ in range(30):
        breaker.record_failure()
        clock.advance(0.001)
    assert breaker.pause == 0.5
    clock.advance(0.5)
    assert breaker.allow()
