"""Shapes every resource shares: money, problems, and conversions from protobuf."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from google.protobuf import timestamp_pb2
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from ecommerce.common.v1 import money_pb2
from gateway.problem_types import PROBLEM_TYPES
from meshkit.errors import NUL
from meshkit.rpc import to_datetime


def _json_number(value: object) -> object:
    """Refuse what JSON does not call a number (a string, a boolean) before pydantic, which
    would read "1" and true as 1; 1.0 is a JSON number, and an integer."""
    if isinstance(value, str | bool):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


# Ids and times the examples in the OpenAPI document share, so that they read as one story: the
# product of an order is the product of the catalog's example, its buyer the user's.
EXAMPLE_TIME = "2026-12-07T09:30:00Z"
EXAMPLE_IDS = {
    "user": "019af3c2a6d07b1e8c4f2a9d6e3b5c71",
    "seller": "019af3c0b15e7c2d9a4e6f8b1c3d5e72",
    "category": "019af3c1f3a87d4e8b2c6a9e4f1d3b73",
    "product": "019af3c24e7b7a1c9d3e5f2a8b6c4d74",
    "order": "019af3c3c9d27e5f8a1b3c6d9e2f4a75",
    "payment": "019af3c3d0e87b2a9c4d6e1f3a5b7c76",
    "notification": "019af3c3f2a17c3b8d5e2f4a6b9c1d77",
}


def example(document: dict[str, Any]) -> ConfigDict:
    """A model's config with one example of its JSON: the OpenAPI document shows it, and
    Swagger UI's "Try it out" starts from it. Merged with the config of the model's bases."""
    return ConfigDict(json_schema_extra={"examples": [document]})


# An integer as the contract has it: a JSON number with no fraction.
JsonInt = Annotated[int, BeforeValidator(_json_number)]

# What a protobuf int64 field holds. Out of this range a value cannot even reach a service
# (building the message raises); inside it, the service judges (and answers 400 naming the
# field), so the business rules live in one place.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class Schema(BaseModel):
    """Strict about unknown fields: a typo in a request is an error, not silently ignored.

    Text is checked too: JSON lets a body escape a lone surrogate (\\ud800), which no
    protobuf string can hold (building the message would fail), and NUL (\\u0000), which no
    PostgreSQL text column can hold. Either is refused here, naming the field.
    """

    model_config = ConfigDict(extra="forbid")

    @field_validator("*")
    @classmethod
    def _storable_text(cls, value: object) -> object:
        _check_text(value)
        return value


def _check_text(value: object) -> None:
    """Raises when `value` (or a string in a list or dict of it) cannot be stored as text.

    A nested Schema has checked its own fields: it is not walked again.
    """
    if isinstance(value, str):
        if not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:
                # pydantic's own words for a string it cannot read as Unicode.
                raise PydanticCustomError(
                    "string_unicode",
                    "Input should be a valid string, unable to parse raw data as a unicode string",
                ) from None
        if NUL in value:
            raise PydanticCustomError("string_nul", "String should not contain NUL characters")
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _check_text(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check_text(item)


MONEY_EXAMPLE = {"amount_minor": 1999, "currency_code": "USD"}


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


def _problem_type_description() -> str:
    rows = "\n".join(
        f"| `{problem.uri}` | {', '.join(map(str, problem.statuses))} | {problem.summary} |"
        for problem in PROBLEM_TYPES.values()
    )
    return (
        "What kind of failure this is: a URI, stable per reason, so that a client can tell one "
        "from another without reading `detail`. It is relative to the API's address, where "
        "`GET /problems/{name}` describes it.\n\n| type | status | meaning |\n|---|---|---|\n"
        + rows
    )


class Problem(BaseModel):
    """An error, as RFC 9457 `application/problem+json`."""

    type: str = Field(
        description=_problem_type_description(),
        examples=[problem.uri for problem in PROBLEM_TYPES.values()],
    )
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
        504: "A service this request needs did not answer in time.",
    }
    return {
        status: {
            "model": Problem,
            "description": descriptions.get(status, "Error"),
            "content": {"application/problem+json": {}},
        }
        for status in statuses
    }
