"""The caller's own profile, and user administration."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from google.protobuf import field_mask_pb2

from ecommerce.user.v1 import user_pb2
from gateway.deps import Admin, Caller, upstreams
from gateway.routes.params import PathId
from gateway.schemas.common import problem_responses
from gateway.schemas.users import (
    ROLE_VALUES,
    ChangePasswordRequest,
    UpdateMeRequest,
    UpdateUserRequest,
    User,
    UserList,
)

router = APIRouter(tags=["users"])

PageSize = Annotated[int, Query(ge=0, le=100, description="At most 100; 0 means 20.")]
PageToken = Annotated[
    str, Query(max_length=1024, description="next_page_token of the previous page.")
]


def _mask(fields: set[str]) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=sorted(fields))


@router.get("/v1/users/me", summary="Your profile", responses=problem_responses(401))
async def get_me(request: Request, caller: Caller) -> User:
    stubs = upstreams(request)
    return User.from_proto(await stubs.users.GetCurrentUser(user_pb2.GetCurrentUserRequest()))


@router.patch(
    "/v1/users/me", summary="Change your name", responses=problem_responses(400, 401, 422)
)
async def update_me(body: UpdateMeRequest, request: Request, caller: Caller) -> User:
    stubs = upstreams(request)
    fields = body.model_dump(exclude_unset=True, exclude_none=True)
    user = await stubs.users.UpdateCurrentUser(
        user_pb2.UpdateCurrentUserRequest(
            user=user_pb2.User(**fields), update_mask=_mask(set(fields))
        )
    )
    return User.from_proto(user)


@router.post(
    "/v1/users/me:changePassword",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Change your password (signs out every session, this one too)",
    responses=problem_responses(400, 401, 422),
)
async def change_password(
    body: ChangePasswordRequest, request: Request, caller: Caller
) -> Response:
    stubs = upstreams(request)
    await stubs.users.ChangePassword(
        user_pb2.ChangePasswordRequest(
            current_password=body.current_password, new_password=body.new_password
        )
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/v1/users", summary="List users (admin)", responses=problem_responses(400, 401, 403))
async def list_users(
    request: Request, admin: Admin, page_size: PageSize = 0, page_token: PageToken = ""
) -> UserList:
    stubs = upstreams(request)
    response = await stubs.users.ListUsers(
        user_pb2.ListUsersRequest(page_size=page_size, page_token=page_token)
    )
    return UserList(
        users=[User.from_proto(user) for user in response.users],
        next_page_token=response.next_page_token,
    )


@router.get(
    "/v1/users/{user_id}",
    summary="A user's profile (admin, or yourself)",
    responses=problem_responses(401, 403, 404),
)
async def get_user(user_id: PathId, request: Request, caller: Caller) -> User:
    stubs = upstreams(request)
    return User.from_proto(await stubs.users.GetUser(user_pb2.GetUserRequest(id=user_id)))


@router.patch(
    "/v1/users/{user_id}",
    summary="Change a user's role, name or status (admin)",
    responses=problem_responses(400, 401, 403, 404, 422),
)
async def update_user(
    user_id: PathId, body: UpdateUserRequest, request: Request, admin: Admin
) -> User:
    stubs = upstreams(request)
    fields = body.model_dump(exclude_unset=True, exclude_none=True)
    message = user_pb2.User(id=user_id)
    if "full_name" in fields:
        message.full_name = fields["full_name"] or ""
    if "role" in fields:
        message.role = ROLE_VALUES[fields["role"]]
    if "active" in fields:
        message.active = bool(fields["active"])
    user = await stubs.users.UpdateUser(
        user_pb2.UpdateUserRequest(user=message, update_mask=_mask(set(fields)))
    )
    return User.from_proto(user)


@router.delete(
    "/v1/users/{user_id}",
    summary="Deactivate a user (admin); they can no longer sign in",
    responses=problem_responses(401, 403, 404),
)
async def deactivate_user(user_id: PathId, request: Request, admin: Admin) -> User:
    stubs = upstreams(request)
    return User.from_proto(
        await stubs.users.DeactivateUser(user_pb2.DeactivateUserRequest(id=user_id))
    )
