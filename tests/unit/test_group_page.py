"""A sweep's page (issue 6): its grid and progress, every run in the parallel coordinates, and
the comparison of all its runs or, for more than 8, of the best 8 by accuracy."""

from __future__ import annotations

import sys

import pytest

from netlens.storage import groups, runs
from netlens.storage.db import Database
from netlens.storage.migrate import upgrade
from netlens.storage.settings import Settings
from netlens.storage.sweep import describe_axes, expand_grid, parse_axes
from netlens.webapp.app import create_app
from tests.conftest import small_spec


def _sweep(db: Database, seeds: int, lrs: list[float]) -> int:
    base = small_spec(name="grid", dataset={"name": "xor"}, training={"epochs": 5})
    axes = parse_axes(
        base, [("training.seed", list(range(seeds))), ("optimizer.learning_rate", lrs)]
    )
    group_id, _ = groups.create_group(
        db, "grid", base, describe_axes(axes), expand_grid(base, axes)
    )
    return group_id


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    settings = Settings(home=tmp_path_factory.mktemp("groups"), database_url=None, broker_url=None)
    db = Database.from_settings(settings)
    upgrade(db)
    big, small = _sweep(db, 5, [0.01, 0.1]), _sweep(db, 3, [0.05])
    app = create_app(settings, db)
    with app.server.app_context():
        yield {"db": db, "big": big, "small": small, "page": sys.modules["pages.group"]}


def test_a_small_sweep_compares_all_its_runs(web):
    text = str(web["page"].layout(group_id=str(web["small"])))
    assert "Sweep #" in text and "3 runs over" in text and "training.seed (3: 0, 1, 2)" in text
    assert "Comparing all 3 runs" in text and "cmp-epoch" in text
    assert "overview-graph" in text  # the parallel coordinates of every run


def test_a_large_sweep_compares_its_best_eight_by_accuracy(web):
    db, page = web["db"], web["page"]
    group = groups.get_group(db, web["big"])
    assert group.size == 10
    accuracy = dict(
        zip(group.run_ids, [0.5, 0.9, 0.6, 0.95, 0.7, 0.55, 0.8, 0.85, 0.65, 0.75], strict=True)
    )
    for run_id, value in accuracy.items():
        runs._update(db, run_id, {"final_train_accuracy": value, "status": "succeeded"})
    infos = [runs.get_run(db, i) for i in group.run_ids]
    chosen = page.chosen_for_comparison(infos, 8)
    worst_two = sorted(accuracy, key=accuracy.get)[:2]
    assert [i.id for i in chosen] == sorted(set(group.run_ids) - set(worst_two))
    text = str(page.layout(group_id=str(web["big"])))
    assert "Comparing the 8 best of 10 runs by accuracy" in text


def test_an_unknown_sweep_is_a_readable_error(web):
    for bad in ("999", "abc"):
        assert "No such sweep" in str(web["page"].layout(group_id=bad))


def test_the_header_follows_the_runs_until_they_finish(web):
    db, page = web["db"], web["page"]
    header, finished = page.refresh(1, web["small"])
    assert not finished and "queued" in str(header) and "0/3 finished" in str(header)
    for run_id in groups.get_group(db, web["small"]).run_ids:
        runs._update(db, run_id, {"status": "succeeded"})
    header, finished = page.refresh(2, web["small"])
    assert finished and "3/3 finished" in str(header)
