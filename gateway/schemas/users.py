"""Bodies of the auth and user endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, StrictBool

from ecommerce.user.v1 import auth_pb2, user_pb2
from gateway.schemas.common import EXAMPLE_IDS, EXAMPLE_TIME, Schema, example, rfc3339

RoleName = Literal["customer", "seller", "admin"]

ROLE_NAMES: dict[user_pb2.Role.ValueType, str] = {
    user_pb2.ROLE_CUSTOMER: "customer",
    user_pb2.ROLE_SELLER: "seller",
    user_pb2.ROLE_ADMIN: "admin",
    user_pb2.ROLE_SERVICE: "service",
}
ROLE_VALUES = {name: number for number, name in ROLE_NAMES.items()}

# An account the examples share: registered with these, then signed in with them, in the order
# Swagger UI lists the routes. Not the README's first account, so both work on one shop.
EXAMPLE_EMAIL = "grace@example.com"
EXAMPLE_PASSWORD = "correct horse battery"
USER_EXAMPLE = {
    "id": EXAMPLE_IDS["user"],
    "email": EXAMPLE_EMAIL,
    "full_name": "Grace Hopper",
    "role": "customer",
    "active": True,
    "create_time": EXAMPLE_TIME,
    "update_time": EXAMPLE_TIME,
}
# The shapes of our tokens, not working ones: an RS256 JWT, and 32 random bytes in base64url.
_ACCESS_TOKEN_EXAMPLE = (
    "eyJhbGciOiJSUzI1NiIsImtpZCI6ImswMDAxLTIwMjYxMjA3LTNmOWExYzJlIiwidHlwIjoiSldUIn0."
    "eyJzdWIiOiIwMTlhZjNjMmE2ZDA3YjFlOGM0ZjJhOWQ2ZTNiNWM3MSIsInJvbGUiOiJjdXN0b21lciJ9."
    "bm90IGEgc2lnbmF0dXJlLCBvbmx5IGl0cyBzaGFwZQ"
)
_REFRESH_TOKEN_EXAMPLE = "Vx3kq9TzY2mB7wLd0Rf5nHc8sJp4aUe1GiKo6XvQrNY"


class RegisterRequest(Schema):
    model_config = example(
        {"email": EXAMPLE_EMAIL, "password": EXAMPLE_PASSWORD, "full_name": "Grace Hopper"}
    )

    email: str = Field(max_length=320, examples=[EXAMPLE_EMAIL])
    password: str = Field(
        max_length=256, description="At least 8 characters, not the email address."
    )
    full_name: str = Field("", max_length=200, examples=["Grace Hopper"])


class LoginRequest(Schema):
    model_config = example({"email": EXAMPLE_EMAIL, "password": EXAMPLE_PASSWORD})

    email: str = Field(max_length=320, examples=[EXAMPLE_EMAIL])
    password: str = Field(max_length=256)


class RefreshRequest(Schema):
    model_config = example({"refresh_token": _REFRESH_TOKEN_EXAMPLE})

    refresh_token: str = Field(max_length=512)


class LogoutRequest(Schema):
    model_config = example({"refresh_token": _REFRESH_TOKEN_EXAMPLE})

    refresh_token: str = Field(max_length=512, description="The refresh token to revoke.")


class TokenPair(BaseModel):
    model_config = example(
        {
            "access_token": _ACCESS_TOKEN_EXAMPLE,
            "refresh_token": _REFRESH_TOKEN_EXAMPLE,
            "token_type": "Bearer",
            "expires_in": 900,
        }
    )

    access_token: str = Field(description="Short-lived JWT; send as `Authorization: Bearer …`.")
    refresh_token: str = Field(description="Opaque; use once at /v1/auth/refresh.")
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")

    @classmethod
    def from_proto(cls, message: auth_pb2.TokenPair) -> TokenPair:
        return cls(
            access_token=message.access_token,
            refresh_token=message.refresh_token,
            expires_in=message.expires_in,
        )


class User(BaseModel):
    model_config = example(USER_EXAMPLE)

    id: str
    email: str
    full_name: str
    role: str = Field(description="customer, seller or admin.")
    active: bool
    create_time: datetime | None
    update_time: datetime | None

    @classmethod
    def from_proto(cls, message: user_pb2.User) -> User:
        return cls(
            id=message.id,
            email=message.email,
            full_name=message.full_name,
            role=ROLE_NAMES.get(message.role, "customer"),
            active=message.active,
            create_time=rfc3339(message.create_time),
            update_time=rfc3339(message.update_time),
        )


class UserList(BaseModel):
    model_config = example({"users": [USER_EXAMPLE], "next_page_token": ""})

    users: list[User]
    next_page_token: str = Field(
        description="Pass as page_token for the next page; empty at the end."
    )


class UpdateMeRequest(Schema):
    """Only the fields present change."""

    model_config = example({"full_name": "Grace Brewster Hopper"})

    full_name: str | None = Field(None, max_length=200)


class ChangePasswordRequest(Schema):
    model_config = example(
        {"current_password": EXAMPLE_PASSWORD, "new_password": "staple of the battery horse"}
    )

    current_password: str = Field(max_length=256)
    new_password: str = Field(max_length=256)


class UpdateUserRequest(Schema):
    """Admin changes; only the fields present change."""

    model_config = example({"role": "seller"})

    full_name: str | None = Field(None, max_length=200)
    role: RoleName | None = None
    active: StrictBool | None = None
