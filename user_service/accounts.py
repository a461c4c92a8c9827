"""The user service's domain: accounts, credentials and tokens."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from email_validator import EmailNotValidError, validate_email

from meshkit.context import Principal, Role
from meshkit.data import Database, IntegrityViolation, utcnow
from meshkit.errors import (
    NUL,
    NUL_MESSAGE,
    AlreadyExists,
    FieldViolation,
    InvalidArgument,
    quoted,
    require_id,
)
from meshkit.identity import (
    USERS,
    AccountChanged,
    AccountDeactivated,
    RoleNotAllowed,
    authorize,
)
from meshkit.identity.revocations import RevocationAnnouncer
from meshkit.ids import new_id
from meshkit.rpc import PageTokenCodec, page_size
from user_service.errors import (
    DeactivatedSignIn,
    EmailTaken,
    RefreshTokenExpired,
    RefreshTokenInvalid,
    RefreshTokenReused,
    SessionSignedOut,
    UserNotFound,
    WrongCredentials,
)
from user_service.passwords import PasswordHasher, password_violations
from user_service.reads import find_user_by_email, load_user, page_of_users, recent_revocations
from user_service.records import RefreshTokenRecord, UserRecord
from user_service.tokens import AccessTokens, IssuedToken, hash_refresh_token, new_refresh_token
from user_service.unit_of_work import AccountsUnitOfWork

logger = logging.getLogger(__name__)

USER_ROLES = (Role.CUSTOMER, Role.SELLER, Role.ADMIN)
MAX_NAME_LENGTH = 200


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


def normalize_email(email: str, field: str = "email") -> str:
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise InvalidArgument.for_field(field, f"is not a valid email address ({exc})") from None


def _check_name(full_name: str, field: str = "full_name") -> str:
    name = full_name.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidArgument.for_field(field, f"must be at most {MAX_NAME_LENGTH} characters")
    if NUL in name:
        raise InvalidArgument.for_field(field, NUL_MESSAGE)
    return name


@dataclass(frozen=True)
class UserChanges:
    """What an update may change; None leaves a field as it is."""

    full_name: str | None = None
    role: Role | None = None
    active: bool | None = None


class Accounts:
    """Accounts, credentials and tokens. Each change is a unit of work of its own; reads that
    change nothing go through `reads.py`. Methods that act for someone are given their caller."""

    def __init__(
        self,
        database: Database,
        unit_of_work: Callable[[], AccountsUnitOfWork],
        passwords: PasswordHasher,
        access_tokens: AccessTokens,
        *,
        refresh_ttl: timedelta,
        service_token_ttl_seconds: int,
        service_clients: Mapping[str, str],
        page_tokens: PageTokenCodec,
        revocations: RevocationAnnouncer | None = None,
    ) -> None:
        self.db = database
        self.unit_of_work = unit_of_work
        self.passwords = passwords
        self.access_tokens = access_tokens
        self.refresh_ttl = refresh_ttl
        self.service_token_ttl = service_token_ttl_seconds
        self.service_clients = dict(service_clients)
        self.page_tokens = page_tokens
        self.revocations = revocations

    # --- registration and credentials ---------------------------------------------------

    async def register(self, email: str, password: str, full_name: str) -> UserRecord:
        violations: list[FieldViolation] = []
        try:
            normalized = normalize_email(email)
        except InvalidArgument as exc:
            violations.extend(exc.violations)
            normalized = ""
        violations += password_violations(password, normalized or email)
        try:
            name = _check_name(full_name)
        except InvalidArgument as exc:
            violations.extend(exc.violations)
        if violations:
            raise InvalidArgument("The registration has invalid fields.", violations)
        password_hash = await asyncio.to_thread(self.passwords.hash, password)
        return await self._create_user(normalized, password_hash, name, Role.CUSTOMER)

    async def _create_user(
        self, email: str, password_hash: str, name: str, role: Role
    ) -> UserRecord:
        now = utcnow()
        user = UserRecord(
            id=new_id(),
            email=email,
            full_name=name,
            password_hash=password_hash,
            role=role.value,
            active=True,
            created_at=now,
            updated_at=now,
        )
        try:
            async with self.unit_of_work() as uow:
                if await uow.users.by_email(email) is not None:
                    raise EmailTaken("An account with this email exists already.")
                await uow.users.add(user)
                await uow.commit()
        except IntegrityViolation:
            # Two registrations raced past the check; the unique index kept one.
            raise EmailTaken("An account with this email exists already.") from None
        return user

    async def login(self, email: str, password: str) -> TokenPair:
        try:
            normalized = normalize_email(email)
        except InvalidArgument:
            normalized = ""
        user = await find_user_by_email(self.db, normalized) if normalized else None
        # Verify even for an unknown email, so timing does not tell which emails exist.
        valid = await asyncio.to_thread(
            self.passwords.verify, user.password_hash if user else None, password
        )
        if user is None or not valid:
            raise WrongCredentials("The email or password is wrong.")
        if not user.active:
            raise DeactivatedSignIn("This account is deactivated.")
        return await self._new_session(user, family_id=new_id())

    async def _new_session(self, user: UserRecord, family_id: str) -> TokenPair:
        """Tokens for `user` as checked by the caller, unless the account changed since.

        The account's row stays locked while the access token is issued: a deactivation, or a
        new role or password, either committed before (and is seen here) or waits, and then
        revokes a token issued before it (`_revoke_access`)."""
        refresh_token = new_refresh_token()
        now = utcnow()
        async with self.unit_of_work() as uow:
            current = await uow.users.get_locked(user.id)
            if current is None or not current.active:
                raise DeactivatedSignIn("This account is deactivated.")
            if (current.password_hash, current.tokens_revoked_at) != (
                user.password_hash,
                user.tokens_revoked_at,
            ):
                raise SessionSignedOut("The account changed while signing in; sign in again.")
            await uow.refresh_tokens.add(
                RefreshTokenRecord(
                    id=new_id(),
                    user_id=user.id,
                    family_id=family_id,
                    token_hash=hash_refresh_token(refresh_token),
                    created_at=now,
                    expires_at=now + self.refresh_ttl,
                    used_at=None,
                    revoked_at=None,
                )
            )
            access = self.access_tokens.issue(current.id, current.role)
            await uow.commit()
        return TokenPair(access.token, refresh_token, access.expires_in)

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Rotate: the presented token is spent; presenting a spent one revokes its family."""
        now = utcnow()
        async with self.unit_of_work() as uow:
            tokens = uow.refresh_tokens
            stored = await tokens.by_hash(hash_refresh_token(refresh_token))
            if stored is None:
                raise RefreshTokenInvalid("The refresh token is not valid.")
            if stored.revoked_at is not None and stored.used_at is None:
                # Signed out (logout, a new password, a deactivation), not stolen.
                raise SessionSignedOut("This session was signed out; sign in again.")
            reused = stored.used_at is not None
            if not reused and stored.expires_at <= now:
                raise RefreshTokenExpired("The refresh token has expired; sign in again.")
            if not reused and not await tokens.mark_used(stored.id, now):
                reused = True  # a concurrent refresh spent it first
            if reused:
                await tokens.revoke_family(stored.family_id, now)
            user = await uow.users.get(stored.user_id)
            await uow.commit()
        if reused:
            # Committed above: the revocation stands even though this call fails.
            logger.warning(
                "refresh token reuse; family revoked",
                extra={"user_id": stored.user_id, "family_id": stored.family_id},
            )
            raise RefreshTokenReused("The refresh token was used already; sign in again.")
        if user is None or not user.active:
            raise DeactivatedSignIn("This account is deactivated.")
        return await self._new_session(user, family_id=stored.family_id)

    async def logout(self, caller: Principal, refresh_token: str) -> None:
        principal = authorize(caller, *USERS)
        async with self.unit_of_work() as uow:
            stored = await uow.refresh_tokens.by_hash(hash_refresh_token(refresh_token))
            if stored is None or stored.user_id != principal.subject:
                raise InvalidArgument.for_field("refresh_token", "is not a token of this account")
            await uow.refresh_tokens.revoke_family(stored.family_id, utcnow())
            await uow.commit()

    async def issue_service_token(self, client_id: str, client_secret: str) -> IssuedToken:
        expected = self.service_clients.get(client_id)
        # compare_digest on a dummy keeps unknown ids as slow as wrong secrets.
        if (
            not hmac.compare_digest((expected or "\0").encode(), client_secret.encode())
            or not expected
        ):
            raise WrongCredentials("The client id or secret is wrong.")
        return self.access_tokens.issue(
            client_id, Role.SERVICE.value, ttl_seconds=self.service_token_ttl
        )

    # --- the caller's own account ----------------------------------------------------

    async def current_user(self, caller: Principal) -> UserRecord:
        principal = authorize(caller, *USERS)
        return await self._get(principal.subject)

    async def update_current_user(self, caller: Principal, changes: UserChanges) -> UserRecord:
        principal = authorize(caller, *USERS)
        if changes.role is not None or changes.active is not None:
            raise RoleNotAllowed("Role and status are changed by an admin.")
        await self._active(principal.subject)
        return await self._update(principal.subject, changes)

    async def change_password(
        self, caller: Principal, current_password: str, new_password: str
    ) -> None:
        principal = authorize(caller, *USERS)
        user = await self._active(principal.subject)
        if not await asyncio.to_thread(self.passwords.verify, user.password_hash, current_password):
            raise InvalidArgument.for_field("current_password", "is wrong")
        violations = password_violations(new_password, user.email, field="new_password")
        if new_password == current_password:
            violations.append(FieldViolation("new_password", "must differ from the current one"))
        if violations:
            raise InvalidArgument("The new password is not acceptable.", violations)
        password_hash = await asyncio.to_thread(self.passwords.hash, new_password)
        async with self.unit_of_work() as uow:
            stored = await uow.users.get(user.id)
            if stored is None:
                raise UserNotFound("No such user.")
            await uow.users.save(stored, replace(stored, password_hash=password_hash))
            # Every device signs in again with the new password, this one too: no access
            # token says which session it came from.
            await uow.refresh_tokens.revoke_all_of_user(user.id, utcnow())
            revoked = await self._revoke_access(uow, user.id)
            await uow.commit()
        await self._announce(user.id, revoked)

    # --- administration and other services ------------------------------------------

    async def list_users(
        self, caller: Principal, requested_size: int, page_token: str
    ) -> tuple[Sequence[UserRecord], str]:
        await self._admin(caller)
        limit = page_size(requested_size)
        after = self.page_tokens.decode(page_token, "users")[0] if page_token else None
        users = await page_of_users(self.db, after, limit + 1)
        next_token = (
            self.page_tokens.encode([users[limit - 1].id], "users") if len(users) > limit else ""
        )
        return users[:limit], next_token

    async def get_user(self, caller: Principal, user_id: str) -> UserRecord:
        """Any caller with a token: a person sees its own profile, admins and services any."""
        require_id(user_id)
        if not caller.is_privileged and caller.subject != user_id:
            raise RoleNotAllowed("Only admins see other users' profiles.")
        if caller.role is Role.ADMIN and caller.subject != user_id:
            await self._admin(caller)
        return await self._get(user_id)

    async def update_user(
        self, caller: Principal, user_id: str, changes: UserChanges
    ) -> UserRecord:
        principal = await self._admin(caller)
        if principal.subject == user_id and (
            (changes.role not in (None, Role.ADMIN)) or changes.active is False
        ):
            raise InvalidArgument.for_field("user", "admins cannot demote or deactivate themselves")
        return await self._update(user_id, changes)

    async def deactivate_user(self, caller: Principal, user_id: str) -> UserRecord:
        return await self.update_user(caller, user_id, UserChanges(active=False))

    async def is_user_active(self, caller: Principal, user_id: str) -> bool:
        """Any caller with a token: a person asks about itself, admins and services about
        anyone."""
        require_id(user_id)
        if not caller.is_privileged and caller.subject != user_id:
            raise RoleNotAllowed("Only services and admins ask about other users.")
        user = await load_user(self.db, user_id)
        return bool(user and user.active)

    async def ensure_admin(self, email: str, password: str) -> UserRecord:
        """Create the admin, or promote the existing account; idempotent."""
        normalized = normalize_email(email, field="BOOTSTRAP_ADMIN_EMAIL")
        if violations := password_violations(
            password, normalized, field="BOOTSTRAP_ADMIN_PASSWORD"
        ):
            raise InvalidArgument("The admin password is not acceptable.", violations)
        async with self.unit_of_work() as uow:
            existing = await uow.users.by_email(normalized)
            if existing is not None:
                admin = await uow.users.save(
                    existing, replace(existing, role=Role.ADMIN.value, active=True)
                )
                await uow.commit()
                return admin
        password_hash = await asyncio.to_thread(self.passwords.hash, password)
        try:
            return await self._create_user(normalized, password_hash, "Administrator", Role.ADMIN)
        except AlreadyExists:  # another replica made it meanwhile
            return await self.ensure_admin(email, password)

    # --- helpers ---------------------------------------------------------------------

    async def _get(self, user_id: str) -> UserRecord:
        user = await load_user(self.db, user_id)
        if user is None:
            raise UserNotFound(f"No user has id {quoted(user_id)}.")
        return user

    async def _admin(self, caller: Principal) -> Principal:
        """The caller, an admin by its token and still by its account: a token outlives a
        demotion or a deactivation, and an admin's powers must not (they include restoring
        its own)."""
        principal = authorize(caller, Role.ADMIN)
        user = await load_user(self.db, principal.subject)
        if user is None or not user.active or user.role != Role.ADMIN.value:
            raise AccountChanged("This account is no longer an active admin; sign in again.")
        return principal

    async def _active(self, user_id: str) -> UserRecord:
        """The caller's own account, refused once deactivated: an access token outlives the
        deactivation by up to its lifetime, and the account's owner may not change it."""
        user = await self._get(user_id)
        if not user.active:
            raise AccountDeactivated("This account is deactivated.")
        return user

    async def _update(self, user_id: str, changes: UserChanges) -> UserRecord:
        name = _check_name(changes.full_name) if changes.full_name is not None else None
        if changes.role is not None and changes.role not in USER_ROLES:
            raise InvalidArgument.for_field("role", "must be customer, seller or admin")
        async with self.unit_of_work() as uow:
            stored = await uow.users.get(user_id)
            if stored is None:
                raise UserNotFound(f"No user has id {quoted(user_id)}.")
            user = await uow.users.save(
                stored,
                replace(
                    stored,
                    full_name=stored.full_name if name is None else name,
                    role=stored.role if changes.role is None else changes.role.value,
                    active=stored.active if changes.active is None else changes.active,
                ),
            )
            revoked = None
            if changes.active is False:
                await uow.refresh_tokens.revoke_all_of_user(user.id, utcnow())
            if changes.active is False or user.role != stored.role:
                # A token says which role it speaks for: one of the old role must not outlive
                # the change, nor any token of a deactivated account.
                revoked = await self._revoke_access(uow, user.id)
            await uow.commit()
        if revoked is not None:
            await self._announce(user.id, revoked)
        return user

    async def _revoke_access(self, uow: AccountsUnitOfWork, user_id: str) -> float:
        """Void the user's access tokens issued until now, in the change's transaction; the
        moment, to announce once it commits."""
        now = time.time()
        await uow.users.revoke_access(user_id, datetime.fromtimestamp(now, UTC))
        return now

    async def _announce(self, user_id: str, before: float) -> None:
        logger.info("access tokens revoked", extra={"user_id": user_id})
        if self.revocations is not None:
            await self.revocations.announce(user_id, before)

    async def recent_revocations(self, within: timedelta) -> dict[str, float]:
        """Every revocation made less than `within` ago, by user: those that may still
        concern a live token, for a starting user service to announce again."""
        return await recent_revocations(self.db, utcnow() - within)
