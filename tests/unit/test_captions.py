"""Words for beginners (issue 16 part 3): every tab of the run, signatures and compare pages
opens with a caption and a lesson link, every glossary word a page uses is defined, and the
words' tooltips find their targets (ids unique on each page)."""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import dash_bootstrap_components as dbc
import pytest
from dash import dcc

from netlens.storage import runs
from netlens.storage.db import Database
from netlens.storage.migrate import upgrade
from netlens.storage.settings import Settings
from netlens.webapp import captions, glossary
from netlens.webapp.app import create_app
from netlens.webapp.views import compare as compare_views
from netlens.webapp.views import run as run_views
from tests.conftest import small_spec

WEBAPP = Path(__file__).resolve().parents[2] / "webapp"
# The modules that build the three pages' tabs.
TAB_SOURCES = ["pages/run.py", "views/run.py", "pages/signatures.py", "pages/compare.py"]
TAB_SOURCES += ["views/compare.py"]


def walk(component):
    """Every component in a layout tree, depth first."""
    yield component
    children = getattr(component, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str | int | float):
            yield from walk(child)


def text_of(component) -> str:
    """The text a reader sees (tooltips, which show on hover only, left out)."""
    if isinstance(component, str):
        return component
    if isinstance(component, dbc.Tooltip) or component is None:
        return ""
    children = getattr(component, "children", None)
    children = children if isinstance(children, list | tuple) else [children]
    return "".join(text_of(c) for c in children)


def check_tabs(tabs: dbc.Tabs, page: str) -> list[str]:
    """What is wrong with the captions of `tabs` (nothing: an empty list)."""
    problems = []
    for tab in [c for c in walk(tabs) if isinstance(c, dbc.Tab)]:
        first = tab.children[0] if isinstance(tab.children, list) else tab.children
        if getattr(first, "className", None) != "view-caption":
            problems.append(f"{page} tab {tab.label!r}: no caption above its view")
            continue
        if first.id != f"cap-{page}-{tab.tab_id}":
            problems.append(f"{page} tab {tab.label!r}: the caption of another view ({first.id})")
        links = [c.href for c in walk(first) if isinstance(c, dcc.Link)]
        if not any(h in {f"/learn/{s}" for s in glossary.LESSONS} for h in links):
            problems.append(f"{page} tab {tab.label!r}: no lesson link ({links})")
        if "Look for:" not in text_of(first):
            problems.append(f"{page} tab {tab.label!r}: says nothing to look for")
    return problems


def check_ids(layout) -> list[str]:
    """Duplicate ids, and tooltips whose target is not on the page."""
    ids = [c.id for c in walk(layout) if isinstance(getattr(c, "id", None), str)]
    twice = [i for i, n in Counter(ids).items() if n > 1]
    targets = [c.target for c in walk(layout) if isinstance(c, dbc.Tooltip)]
    return [f"id {i!r} twice" for i in twice] + [
        f"tooltip for a missing {t!r}" for t in targets if t not in set(ids)
    ]


def dense(name: str, n_in: int, n_out: int, kind: str = "dense") -> dict:
    return {"name": name, "kind": kind, "params": {"kernel": [n_in, n_out]}, "units": n_out}


def run_info(model: dict, dataset: str, layers: list[dict], **data_info) -> SimpleNamespace:
    return SimpleNamespace(
        id=1,
        name="r",
        spec={"model": model, "dataset": {"name": dataset}},
        layers=layers,
        data_info=data_info,
    )


ROOT = {"name": "output", "kind": "module", "params": {}, "units": 1}
CONV = {"name": "c", "kind": "module", "params": {"kernel": [3, 3, 1, 4]}, "units": 64}
# One run of each kind whose views adapt: a 2-D spec run (with a decision boundary), a CNN, an
# nl.Recorder run drawn as modules, and one whose dense chain is drawn neuron by neuron.
RUNS = {
    "xor": run_info({"kind": "mlp"}, "xor", [dense("h0", 2, 3), dense("output", 3, 1)]),
    "cnn": run_info(
        {"kind": "cnn"},
        "mnist",
        [dense("conv0", 9, 8, kind="conv"), dense("h0", 72, 16), dense("output", 16, 10)],
    ),
    "modules": run_info(
        {"kind": "flax"}, "external", [CONV, dense("b", 4, 1), ROOT], recorder={"root": "output"}
    ),
    "chain": run_info(
        {"kind": "flax"},
        "external",
        [dense("a", 2, 5), dense("b", 5, 1), ROOT],
        recorder={"root": "output"},
    ),
}


def caption_text(tabs: dbc.Tabs, tab_id: str) -> str:
    (tab,) = [t for t in tabs.children if t.tab_id == tab_id]
    return text_of(tab.children[0])


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    settings = Settings(home=tmp_path_factory.mktemp("words"), database_url=None, broker_url=None)
    db = Database.from_settings(settings)
    upgrade(db)
    run_ids = [
        runs.create_run(db, small_spec(name=f"words {k}", dataset={"name": "xor"}))
        for k in range(2)
    ]
    app = create_app(settings, db)
    with app.server.app_context():
        yield SimpleNamespace(db=db, run_ids=run_ids, pages=sys.modules)
    db.dispose()


