"""The demo shop's three accounts, with fixed passwords: development data, never secrets."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Account:
    role: str
    email: str
    password: str
    full_name: str


ADMIN = Account("admin", "demo-admin@example.com", "demo-admin-pass", "Dana Admin")
SELLER = Account("seller", "demo-seller@example.com", "demo-seller-pass", "Sam Seller")
CUSTOMER = Account("customer", "demo-customer@example.com", "demo-customer-pass", "Casey Customer")
ACCOUNTS = (ADMIN, SELLER, CUSTOMER)

# Where the demo customer's orders go.
ADDRESS = {
    "recipient": CUSTOMER.full_name,
    "line1": "350 Fifth Avenue",
    "line2": "Floor 21",
    "city": "New York",
    "postal_code": "10118",
    "country_code": "US",
}
