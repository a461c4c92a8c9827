"""NUL in a user's name, which PostgreSQL text cannot hold: INVALID_ARGUMENT naming the
field, never an INTERNAL from the database."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2

from ecommerce.user.v1 import user_pb2
from tests.user_service.conftest import UserApi, bearer
from tests.user_service.test_user_api import expect, violations

pytestmark = pytest.mark.integration

NUL_MESSAGE = "must not contain NUL characters"


async def test_a_registration_with_nul_in_the_full_name_names_the_field(
    user_api: UserApi,
) -> None:
    request = user_pb2.RegisterRequest(
        email="ada@example.com", password="a fine password", full_name="Ada\x00"
    )
    error = await expect(grpc.StatusCode.INVALID_ARGUMENT, user_api.users.Register(request))
    assert violations(error) == {"full_name": NUL_MESSAGE}


async def test_a_changed_full_name_with_nul_names_the_field(user_api: UserApi) -> None:
    await user_api.register("bob@example.com")
    token = await user_api.token_of("bob@example.com")
    request = user_pb2.UpdateCurrentUserRequest(
        user=user_pb2.User(full_name="\x00Bob"),
        update_mask=field_mask_pb2.FieldMask(paths=["full_name"]),
    )
    call = user_api.users.UpdateCurrentUser(request, metadata=bearer(token))
    error = await expect(grpc.StatusCode.INVALID_ARGUMENT, call)
    assert violations(error) == {"full_name": NUL_MESSAGE}
    me = await user_api.users.GetCurrentUser(
        user_pb2.GetCurrentUserRequest(), metadata=bearer(token)
    )
    assert me.full_name == "Test User"
