"""NUL in an order's text, which PostgreSQL text cannot hold: refused naming the field."""

from __future__ import annotations

import pytest

from meshkit.errors import InvalidArgument
from order_service.commands import Address, PlaceOrder

ADDRESS = Address("Ada", "1 Main St", "", "London", "N1", "GB")
NUL_MESSAGE = "must not contain NUL characters"


@pytest.mark.parametrize(
    ("address", "field"),
    [
        (Address("Ada\x00", "1 Main St", "", "London", "N1", "GB"), "recipient"),
        (Address("Ada", "1 Main St", "\x00", "London", "N1", "GB"), "line2"),
        (Address("Ada", "1 Main St", "", "Lon\x00don", "N1", "GB"), "city"),
        (Address("Ada", "1 Main St", "", "London", "N1\x00", "GB"), "postal_code"),
    ],
)
def test_nul_in_the_shipping_address_names_the_field(address: Address, field: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        PlaceOrder.validated("k1", [("p1", 1)], "pm_card_visa", address)
    assert {(v.field, v.message) for v in raised.value.violations} == {
        (f"shipping_address.{field}", NUL_MESSAGE)
    }


@pytest.mark.parametrize(
    ("key", "product_id", "method", "field"),
    [
        ("k\x00", "p1", "pm_card_visa", "idempotency_key"),
        ("k1", "p\x00", "pm_card_visa", "items[0].product_id"),
        ("k1", "p1", "pm_\x00", "payment_method"),
    ],
)
def test_nul_in_the_other_text_of_an_order_names_the_field(
    key: str, product_id: str, method: str, field: str
) -> None:
    with pytest.raises(InvalidArgument) as raised:
        PlaceOrder.validated(key, [(product_id, 1)], method, ADDRESS)
    assert {(v.field, v.message) for v in raised.value.violations} == {(field, NUL_MESSAGE)}
