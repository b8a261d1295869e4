"""Per-user limits (storage/limits.py) on SQLite and PostgreSQL: effective values, the checks
inside the submitting transaction, a burst of parallel submits, unused uploads."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from netlens.storage import jobs, limits
from netlens.storage.groups import create_group
from netlens.storage.jobs import submit
from netlens.storage.limits import LimitError, LimitExceeded
from netlens.storage.models import Job, Run, RunGroup, Upload, User, utcnow
from netlens.storage.settings import Settings
from netlens.storage.uploads import save_upload, uploads_dir
from tests.conftest import small_spec

CSV = b"x1,x2,label\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n"


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(
        home=tmp_path,
        database_url=None,
        broker_url=None,
        max_active_jobs_per_user=3,
        max_sweep_runs=4,
        max_uploads_per_user=2,
        max_upload_bytes_per_user=100,
        team_job_time_limit_seconds=600,
    )


def add_user(db, name: str, is_admin: bool = False) -> int:
    with db.session() as s:
        user = User(name=name, password_hash="-", is_admin=is_admin)
        s.add(user)
        s.flush()
        return user.id


def active(db, user_id: int) -> int:
    return limits.usage(db, user_id)["active_jobs"]


def test_effective_value_is_user_then_team_then_default(db, settings):
    alice, root = add_user(db, "alice"), add_user(db, "root", is_admin=True)
    assert limits.effective_limits(db, settings, alice)["active_jobs"] == 3
    limits.set_team_limit(db, "active_jobs", "7")
    assert limits.effective_limits(db, settings, alice)["active_jobs"] == 7
    limits.set_user_limit(db, alice, "active_jobs", 9)
    assert limits.effective_limits(db, settings, alice)["active_jobs"] == 9
    limits.set_user_limit(db, alice, "active_jobs", "default")
    limits.set_team_limit(db, "active_jobs", "default")
    assert limits.effective_limits(db, settings, alice)["active_jobs"] == 3
    assert limits.user_overrides(db, alice) == {}
    assert limits.effective_limits(db, settings, root) is None  # admins are not limited
    assert limits.effective_limits(db, settings, None) is None  # nor the CLI / single user


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("jobs", "3", "is not one of"),
        ("active_jobs", "-1", "whole number"),
        ("active_jobs", "2.5", "whole number"),
        ("active_jobs", "many", "not a number"),
    ],
)
def test_bad_names_and_values_are_refused_naming_them(db, settings, name, value, message):
    with pytest.raises(LimitError, match=message):
        limits.set_team_limit(db, name, value)


def test_byte_values_take_binary_units_and_team_only_limits_stay_team_wide(db, settings):
    alice = add_user(db, "alice")
    assert limits.set_team_limit(db, "upload_bytes", "2 GiB") == 2 * 2**30
    with pytest.raises(LimitError, match="team-wide"):
        limits.set_user_limit(db, alice, "unused_upload_hours", "1")


def test_jobs_over_the_limit_are_refused_and_nothing_is_created(db, settings):
    alice = add_user(db, "alice")
    for _ in range(3):
        submit(db, small_spec(), owner_id=alice, limits=settings)
    with pytest.raises(LimitExceeded) as caught:
        submit(db, small_spec(), owner_id=alice, limits=settings)
    assert caught.value.status == 429
    assert str(caught.value) == (
        "queued and running jobs: alice has 3 of at most 3; wait for one to finish or cancel one"
    )
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Run)) == 3
    jobs.request_cancel(db, 1)  # a finished job frees its place
    submit(db, small_spec(), owner_id=alice, limits=settings)
    assert active(db, alice) == 3


def test_a_sweep_counts_all_its_runs_and_is_created_whole_or_not_at_all(db, settings):
    alice = add_user(db, "alice")
    submit(db, small_spec(), owner_id=alice, limits=settings)
    specs = [small_spec(training={"seed": k}) for k in range(3)]
    with pytest.raises(LimitExceeded, match="has 1 of at most 3, and this sweep adds 3"):
        create_group(
            db,
            "g",
            specs[0],
            [("training.seed", [0, 1, 2])],
            specs,
            owner_id=alice,
            limits=settings,
        )
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(RunGroup)) == 0
    assert active(db, alice) == 1


def test_retrying_counts_against_the_owner_and_admins_are_not_limited(db, settings):
    alice, root = add_user(db, "alice"), add_user(db, "root", is_admin=True)
    first = submit(db, small_spec(), owner_id=alice, limits=settings).run_id
    jobs.request_cancel(db, first)
    for _ in range(3):
        submit(db, small_spec(), owner_id=alice, limits=settings)
    with pytest.raises(LimitExceeded, match="alice has 3 of at most 3"):
        jobs.retry(db, first, limits=settings)
    for _ in range(5):
        submit(db, small_spec(), owner_id=root, limits=settings)
    assert active(db, root) == 5


def test_sweep_size_is_a_400_naming_the_limit(db, settings):
    alice, root = add_user(db, "alice"), add_user(db, "root", is_admin=True)
    limits.check_sweep_size(db, settings, alice, 4)
    with pytest.raises(LimitExceeded) as caught:
        limits.check_sweep_size(db, settings, alice, 5)
    assert caught.value.status == 400 and caught.value.value == 4
    assert "runs per sweep: 5 runs is above the limit of 4" in str(caught.value)
    limits.check_sweep_size(db, settings, root, 200)
    limits.set_user_limit(db, alice, "sweep_runs", 0)  # 0: no limit
    limits.check_sweep_size(db, settings, alice, 200)


def test_uploads_are_limited_by_count_and_by_total_bytes(db, settings):
    alice, bob = add_user(db, "alice"), add_user(db, "bob")
    for _ in range(2):
        save_upload(db, settings, alice, "d.csv", CSV, "csv")
    with pytest.raises(LimitExceeded, match="uploads: alice has 2 of at most 2") as caught:
        save_upload(db, settings, alice, "d.csv", CSV, "csv")
    assert caught.value.status == 429
    save_upload(db, settings, bob, "d.csv", CSV, "csv")
    with pytest.raises(
        LimitExceeded,
        match=r"upload storage: bob has 36 bytes of at most "
        r"100 bytes, and this file is 72 bytes",
    ):
        save_upload(db, settings, bob, "d.csv", CSV * 2, "csv")
    assert len(list(uploads_dir(settings).glob("*.csv"))) == 3  # the refused file is gone
    assert limits.usage(db, alice) == {"active_jobs": 0, "uploads": 2, "upload_bytes": 72}


def test_team_job_time_limit_applies_to_members_unless_the_settings_give_one(db, settings):
    alice, root = add_user(db, "alice"), add_user(db, "root", is_admin=True)
    assert limits.job_time_limit(db, settings, alice) == 600
    assert limits.job_time_limit(db, settings, root) is None
    assert limits.job_time_limit(db, settings, None) is None
    limits.set_user_limit(db, alice, "job_time_limit_seconds", 0)
    assert limits.job_time_limit(db, settings, alice) is None
    explicit = settings.model_copy(update={"job_time_limit_seconds": 30.0})
    assert limits.job_time_limit(db, explicit, alice) == 30


def test_unused_uploads_are_deleted_after_the_configured_hours(db, settings):
    old, used, new = [save_upload(db, settings, None, f"{k}.csv", CSV, "csv") for k in range(3)]
    long_ago = utcnow() - timedelta(hours=25)
    with db.session() as s:
        s.execute(
            update(Upload).where(Upload.id.in_([old.id, used.id])).values(created_at=long_ago)
        )
        s.execute(update(Upload).where(Upload.id == used.id).values(used_at=long_ago))
    assert limits.delete_unused_uploads(db, settings) == [old.id]
    with db.session() as s:
        assert sorted(s.scalars(select(Upload.id))) == [used.id, new.id]
    assert sorted(p.name for p in uploads_dir(settings).glob("*.csv")) == sorted(
        [used.stored_name, new.stored_name]
    )
    limits.set_team_limit(db, "unused_upload_hours", 0)  # 0: kept for ever
    with db.session() as s:
        s.execute(update(Upload).values(created_at=long_ago, used_at=None))
    assert limits.delete_unused_uploads(db, settings) == []


def test_a_burst_of_parallel_submits_stops_exactly_at_the_limit(db, settings):
    alice = add_user(db, "alice")
    settings = settings.model_copy(update={"max_active_jobs_per_user": 5})
    outcomes: list[str] = []
    start = threading.Barrier(12)

    def one() -> None:
        start.wait()
        try:
            submit(db, small_spec(), owner_id=alice, limits=settings)
            outcomes.append("ok")
        except LimitExceeded:
            outcomes.append("refused")

    threads = [threading.Thread(target=one) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["ok"] * 5 + ["refused"] * 7
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 5


def test_the_workers_reaper_deletes_unused_uploads(db, settings, monkeypatch):
    from netlens.dispatch import reaper as reaping

    monkeypatch.setattr(reaping, "reap_once", lambda *args: 0)
    info = save_upload(db, settings, None, "d.csv", CSV, "csv")
    with db.session() as s:
        s.execute(update(Upload).values(created_at=utcnow() - timedelta(hours=25)))
    reaper = reaping.Reaper(None, db, settings.model_copy(update={"heartbeat_seconds": 0.1}))
    reaper.start()
    try:
        deadline = time.monotonic() + 20
        while (uploads_dir(settings) / info.stored_name).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        reaper.stop()
        reaper.join(10)
    assert not (uploads_dir(settings) / info.stored_name).exists()
    with db.session() as s:
        assert s.get(Upload, info.id) is None
