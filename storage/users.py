"""Accounts: users with Argon2id password hashes, browser sessions, logins through the throttle
(storage/throttle.py), and the one authorization rule for changing a run (owner or admin).
API tokens: storage/tokens.py.

Secrets (session cookies, API tokens) are random 256-bit strings; only their SHA-256 is
stored, so a copy of the database lets no one log in.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update

from netlens.storage import identity_cache, throttle
from netlens.storage.db import Database
from netlens.storage.models import ApiToken, Run, RunGroup, User, WebSession, utcnow
from netlens.storage.throttle import DEFAULT, Policy, RateLimited  # noqa: F401 (re-exported)
from netlens.storage.throttle import aware as _aware

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,39}$")
MIN_PASSWORD, MAX_PASSWORD = 10, 256
SESSION_TTL = timedelta(days=7)
SESSION_IDLE = timedelta(minutes=480)  # the default of NETLENS_SESSION_IDLE_MINUTES

# argon2-cffi's defaults are Argon2id (RFC 9106 low-memory profile: t=3, m=64 MiB, p=4)
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a password of anyone")


class UserError(ValueError):
    """Bad input for an account operation; the message names the field and the limit."""


class AuthFailed(Exception):
    """Wrong name or password (never says which), or a disabled account."""


class Forbidden(PermissionError):
    """The actor may not do this; the message says why."""


@dataclass(frozen=True)
class UserInfo:
    id: int
    name: str
    is_admin: bool
    disabled: bool
    created_at: datetime


@dataclass(frozen=True)
class Actor:
    """Who is asking: a user, or the single-user mode's local operator (id None, admin)."""

    id: int | None
    name: str
    is_admin: bool

    @classmethod
    def of(cls, user: UserInfo) -> Actor:
        return cls(user.id, user.name, user.is_admin)


LOCAL = Actor(None, "local", True)


# API tokens live in storage/tokens.py; these names are still reachable from here.
_MOVED_TO_TOKENS = frozenset(
    {
        "TOKEN_PREFIX",
        "TOKEN_SCOPES",
        "MAX_TOKEN_LIFETIME",
        "TokenInfo",
        "create_token",
        "list_tokens",
        "revoke_token",
        "token_access",
        "token_user",
    }
)


def __getattr__(name: str):
    if name in _MOVED_TO_TOKENS:
        from netlens.storage import tokens

        return getattr(tokens, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _info(user: User) -> UserInfo:
    return UserInfo(user.id, user.name, user.is_admin, user.disabled, user.created_at)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def hash_password(password: str) -> str:
    check_password(password)
    return _hasher.hash(password)


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name or ""):
        raise UserError(
            "name: 2 to 40 characters: lower-case letters, digits, '.', '_' or "
            "'-', starting with a letter or digit"
        )
    return name


def check_password(password: str) -> None:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise UserError(f"password: {MIN_PASSWORD} to {MAX_PASSWORD} characters")


# ---- users ---------------------------------------------------------------------------------


def create_user(db: Database, name: str, password: str, is_admin: bool = False) -> UserInfo:
    check_name(name)
    password_hash = hash_password(password)
    with db.session() as s:
        if s.scalar(select(User.id).where(User.name == name)) is not None:
            raise UserError(f"name: a user named {name!r} already exists")
        user = User(name=name, password_hash=password_hash, is_admin=is_admin, disabled=False)
        s.add(user)
        s.flush()
        return _info(user)


def get_user(db: Database, user_id: int) -> UserInfo | None:
    with db.session() as s:
        user = s.get(User, user_id)
        return _info(user) if user else None


def get_user_by_name(db: Database, name: str) -> UserInfo | None:
    with db.session() as s:
        user = s.scalar(select(User).where(User.name == name))
        return _info(user) if user else None


def list_users(db: Database) -> list[UserInfo]:
    with db.session() as s:
        return [_info(u) for u in s.scalars(select(User).order_by(User.name))]


def user_names(db: Database) -> dict[int, str]:
    with db.session() as s:
        return dict(s.execute(select(User.id, User.name)).all())


def count_users(db: Database) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(User)) or 0


def _require_user(s, name: str) -> User:
    user = s.scalar(select(User).where(User.name == name))
    if user is None:
        raise UserError(f"name: no user named {name!r}")
    return user


def _revoke_all_tokens(s, user_id: int) -> None:
    s.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def set_password(db: Database, name: str, password: str) -> None:
    """Set a new password (admin or CLI): every session and API token of the user ends (the
    reset may be because the old secrets leaked)."""
    password_hash = hash_password(password)
    with db.session() as s:
        user = _require_user(s, name)
        user.password_hash, user.password_changed_at = password_hash, utcnow()
        s.execute(delete(WebSession).where(WebSession.user_id == user.id))
        _revoke_all_tokens(s, user.id)
    identity_cache.revoked()  # after the commit: no cache keeps the old identity


