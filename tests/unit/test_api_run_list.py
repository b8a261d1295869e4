"""GET /api/runs passes each run's JSON columns (spec, layers, tags, data_info) on as stored,
without decoding and encoding them again (storage.runs.runs_page(json_text=True),
webapp/api.py's _run_text; docs/performance.md "REST API: the API against in-process
reads"): the answer must be what the decoded runs give, on SQLite and PostgreSQL, whatever
the columns hold (NaN, which json.dumps writes and JSON has not; null; quotes, non-ASCII)."""

from __future__ import annotations

import json
import math

import pytest

from netlens.storage import runs, users
from netlens.storage.settings import Settings
from netlens.webapp.api import _dumps, _run_json
from netlens.webapp.app import create_app
from tests.conftest import small_spec


@pytest.fixture
def client(db, tmp_path):
    """Single-user mode (loopback): no token needed."""
    settings = Settings(home=tmp_path, database_url=db.url, broker_url=None, auth="auto")
    return create_app(settings, db).server.test_client()


def _decoded(db, **query) -> list[dict]:
    """The runs as the decoded path answers them: _run_json of runs_page, through JSON."""
    items, _ = runs.runs_page(db, **query)
    return json.loads(_dumps([_run_json(r, r.extra.get("owner")) for r in items]))


def test_the_run_list_answers_the_stored_json_as_the_decoded_runs(db, client):
    owner = users.create_user(db, "dora", "a long enough password")
    plain = runs.create_run(db, small_spec(name="plain"), owner_id=owner.id)
    odd = runs.create_run(
        db, small_spec(name='q"uoted \\ ünïcode ✓', tags=["ä", 'b"c', "NaN"]), status="running"
    )
    runs.update_run_fields(db, odd, notes="Infinity and NaN, as words")
    data_info = {"classes": ["α", "β"], "range": [-1.5, 2.0], "label": "NaN"}
    if db.url.startswith("sqlite"):  # PostgreSQL's json refuses NaN; SQLite stores it
        data_info["mean"] = math.nan
        data_info["spread"] = [math.inf, -math.inf, 1.0]
    runs.mark_started(
        db, odd, layers=[{"name": "hidden_1", "units": 3}], device="cpu", data_info=data_info
    )
    nulls = runs.create_run(db, small_spec(name="nulls"), status="running")
    runs.mark_started(db, nulls, layers=None, device="cpu", data_info={})  # JSON null
    ids = runs.create_runs(db, [small_spec(name=f"many-{i}") for i in range(30)], "succeeded")

    for query in (
        {"limit": 500},
        {"limit": 7, "offset": 3, "sort": "name", "order": "asc"},
        {"limit": 10, "status": "running"},
    ):
        params = "&".join(f"{k}={v}" for k, v in query.items())
        response = client.get(f"/api/runs?{params}")
        assert response.status_code == 200, response.get_data(as_text=True)
        text = response.get_data(as_text=True)
        assert "NaN" not in text.replace('"NaN"', "").replace("and NaN", "")  # JSON only
        answer = json.loads(text)
        assert answer["runs"] == _decoded(db, **query), query
        assert int(response.headers["Content-Length"]) == len(response.get_data())

    listed = {r["id"]: r for r in client.get("/api/runs?limit=500").get_json()["runs"]}
    assert set(listed) == {plain, odd, nulls, *ids}
    assert listed[odd]["name"] == 'q"uoted \\ ünïcode ✓'
    assert listed[odd]["tags"] == ["ä", 'b"c', "NaN"]
    assert listed[odd]["data_info"]["classes"] == ["α", "β"]
    if db.url.startswith("sqlite"):
        assert listed[odd]["data_info"]["mean"] is None
        assert listed[odd]["data_info"]["spread"] == [None, None, 1.0]
    assert listed[nulls]["layers"] == [] and listed[nulls]["data_info"] == {}
    assert listed[plain]["owner"] == "dora" and listed[plain]["spec"]["name"] == "plain"
    assert list(listed[plain]) == list(_decoded(db, limit=1, sort="id", order="asc")[0])
