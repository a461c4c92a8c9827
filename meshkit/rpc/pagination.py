"""Opaque, tamper-evident page tokens for keyset pagination."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import Any

from meshkit.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
_SIGNATURE_BYTES = 12


def page_size(
    requested: int, *, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE
) -> int:
    """AIP-158: 0 means the default; negative or above the maximum is an error."""
    if requested < 0:
        raise InvalidArgument.for_field("page_size", "must not be negative")
    if requested > maximum:
        raise InvalidArgument.for_field("page_size", f"must be at most {maximum}")
    return requested or default


class PageTokenCodec:
    """Encodes the last row's sort key plus a hash of the query it belongs to, signed.

    A token is only valid for the query that produced it, and any edit is detected.
    """

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]

    def encode(self, cursor: Sequence[Any], query: str = "") -> str:
        payload = json.dumps(
            {"c": list(cursor), "q": _query_hash(query)}, separators=(",", ":")
        ).encode()
        return base64.urlsafe_b64encode(self._sign(payload) + payload).rstrip(b"=").decode()

    def decode(self, token: str, query: str = "") -> list[Any]:
        invalid = InvalidArgument.for_field("page_token", "is not a page token this listing issued")
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, TypeError):
            raise invalid from None
        signature, payload = raw[:_SIGNATURE_BYTES], raw[_SIGNATURE_BYTES:]
        if not hmac.compare_digest(signature, self._sign(payload)):
            raise invalid
        data = json.loads(payload)
        if data.get("q") != _query_hash(query):
            raise InvalidArgument.for_field("page_token", "belongs to a listing with other filters")
        cursor = data.get("c")
        if not isinstance(cursor, list):
            raise invalid
        return cursor


def _query_hash(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()[:16]
