"""The admin page's jobs table (server-rendered, webapp/pages/admin.py) on a real SQLite
database: the first page comes with the layout, sorting by a header (twice: the other way),
the pager, filters back to page 1, ticking rows across pages, and a bad date named."""

from __future__ import annotations

import json
import sys

import flask
import pytest
from dash import no_update

from netlens.storage import jobs, users
from netlens.storage.db import Database
from netlens.storage.migrate import upgrade
from netlens.storage.settings import Settings
from netlens.webapp.app import create_app
from netlens.webapp.views import admin as views
from tests.conftest import small_spec

N_JOBS = 120  # more than two pages


def _rows(component) -> list:
    """The table rows (html.Tr with a data-run attribute) in a rendered jobs table."""
    found = []

    def walk(node):
        if isinstance(node, list | tuple):
            for child in node:
                walk(child)
            return
        if getattr(node, "_type", None) == "Tr" and "data-run" in node.to_plotly_json()["props"]:
            found.append(node)
        children = getattr(node, "children", None)
        if children is not None and not isinstance(children, str | int | float):
            walk(children)

    walk(component)
    return found


def _run_ids(component) -> list[int]:
    return [int(r.to_plotly_json()["props"]["data-run"]) for r in _rows(component)]


def _cell(row, column: str) -> str:
    td = next(c for c in row.children if c.to_plotly_json()["props"].get("data-col") == column)
    return td.children if isinstance(td.children, str) else td.children.children


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    settings = Settings(
        home=tmp_path_factory.mktemp("admin-page"),
        database_url=None,
        broker_url=None,
        auth="required",
    )
    db = Database.from_settings(settings)
    upgrade(db)
    root = users.create_user(db, "root", "a long enough password", is_admin=True)
    alice = users.create_user(db, "alice", "a long enough password")
    ids = [
        jobs.submit(
            db,
            small_spec(name=f"job {i:03d}", dataset={"name": "xor"}),
            owner_id=(alice.id if i % 2 else root.id),
        ).run_id
        for i in range(N_JOBS)
    ]
    app = create_app(settings, db)
    page = sys.modules["pages.admin"]
    with app.server.test_request_context("/admin"):
        flask.g.netlens_actor = users.Actor.of(root)
        yield {"db": db, "ids": ids, "page": page, "alice": alice}
    db.dispose()


NO_FILTERS = ([], "*", "*", "all", None, None)


def test_the_first_page_comes_with_the_layout_newest_first(site):
    page = site["page"]
    layout = page.layout()
    shown = _run_ids(layout)
    assert shown == sorted(site["ids"], reverse=True)[: views.BLOCK]
    assert f"1 to {views.BLOCK} of {N_JOBS}" in str(layout)


def test_a_header_sorts_then_sorts_the_other_way_and_the_pager_turns_pages(site, monkeypatch):
    page = site["page"]
    view = views.DEFAULT_VIEW

    def click(trigger):
        monkeypatch.setattr(page.dash, "ctx", _Ctx(trigger, 1))
        return page.change_view([1], [1], *NO_FILTERS, view)

    view = click({"type": views.SORT, "col": "name"})
    assert view == {"page": 0, "sort": ["name", "desc"]}
    table = views.jobs_table(view, NO_FILTERS, [])
    assert _cell(_rows(table)[0], "name") == f"job {N_JOBS - 1:03d}"
    view = click({"type": views.SORT, "col": "name"})
    assert view["sort"] == ["name", "asc"]
    assert _cell(_rows(views.jobs_table(view, NO_FILTERS, []))[0], "name") == "job 000"
    view = click({"type": views.PAGE, "to": 2})
    table = views.jobs_table(view, NO_FILTERS, [])
    assert [_cell(r, "name") for r in _rows(table)] == [
        f"job {i:03d}" for i in range(2 * views.BLOCK, min(N_JOBS, 3 * views.BLOCK))
    ]
    assert f"{2 * views.BLOCK + 1} to {N_JOBS} of {N_JOBS}" in str(table)
    # a filter goes back to the first page; a button that only appeared changes nothing
    monkeypatch.setattr(page.dash, "ctx", _Ctx(views.F_USER, "alice"))
    assert page.change_view([None], [None], *NO_FILTERS, view)["page"] == 0
    monkeypatch.setattr(page.dash, "ctx", _Ctx({"type": views.PAGE, "to": 1}, None))
    assert page.change_view([None], [None], *NO_FILTERS, view) is no_update


def test_filters_narrow_the_table_and_a_bad_date_is_named(site):  # site: the app context
    alices = views.jobs_table(views.DEFAULT_VIEW, ([], "alice", "*", "all", None, None), [])
    assert len(_run_ids(alices)) == min(views.BLOCK, N_JOBS // 2)
    assert all(_cell(r, "owner") == "alice" for r in _rows(alices))
    assert f"of {N_JOBS // 2}" in str(alices)
    none = views.jobs_table(views.DEFAULT_VIEW, (["running"], "*", "*", "all", None, None), [])
    assert _run_ids(none) == [] and "No job matches these filters" in str(none)
    bad = views.jobs_table(views.DEFAULT_VIEW, ([], "*", "*", "dates", "2026-13-40", None), [])
    assert "month must be in 1..12" in str(bad)


def test_clicking_rows_ticks_them_and_ticks_on_other_pages_are_kept(site, monkeypatch):
    page = site["page"]
    first, other = site["ids"][-1], site["ids"][0]  # on page 1 and on the last page
    monkeypatch.setattr(page.dash, "ctx", _Ctx({"type": views.PICK, "run": first}, 1))
    picked, table = page.pick([1], [other], views.DEFAULT_VIEW, *NO_FILTERS)
    assert picked == [other, first]
    row = next(r for r in _rows(table) if int(r.to_plotly_json()["props"]["data-run"]) == first)
    assert _cell(row, "pick") == "☑" and "table-active" in row.className
    picked, table = page.pick([2], picked, views.DEFAULT_VIEW, *NO_FILTERS)  # again: untick
    assert picked == [other]
    assert page.show_detail([first], None).children[0].children[0].children.startswith(f"#{first} ")


class _Ctx:
    """What the callbacks read of dash.ctx: the trigger and its value."""

    def __init__(self, trigger, value):
        self.triggered_id = trigger
        prop = trigger if isinstance(trigger, str) else "x"
        self.triggered = [{"prop_id": f"{prop}.n_clicks", "value": value}]


def test_pager_buttons_never_share_an_id():
    """On one page of jobs, « and ‹ (and › and ») lead to the same page: with the same id the
    renderer sent one component twice and the guard refused the whole callback (seen live)."""
    for page_no, total in (
        (0, 1),
        (0, views.BLOCK * 3),
        (1, views.BLOCK * 2),
        (2, views.BLOCK * 3),
    ):
        pager = views._pager(page_no, views.BLOCK, total)
        ids = [
            json.dumps(c.id, sort_keys=True)
            for c in pager.children
            if isinstance(getattr(c, "id", None), dict)
        ]
        assert len(ids) == 4 and len(set(ids)) == 4, (page_no, total, ids)
