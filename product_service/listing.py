"""Product listings: filters in one canonical form, sort orders, and keyset page tokens."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from meshkit.errors import NUL, NUL_MESSAGE, FieldViolation, InvalidArgument
from meshkit.rpc import PageTokenCodec

SortField = Literal["price", "name", "created_at"]
SortKey = int | str | datetime


@dataclass(frozen=True)
class SortOrder:
    """One `order_by` value: the column it sorts on and the direction; id breaks ties."""

    field: SortField
    descending: bool


SORT_ORDERS: dict[str, SortOrder] = {
    "price": SortOrder("price", descending=False),
    "-price": SortOrder("price", descending=True),
    "name": SortOrder("name", descending=False),
    "-created_at": SortOrder("created_at", descending=True),
}
DEFAULT_ORDER_BY = "-created_at"

MAX_QUERY_LENGTH = 200
MAX_QUERY_WORDS = 8
MAX_ID_LENGTH = 64
# Bumped when the meaning of a page token changes, so old tokens are refused, not misread.
_LISTING_VERSION = 1


@dataclass(frozen=True)
class ProductFilter:
    """What a listing asks for, normalized: equal requests have equal filters.

    `words` are lower-cased, unique and sorted; every one must occur in the name or the
    description.
    """

    words: tuple[str, ...] = ()
    category_id: str = ""
    seller_id: str = ""
    min_price: int | None = None
    max_price: int | None = None
    in_stock: bool | None = None
    order_by: str = DEFAULT_ORDER_BY

    @property
    def sort(self) -> SortOrder:
        return SORT_ORDERS[self.order_by]

    @property
    def canonical(self) -> str:
        """A stable text of the filter: binds page tokens to it and names cache entries."""
        return json.dumps(
            {
                "v": _LISTING_VERSION,
                "q": list(self.words),
                "c": self.category_id,
                "s": self.seller_id,
                "min": self.min_price,
                "max": self.max_price,
                "in": self.in_stock,
                "o": self.order_by,
            },
            separators=(",", ":"),
            sort_keys=True,
        )


def normalize_filter(
    *,
    query: str = "",
    category_id: str = "",
    seller_id: str = "",
    min_price: int | None = None,
    max_price: int | None = None,
    in_stock: bool | None = None,
    order_by: str = "",
) -> ProductFilter:
    """Validate a listing's filters and bring them to their canonical form."""
    violations: list[FieldViolation] = []
    if len(query) > MAX_QUERY_LENGTH:
        violations.append(FieldViolation("query", f"must be at most {MAX_QUERY_LENGTH} characters"))
    if NUL in query:
        violations.append(FieldViolation("query", NUL_MESSAGE))
    words = tuple(sorted(set(query.lower().split())))
    if len(words) > MAX_QUERY_WORDS:
        violations.append(FieldViolation("query", f"must have at most {MAX_QUERY_WORDS} words"))
    for field, value in (("category_id", category_id), ("seller_id", seller_id)):
        if len(value.strip()) > MAX_ID_LENGTH or NUL in value:
            violations.append(FieldViolation(field, "is not an id"))
    for field, price in (("min_price", min_price), ("max_price", max_price)):
        if price is not None and price < 0:
            violations.append(FieldViolation(field, "must not be negative"))
    if min_price is not None and max_price is not None and 0 <= max_price < min_price:
        violations.append(FieldViolation("max_price", "must be at least min_price"))
    order = order_by.strip() or DEFAULT_ORDER_BY
    if order not in SORT_ORDERS:
        violations.append(
            FieldViolation("order_by", f"must be one of {', '.join(SORT_ORDERS)}, or empty")
        )
    if violations:
        raise InvalidArgument("The listing has invalid filters.", violations)
    return ProductFilter(
        words=words,
        category_id=category_id.strip(),
        seller_id=seller_id.strip(),
        min_price=min_price,
        max_price=max_price,
        in_stock=in_stock,
        order_by=order,
    )


def like_pattern(word: str) -> str:
    r"""`%word%` for `LIKE ... ESCAPE '\'`, with the word's own wildcards escaped."""
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class Cursor:
    """Where the previous page ended: its last row's sort key and id."""

    key: SortKey
    id: str


class ListingTokens:
    """Page tokens of product listings: a signed cursor, valid only for its filter."""

    def __init__(self, codec: PageTokenCodec) -> None:
        self.codec = codec

    def encode(self, listing: ProductFilter, cursor: Cursor) -> str:
        key = cursor.key.isoformat() if isinstance(cursor.key, datetime) else cursor.key
        return self.codec.encode([key, cursor.id], listing.canonical)

    def decode(self, listing: ProductFilter, token: str) -> Cursor | None:
        """The cursor of `token`, None for the first page; a forged or foreign token is refused."""
        if not token:
            return None
        raw = self.codec.decode(token, listing.canonical)
        cursor = _cursor(listing.sort.field, raw)
        if cursor is None:
            raise InvalidArgument.for_field("page_token", "is not a page token this listing issued")
        return cursor


def _cursor(field: SortField, raw: list[object]) -> Cursor | None:
    if len(raw) != 2:
        return None
    key, row_id = raw
    if not isinstance(row_id, str):
        return None
    if field == "price":
        # bool is an int in Python, never in a token we wrote.
        return Cursor(key, row_id) if type(key) is int else None
    if not isinstance(key, str):
        return None
    if field == "name":
        return Cursor(key, row_id)
    try:
        moment = datetime.fromisoformat(key)
    except ValueError:
        return None
    return Cursor(moment, row_id) if moment.tzinfo is not None else None
