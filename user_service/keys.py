"""The signing keys of access tokens: several published, the newest signing.

Rotation: add a key (`python -m user_service rotate-key`); it signs new tokens at once while
the previous key stays in the JWKS, so tokens it signed keep verifying. Retire a key by
deleting its file once no token it signed can still be alive (one access-token lifetime).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

logger = logging.getLogger(__name__)

# RS256: the verify side runs on every request in the gateway and every service, and RSA
# verification is several times cheaper than Ed25519 on this runtime.
ALGORITHM = "RS256"
_RSA_BITS = 2048


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey

    @cached_property
    def public_key(self) -> rsa.RSAPublicKey:
        """Derived once: every token check of the user service verifies with it."""
        return self.private_key.public_key()

    @property
    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.public_key))
        # Only the members a verifier needs; pyjwt adds key_ops, which JWKS consumers ignore.
        return {
            "kty": jwk["kty"],
            "n": jwk["n"],
            "e": jwk["e"],
            "kid": self.kid,
            "alg": ALGORITHM,
            "use": "sig",
        }


class KeyRing:
    """Keys loaded from a directory of `<kid>.pem` files; the greatest kid signs."""

    def __init__(self, keys: list[SigningKey], active_kid: str | None = None) -> None:
        if not keys:
            raise ValueError("a key ring needs at least one key")
        self.keys = {key.kid: key for key in keys}
        kid = active_kid or max(self.keys)
        if kid not in self.keys:
            raise ValueError(f"JWT_ACTIVE_KID {kid!r} is not among the keys: {sorted(self.keys)}")
        self.active = self.keys[kid]

    @classmethod
    def load(
        cls, directory: Path, *, active_kid: str | None = None, create: bool = False
    ) -> KeyRing:
        """Read every key in `directory`; with `create`, make the first one when there is none."""
        paths = sorted(directory.glob("*.pem")) if directory.is_dir() else []
        if not paths and create:
            paths = [generate_key_file(directory)]
        if not paths:
            raise FileNotFoundError(
                f"no signing keys in {directory}: run `python -m user_service rotate-key`"
            )
        keys = []
        for path in paths:
            private_key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(private_key, rsa.RSAPrivateKey):
                raise ValueError(f"{path} is not an RSA private key")
            keys.append(SigningKey(kid=path.stem, private_key=private_key))
        return cls(keys, active_kid)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.public_jwk for key in self.keys.values()]}


def generate_key_file(directory: Path) -> Path:
    """Write a new RSA key as `<kid>.pem`; its kid sorts after every earlier one.

    Kids start with a sequence number, not a time, so the order holds whatever the clock does.
    """
    directory.mkdir(parents=True, exist_ok=True)
    sequence = 1 + max(
        (int(path.stem[1:5]) for path in directory.glob("k[0-9][0-9][0-9][0-9]-*.pem")), default=0
    )
    kid = f"k{sequence:04d}-{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(4)}"
    key = rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS)
    path = directory / f"{kid}.pem"
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(pem)
    logger.info("generated signing key", extra={"kid": kid})
    return path
