"""REST API tokens: random secrets of which only the SHA-256 is stored, each with a scope
("read": GET and HEAD only; "write") and an optional expiry; made only from a logged-in
browser session or the CLI, revoked one by one or all at once with a password reset or
change or a disabled account (storage/users.py)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from netlens.storage import identity_cache
from netlens.storage.db import Database
from netlens.storage.models import ApiToken, User, utcnow
from netlens.storage.throttle import aware as _aware
from netlens.storage.users import Actor, Forbidden, UserError, UserInfo, _digest, _info

TOKEN_SCOPES = ("read", "write")
MAX_TOKEN_LIFETIME = timedelta(days=366)
TOKEN_PREFIX = "nl_"


@dataclass(frozen=True)
class TokenInfo:
    id: int
    user_id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    scope: str = "write"
    expires_at: datetime | None = None


def create_token(
    db: Database,
    user_id: int,
    name: str = "",
    scope: str = "write",
    expires_at: datetime | None = None,
) -> tuple[int, str]:
    """A new token; the secret is returned once and never stored. Only a logged-in browser
    session or the CLI calls this (a token cannot make tokens)."""
    if len(name) > 100:
        raise UserError("token name: at most 100 characters")
    if scope not in TOKEN_SCOPES:
        raise UserError("scope: 'read' (GET only) or 'write'")
    now = utcnow()
    if expires_at is not None and not now < _aware(expires_at) <= now + MAX_TOKEN_LIFETIME:
        raise UserError("expires: a moment from now to at most 366 days ahead")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with db.session() as s:
        if s.get(User, user_id) is None:
            raise UserError(f"user: no user with id {user_id}")
        row = ApiToken(
            user_id=user_id,
            name=name,
            token_hash=_digest(secret),
            scope=scope,
            expires_at=expires_at,
        )
        s.add(row)
        s.flush()
        return row.id, secret


def list_tokens(db: Database, user_id: int | None = None) -> list[TokenInfo]:
    with db.session() as s:
        query = select(ApiToken).order_by(ApiToken.id)
        if user_id is not None:
            query = query.where(ApiToken.user_id == user_id)
        return [
            TokenInfo(
                t.id,
                t.user_id,
                t.name,
                _aware(t.created_at),
                _aware(t.last_used_at),
                _aware(t.revoked_at),
                t.scope,
                _aware(t.expires_at),
            )
            for t in s.scalars(query)
        ]


def revoke_token(db: Database, token_id: int, actor: Actor) -> None:
    with db.session() as s:
        row = s.get(ApiToken, token_id)
        if row is None:
            raise UserError(f"token: no token with id {token_id}")
        if not actor.is_admin and row.user_id != actor.id:
            raise Forbidden("only its owner or an admin can revoke a token")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
    identity_cache.revoked()


def token_access(db: Database, secret: str | None) -> tuple[UserInfo, str] | None:
    """The enabled user of a live token (not revoked, not expired) and its scope, or None."""
    if not secret or not secret.startswith(TOKEN_PREFIX) or len(secret) > 100:
        return None
    now = utcnow()
    with db.session() as s:  # one query for the token and its user: this runs per request
        found = s.execute(
            select(ApiToken, User)
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.token_hash == _digest(secret))
        ).first()
        if found is None:
            return None
        row, user = found
        if row.revoked_at is not None or user.disabled:
            return None
        if row.expires_at is not None and _aware(row.expires_at) <= now:
            return None
        if row.last_used_at is None or now - _aware(row.last_used_at) > timedelta(minutes=1):
            s.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
        return _info(user), row.scope


def token_user(db: Database, secret: str | None) -> UserInfo | None:
    """The enabled user of a live token, or None."""
    found = token_access(db, secret)
    return found[0] if found else None
