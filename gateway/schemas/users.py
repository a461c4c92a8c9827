"""Bodies of the auth and user endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, StrictBool

from ecommerce.user.v1 import auth_pb2, user_pb2
from gateway.schemas.common import Schema, rfc3339

RoleName = Literal["customer", "seller", "admin"]

ROLE_NAMES: dict[user_pb2.Role.ValueType, str] = {
    user_pb2.ROLE_CUSTOMER: "customer",
    user_pb2.ROLE_SELLER: "seller",
    user_pb2.ROLE_ADMIN: "admin",
    user_pb2.ROLE_SERVICE: "service",
}
ROLE_VALUES = {name: number for number, name in ROLE_NAMES.items()}


class RegisterRequest(Schema):
    email: str = Field(max_length=320, examples=["ada@example.com"])
    password: str = Field(
        max_length=256, description="At least 8 characters, not the email address."
    )
    full_name: str = Field("", max_length=200, examples=["Ada Lovelace"])


class LoginRequest(Schema):
    email: str = Field(max_length=320, examples=["ada@example.com"])
    password: str = Field(max_length=256)


class RefreshRequest(Schema):
    refresh_token: str = Field(max_length=512)


class LogoutRequest(Schema):
    refresh_token: str = Field(max_length=512, description="The refresh token to revoke.")


class TokenPair(BaseModel):
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
    users: list[User]
    next_page_token: str = Field(
        description="Pass as page_token for the next page; empty at the end."
    )


class UpdateMeRequest(Schema):
    """Only the fields present change."""

    full_name: str | None = Field(None, max_length=200)


class ChangePasswordRequest(Schema):
    current_password: str = Field(max_length=256)
    new_password: str = Field(max_length=256)


class UpdateUserRequest(Schema):
    """Admin changes; only the fields present change."""

    full_name: str | None = Field(None, max_length=200)
    role: RoleName | None = None
    active: StrictBool | None = None
