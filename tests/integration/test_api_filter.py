"""GET /api/v1/runs?where=, GET /api/v1/runs.csv and GET /api/v1/runs/{id}/metrics.csv
(docs/filter.md), and the browser's /runs/{id}/metrics.csv, on SQLite and PostgreSQL: the
filter finds what it says, a bad one is 400 naming the token, the CSV files hold what was
recorded and no cell a spreadsheet would run as a formula."""

from __future__ import annotations

import csv
import io

import pytest

from netlens.storage import records, runs
from netlens.storage.settings import Settings
from netlens.webapp import csv_export
from netlens.webapp.app import create_app
from tests.conftest import small_spec


@pytest.fixture
def client(db, tmp_path):
    """Single-user mode (loopback): no token needed."""
    settings = Settings(home=tmp_path, database_url=db.url, broker_url=None, auth="auto")
    return create_app(settings, db).server.test_client()


@pytest.fixture
def three(db):
    """Three runs: a digits run tagged preset, an xor run named like a formula, a moons run."""
    ids = [
        runs.create_run(
            db,
            small_spec(
                name="digits fast", dataset={"name": "digits"}, optimizer={"learning_rate": 0.1}
            ),
        ),
        runs.create_run(
            db,
            small_spec(
                name='=HYPERLINK("http://x")',
                tags=["+cmd", "@at"],
                optimizer={"learning_rate": 0.001},
            ),
        ),
        runs.create_run(db, small_spec(name="-moons", dataset={"name": "moons"})),
    ]
    chunk = records.EpochChunk(
        [0, 1, 2],
        [{"train_loss": 0.9, "val_accuracy": 0.5}, {"train_loss": 0.5}, {"train_loss": 0.25}],
        {},
        {},
    )
    records.write_epochs(db, ids[0], chunk)
    return ids


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_where_filters_the_run_list(client, three):
    answer = client.get("/api/v1/runs", query_string={"where": "optimizer.learning_rate < 0.01"})
    assert answer.status_code == 200, answer.text
    assert [r["id"] for r in answer.json["runs"]] == [three[1]]
    answer = client.get(
        "/api/v1/runs", query_string={"where": "dataset != digits", "sort": "id", "order": "asc"}
    )
    assert [r["id"] for r in answer.json["runs"]] == three[1:] and answer.json["total"] == 2
    # with the other filters: all of them apply
    answer = client.get("/api/v1/runs", query_string={"where": "id > 0", "dataset": "moons"})
    assert [r["id"] for r in answer.json["runs"]] == [three[2]]


@pytest.mark.parametrize(
    ("where", "words"),
    [
        ("val_acc > 0.9", 'unknown field "val_acc" at column 1'),
        ("dataset = digits and val_accuracy >", 'expected a value after ">" at column 36'),
        ("name = 'x'; DROP TABLE runs", 'unexpected character ";" at column 11'),
    ],
)
def test_a_bad_where_is_400_naming_the_token(client, three, db, where, words):
    for path in ("/api/v1/runs", "/api/v1/runs.csv"):
        answer = client.get(path, query_string={"where": where})
        assert answer.status_code == 400, answer.text
        assert answer.json["fields"] == ["where"] and words in answer.json["error"]
        assert answer.json["error"].startswith("where: ")
    assert runs.count_runs(db) == 3


def test_where_over_its_length_limit_is_400(client, three):
    answer = client.get("/api/v1/runs", query_string={"where": "x" * 1001})
    assert answer.status_code == 400 and "where: 1001 characters" in answer.json["error"]


def test_runs_csv_holds_the_matching_runs_with_formulas_defused(client, three):
    answer = client.get("/api/v1/runs.csv", query_string={"sort": "id", "order": "asc"})
    assert answer.status_code == 200, answer.text
    assert answer.mimetype == "text/csv"
    assert 'filename="runs.csv"' in answer.headers["Content-Disposition"]
    assert answer.headers["X-Total-Count"] == "3"
    header, *rows = _rows(answer.text)
    assert header == list(csv_export.RUN_COLUMNS)
    column = {name: header.index(name) for name in header}
    assert [int(r[column["id"]]) for r in rows] == three
    assert [r[column["name"]] for r in rows] == [
        "digits fast",
        '\'=HYPERLINK("http://x")',
        "'-moons",
    ]
    assert rows[1][column["tags"]] == "'+cmd;@at"
    assert float(rows[0][column["learning_rate"]]) == 0.1
    assert float(rows[0][column["train_loss"]]) == 0.25  # the last recorded epoch's
    assert rows[1][column["train_loss"]] == ""  # none recorded
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    filtered = client.get("/api/v1/runs.csv", query_string={"where": "tag:'@at'"})
    assert [int(r[0]) for r in _rows(filtered.text)[1:]] == [three[1]]


def test_metrics_csv_has_one_row_per_recorded_epoch(client, three):
    for path in (f"/api/v1/runs/{three[0]}/metrics.csv", f"/runs/{three[0]}/metrics.csv"):
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text)
        assert f'filename="run{three[0]}-metrics.csv"' in answer.headers["Content-Disposition"]
        header, *rows = _rows(answer.text)
        assert header == ["epoch", "train_loss", "val_accuracy"]
        assert [[float(c) if c else None for c in r] for r in rows] == [
            [0, 0.9, 0.5],
            [1, 0.5, None],
            [2, 0.25, None],
        ]
    empty = client.get(f"/api/v1/runs/{three[1]}/metrics.csv")
    assert _rows(empty.text) == [["epoch"]]
    assert client.get("/api/v1/runs/999999/metrics.csv").status_code == 404
    assert client.get("/runs/999999/metrics.csv").status_code == 404


def test_safe_cell_defuses_text_only():
    assert csv_export.safe_cell("=1+2") == "'=1+2"
    assert csv_export.safe_cell("\t=x") == "'\t=x"
    assert csv_export.safe_cell("plain") == "plain"
    assert csv_export.safe_cell(-0.5) == -0.5  # a number stays a number
    assert csv_export.safe_cell(float("nan")) == "" and csv_export.safe_cell(None) == ""


def test_the_csv_files_need_a_login(db, tmp_path, three):
    settings = Settings(home=tmp_path, database_url=db.url, broker_url=None, auth="required")
    anonymous = create_app(settings, db).server.test_client()
    for path in (
        f"/runs/{three[0]}/metrics.csv",
        f"/api/v1/runs/{three[0]}/metrics.csv",
        "/api/v1/runs.csv",
    ):
        answer = anonymous.get(path)
        assert answer.status_code in (302, 401), (path, answer.status_code)
        assert "digits fast" not in answer.text and "train_loss" not in answer.text
