"""What a route needs besides its parameters: the upstream stubs, and the caller (as
`Annotated` dependencies)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from gateway.answer_cache import Answers
from gateway.upstreams import Upstreams
from meshkit.context import Principal, Role, principal_var
from meshkit.identity import JwksVerifier, RoleNotAllowed, TokenMissing


def upstreams(request: Request) -> Upstreams:
    """The stubs of the upstream services, opened with the app.

    A plain call on the request rather than a dependency: FastAPI spends CPU on every
    request resolving even a trivial dependency, and every route needs its stubs.
    """
    stubs: Upstreams = request.app.state.upstreams
    return stubs


def answers(request: Request) -> Answers:
    """The gateway's cache of read answers (a plain call too, for the same reason)."""
    cached: Answers = request.app.state.answers
    return cached


class VerifiedBearer(HTTPBearer):
    """The bearer scheme, as OpenAPI shows it, that also verifies the token it reads.

    One dependency where the scheme and a verifying dependency on it were two: FastAPI spends
    CPU on every request for each level of dependencies.
    Every instance is the one `HTTPBearer` scheme of the OpenAPI document.
    """

    def __init__(self, *, admins_only: bool = False) -> None:
        # auto_error=False: a missing token is our 401 problem+json, not FastAPI's 403.
        super().__init__(
            scheme_name="HTTPBearer",
            description="An access token from POST /v1/auth/login.",
            auto_error=False,
        )
        self.admins_only = admins_only

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        credentials = await super().__call__(request)
        if credentials is None:
            raise TokenMissing("This endpoint needs a bearer token.")
        verifier: JwksVerifier = request.app.state.verifier
        principal = await verifier.verify(credentials.credentials)
        # Read by the access log (which names who was refused, too), and by the channels
        # that forward the token upstream.
        principal_var.set(principal)
        request.state.principal = principal
        if self.admins_only and principal.role is not Role.ADMIN:
            raise RoleNotAllowed("This endpoint is for admins only.")
        return principal


Caller = Annotated[Principal, Depends(VerifiedBearer())]
Admin = Annotated[Principal, Depends(VerifiedBearer(admins_only=True))]
