"""Sweeps on SQLite and PostgreSQL: a group and its queued runs in one transaction, the
`netlens sweep` command, the new-experiment page's sweep submit, and migration 0004."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from netlens.dispatch.submission import submit_sweep
from netlens.storage import groups, jobs, runs
from netlens.storage.db import Database
from netlens.storage.migrate import alembic_config, current_revision, head_revision, upgrade
from netlens.storage.models import Base
from netlens.storage.settings import Settings
from netlens.storage.sweep import SweepError, expand_grid
from tests.conftest import small_spec
from tests.integration.test_cli import _run

AXES = [("optimizer.learning_rate", [0.001, 0.01]), ("training.seed", [0, 1, 2])]


def _broker_messages(home: Path) -> list[tuple[int, int]]:
    """(run id, attempt) of every message waiting in the embedded filesystem broker."""
    out = []
    for path in (home / "broker" / "queue").glob("*.msg"):
        out.append(tuple(json.loads(json.loads(path.read_text())["headers"]["argsrepr"])))
    return sorted(out)


def _settings(db: Database, home: Path) -> Settings:
    return Settings(home=home, database_url=db.url, broker_url=None)


def test_a_group_and_its_runs_and_jobs_are_created_together(db):
    base = small_spec(name="base", training={"epochs": 5})
    specs = expand_grid(base, AXES)
    group_id, deliveries = groups.create_group(db, "lr × seed", base, AXES, specs, max_attempts=2)
    run_ids = [d.run_id for d in deliveries]
    assert len(run_ids) == 6 and {d.attempt for d in deliveries} == {1}
    for run_id, spec in zip(run_ids, specs, strict=True):
        info = runs.get_run(db, run_id)
        assert info.group_id == group_id and info.name == spec.name
        assert info.spec["optimizer"]["learning_rate"] == spec.optimizer.learning_rate
        job = jobs.get_job(db, run_id)
        assert (job.state, job.max_attempts, job.progress_total) == ("queued", 2, 5)

    group = groups.get_group(db, group_id)
    assert (group.name, group.kind, group.size, group.counts) == (
        "lr × seed",
        "sweep",
        6,
        {"queued": 6},
    )
    assert group.run_ids == run_ids and not group.is_finished
    assert group.axes == [
        {"field": "optimizer.learning_rate", "values": [0.001, 0.01]},
        {"field": "training.seed", "values": [0, 1, 2]},
    ]
    assert group.base_spec["name"] == "base"
    assert json.loads(json.dumps(group.to_dict()))["run_ids"] == run_ids

    jobs.request_cancel(db, run_ids[0])
    page, total = runs.query_runs(db, group=group_id, sort=[("id", "asc")])
    assert total == 6 and [r.id for r in page] == run_ids
    assert groups.get_group(db, group_id).counts == {"queued": 5, "cancelled": 1}
    runs.delete_run(db, run_ids[1])  # a deleted run leaves its group
    assert groups.get_group(db, group_id).run_ids == [run_ids[0], *run_ids[2:]]


def test_groups_are_listed_newest_first_and_a_missing_one_is_named(db):
    base = small_spec(training={"epochs": 5})
    first, _ = groups.create_group(
        db, "one", base, [("training.seed", [1])], expand_grid(base, [("training.seed", [1])])
    )
    second, _ = groups.create_group(
        db, "two", base, [("training.seed", [1, 2])], expand_grid(base, [("training.seed", [1, 2])])
    )
    listed = groups.list_groups(db)
    assert [(g.id, g.size) for g in listed] == [(second, 2), (first, 1)]
    assert runs.query_runs(db)[1] == 3 and runs.create_run(db, base)  # ungrouped runs too
    assert runs.get_run(db, runs.count_runs(db)).group_id is None
    with pytest.raises(groups.GroupNotFound, match="group 999 does not exist"):
        groups.get_group(db, 999)


def test_a_failure_part_way_leaves_no_group_and_no_run(db):
    base = small_spec(training={"epochs": 5})
    specs = [*expand_grid(base, [("training.seed", [1, 2])]), None]  # the third cannot be made
    with pytest.raises(AttributeError):
        groups.create_group(db, "broken", base, [("training.seed", [1, 2, 3])], specs)
    assert groups.list_groups(db) == [] and runs.count_runs(db) == 0
    assert jobs.count_by_state(db) == {}


def test_submit_sweep_queues_every_run_on_the_broker(db, tmp_path):
    settings = _settings(db, tmp_path)
    group_id, run_ids = submit_sweep(
        db,
        settings,
        small_spec(name="s", training={"epochs": 5}),
        [("model.width", ["2", "4"]), ("training.seed", ["0", "1"])],
    )
    assert _broker_messages(tmp_path) == [(run_id, 1) for run_id in run_ids]
    assert [runs.get_run(db, r).name for r in run_ids] == [
        "s · width=2 · seed=0",
        "s · width=2 · seed=1",
        "s · width=4 · seed=0",
        "s · width=4 · seed=1",
    ]
    assert groups.get_group(db, group_id).axes[0] == {"field": "model.width", "values": [2, 4]}
    with pytest.raises(SweepError, match=r"must be at most 10\.0 \(sweep value 2 of 2\)"):
        submit_sweep(db, settings, small_spec(), [("optimizer.learning_rate", ["0.1", "99"])])
    assert len(_broker_messages(tmp_path)) == 4 and len(groups.list_groups(db)) == 1


def test_migrations_0004_and_0005_keep_recorded_data_both_ways(db):
    """On SQLite, altering `runs` copies the table; with foreign keys on, dropping the old
    copy would cascade into every recorded epoch. Data must survive up and down."""
    cfg = alembic_config(db)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0003")
    assert current_revision(db) == "0003"
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO runs (name, status, spec, spec_version, dataset, architecture, "
                "optimizer, epochs_total, epochs_recorded, recorded_bytes, layers, tags, notes, "
                "data_info, created_at) VALUES ('old', 'succeeded', '{}', 1, 'xor', '2-3-1', "
                "'adam', 5, 1, 0, '[]', '[]', '', '{}', '2026-01-01 00:00:00')"
            )
        )
        conn.execute(
            text("INSERT INTO run_epochs (run_id, epoch, metrics) SELECT id, 0, '{}' FROM runs")
        )
    upgrade(db)
    assert current_revision(db) == head_revision(db)
    old = runs.list_runs(db)[0]
    assert old.name == "old" and old.group_id is None and old.owner_id is None  # 0005 too
    assert runs.recorded_epoch_numbers(db, old.id) == [0]
    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        if db.is_sqlite:  # the pooled connection got its foreign keys back
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0003")
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM run_epochs")).scalar() == 1
    upgrade(db)


# -- the command line ----------------------------------------------------------------------


@pytest.fixture
def home_env(tmp_path) -> dict[str, str]:
    return {"NETLENS_HOME": str(tmp_path / "home"), "NETLENS_DATABASE_URL": ""}


def test_sweep_dry_run_prints_the_runs_and_creates_nothing(home_env, tmp_path):
    out = _run(
        [
            "sweep",
            "--preset",
            "xor",
            "--epochs",
            "30",
            "--grid",
            "optimizer.learning_rate=0.001,1e-2",
            "--grid",
            "model.width=2,4",
            "--dry-run",
        ],
        home_env,
    ).stdout.splitlines()
    assert out == [
        "   1  xor · lr=0.001 · width=2  (2-2-1, 30 epochs)",
        "   2  xor · lr=0.001 · width=4  (2-4-1, 30 epochs)",
        "   3  xor · lr=0.01 · width=2  (2-2-1, 30 epochs)",
        "   4  xor · lr=0.01 · width=4  (2-4-1, 30 epochs)",
        "4 runs; dry run: nothing submitted",
    ]
    assert not (tmp_path / "home").exists()


def test_sweep_submits_a_group_on_the_default_sqlite(home_env, tmp_path):
    result = _run(
        [
            "sweep",
            "--preset",
            "xor",
            "--epochs",
            "20",
            "--name",
            "grid",
            "--grid",
            "training.seed=0,1,2",
        ],
        home_env,
    )
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == "group 1: 3 runs queued; page /groups/1"
    assert [line.split(None, 2)[2] for line in lines[:-1]] == [
        "grid · seed=0",
        "grid · seed=1",
        "grid · seed=2",
    ]
    run_ids = [int(line.split()[1]) for line in lines[:-1]]
    assert _broker_messages(tmp_path / "home") == [(r, 1) for r in run_ids]
    table = _run(["runs", "--group", "1"], home_env).stdout
    assert all(f"{r:>5}  queued" in table for r in run_ids)
    shown = json.loads(_run(["show", str(run_ids[0]), "--json"], home_env).stdout)
    assert shown["group_id"] == 1 and shown["spec"]["training"]["seed"] == 0
    missing = _run(["runs", "--group", "7"], home_env, check=False)
    assert missing.returncode == 2 and "error: group 7 does not exist" in missing.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--grid", "optimizer.learning_rate=0.1,50"],
            "error: optimizer.learning_rate: 50.0 is out of range: must be at most 10.0 "
            "(sweep value 2 of 2)",
        ),
        (
            ["--grid", "lr=0.1"],
            "error: lr: not a field of the spec; did you mean optimizer.learning_rate?",
        ),
        (["--grid", "training.seed"], "error: grid: 'training.seed' must be FIELD=V1,V2,..."),
        ([], "error: grid: no axis; a sweep varies 1 to 3 spec fields"),
        (
            ["--grid", "training.seed=" + ",".join(map(str, range(201)))],
            "error: grid: 201 = 201 runs is above the limit of 200 runs per sweep",
        ),
    ],
)
def test_sweep_refuses_bad_input_with_exit_2_and_creates_nothing(home_env, tmp_path, args, message):
    result = _run(["sweep", "--preset", "xor", *args], home_env, check=False)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert result.stdout == "" and not (tmp_path / "home").exists()


# -- the new-experiment page ---------------------------------------------------------------


@pytest.fixture(scope="module")
def new_page(tmp_path_factory):
    import flask

    from netlens.storage.users import LOCAL
    from netlens.webapp.app import create_app

    home = tmp_path_factory.mktemp("web")
    settings = Settings(home=home, database_url=None, broker_url=None)
    db = Database.from_settings(settings)
    upgrade(db)
    app = create_app(settings, db)
    page = sys.modules["pages.new"]  # Dash imports the page modules as pages.<name>
    with app.server.app_context():
        flask.g.netlens_actor = LOCAL  # single-user mode: what the guard sets per request
        yield page, db, home


def _sweep(is_open=True, rows=()):
    rows = list(rows) + [(None, "")] * (3 - len(rows))
    return [is_open, *[f for f, _ in rows], *[v for _, v in rows]]


def test_page_submits_a_sweep_as_one_group(new_page):
    page, db, home = new_page
    form = page.fill_from_preset("xor")
    feedback, path = page.submit(
        1,
        *form,
        *_sweep(
            rows=[("optimizer.learning_rate", "0.01, 0.1"), ("model.hidden.0.units", "2, 4, 8")]
        ),
    )
    group = groups.get_group(db, int(path.removeprefix("/groups/")))
    assert group.size == 6 and group.counts == {"queued": 6}
    assert runs.get_run(db, group.run_ids[-1]).name == "xor · lr=0.1 · units=8"
    assert {r for r, _attempt in _broker_messages(home)} >= set(group.run_ids)


def test_page_shows_sweep_errors_by_row_and_submits_nothing(new_page):
    page, db, _home = new_page
    form = page.fill_from_preset("xor")
    before = runs.count_runs(db)
    sweep = _sweep(rows=[("optimizer.learning_rate", "0.01, 50"), ("training.seed", "1, 2")])
    feedback, path = page.submit(1, *form, *sweep)
    assert "Not submitted: 1 sweep problem" in str(feedback) and runs.count_runs(db) == before
    out = page.check_sweep(*sweep, *form)
    invalid, messages, count, label = out[:3], out[3:6], out[6], out[7]
    assert invalid == [True, False, False]
    assert messages[0] == (
        "optimizer.learning_rate: 50.0 is out of range: must be at most 10.0 (sweep value 2 of 2)"
    )
    assert "2 × 2 = 4 runs" in str(count) and label == "Submit sweep (4 runs)"
    # Values without a field, and a grid over the run limit, are named too.
    out = page.check_sweep(*_sweep(rows=[(None, "1, 2")]), *form)
    assert out[0] is True and out[3] == "choose the field these values are for"
    big = _sweep(
        rows=[
            ("training.seed", ",".join(map(str, range(20)))),
            ("dataset.seed", ",".join(map(str, range(11)))),
        ]
    )
    out = page.check_sweep(*big, *form)
    assert "20 × 11 = 220 runs (limit 200)" in str(out[6])
    assert "Not submitted" in str(page.submit(1, *form, *big)[0])
    assert runs.count_runs(db) == before


def test_page_without_a_sweep_submits_one_run_as_before(new_page):
    page, db, _home = new_page
    form = page.fill_from_preset("xor")
    # A closed card is no sweep, whatever its rows hold.
    _feedback, path = page.submit(1, *form, *_sweep(False, [("training.seed", "1, 2")]))
    run = runs.get_run(db, int(path.removeprefix("/runs/")))
    assert run.group_id is None and run.name == "xor"
    assert page.check_sweep(*_sweep(), *form)[6:] == ["", "Submit"]
    options = page.sweep_field_options("8 tanh, 8 tanh", "8, 16")[0]
    values = [o["value"] for o in options]
    assert "model.hidden.1.units" in values and "model.hidden.2.units" not in values
    assert "dataset.path" not in values and values[0] == "dataset.name"
