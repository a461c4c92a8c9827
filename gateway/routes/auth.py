"""Registration, login, token refresh and logout; the public keys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status

from ecommerce.user.v1 import auth_pb2, user_pb2
from gateway.deps import Caller, upstreams
from gateway.schemas.common import problem_responses
from gateway.schemas.users import (
    LoginRequest,
    LogoutRequest,
    RefreshRequest,
    RegisterRequest,
    TokenPair,
    User,
)
from meshkit.identity import JwksVerifier

router = APIRouter(tags=["auth"])

# One RS256 key, as the user service publishes it (the modulus of RFC 7517's example key).
_JWKS_EXAMPLE = {
    "keys": [
        {
            "kty": "RSA",
            "n": (
                "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aP"
                "FFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl9"
                "3lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdA"
                "ZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3"
                "XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
            ),
            "e": "AQAB",
            "kid": "k0001-20261207-3f9a1c2e",
            "alg": "RS256",
            "use": "sig",
        }
    ]
}


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post(
    "/v1/auth/register",
    status_code=status.HTTP_201_CREATED,
    summary="Create a customer account",
    responses=problem_responses(400, 409, 422, 429),
)
async def register(body: RegisterRequest, request: Request, response: Response) -> User:
    stubs = upstreams(request)
    user = await stubs.users.Register(
        user_pb2.RegisterRequest(email=body.email, password=body.password, full_name=body.full_name)
    )
    response.headers["Location"] = f"/v1/users/{user.id}"
    return User.from_proto(user)


@router.post(
    "/v1/auth/login",
    summary="Exchange email and password for an access token and a refresh token",
    responses=problem_responses(401, 422, 429),
)
async def login(body: LoginRequest, request: Request) -> TokenPair:
    stubs = upstreams(request)
    await request.app.state.rate_limits.check_login(_client(request), body.email)
    pair = await stubs.auth.Login(auth_pb2.LoginRequest(email=body.email, password=body.password))
    return TokenPair.from_proto(pair)


@router.post(
    "/v1/auth/refresh",
    summary="Trade a refresh token for a new pair (the old one is spent)",
    description=(
        "Refresh tokens rotate: each works once. Presenting a spent one revokes every token "
        "descended from the same login, so a stolen token is useless once either party uses it."
    ),
    responses=problem_responses(401, 422),
)
async def refresh(body: RefreshRequest, request: Request) -> TokenPair:
    stubs = upstreams(request)
    pair = await stubs.auth.RefreshToken(
        auth_pb2.RefreshTokenRequest(refresh_token=body.refresh_token)
    )
    return TokenPair.from_proto(pair)


@router.post(
    "/v1/auth/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke a refresh token (and every token rotated from the same login)",
    responses=problem_responses(400, 401, 422),
)
async def logout(body: LogoutRequest, request: Request, caller: Caller) -> Response:
    stubs = upstreams(request)
    await stubs.auth.Logout(auth_pb2.LogoutRequest(refresh_token=body.refresh_token))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/.well-known/jwks.json",
    summary="Public keys that verify access tokens (JWKS)",
    responses={200: {"content": {"application/json": {"example": _JWKS_EXAMPLE}}}},
)
async def jwks(request: Request) -> dict[str, Any]:
    verifier: JwksVerifier = request.app.state.verifier
    return await verifier.public_jwks()
