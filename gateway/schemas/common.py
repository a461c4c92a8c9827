"""Shapes every resource shares: money, problems, and conversions from protobuf."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf import timestamp_pb2
from pydantic import BaseModel, ConfigDict, Field

from ecommerce.common.v1 import money_pb2
from meshkit.protobuf import to_datetime

# What a protobuf int64 field holds. Out of this range a value cannot even reach a service
# (building the message raises); inside it, the service judges (and answers 400 naming the
# field), so the business rules live in one place.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class Schema(BaseModel):
    """Strict about unknown fields: a typo in a request is an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class Money(Schema):
    amount_minor: int = Field(
        ge=0, le=10**12, description="Amount in the currency's minor unit (cents).", examples=[1999]
    )
    currency_code: str = Field(
        pattern=r"^[A-Z]{3}$", description="ISO 4217 currency code.", examples=["USD"]
    )

    @classmethod
    def from_proto(cls, message: money_pb2.Money) -> Money:
        # Input rules are for clients; what a service says is passed on as it is.
        return cls.model_construct(
            amount_minor=message.amount_minor, currency_code=message.currency_code
        )

    def to_proto(self) -> money_pb2.Money:
        return money_pb2.Money(amount_minor=self.amount_minor, currency_code=self.currency_code)


def money_document(message: money_pb2.Money) -> dict[str, Any]:
    """Money (`Money`) in a document: as the service says it, as `Money.from_proto` passes it."""
    return {"amount_minor": message.amount_minor, "currency_code": message.currency_code}


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """An error, as RFC 9457 `application/problem+json`."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    request_id: str | None = None
    errors: list[FieldError] | None = None


def rfc3339(value: timestamp_pb2.Timestamp) -> datetime | None:
    """A protobuf timestamp as an aware UTC datetime; unset is None."""
    if not value.seconds and not value.nanos:
        return None
    return to_datetime(value)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI entries for the error statuses a route can answer with."""
    descriptions = {
        400: "Invalid input; `errors` lists the fields.",
        401: "Missing, invalid or expired access token.",
        403: "The caller may not do this.",
        404: "No such resource (or not yours).",
        409: "Conflicts with the current state.",
        413: "The request body is too large.",
        422: "The body does not match the schema.",
        429: "Too many requests; see Retry-After.",
        503: "A service this request needs is unavailable.",
    }
    return {
        status: {
            "model": Problem,
            "description": descriptions.get(status, "Error"),
            "content": {"application/problem+json": {}},
        }
        for status in statuses
    }