def change_password(
    db: Database,
    user_id: int,
    old: str,
    new: str,
    keep_session: str | None = None,
    address: str | None = None,
    policy: Policy = DEFAULT,
) -> None:
    """The user's own change: the old password must match, checked through the login
    throttle when `address` is given (RateLimited). Other sessions and all tokens end."""
    check_password(new)
    with db.session() as s:
        user = s.get(User, user_id)
        name, stored = (user.name, user.password_hash) if user else ("", _DUMMY_HASH)
    if address is not None:
        throttle.reserve(db, name, address, policy)
    if user is None or not _verify(stored, old or ""):
        raise UserError("current password: does not match")
    if address is not None:
        throttle.succeeded(db, name, address)
    if old == new:
        raise UserError("new password: must differ from the current one")
    with db.session() as s:
        s.execute(
            update(User)
            .where(User.id == user_id)
            .values(password_hash=_hasher.hash(new), password_changed_at=utcnow())
        )
        query = delete(WebSession).where(WebSession.user_id == user_id)
        if keep_session:
            query = query.where(WebSession.token_hash != _digest(keep_session))
        s.execute(query)
        _revoke_all_tokens(s, user_id)
    identity_cache.revoked()  # after the commit: no cache keeps the old identity


def set_disabled(db: Database, name: str, disabled: bool = True) -> None:
    """A disabled user cannot log in; their sessions end and their tokens are revoked (so
    enabling them again does not bring old tokens back)."""
    with db.session() as s:
        user = _require_user(s, name)
        user.disabled = disabled
        if disabled:
            s.execute(delete(WebSession).where(WebSession.user_id == user.id))
            _revoke_all_tokens(s, user.id)
    identity_cache.revoked()  # after the commit: no cache keeps the old identity


def set_admin(db: Database, name: str, is_admin: bool) -> None:
    with db.session() as s:
        _require_user(s, name).is_admin = is_admin
    identity_cache.revoked()  # after the commit: no cache keeps the old identity


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# ---- login ---------------------------------------------------------------------------------


def authenticate(
    db: Database,
    name: str,
    password: str,
    address: str,
    now: datetime | None = None,
    policy: Policy = DEFAULT,
) -> UserInfo:
    """The user for this name and password, or AuthFailed / RateLimited. The attempt is
    reserved in the throttle first (per name+address and per address, storage/throttle.py);
    the hash is verified with no transaction open."""
    name = (name or "")[:80]
    throttle.reserve(db, name, address, policy, now)
    with db.session() as s:
        user = s.scalar(select(User).where(User.name == name))
        stored = (user.password_hash, user.disabled, _info(user)) if user else None
    ok = _verify(stored[0] if stored else _DUMMY_HASH, password or "")
    if not ok or stored is None or stored[1]:
        raise AuthFailed("wrong user name or password")  # the reservation stays counted
    throttle.succeeded(db, name, address)
    if _hasher.check_needs_rehash(stored[0]):
        with db.session() as s:
            s.execute(
                update(User)
                .where(User.id == stored[2].id)
                .values(password_hash=_hasher.hash(password))
            )
    return stored[2]


# ---- browser sessions ----------------------------------------------------------------------


def create_session(db: Database, user_id: int, ttl: timedelta = SESSION_TTL) -> str:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    with db.session() as s:
        s.add(
            WebSession(
                token_hash=_digest(token),
                user_id=user_id,
                created_at=now,
                last_seen_at=now,
                expires_at=now + ttl,
            )
        )
    return token


def session_user(
    db: Database, token: str | None, idle: timedelta = SESSION_IDLE, now: datetime | None = None
) -> UserInfo | None:
    """The live, enabled user of this session token, or None. A session unused for `idle`
    ends; last use is written at most every idle/20 (at most 5 min), so a session ends
    within 5 % of `idle` of its last request."""
    if not token or len(token) > 100:
        return None
    now = now or utcnow()
    with db.session() as s:  # one query for the session and its user: this runs per request
        found = s.execute(
            select(WebSession, User)
            .join(User, User.id == WebSession.user_id)
            .where(WebSession.token_hash == _digest(token))
        ).first()
        if found is None:
            return None
        row, user = found
        seen = _aware(row.last_seen_at)
        if _aware(row.expires_at) <= now or now - seen > idle:
            s.delete(row)
            return None
        if user.disabled:
            return None
        if now - seen > min(idle / 20, timedelta(minutes=5)):
            row.last_seen_at = now
        return _info(user)


def end_session(db: Database, token: str | None) -> None:
    if token:
        with db.session() as s:
            s.execute(delete(WebSession).where(WebSession.token_hash == _digest(token)))
    identity_cache.revoked()  # after the commit: no cache keeps the old identity


# ---- authorization -------------------------------------------------------------------------


def run_owner(db: Database, run_id: int) -> int | None:
    """The owner of a run, from the database (LookupError when the run does not exist)."""
    with db.session() as s:
        row = s.execute(select(Run.owner_id).where(Run.id == run_id)).first()
    if row is None:
        from netlens.storage.runs import RunNotFound

        raise RunNotFound(run_id)
    return row[0]


def require_run_owner(db: Database, actor: Actor, run_id: int, action: str = "change") -> None:
    """Members may read every run but cancel, retry, edit or delete only their own; admins
    (and the single-user mode's local operator) anything. Raises Forbidden."""
    owner = run_owner(db, run_id)
    if actor.is_admin:
        return
    if owner is None or owner != actor.id:
        raise Forbidden(
            f"run {run_id} belongs to another user: only its owner or an admin can {action} it"
        )


def require_group_owner(db: Database, actor: Actor, group_id: int, action: str = "change") -> None:
    with db.session() as s:
        row = s.execute(select(RunGroup.owner_id).where(RunGroup.id == group_id)).first()
    if row is None:
        raise UserError(f"group: no group {group_id}")
    if not actor.is_admin and (row[0] is None or row[0] != actor.id):
        raise Forbidden(
            f"group {group_id} belongs to another user: only its owner or an admin can {action} it"
        )
