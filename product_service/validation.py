"""Checks shared by the catalog's writes: ids and text fields from requests."""

from __future__ import annotations

from meshkit.errors import NUL, NUL_MESSAGE, FieldViolation, InvalidArgument, NotFound, require_id

MAX_ID_LENGTH = 64


def checked_text(
    violations: list[FieldViolation], field: str, value: str, maximum: int, *, required: bool
) -> str:
    """A text field stripped, with a violation noted when it is empty, too long or has NUL."""
    cleaned = value.strip()
    if required and not cleaned:
        violations.append(FieldViolation(field, "must not be empty"))
    elif len(cleaned) > maximum:
        violations.append(FieldViolation(field, f"must be at most {maximum} characters"))
    elif NUL in cleaned:
        violations.append(FieldViolation(field, NUL_MESSAGE))
    return cleaned


def changed_text(
    violations: list[FieldViolation],
    field: str,
    value: str | None,
    maximum: int,
    *,
    required: bool,
) -> str | None:
    """A changed text field, checked like a new one; None when it does not change."""
    if value is None:
        return None
    return checked_text(violations, field, value, maximum, required=required)


def raise_if_invalid(violations: list[FieldViolation], what: str) -> None:
    if violations:
        raise InvalidArgument(f"The {what} has invalid fields.", violations)


def check_id(value: str, field: str = "id") -> str:
    """An id from a request: required; one longer than any we issue names nothing."""
    require_id(value, field)
    if len(value) > MAX_ID_LENGTH:
        raise NotFound(f"No resource has id {value[:MAX_ID_LENGTH]!r}...")
    if NUL in value:
        # No id we issue holds one, and PostgreSQL could not even look it up.
        raise NotFound(f"No resource has id {value!r}.")
    return value
