"""The web process's identity cache (storage/identity_cache.py): what it keeps, for how long,
and that a revocation in this process is seen by the very next request."""

from __future__ import annotations

from netlens.storage import identity_cache
from netlens.storage.identity_cache import IdentityCache


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def counting(value):
    calls = []

    def load():
        calls.append(1)
        return value

    return load, calls


def test_a_found_identity_is_kept_for_its_lifetime_then_read_again():
    clock = Clock()
    cache = IdentityCache(2.0, clock)
    load, calls = counting("alice")
    assert [cache.get("session", "s1", load) for _ in range(5)] == ["alice"] * 5
    assert len(calls) == 1
    clock.now += 1.9
    assert cache.get("session", "s1", load) == "alice" and len(calls) == 1
    clock.now += 0.2
    assert cache.get("session", "s1", load) == "alice" and len(calls) == 2


def test_kinds_and_secrets_are_kept_apart_and_misses_are_never_kept():
    cache = IdentityCache(2.0, Clock())
    assert cache.get("session", "abc", lambda: "alice") == "alice"
    assert cache.get("token", "abc", lambda: "bob") == "bob"  # same secret, other kind
    assert cache.get("session", "abd", lambda: None) is None
    load, calls = counting(None)
    for _ in range(3):
        assert cache.get("session", "nobody", load) is None
    assert len(calls) == 3
    assert cache.get("session", None, lambda: "operator") == "operator"  # no secret: no key
    assert all(b"abc" not in key for key in cache._entries)  # digests, not secrets


def test_a_revocation_in_this_process_empties_every_cache_at_once():
    one, two = IdentityCache(60.0, Clock()), IdentityCache(60.0, Clock())
    assert one.get("session", "s", lambda: "alice") == "alice"
    assert two.get("token", "t", lambda: "alice") == "alice"
    identity_cache.revoked()
    assert one.get("session", "s", lambda: None) is None
    assert two.get("token", "t", lambda: None) is None


def test_a_load_that_raced_a_revocation_is_not_kept():
    cache = IdentityCache(60.0, Clock())

    def load_then_revoke():  # the old identity read, then revoked before it is stored
        identity_cache.revoked()
        return "alice (old)"

    assert cache.get("session", "s", load_then_revoke) == "alice (old)"
    assert cache.get("session", "s", lambda: None) is None


def test_zero_seconds_turns_it_off():
    cache = IdentityCache(0, Clock())
    load, calls = counting("alice")
    for _ in range(3):
        cache.get("session", "s", load)
    assert len(calls) == 3