def test_every_caption_uses_glossary_words_and_existing_lessons():
    for key, found in captions.CAPTIONS.items():
        words = captions.terms_of(found.shows + found.look_for)
        assert words, f"{key}: no glossary word"
        assert [w for w in words if w not in glossary.GLOSSARY] == [], key
        assert found.lesson in glossary.LESSONS, key
        assert key[:2] in captions.CAPTIONS, f"{key}: a variant of no plain caption"
        # no stray braces: each {…} is markup the caption renders
        rendered = text_of(captions.caption(*key))
        assert "{" not in rendered and "}" not in rendered, key


def test_every_term_named_in_the_source_is_defined():
    """term("…") anywhere in the web app (its caption texts are checked above) names a
    defined word, whichever branch of a page calls it."""
    named = {
        m.group(1)
        for path in WEBAPP.rglob("*.py")
        for m in re.finditer(r"\bterm\(\s*\"([^\"]+)\"", path.read_text())
    }
    assert named, "no term() call found: the pattern no longer matches the source"
    assert named - set(glossary.GLOSSARY) == set()


def test_every_tab_of_the_three_pages_is_made_with_its_caption():
    """A tab added to a page as a bare dbc.Tab (not captioned_tab) fails here, whatever runs
    would show it."""
    for name in TAB_SOURCES:
        assert "dbc.Tab(" not in (WEBAPP / name).read_text(), name


@pytest.mark.parametrize("kind", list(RUNS))
def test_every_run_page_tab_has_a_caption_and_a_lesson(kind):
    tabs = run_views.tabs(RUNS[kind])
    assert len(tabs.children) >= 8
    assert check_tabs(tabs, "run") == []
    assert check_ids(tabs) == []


def test_run_page_captions_follow_what_the_views_draw():
    tabs = {kind: run_views.tabs(info) for kind, info in RUNS.items()}
    plain = caption_text(tabs["xor"], "network")
    assert caption_text(tabs["chain"], "network") == plain  # drawn neuron by neuron too
    assert caption_text(tabs["modules"], "network") != plain
    assert "modules" in caption_text(tabs["modules"], "network")
    assert "modules" in caption_text(tabs["modules"], "network3d")
    assert "convolution" in caption_text(tabs["cnn"], "network")
    assert "convolution" in caption_text(tabs["cnn"], "params")
    assert "convolution" not in caption_text(tabs["xor"], "params")
    for view in ("curves", "outputs", "activations", "gradients"):
        assert caption_text(tabs["chain"], view) != caption_text(tabs["xor"], view), view
    assert "boundary" in [t.tab_id for t in tabs["xor"].children]


def test_signatures_and_compare_tabs_have_captions_and_lessons(web):
    signatures = web.pages["pages.signatures"]._tabs()
    assert len(signatures.children) == 7
    assert check_tabs(signatures, "signatures") == []
    compared = compare_views.tabs(list(RUNS.values())[:2])
    assert len(compared.children) == 4
    assert check_tabs(compared, "compare") == []


def test_whole_pages_have_unique_ids_and_every_tooltip_finds_its_word(web):
    first, second = web.run_ids
    pages = web.pages
    layouts = {
        "run": pages["pages.run"].layout(run_id=str(first)),
        "signatures": pages["pages.signatures"].layout(run_id=str(first)),
        "compare": pages["pages.compare"].layout(runs=f"{first},{second}"),
    }
    for name, layout in layouts.items():
        assert check_ids(layout) == [], name
        assert any(isinstance(c, dbc.Tooltip) for c in walk(layout)), name
    compare_curves = [
        c for c in walk(layouts["compare"]) if getattr(c, "id", None) == "cap-compare-curves"
    ]
    assert compare_curves and "/learn/compare" in str(compare_curves[0])
    # the signatures page's intro links its lesson too, beside its 7 tabs
    assert str(layouts["signatures"]).count("/learn/signatures") == 7 + 1


def test_a_term_shows_its_definition_and_a_repeated_word_gets_its_own_id(monkeypatch):
    twice = captions.Caption("A {weight} and more {weight|weights}.", "{bias}, {weight}.", "xor")
    monkeypatch.setitem(captions.CAPTIONS, ("run", "twice"), twice)
    shown = captions.caption("run", "twice")
    tips = [c for c in walk(shown) if isinstance(c, dbc.Tooltip)]
    words = ["weight", "weight", "bias", "weight"]
    assert [t.children for t in tips] == [glossary.GLOSSARY[w] for w in words]
    assert len({t.target for t in tips}) == 4 and check_ids(shown) == []
    assert text_of(shown).startswith("A weight and more weights. Look for: bias, weight.")
    with pytest.raises(KeyError):
        glossary.term("no such word", id="x")
