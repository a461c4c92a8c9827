"""Password hashing and policy."""

from __future__ import annotations

from user_service.passwords import PasswordHasher, password_violations


def test_argon2id_hash_verifies_and_rejects() -> None:
    hasher = PasswordHasher(memory_kib=1024, time_cost=1)
    hashed = hasher.hash("correct horse battery")
    assert hashed.startswith("$argon2id$")
    assert hasher.verify(hashed, "correct horse battery")
    assert not hasher.verify(hashed, "wrong horse battery")
    assert not hasher.verify(None, "correct horse battery")
    assert not hasher.verify("not a hash", "anything")


def test_default_parameters_are_owasps() -> None:
    hashed = PasswordHasher().hash("correct horse battery")
    assert "$m=19456,t=2,p=1$" in hashed


def test_policy() -> None:
    assert password_violations("long enough pass", "ada@example.com") == []
    assert [v.message for v in password_violations("short", "ada@example.com")] == [
        "must be at least 8 characters"
    ]
    assert [v.message for v in password_violations("Ada@Example.com", "ada@example.com")] == [
        "must not be the email address"
    ]
