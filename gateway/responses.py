"""JSON bodies serialized straight from the documents the schemas build from messages.

Products and orders, the bodies of the mesh's busiest reads, are answered this way: their
fields come typed from protobuf, so validating them again as the route's response model, and
FastAPI's serializing of that model, checked nothing and cost the gateway CPU on every
product and order read. Each such route still declares its model (`response_model=`) for the
OpenAPI document, and `tests/gateway/test_schemas.py` holds every document equal, byte for
byte, to the model's own JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pydantic_core
from fastapi import Response, status


class Document(Response):
    """A document as `application/json`, serialized by pydantic's own serializer (the same
    datetimes, numbers and escapes as a model's `model_dump_json`)."""

    media_type = "application/json"

    def __init__(
        self,
        content: Mapping[str, Any],
        status_code: int = status.HTTP_200_OK,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(content, status_code=status_code, headers=headers)

    def render(self, content: Any) -> bytes:
        return encode(content)


def encode(document: Mapping[str, Any]) -> bytes:
    """A document's JSON, exactly as `Document` answers it."""
    return pydantic_core.to_json(document)


class EncodedDocument(Response):
    """A document `encode`d before (as the gateway's catalog cache keeps them)."""

    media_type = "application/json"

    def __init__(self, body: bytes) -> None:
        super().__init__(body)
