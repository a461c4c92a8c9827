"""Access-token rules, unit-tested: every way a token can be wrong is Unauthenticated."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from meshkit.context import Role
from meshkit.errors import Unauthenticated
from meshkit.identity import JwksVerifier
from user_service.keys import KeyRing, generate_key_file
from user_service.tokens import AccessTokens, hash_refresh_token, new_refresh_token

ISSUER, AUDIENCE = "ecommerce-mesh", "ecommerce-api"


@pytest.fixture
def keys(tmp_path: Path) -> KeyRing:
    return KeyRing.load(tmp_path / "keys", create=True)


@pytest.fixture
def tokens(keys: KeyRing) -> AccessTokens:
    return AccessTokens(keys, issuer=ISSUER, audience=AUDIENCE, ttl_seconds=900)


@pytest.fixture
def verifier(keys: KeyRing) -> JwksVerifier:
    async def fetch() -> dict[str, Any]:
        return keys.jwks()

    return JwksVerifier(fetch, issuer=ISSUER, audience=AUDIENCE)


def forge(keys: KeyRing, **overrides: Any) -> str:
    """A token signed by a real key, with claims or header changed."""
    now = int(time.time())
    claims = {
        "sub": "u1",
        "role": "customer",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + 60,
        "jti": "j1",
    }
    headers = {"kid": keys.active.kid}
    headers.update(overrides.pop("headers", {}))
    claims.update(overrides)
    return jwt.encode(claims, keys.active.private_key, algorithm="RS256", headers=headers)


async def test_issued_token_carries_every_claim(
    tokens: AccessTokens, verifier: JwksVerifier
) -> None:
    issued = tokens.issue("user-1", "seller")
    header = jwt.get_unverified_header(issued.token)
    assert header["alg"] == "RS256"
    assert header["kid"] == tokens.keys.active.kid
    claims = jwt.decode(issued.token, options={"verify_signature": False})
    assert set(claims) >= {"sub", "role", "iss", "aud", "exp", "nbf", "iat", "jti"}
    assert claims["exp"] - claims["nbf"] == 900
    # To the millisecond: a revocation voids the tokens issued before it, to the millisecond.
    assert claims["nbf"] <= claims["iat"] < claims["nbf"] + 1
    assert round(claims["iat"], 3) == claims["iat"]
    principal = await verifier.verify(issued.token)
    assert (principal.subject, principal.role) == ("user-1", Role.SELLER)
    assert principal.issued_at == claims["iat"]
    assert (await tokens.verify(issued.token)).subject == "user-1"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": int(time.time()) - 10}, "expired"),
        ({"nbf": int(time.time()) + 600}, "not valid yet"),
        ({"aud": "someone-else"}, "audience"),
        ({"iss": "evil"}, "issuer"),
        ({"headers": {"kid": "no-such-key"}}, "unknown key"),
        ({"role": "overlord"}, "role"),
    ],
)
async def test_wrong_claims_are_refused(
    keys: KeyRing,
    tokens: AccessTokens,
    verifier: JwksVerifier,
    overrides: dict[str, Any],
    reason: str,
) -> None:
    token = forge(keys, **overrides)
    for check in (verifier.verify, tokens.verify):
        with pytest.raises(Unauthenticated, match=reason):
            await check(token)


def _unsigned(claims: dict[str, Any], header: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(claims)}."


async def test_alg_none_is_refused(
    keys: KeyRing, verifier: JwksVerifier, tokens: AccessTokens
) -> None:
    claims = jwt.decode(forge(keys), options={"verify_signature": False})
    token = _unsigned(claims, {"alg": "none", "kid": keys.active.kid, "typ": "JWT"})
    for check in (verifier.verify, tokens.verify):
        with pytest.raises(Unauthenticated):
            await check(token)


async def test_hs256_signed_with_the_public_key_is_refused(
    keys: KeyRing, verifier: JwksVerifier, tokens: AccessTokens
) -> None:
    """The classic confusion attack: the public key used as an HMAC secret."""
    public_pem = keys.active.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = jwt.decode(forge(keys), options={"verify_signature": False})
    header = {"alg": "HS256", "kid": keys.active.kid, "typ": "JWT"}
    signing_input = _unsigned(claims, header)[:-1]
    import hashlib
    import hmac

    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    token = signing_input + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()
    for check in (verifier.verify, tokens.verify):
        with pytest.raises(Unauthenticated):
            await check(token)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "Bearer x", "e30.e30.e30"])
async def test_garbage_is_refused(
    verifier: JwksVerifier, tokens: AccessTokens, garbage: str
) -> None:
    for check in (verifier.verify, tokens.verify):
        with pytest.raises(Unauthenticated):
            await check(garbage)


async def test_tampered_signature_is_refused(tokens: AccessTokens, verifier: JwksVerifier) -> None:
    token = tokens.issue("u1", "admin").token
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["role"] = "admin" if claims["role"] != "admin" else "customer"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(Unauthenticated):
        await verifier.verify(f"{head}.{forged_payload}.{signature}")


async def test_rotation_keeps_old_tokens_valid_until_retired(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    old_ring = KeyRing.load(directory, create=True)
    old_token = AccessTokens(old_ring, issuer=ISSUER, audience=AUDIENCE, ttl_seconds=60).issue(
        "u1", "customer"
    )
    generate_key_file(directory)  # rotate: the new key sorts last and signs
    ring = KeyRing.load(directory)
    assert len(ring.jwks()["keys"]) == 2
    assert ring.active.kid != old_ring.active.kid
    tokens = AccessTokens(ring, issuer=ISSUER, audience=AUDIENCE, ttl_seconds=60)
    new_token = tokens.issue("u2", "customer")
    assert jwt.get_unverified_header(new_token.token)["kid"] == ring.active.kid

    published = ring.jwks()

    async def fetch() -> dict[str, Any]:
        return published

    verifier = JwksVerifier(fetch, issuer=ISSUER, audience=AUDIENCE)
    assert (await verifier.verify(old_token.token)).subject == "u1"
    assert (await verifier.verify(new_token.token)).subject == "u2"

    (directory / f"{old_ring.active.kid}.pem").unlink()  # retire the old key
    retired = KeyRing.load(directory)
    with pytest.raises(Unauthenticated, match="unknown key"):
        await AccessTokens(retired, issuer=ISSUER, audience=AUDIENCE, ttl_seconds=60).verify(
            old_token.token
        )


async def test_unknown_kid_refetches_the_jwks_once(keys: KeyRing, tmp_path: Path) -> None:
    fetches = 0
    published: dict[str, Any] = {"keys": []}

    async def fetch() -> dict[str, Any]:
        nonlocal fetches
        fetches += 1
        return published

    verifier = JwksVerifier(fetch, issuer=ISSUER, audience=AUDIENCE, min_refetch_interval_seconds=0)
    verifier.load_jwks({"keys": []})  # fetched before the key existed
    published = keys.jwks()  # the user service rotated in a key we had not seen
    assert (await verifier.verify(forge(keys))).subject == "u1"
    assert fetches == 1


async def test_unknown_kid_cannot_force_a_fetch_per_request(keys: KeyRing) -> None:
    fetches = 0

    async def fetch() -> dict[str, Any]:
        nonlocal fetches
        fetches += 1
        return keys.jwks()

    verifier = JwksVerifier(fetch, issuer=ISSUER, audience=AUDIENCE)
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            await verifier.verify(forge(keys, headers={"kid": "bogus"}))
    assert fetches == 1


def test_refresh_tokens_are_random_and_stored_hashed() -> None:
    first, second = new_refresh_token(), new_refresh_token()
    assert first != second and len(first) >= 43
    assert hash_refresh_token(first) == hash_refresh_token(first)
    assert first not in hash_refresh_token(first)
