"""Identity end to end: through the gateway over HTTP, with every process running."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from tests.e2e.conftest import RunningMesh
from tests.e2e.shop import (
    PROBLEM,
    Shop,
    assert_problem,
    auth,
    register_and_login,
    unique_email,
)
from tests.e2e.test_grpcurl import grpcurl_binary
from user_service.keys import KeyRing

pytestmark = pytest.mark.e2e


async def test_register_login_me_refresh_reuse_logout(mesh: RunningMesh) -> None:
    client = mesh.client
    email = unique_email("flow")
    session = await register_and_login(client, email)
    assert session["token_type"] == "Bearer"
    assert session["expires_in"] == 900

    me = await client.get("/v1/users/me", headers=auth(session["access_token"]))
    assert me.status_code == 200
    assert me.json()["email"] == email
    assert me.json()["role"] == "customer"

    refreshed = await client.post(
        "/v1/auth/refresh", json={"refresh_token": session["refresh_token"]}
    )
    assert refreshed.status_code == 200
    new_pair = refreshed.json()
    assert new_pair["refresh_token"] != session["refresh_token"]

    # Reusing the spent token: 401, and the pair issued from it is revoked too.
    replay = await client.post("/v1/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert_problem(replay, 401)
    after = await client.post("/v1/auth/refresh", json={"refresh_token": new_pair["refresh_token"]})
    assert_problem(after, 401)

    # A fresh login, then logout revokes its refresh token.
    again = (
        await client.post("/v1/auth/login", json={"email": email, "password": "a fine password"})
    ).json()
    out = await client.post(
        "/v1/auth/logout",
        json={"refresh_token": again["refresh_token"]},
        headers=auth(again["access_token"]),
    )
    assert out.status_code == 204
    assert_problem(
        await client.post("/v1/auth/refresh", json={"refresh_token": again["refresh_token"]}), 401
    )


async def test_profile_update_and_password_change(mesh: RunningMesh) -> None:
    client = mesh.client
    email = unique_email("pw")
    session = await register_and_login(client, email)
    headers = auth(session["access_token"])
    patched = await client.patch("/v1/users/me", json={"full_name": "New Name"}, headers=headers)
    assert patched.status_code == 200
    assert patched.json()["full_name"] == "New Name"
    wrong = await client.post(
        "/v1/users/me:changePassword",
        json={"current_password": "not it at all", "new_password": "another password"},
        headers=headers,
    )
    body = assert_problem(wrong, 400)
    assert body["errors"][0]["field"] == "current_password"
    changed = await client.post(
        "/v1/users/me:changePassword",
        json={"current_password": "a fine password", "new_password": "another password"},
        headers=headers,
    )
    assert changed.status_code == 204
    assert_problem(
        await client.post("/v1/auth/login", json={"email": email, "password": "a fine password"}),
        401,
    )
    ok = await client.post("/v1/auth/login", json={"email": email, "password": "another password"})
    assert ok.status_code == 200


async def test_bad_input_gets_problem_json(mesh: RunningMesh) -> None:
    client = mesh.client
    weak = await client.post("/v1/auth/register", json={"email": "nope", "password": "short"})
    body = assert_problem(weak, 400)
    assert {error["field"] for error in body["errors"]} == {"email", "password"}
    taken_email = unique_email("taken")
    await register_and_login(client, taken_email)
    taken = assert_problem(
        await client.post(
            "/v1/auth/register", json={"email": taken_email, "password": "a fine password"}
        ),
        409,
    )
    assert taken["type"] == "/problems/email-taken"
    malformed = await client.post(
        "/v1/auth/login", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert assert_problem(malformed, 400)["type"] == "/problems/malformed-body"
    schema = await client.post("/v1/auth/login", json={"email": 42})
    body = assert_problem(schema, 422)
    assert body["type"] == "/problems/validation-failed"
    assert {error["field"] for error in body["errors"]} >= {"email", "password"}
    assert_problem(await client.get("/v1/no/such/route"), 404)
    huge = await client.post(
        "/v1/auth/register", content=b"x" * 2_000_000, headers={"content-type": "application/json"}
    )
    assert_problem(huge, 413)


async def test_request_id_is_echoed(mesh: RunningMesh) -> None:
    response = await mesh.client.get("/healthz", headers={"X-Request-ID": "trace-me-123"})
    assert response.headers["x-request-id"] == "trace-me-123"
    generated = await mesh.client.get("/healthz")
    assert len(generated.headers["x-request-id"]) >= 16


def _keys(mesh: RunningMesh) -> KeyRing:
    return KeyRing.load(Path(mesh.mesh.extra_env["JWT_KEYS_DIR"]))


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "sub": "someone",
        "role": "admin",
        "iss": "ecommerce-mesh",
        "aud": "ecommerce-api",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return claims


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _bad_tokens(keys: KeyRing) -> dict[str, str]:
    key = keys.active

    def signed(headers: dict[str, Any] | None = None, **claims: Any) -> str:
        return jwt.encode(
            _claims(**claims),
            key.private_key,
            algorithm="RS256",
            headers={"kid": key.kid, **(headers or {})},
        )

    now = int(time.time())
    unsigned = f"{_b64(json.dumps({'alg': 'none', 'kid': key.kid}).encode())}.{_b64(json.dumps(_claims()).encode())}."
    public_pem = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs_input = f"{_b64(json.dumps({'alg': 'HS256', 'kid': key.kid, 'typ': 'JWT'}).encode())}.{_b64(json.dumps(_claims()).encode())}"
    hs_token = (
        hs_input + "." + _b64(hmac.new(public_pem, hs_input.encode(), hashlib.sha256).digest())
    )
    return {
        "expired": signed(exp=now - 5, iat=now - 400, nbf=now - 400),
        "not yet valid": signed(nbf=now + 600),
        "wrong audience": signed(aud="another-api"),
        "wrong issuer": signed(iss="someone-else"),
        "alg none": unsigned,
        "HS256 with the public key": hs_token,
        "unknown kid": signed(headers={"kid": "k9999-unknown"}),
        "garbage": "this-is-not-a-jwt",
    }


async def test_bad_tokens_are_401(mesh: RunningMesh) -> None:
    for reason, token in _bad_tokens(_keys(mesh)).items():
        response = await mesh.client.get("/v1/users/me", headers=auth(token))
        assert response.status_code == 401, reason
        assert response.headers["content-type"] == PROBLEM, reason
        assert response.headers.get("www-authenticate") == "Bearer", reason
    assert_problem(await mesh.client.get("/v1/users/me"), 401)


async def test_roles_and_ownership(mesh: RunningMesh) -> None:
    client = mesh.client
    alice = await register_and_login(client, unique_email("alice"))
    bob = await register_and_login(client, unique_email("bob"))
    assert_problem(await client.get("/v1/users", headers=auth(alice["access_token"])), 403)
    assert_problem(
        await client.get(f"/v1/users/{bob['user']['id']}", headers=auth(alice["access_token"])), 403
    )
    own = await client.get(f"/v1/users/{alice['user']['id']}", headers=auth(alice["access_token"]))
    assert own.status_code == 200

    admin_headers = (await Shop(mesh).admin()).headers
    listed = await client.get("/v1/users", params={"page_size": 100}, headers=admin_headers)
    assert listed.status_code == 200
    assert assert_problem(
        await client.get("/v1/users", params={"page_size": 101}, headers=admin_headers), 400
    )
    promoted = await client.patch(
        f"/v1/users/{bob['user']['id']}", json={"role": "seller"}, headers=admin_headers
    )
    assert promoted.status_code == 200
    assert promoted.json()["role"] == "seller"
    relogin = await client.post(
        "/v1/auth/login", json={"email": bob["user"]["email"], "password": "a fine password"}
    )
    me = await client.get("/v1/users/me", headers=auth(relogin.json()["access_token"]))
    assert me.json()["role"] == "seller"

    deactivated = await client.delete(f"/v1/users/{alice['user']['id']}", headers=admin_headers)
    assert deactivated.status_code == 200
    assert deactivated.json()["active"] is False
    assert_problem(
        await client.post(
            "/v1/auth/login", json={"email": alice["user"]["email"], "password": "a fine password"}
        ),
        401,
    )


async def test_login_throttle_per_account(mesh: RunningMesh) -> None:
    email = unique_email("throttle")
    await register_and_login(mesh.client, email)  # one attempt used
    statuses = []
    for _ in range(6):
        response = await mesh.client.post(
            "/v1/auth/login", json={"email": email, "password": "wrong guess!"}
        )
        statuses.append(response.status_code)
    assert 429 in statuses
    assert statuses[0] == 401
    limited = await mesh.client.post(
        "/v1/auth/login", json={"email": email, "password": "a fine password"}
    )
    body = assert_problem(limited, 429)
    assert int(limited.headers["retry-after"]) >= 1
    assert "login" in body["detail"].lower()


async def test_jwks_and_metrics(mesh: RunningMesh) -> None:
    jwks = await mesh.client.get("/.well-known/jwks.json")
    assert jwks.status_code == 200
    keys = jwks.json()["keys"]
    assert keys
    assert {key["alg"] for key in keys} == {"RS256"}
    assert all("d" not in key for key in keys)  # never a private member
    metrics = await mesh.client.get("/metrics")
    assert metrics.status_code == 200
    assert "http_requests_total" in metrics.text


async def test_grpcurl_get_user_with_and_without_token(mesh: RunningMesh) -> None:
    import asyncio

    session = await register_and_login(mesh.client, unique_email("grpcurl"))
    address = mesh.grpc_address("user_service")
    request = json.dumps({"id": session["user"]["id"]})

    async def call(*headers: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            grpcurl_binary(),
            "-plaintext",
            *headers,
            "-d",
            request,
            address,
            "ecommerce.user.v1.UserService/GetUser",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 30)
        return process.returncode or 0, out.decode(), err.decode()

    code, _, err = await call()
    assert code != 0
    assert "Unauthenticated" in err
    code, out, err = await call("-H", f"authorization: Bearer {session['access_token']}")
    assert code == 0, err
    assert json.loads(out)["email"] == session["user"]["email"]
