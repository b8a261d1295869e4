"""Who a session cookie or an API token belongs to, remembered for a few seconds.

Every request of the web process is identified (webapp/auth.py), and reading the session or
token row with its user costs one transaction: on PostgreSQL ~1.5-2 ms, most of a request's
guard (docs/performance.md, "Request guard"). The web process keeps the answer for
`NETLENS_IDENTITY_CACHE_SECONDS` (default 2 s; 0 turns the cache off).

What that delays, and what it does not:
- In this process, any change that can take an identity away (logout, a password set or
  changed, a user disabled or made a member, a token revoked) calls `revoked()`, which
  forgets every cached identity at once: the next request reads the database again.
- In another process of the same server (several web processes, or the CLI), such a
  change reaches this process's cache after at most the cache's lifetime.
- A session's idle timeout and expiry, and a token's expiry, are checked when the row is
  read: they may be late by the same few seconds.
- Failed lookups are never remembered (a random token is a database read every time, and
  the login throttle is elsewhere), and the key is a SHA-256 of the secret, not the secret.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

MAX_ENTRIES = 10_000  # beyond this the cache starts again empty (a flood of fresh sessions)
_generation = 0
_generation_lock = threading.Lock()


def revoked() -> None:
    """An identity may have been taken away: every cache in this process forgets all."""
    global _generation
    with _generation_lock:
        _generation += 1


class IdentityCache:
    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        self.seconds = seconds
        self.clock = clock
        self._entries: dict[bytes, tuple[float, object]] = {}
        self._generation = _generation
        self._lock = threading.Lock()

    def get(self, kind: str, secret: str | None, load: Callable[[], T | None]) -> T | None:
        """load()'s answer for this secret, from the cache when it is fresh."""
        if self.seconds <= 0 or not secret:
            return load()
        key = hashlib.sha256(f"{kind}\0{secret}".encode()).digest()
        now = self.clock()
        with self._lock:
            if self._generation != _generation:
                self._entries.clear()
                self._generation = _generation
            entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]  # type: ignore[return-value]
        generation = _generation
        value = load()
        with self._lock:
            if value is not None and generation == _generation == self._generation:
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries.clear()
                self._entries[key] = (now + self.seconds, value)
        return value
