"""Validation of a PlaceOrder command and its fingerprint."""

from __future__ import annotations

import pytest

from meshkit.errors import InvalidArgument
from order_service.commands import Address, PlaceOrder

ADDRESS = Address("Ada", "1 Main St", "", "London", "N1", "GB")


def test_lines_are_merged_and_sorted() -> None:
    command = PlaceOrder.validated("k1", [("b", 1), ("a", 2), ("b", 3)], "pm_card_visa", ADDRESS)
    assert [(line.product_id, line.quantity) for line in command.lines] == [("a", 2), ("b", 4)]


def test_same_body_same_fingerprint_whatever_the_order_of_lines() -> None:
    one = PlaceOrder.validated("k1", [("a", 1), ("b", 2)], "pm_card_visa", ADDRESS)
    two = PlaceOrder.validated("k2", [("b", 2), ("a", 1)], "pm_card_visa", ADDRESS)
    other = PlaceOrder.validated("k1", [("a", 1), ("b", 3)], "pm_card_visa", ADDRESS)
    assert one.fingerprint == two.fingerprint
    assert one.fingerprint != other.fingerprint


@pytest.mark.parametrize(
    ("key", "lines", "method", "address", "fields"),
    [
        ("", [("a", 1)], "pm_card_visa", ADDRESS, {"idempotency_key"}),
        ("k", [], "pm_card_visa", ADDRESS, {"items"}),
        ("k", [("a", 0)], "pm_card_visa", ADDRESS, {"items[0].quantity"}),
        (
            "k",
            [("a", -3), ("", 1)],
            "pm_card_visa",
            ADDRESS,
            {"items[0].quantity", "items[1].product_id"},
        ),
        ("k", [("a", 1001)], "pm_card_visa", ADDRESS, {"items[0].quantity"}),
        ("k", [("a", 1)], "", ADDRESS, {"payment_method"}),
        (
            "k",
            [("a", 1)],
            "pm_card_visa",
            Address("", "", "", "", "", "GBR"),
            {
                "shipping_address.recipient",
                "shipping_address.line1",
                "shipping_address.city",
                "shipping_address.country_code",
            },
        ),
    ],
)
def test_invalid_commands_name_every_bad_field(
    key: str, lines: list[tuple[str, int]], method: str, address: Address, fields: set[str]
) -> None:
    with pytest.raises(InvalidArgument) as raised:
        PlaceOrder.validated(key, lines, method, address)
    assert {violation.field for violation in raised.value.violations} == fields


@pytest.mark.parametrize("country_code", ["ZZ", "UK", "XK", "EU"])
def test_a_country_code_must_be_an_assigned_iso_3166_1_one(country_code: str) -> None:
    # Two letters are not enough: ZZ and XK are user-assigned, UK and EU reserved.
    address = Address("Ada", "1 Main St", "", "London", "N1", country_code)
    with pytest.raises(InvalidArgument) as raised:
        PlaceOrder.validated("k1", [("a", 1)], "pm_card_visa", address)
    assert [violation.field for violation in raised.value.violations] == [
        "shipping_address.country_code"
    ]
    assert "ISO 3166-1 alpha-2" in raised.value.violations[0].message


@pytest.mark.parametrize("country_code", ["GB", "US", "SS", "BQ", "AQ"])
def test_assigned_country_codes_are_accepted(country_code: str) -> None:
    address = Address("Ada", "1 Main St", "", "London", "N1", country_code)
    command = PlaceOrder.validated("k1", [("a", 1)], "pm_card_visa", address)
    assert command.address.country_code == country_code
