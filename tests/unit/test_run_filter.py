"""The run filter language (storage/run_filter.py, docs/filter.md): every expression run
against real SQLite and PostgreSQL databases of seeded runs, the ids it finds checked
against a plain-Python reading of the same runs; every error with its column; injection
attempts leave the runs table as it was."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from netlens.storage import run_filter, runs, users
from netlens.storage.models import RUN_STATUSES, Run
from netlens.storage.run_filter import FilterError, parse
from tests.conftest import small_spec

NAMES = [
    "alpha",
    "Beta run",
    "O'Reilly",
    'quote"d',
    "100% sure",
    "under_score",
    "日本語",
    "'; DROP TABLE runs; --",
    "emoji 🎉",
    "alpha-2",
    "plain",
    "ALPHA upper",
]
DATASETS = ["digits", "xor", "moons"]
RATES = [0.001, 0.005, 0.01, 0.1]
DAY0 = datetime(2026, 10, 25, 12, 0, tzinfo=UTC)


@dataclass
class Seeded:
    id: int
    name: str
    status: str
    dataset: str
    optimizer: str
    lr: float
    seed: int
    tags: list[str]
    owner: str | None
    val_accuracy: float | None
    created: datetime


def _tags(i: int) -> list[str]:
    return [["preset"], ["sweep", "it's"], [], ["ü-tag", "DROP TABLE runs"]][i % 4]


@pytest.fixture
def seeded(db):
    """Twelve runs differing in every field the language reads, and their plain-Python copy."""
    alice = users.create_user(db, "alice", "a long enough password")
    bob = users.create_user(db, "bob", "a long enough password")
    out = []
    for i, name in enumerate(NAMES):
        optimizer = "adam" if i % 2 == 0 else "sgd"
        spec = small_spec(
            name=name,
            tags=_tags(i),
            dataset={"name": DATASETS[i % 3]},
            optimizer={"name": optimizer, "learning_rate": RATES[i % 4]},
            training={"epochs": 5, "seed": i},
        )
        owner = [alice, bob, alice, None][i % 4]
        status = RUN_STATUSES[i % len(RUN_STATUSES)]
        run_id = runs.create_run(db, spec, status=status, owner_id=owner and owner.id)
        accuracy = None if status == "queued" else 0.5 + 0.04 * i
        created = DAY0 + timedelta(days=i)
        with db.session() as s:
            s.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(final_val_accuracy=accuracy, created_at=created)
            )
        out.append(
            Seeded(
                run_id,
                name,
                status,
                DATASETS[i % 3],
                optimizer,
                RATES[i % 4],
                i,
                _tags(i),
                owner and owner.name,
                accuracy,
                created,
            )
        )
    return db, out


def _day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _above(value, limit) -> bool:
    return value is not None and value > limit


# expression -> the runs it should find, read in plain Python
CASES = {
    "dataset = digits": lambda r: r.dataset == "digits",
    "dataset != digits": lambda r: r.dataset != "digits",
    "val_accuracy > 0.7": lambda r: _above(r.val_accuracy, 0.7),
    "not val_accuracy > 0.7": lambda r: not _above(r.val_accuracy, 0.7),
    "val_accuracy <= 0.7 or status = queued": lambda r: (
        (r.val_accuracy is not None and r.val_accuracy <= 0.7) or r.status == "queued"
    ),
    "tag:preset": lambda r: "preset" in r.tags,
    "not tag:preset": lambda r: "preset" not in r.tags,
    'tag:"it\'s"': lambda r: "it's" in r.tags,
    "tag:ü-tag": lambda r: "ü-tag" in r.tags,
    "tag:sw": lambda r: "sw" in r.tags,  # a whole tag, not a substring of one
    'tag:"DROP TABLE runs"': lambda r: "DROP TABLE runs" in r.tags,
    "optimizer.learning_rate < 0.01": lambda r: r.lr < 0.01,
    "lr >= 0.01 and optimizer = sgd": lambda r: r.lr >= 0.01 and r.optimizer == "sgd",
    "optimizer.name = adam": lambda r: r.optimizer == "adam",
    "optimizer.name ~ AD": lambda r: "ad" in r.optimizer,
    "seed = 3": lambda r: r.seed == 3,
    "training.seed > 8 or seed < 1": lambda r: r.seed > 8 or r.seed < 1,
    "spec.training.epochs = 5": lambda r: True,
    "optimizer.name > 3": lambda r: False,  # text read as a number: no value, no match
    'optimizer.learning_rate = "0.1"': lambda r: False,  # a number read as text
    "training.device = true": lambda r: False,
    "not optimizer.name > 3": lambda r: True,
    "owner = alice": lambda r: r.owner == "alice",
    "owner != alice": lambda r: r.owner is not None and r.owner != "alice",
    "not owner = alice": lambda r: r.owner != "alice",
    "owner ~ LIC": lambda r: r.owner is not None and "lic" in r.owner,
    "status = queued or status = failed": lambda r: r.status in ("queued", "failed"),
    "status ~ ed": lambda r: "ed" in r.status,
    "name ~ alpha": lambda r: "alpha" in r.name.lower(),
    "name contains 'Alpha'": lambda r: "alpha" in r.name.lower(),
    "name = alpha": lambda r: r.name == "alpha",
    "name ~ '%'": lambda r: "%" in r.name,
    "name ~ _": lambda r: "_" in r.name,
    "name = 'O\\'Reilly'": lambda r: r.name == "O'Reilly",
    'name = "quote\\"d"': lambda r: r.name == 'quote"d',
    "name = 日本語": lambda r: r.name == "日本語",
    "name ~ '🎉'": lambda r: "🎉" in r.name,
    'name = "\'; DROP TABLE runs; --"': lambda r: r.name == "'; DROP TABLE runs; --",
    "name ~ 'select * from users'": lambda r: False,
    "created = 2026-10-27": lambda r: r.created.date().isoformat() == "2026-10-27",
    "created > 2026-10-27": lambda r: r.created >= _day("2026-10-28"),
    "created >= 2026-10-27": lambda r: r.created >= _day("2026-10-27"),
    "created < 2026-10-27": lambda r: r.created < _day("2026-10-27"),
    "created <= 2026-10-27": lambda r: r.created < _day("2026-10-28"),
    "created != 2026-10-27": lambda r: r.created.date().isoformat() != "2026-10-27",
    "created > 2026-10-27T12:00:00Z": lambda r: r.created > _day("2026-10-27T12:00:00"),
    "created < '2026-10-27T13:00:00+02:00'": lambda r: r.created < _day("2026-10-27T11:00:00"),
    "finished > 2020-01-01": lambda r: False,  # no run was finished
    "not finished > 2020-01-01": lambda r: True,
    "id > 0 and epochs = 5": lambda r: True,
    "(dataset = digits or dataset = xor) and not (tag:preset or owner = bob)": lambda r: (
        r.dataset in ("digits", "xor") and not ("preset" in r.tags or r.owner == "bob")
    ),
    "not not (seed = 2)": lambda r: r.seed == 2,
    # numbers and dates at the edges of what the databases hold: no cast overflows
    "id > 99999999999999999999999": lambda r: False,
    "id < 3000000000 and seed < 3000000000": lambda r: True,
    "val_accuracy < 1e999": lambda r: r.val_accuracy is not None,
    "val_accuracy > -1e999 and training.seed > -99999999999999999999": lambda r: (
        r.val_accuracy is not None
    ),
    "created > 9998-12-31 or created < 1000-01-01": lambda r: False,
    "dataset = digits AND NOT seed = 0 Or seed = 1": lambda r: (
        (r.dataset == "digits" and r.seed != 0) or r.seed == 1
    ),
}


def _found(db, where: str) -> set[int]:
    items, total = runs.runs_page(db, limit=1000, where=where)
    assert total == len(items)
    found = {r.id for r in items}
    by_grid, grid_total = runs.query_runs(db, limit=1000, where=where)
    assert {r.id for r in by_grid} == found and grid_total == total  # the runs page's reader
    return found


def test_expressions_find_what_the_python_reference_finds(seeded):
    db, rows = seeded
    wrong = {}
    for where, wanted in CASES.items():
        expected = {r.id for r in rows if wanted(r)}
        found = _found(db, where)
        if found != expected:
            wrong[where] = (sorted(found), sorted(expected))
    assert not wrong
    # the cases are not all trivial: some find none, some all, most some
    sizes = {len({r.id for r in rows if wanted(r)}) for wanted in CASES.values()}
    assert {0, len(rows)} < sizes and len(sizes) > 5


INJECTIONS = [
    "name = ''; DROP TABLE runs; --'",
    "name = x; DROP TABLE runs",
    'name = "x" OR 1=1',
    "name = x' OR '1'='1",
    "spec.optimizer') = 1",
    "optimizer.name' = 1",
    "seed = 1 UNION SELECT * FROM users",
    "status = queued; DELETE FROM runs",
    "name = x -- comment",
    "name = x /* */",
    "name ~ \\",
    "(" * 30 + "seed = 1" + ")" * 30,
    "not " * 30 + "seed = 1",
    " or ".join(["seed = 1"] * 60),
    "name ~ " + "x" * 2000,
    "name = 'x\x00y'",
]


def test_injection_attempts_are_refused_or_matched_as_text(seeded):
    db, rows = seeded
    for where in INJECTIONS:
        try:
            found = _found(db, where)
        except FilterError as exc:
            assert exc.position >= 1 and "column" in str(exc) or "limit" in str(exc)
        else:  # read as text: compared as text, found nothing
            assert found == set(), where
    # quotes, SQL words and LIKE wildcards inside a value are its text
    assert _found(db, 'name = "\'; DROP TABLE runs; --"') == {rows[7].id}
    assert _found(db, "name ~ \"' OR '1'='1\"") == set()
    assert runs.count_runs(db) == len(rows)
    assert users.get_user_by_name(db, "alice") is not None


ERRORS = [
    ("val_acc > 3", 'unknown field "val_acc" at column 1', 1),
    ("seed = 1 and val_acc > 3", 'unknown field "val_acc" at column 14', 14),
    ("val_accuracy >", 'expected a value after ">" at column 15, found the end', 15),
    ("val_accuracy > and seed = 1", 'expected a value after ">" at column 16, found "and"', 16),
    ("val_accuracy 0.9", "expected an operator (= != < <= > >= ~ contains) after", 14),
    ("val_accuracy > abc", 'val_accuracy is a number; "abc" at column 16 is not', 16),
    ("val_accuracy ~ 0.5", '"~" at column 14 needs text; val_accuracy is a number', 14),
    ("name > b", 'operator ">" at column 6 does not apply to text field name', 6),
    ("status = runing", 'status "runing" at column 10 is not one of queued', 10),
    ("created > yesterday", 'created is a date; "yesterday" at column 11 is not a date', 11),
    ("created > 2026-13-45", '"2026-13-45" at column 11 is not a valid date', 11),
    ("created ~ 2026-01-01", '"~" at column 9 needs text; created is a date', 9),
    ("optimizer.lr < 0.1", 'unknown field "optimizer.lr" at column 1 (optimizer has: name', 1),
    ("model = mlp", 'spec field "model" at column 1 is a section', 1),
    ("a.b.c.d.e = 1", 'spec path "a.b.c.d.e" at column 1 has 5 parts (limit 4)', 1),
    ("optimizer.9x = 1", '"optimizer.9x" at column 1 is not a field name', 1),
    ("seed = 1 seed = 2", 'expected "and", "or" or the end at column 10, found "seed"', 10),
    ("(seed = 1", 'expected ")" to close the "(" at column 1, found the end at column 10', 10),
    ("seed = 1)", 'unmatched ")" at column 9', 9),
    ("seed = 1 and", 'expected a field, "tag:", "not" or "(" at column 13, found the end', 13),
    ("and seed = 1", 'expected a field, "tag:", "not" or "(" at column 1, found "and"', 1),
    ("tag:", 'expected a tag name after "tag:" at column 5, found the end', 5),
    ("name = 'abc", "unterminated string starting at column 8", 8),
    ("seed = 1 $", 'unexpected character "$" at column 10', 10),
    ("name ~ 🎉", 'unexpected character "🎉" at column 8', 8),
    ("training.device > true", 'operator ">" at column 17 does not compare true/false', 17),
    ("optimizer.name ~ 3", '"~" at column 16 needs a text value', 16),
    ("x" * 1001, "the expression is 1001 characters long (limit 1000)", 1001),
    ("(" * 21 + "seed = 1" + ")" * 21, "too deeply nested at column 21 (limit 20)", 21),
    ("not " * 21 + "seed = 1", "too deeply nested at column 81 (limit 20)", 81),
    (" or ".join(["seed = 1"] * 51), "too many comparisons at column 601 (limit 50)", 601),
    ("name = 'a\x00'", "a NUL character at column 10", 10),
    ("created > 9999-12-31", '"9999-12-31" at column 11 is out of range (years 1000', 11),
    ("created > 0001-01-01T00:00+01:00", '"0001-01-01T00:00+01:00" at column 11 is not a', 11),
    ("created > 9998-12-31T23:00:00-05:00", "at column 11 is out of range (years 1000", 11),
]


@pytest.mark.parametrize(("where", "message", "column"), ERRORS)
def test_each_error_names_the_token_and_its_column(where, message, column):
    with pytest.raises(FilterError) as caught:
        parse(where)
    assert message in str(caught.value)
    assert str(caught.value).startswith("filter: ")
    assert caught.value.position == column


def test_the_unknown_field_error_lists_the_fields_and_a_close_one():
    with pytest.raises(FilterError) as caught:
        parse("val_acc > 0.9")
    text = str(caught.value)
    assert all(name in text for name in ("val_accuracy", "dataset", "tag:NAME", "created"))
    assert 'did you mean "val_accuracy"?' in text


def test_empty_expressions_filter_nothing(sqlite_db):
    runs.create_run(sqlite_db, small_spec())
    for where in ("", "   ", None):
        assert run_filter.condition(where) is None
        assert runs.runs_page(sqlite_db, where=where)[1] == 1


def test_fifty_terms_and_twenty_levels_are_allowed():
    assert parse(" or ".join(["seed = 1"] * 50)) is not None
    assert parse("(" * 20 + "seed = 1" + ")" * 20) is not None
    assert parse("name = '" + "y" * 990 + "'") is not None


def test_spec_paths_are_the_specs_scalar_fields():
    assert "optimizer.learning_rate" in run_filter.SPEC_LEAVES
    assert "training.seed" in run_filter.SPEC_LEAVES
    assert not any(p.startswith("model.hidden") for p in run_filter.SPEC_LEAVES)  # a list
    for path in run_filter.SPEC_LEAVES:  # each one parses as a field
        assert parse(f"{path} = 1") is not None
