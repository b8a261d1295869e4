"""The login throttle on SQLite and PostgreSQL: growing delays per (name, address), a cap per
address, the right password from a fresh address, and parallel guesses that cannot pass the
limit because counting and checking are one UPDATE."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from netlens.storage import throttle, users
from netlens.storage.models import utcnow
from netlens.storage.throttle import Policy, RateLimited

PASSWORD = "a long enough password"


def fail(db, name, address, now=None, policy=throttle.DEFAULT):
    with pytest.raises(users.AuthFailed):
        users.authenticate(db, name, "wrong password", address, now=now, policy=policy)


def failures(db, key):
    return {t.key: t.failures for t in throttle.list_throttles(db)}.get(key, 0)


def test_delays_grow_per_name_and_address_and_a_fresh_address_still_logs_in(db):
    users.create_user(db, "erin", PASSWORD)
    now = utcnow()
    for _ in range(4):  # 3 free, the 4th blocks 2 s
        fail(db, "erin", "10.0.0.1", now=now)
    with pytest.raises(RateLimited) as refused:
        users.authenticate(db, "erin", PASSWORD, "10.0.0.1", now=now)
    assert refused.value.retry_after_s == 2
    assert users.authenticate(db, "erin", PASSWORD, "10.0.0.2", now=now).name == "erin"
    later = now + timedelta(seconds=2)
    fail(db, "erin", "10.0.0.1", now=later)  # the 5th: blocked 4 s
    with pytest.raises(RateLimited) as refused:
        users.authenticate(db, "erin", PASSWORD, "10.0.0.1", now=later + timedelta(seconds=3))
    assert refused.value.retry_after_s == 1
    ok_at = later + timedelta(seconds=4)
    assert users.authenticate(db, "erin", PASSWORD, "10.0.0.1", now=ok_at).name == "erin"
    assert failures(db, "n|erin|10.0.0.1") == 0  # a success forgets the name's failures


def test_the_delay_is_capped_and_a_quiet_window_forgets(db):
    policy, now = Policy(free_failures=1, max_delay_s=5), utcnow()
    throttle.reserve(db, "hal", "10.5.5.5", policy, now=now)  # the free failure
    waits = []
    for _ in range(4):
        throttle.reserve(db, "hal", "10.5.5.5", policy, now=now)  # allowed, then blocks
        with pytest.raises(RateLimited) as refused:
            throttle.reserve(db, "hal", "10.5.5.5", policy, now=now)
        waits.append(refused.value.retry_after_s)
        now += timedelta(seconds=refused.value.retry_after_s)
    assert waits == [2, 4, 5, 5]
    quiet = now + policy.window + timedelta(seconds=1)
    throttle.reserve(db, "hal", "10.5.5.5", policy, now=quiet)  # counted from 1 again: free
    throttle.reserve(db, "hal", "10.5.5.5", policy, now=quiet)  # the 2nd blocks 2 s...
    with pytest.raises(RateLimited):
        throttle.reserve(db, "hal", "10.5.5.5", policy, now=quiet)


def test_an_address_is_capped_across_names(db):
    policy = Policy(address_limit=5)
    for i in range(5):
        fail(db, f"nobody{i}", "10.1.1.1", policy=policy)
    with pytest.raises(RateLimited) as refused:
        users.authenticate(db, "someone", PASSWORD, "10.1.1.1", policy=policy)
    assert 800 < refused.value.retry_after_s <= 900
    assert failures(db, "a|10.1.1.1") == 5  # a refused attempt counts nothing
    later = utcnow() + policy.window + timedelta(seconds=1)
    fail(db, "nobody", "10.1.1.1", now=later, policy=policy)  # the window is over: counted anew
    assert {t.key: t.failures for t in throttle.list_throttles(db, now=later)}["a|10.1.1.1"] == 1


def test_a_right_password_gives_the_address_reservation_back(db):
    users.create_user(db, "fay", PASSWORD)
    fail(db, "fay", "10.2.2.2")
    users.authenticate(db, "fay", PASSWORD, "10.2.2.2")
    assert failures(db, "a|10.2.2.2") == 1 and failures(db, "n|fay|10.2.2.2") == 0


def test_parallel_guesses_never_pass_the_limit(db):
    """40 threads reserve at once: the name+address key lets through only the free failures
    and the one that starts the block; the address key at most its limit."""
    policy = Policy(free_failures=3, address_limit=30)
    barrier, refused = threading.Barrier(40), []

    def guess(i):
        barrier.wait()
        try:
            throttle.reserve(db, "root" if i % 2 else f"user{i}", "10.3.3.3", policy)
        except RateLimited:
            refused.append(i)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counted = {t.key: t.failures for t in throttle.list_throttles(db)}
    assert counted["n|root|10.3.3.3"] == 4  # 3 free + the 4th, which starts the block
    assert counted["a|10.3.3.3"] <= 30
    assert counted["a|10.3.3.3"] == 40 - len(refused)


def test_admins_see_and_clear_throttles(db):
    fail(db, "gus", "10.4.4.4")
    keys = {t.key: t for t in throttle.list_throttles(db)}
    assert keys["n|gus|10.4.4.4"].kind == throttle.NAME_ADDRESS
    assert keys["n|gus|10.4.4.4"].name == "gus" and keys["a|10.4.4.4"].address == "10.4.4.4"
    assert throttle.clear(db, "n|gus|10.4.4.4") == 1
    assert "n|gus|10.4.4.4" not in {t.key for t in throttle.list_throttles(db)}
    assert throttle.clear(db) >= 1 and throttle.list_throttles(db) == []


def test_stale_keys_are_pruned(db):
    policy, now = Policy(), utcnow()
    throttle.reserve(db, "ivy", "10.6.6.6", policy, now=now)
    assert throttle.prune(db, policy, now=now) == 0  # fresh: kept
    later = now + policy.window + timedelta(seconds=1)
    assert throttle.prune(db, policy, now=later) == 2  # quiet for a window: both keys go
    assert throttle.list_throttles(db, now=later) == []
