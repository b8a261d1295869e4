"""Login throttles: failed password checks counted per (name, address) and per address.

Each attempt first *reserves* a failure with one conditional UPDATE per key (count and check
in the same statement, so parallel guesses cannot pass the limit); a right password clears
the (name, address) key and gives the reservation on the address key back. No transaction
stays open while the password hash is verified (SQLite writers would wait on Argon2).
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, case, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from netlens.storage.db import Database
from netlens.storage.models import LoginThrottle, utcnow

NAME_ADDRESS, ADDRESS = "name+address", "address"
PRUNE_EVERY = 200  # about one attempt in this many also deletes stale keys


class RateLimited(Exception):
    def __init__(self, retry_after_s: int):
        super().__init__(f"too many failed attempts; try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Policy:
    """free_failures per (name, address) pass at once; failure n after them waits
    2^(n - free) s (at most max_delay_s), and the count is forgotten after a quiet window
    (no attempt); an address may fail address_limit times per window (from its first
    failure), across all names."""

    free_failures: int = 3
    max_delay_s: int = 900
    address_limit: int = 30
    window: timedelta = timedelta(minutes=15)

    @classmethod
    def from_settings(cls, settings) -> Policy:
        return cls(
            settings.login_free_failures,
            settings.login_max_delay_seconds,
            settings.login_address_limit,
            timedelta(minutes=settings.login_window_minutes),
        )


DEFAULT = Policy()


@dataclass(frozen=True)
class ThrottleInfo:
    key: str
    kind: str
    name: str
    address: str
    failures: int
    window_start: datetime
    blocked_until: datetime | None
    updated_at: datetime


def _keys(name: str, address: str) -> tuple[tuple[str, str, str, str], ...]:
    name, address = (name or "")[:80], (address or "?")[:64]
    return (
        (f"a|{address}", ADDRESS, "", address),
        (f"n|{name}|{address}", NAME_ADDRESS, name, address),
    )


def aware(moment: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes (stored as UTC)."""
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=UTC)


def _insert_missing(
    s, db: Database, key: str, kind: str, name: str, address: str, now: datetime
) -> None:
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    s.execute(
        dialect.insert(LoginThrottle)
        .values(
            key=key,
            kind=kind,
            name=name,
            address=address,
            failures=0,
            window_start=now,
            blocked_until=None,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["key"])
    )


def _delay(failures, policy: Policy, now: datetime):
    """blocked_until after `failures` (a SQL expression) failures: NULL while free, then
    doubling from 2 s up to the cap (a CASE: SQLite has no portable power function)."""
    steps, n, seconds = [], policy.free_failures + 1, 2
    while seconds < policy.max_delay_s:
        steps.append((failures == n, now + timedelta(seconds=seconds)))
        n, seconds = n + 1, seconds * 2
    return case(
        (failures <= policy.free_failures, None),
        *steps,
        else_=now + timedelta(seconds=policy.max_delay_s),
    )


def _reserve_key(s, key: str, kind: str, policy: Policy, now: datetime) -> bool:
    """Count one failure on `key` unless it is blocked or at its limit: True when counted."""
    t = LoginThrottle
    # an address's window is fixed (N per window); a name's runs while the guessing goes on
    expired = (t.window_start if kind == ADDRESS else t.updated_at) <= now - policy.window
    failures = case((expired, 1), else_=t.failures + 1)
    allowed = or_(t.blocked_until.is_(None), t.blocked_until <= now)
    if kind == ADDRESS:
        allowed, blocked = and_(allowed, t.failures < policy.address_limit), None
    else:
        blocked = _delay(failures, policy, now)
    result = s.execute(
        update(t)
        .where(t.key == key, or_(expired, allowed))
        .values(
            failures=failures,
            window_start=case((expired, now), else_=t.window_start),
            blocked_until=blocked,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def reserve(
    db: Database, name: str, address: str, policy: Policy = DEFAULT, now: datetime | None = None
) -> None:
    """Count this attempt as a failure in advance, or raise RateLimited (nothing counted)."""
    now = now or utcnow()
    if secrets.randbelow(PRUNE_EVERY) == 0:  # stale keys go now and then, not per request
        prune(db, policy, now)
    (a_key, a_kind, _, address), (n_key, n_kind, name, _) = _keys(name, address)
    with db.session() as s:
        _insert_missing(s, db, a_key, a_kind, "", address, now)
        _insert_missing(s, db, n_key, n_kind, name, address, now)
        if _reserve_key(s, a_key, a_kind, policy, now):
            if _reserve_key(s, n_key, n_kind, policy, now):
                return
            _give_back(s, a_key)
    raise RateLimited(retry_after(db, name, address, policy, now))


def _give_back(s, key: str) -> None:
    t = LoginThrottle
    s.execute(
        update(t)
        .where(t.key == key, t.failures > 0)
        .values(failures=t.failures - 1)
        .execution_options(synchronize_session=False)
    )


def succeeded(db: Database, name: str, address: str) -> None:
    """The password was right: forget this name's failures from this address and return
    the address's reservation (its other failures stay)."""
    (a_key, *_), (n_key, *_) = _keys(name, address)
    with db.session() as s:
        s.execute(delete(LoginThrottle).where(LoginThrottle.key == n_key))
        _give_back(s, a_key)


def retry_after(
    db: Database, name: str, address: str, policy: Policy = DEFAULT, now: datetime | None = None
) -> int:
    """Seconds until both keys of this name and address accept an attempt again."""
    now = now or utcnow()
    keys = [k for k, *_ in _keys(name, address)]
    wait = 0.0
    with db.session() as s:
        for row in s.scalars(select(LoginThrottle).where(LoginThrottle.key.in_(keys))):
            until = aware(row.blocked_until)
            if until and until > now:
                wait = max(wait, (until - now).total_seconds())
            if row.kind == ADDRESS and row.failures >= policy.address_limit:
                end = aware(row.window_start) + policy.window
                wait = max(wait, (end - now).total_seconds())
    return max(1, math.ceil(wait))


# ---- admin ---------------------------------------------------------------------------------


def list_throttles(
    db: Database, now: datetime | None = None, policy: Policy = DEFAULT
) -> list[ThrottleInfo]:
    """Keys with recent failures or a block still running, the most recent first."""
    now = now or utcnow()
    t = LoginThrottle
    with db.session() as s:
        rows = s.scalars(
            select(t)
            .where(t.failures > 0, or_(t.updated_at > now - policy.window, t.blocked_until > now))
            .order_by(LoginThrottle.updated_at.desc())
            .limit(500)
        )
        return [
            ThrottleInfo(
                r.key,
                r.kind,
                r.name,
                r.address,
                r.failures,
                aware(r.window_start),
                aware(r.blocked_until),
                aware(r.updated_at),
            )
            for r in rows
        ]


def clear(db: Database, key: str | None = None) -> int:
    """Forget one key (or every key when None); the number of keys removed."""
    with db.session() as s:
        query = delete(LoginThrottle)
        if key is not None:
            query = query.where(LoginThrottle.key == key)
        return s.execute(query).rowcount or 0


def prune(db: Database, policy: Policy = DEFAULT, now: datetime | None = None) -> int:
    """Delete keys quiet for a window and not blocked (they would reset anyway)."""
    now = now or utcnow()
    t = LoginThrottle
    with db.session() as s:
        return (
            s.execute(
                delete(t).where(
                    t.updated_at <= now - policy.window,
                    or_(t.blocked_until.is_(None), t.blocked_until <= now),
                )
            ).rowcount
            or 0
        )
