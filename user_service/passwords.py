"""Password hashing (argon2id) and the password policy."""

from __future__ import annotations

import argon2

from meshkit.errors import FieldViolation

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 256


class PasswordHasher:
    """argon2id with OWASP's parameters (19 MiB, 2 passes, 1 lane): slow to verify by design."""

    def __init__(self, memory_kib: int = 19_456, time_cost: int = 2, parallelism: int = 1) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            type=argon2.Type.ID,
        )
        # Verified against when the account does not exist, so both paths take as long.
        self._decoy = self._hasher.hash("decoy password for timing")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash or self._decoy, password) and bool(
                password_hash
            )
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)


def password_violations(password: str, email: str, field: str = "password") -> list[FieldViolation]:
    problems = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(FieldViolation(field, f"must be at least {MIN_PASSWORD_LENGTH} characters"))
    if len(password) > MAX_PASSWORD_LENGTH:
        problems.append(FieldViolation(field, f"must be at most {MAX_PASSWORD_LENGTH} characters"))
    if email and password.strip().lower() == email.strip().lower():
        problems.append(FieldViolation(field, "must not be the email address"))
    return problems
