"""Why the user service refuses a request, by name: each maps to a gRPC status by its base."""

from __future__ import annotations

from meshkit.errors import AlreadyExists, NotFound, Unauthenticated


class UserNotFound(NotFound):
    """No user has this id."""

    reason = "USER_NOT_FOUND"


class EmailTaken(AlreadyExists):
    """An account with this email exists already."""

    reason = "EMAIL_TAKEN"


class WrongCredentials(Unauthenticated):
    """The email and password, or the client id and secret, do not match an account."""

    reason = "WRONG_CREDENTIALS"


class DeactivatedSignIn(Unauthenticated):
    """A deactivated account cannot sign in, nor refresh its session."""

    reason = "ACCOUNT_DEACTIVATED"


class RefreshTokenInvalid(Unauthenticated):
    """The refresh token is not one this service issued."""

    reason = "REFRESH_TOKEN_INVALID"


class RefreshTokenExpired(Unauthenticated):
    """The refresh token has expired: sign in again."""

    reason = "REFRESH_TOKEN_EXPIRED"


class RefreshTokenReused(Unauthenticated):
    """The refresh token was used already, so its whole session was revoked: sign in again."""

    reason = "REFRESH_TOKEN_REUSED"


class SessionSignedOut(Unauthenticated):
    """The session was signed out (logout, a new password, a deactivation): sign in again."""

    reason = "SESSION_SIGNED_OUT"
