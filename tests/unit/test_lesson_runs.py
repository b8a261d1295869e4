"""Lesson runs (tag `learn`, webapp/learn) are not analysed after training: no lesson reads a
stored analysis, and an analysis would hold up the learner's next run on a one-worker server.
Every other run is (worker/jobs.py)."""

from __future__ import annotations

from netlens.storage import runs
from netlens.worker.jobs import _wants_analyses
from tests.conftest import small_spec


def test_only_runs_tagged_learn_skip_the_analyses_after_training(sqlite_db):
    lesson = runs.create_run(sqlite_db, small_spec(tags=["learn", "learn:signatures"]))
    other = runs.create_run(sqlite_db, small_spec(tags=["learning-rate", "preset"]))
    assert not _wants_analyses(sqlite_db, lesson)
    assert _wants_analyses(sqlite_db, other)
    assert not _wants_analyses(sqlite_db, 10_000)  # gone: nothing to analyse
