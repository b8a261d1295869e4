"""Many runs (/explore): the parallel-coordinates builder, the brush selection, the storage
query behind them, and the page and its brushing callback on a real SQLite database."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlparse

import numpy as np
import plotly.graph_objects as go
import pytest

from netlens.storage import groups, records, runs
from netlens.storage.db import Database
from netlens.storage.migrate import upgrade
from netlens.storage.settings import Settings
from netlens.storage.spec import parse_spec
from netlens.webapp.app import create_app
from netlens.webapp.figures import parcoords as pc
from tests.conftest import small_spec

LEARNING_RATES = (0.001, 0.003, 0.01, 0.03, 0.1)
HIDDEN = ([8], [8, 8], [16])


@dataclass
class Row:
    """What the builder reads of a run (storage RunOverview has these and more)."""

    id: int
    spec: dict
    final_metrics: dict = field(default_factory=dict)
    name: str = ""
    status: str = "succeeded"


def spec_dict(lr=0.01, hidden=(8,), optimizer="adam", **sections) -> dict:
    data = {
        "model": {"hidden": [{"units": u, "activation": "tanh"} for u in hidden]},
        "optimizer": {"name": optimizer, "learning_rate": lr},
        **sections,
    }
    return small_spec(**data).model_dump(mode="json")


def metrics(acc: float | None, loss: float | None = 0.3) -> dict:
    return {"train_loss": loss, "train_accuracy": acc, "val_loss": loss, "val_accuracy": acc}


def add_run(
    db: Database, index: int, *, failed: bool = False, tag: str = "explore", **spec_kwargs
) -> int:
    """A run with a varied spec and final metrics, made through storage (no training): its
    metrics are one recorded epoch, as a worker would write it."""
    spec = parse_spec(spec_dict(**spec_kwargs) | {"name": f"explore-{index}", "tags": [tag]})
    run_id = runs.create_run(db, spec, status="running")
    if failed:
        runs.finish_run(db, run_id, "diverged", error="non-finite loss at epoch 3")
        return run_id
    acc = 0.5 + 0.45 * (1 - abs(math.log10(spec.optimizer.learning_rate) + 2) / 1.5)
    loss = 1.0 - acc
    records.write_epochs(
        db,
        run_id,
        records.EpochChunk(
            epochs=[spec.training.epochs],
            tensors={},
            sparse_epochs={},
            metrics=[
                {
                    "train_loss": loss,
                    "train_accuracy": acc,
                    "val_loss": loss + 0.05,
                    "val_accuracy": acc - 0.02,
                }
            ],
        ),
    )
    runs.finish_run(db, run_id, "succeeded")
    return run_id


def add_varied_runs(db: Database, n: int, tag: str = "explore") -> list[int]:
    """n runs over a learning rate × hidden layers × optimizer grid; every 7th one diverged."""
    return [
        add_run(
            db,
            i,
            lr=LEARNING_RATES[i % 5],
            hidden=HIDDEN[(i // 5) % 3],
            optimizer=("adam", "sgd")[(i // 15) % 2],
            failed=i % 7 == 6,
            tag=tag,
        )
        for i in range(n)
    ]


def dims_by_label(fig: go.Figure) -> dict[str, dict]:
    return {d["label"]: d for d in fig.to_plotly_json()["data"][0]["dimensions"]}


# --------------------------------------------------------------------------- the figure


def test_only_fields_that_vary_become_dimensions_then_the_final_metrics():
    rows = [
        Row(i, spec_dict(lr=0.01, hidden=h, name=f"run {i}", tags=[str(i)]), metrics(0.5 + i / 10))
        for i, h in enumerate(([8], [8, 8], [8]))
    ]
    dims = dims_by_label(pc.build_parallel_coordinates(rows))
    assert list(dims) == ["hidden widths", "train loss", "val loss", "val acc", "train acc"]
    assert dims["hidden widths"]["ticktext"] == ["8", "8-8"]
    assert dims["hidden widths"]["values"] == [0, 1, 0]
    # name and tags differ too, but are not hyperparameters; the learning rate is the same
    assert "name" not in str(list(dims)) and "learning rate" not in dims


def test_categorical_fields_get_integer_codes_with_their_values_as_ticks():
    rows = [
        Row(i, spec_dict(optimizer=o, hidden=h), metrics(0.9))
        for i, (o, h) in enumerate([("sgd", [16]), ("adam", [8, 8]), ("momentum", [8])])
    ]
    dims = dims_by_label(pc.build_parallel_coordinates(rows))
    opt = dims["optimizer"]
    assert opt["ticktext"] == ["adam", "momentum", "sgd"] and opt["tickvals"] == [0, 1, 2]
    assert opt["values"] == [2, 0, 1]
    assert dims["hidden widths"]["ticktext"] == ["8", "8-8", "16"]  # by the widths


def test_learning_rate_over_more_than_a_decade_is_plotted_as_log10_with_real_tick_labels():
    rows = [Row(i, spec_dict(lr=lr), metrics(0.9)) for i, lr in enumerate(LEARNING_RATES)]
    lr = dims_by_label(pc.build_parallel_coordinates(rows))["learning rate"]
    np.testing.assert_allclose(lr["values"], np.log10(LEARNING_RATES))
    np.testing.assert_allclose(lr["tickvals"], np.log10(LEARNING_RATES))
    assert lr["ticktext"] == ["0.001", "0.003", "0.01", "0.03", "0.1"]
    # within one decade it stays linear
    rows = [Row(i, spec_dict(lr=lr), metrics(0.9)) for i, lr in enumerate((0.01, 0.05, 0.1))]
    assert dims_by_label(pc.build_parallel_coordinates(rows))["learning rate"]["values"] == [
        0.01,
        0.05,
        0.1,
    ]
    # many distinct rates: ticks at the decades
    many = np.geomspace(1e-4, 1.0, 30)
    rows = [Row(i, spec_dict(lr=float(lr)), metrics(0.9)) for i, lr in enumerate(many)]
    lr = dims_by_label(pc.build_parallel_coordinates(rows))["learning rate"]
    assert lr["ticktext"] == ["0.0001", "0.001", "0.01", "0.1", "1"]


def test_runs_without_final_metrics_sit_at_a_no_value_tick_below_the_others():
    rows = [
        Row(1, spec_dict(lr=0.01), metrics(0.8)),
        Row(2, spec_dict(lr=0.1), metrics(0.6)),
        Row(3, spec_dict(lr=3.0), metrics(None, loss=None), status="diverged"),
    ]
    fig = pc.build_parallel_coordinates(rows)
    acc = dims_by_label(fig)["val acc"]
    assert acc["ticktext"][0] == pc.NO_VALUE
    assert acc["values"][2] == acc["tickvals"][0] < min(acc["values"][:2])
    line = fig.to_plotly_json()["data"][0]["line"]
    assert line["colorbar"]["title"]["text"] == "val acc"
    assert line["cmin"] == acc["tickvals"][0] and line["colorscale"][0][1] == pc.NO_VALUE_COLOR
    assert "1 run without final metrics" in fig.layout.title.text
    # a brush on the bottom of the axis selects the failed run
    dims = [dict(d) for d in fig.to_plotly_json()["data"][0]["dimensions"]]
    dims[-2]["constraintrange"] = [acc["tickvals"][0] - 0.01, acc["tickvals"][0] + 0.01]
    assert pc.selected_runs(dims, [1, 2, 3]) == [3]


def test_colour_is_train_accuracy_when_no_run_has_validation():
    rows = [
        Row(i, spec_dict(lr=lr), {"train_loss": 0.1, "train_accuracy": a})
        for i, (lr, a) in enumerate(((0.01, 0.7), (0.02, 0.9)))
    ]
    fig = pc.build_parallel_coordinates(rows)
    assert list(dims_by_label(fig)) == ["learning rate", "train loss", "train acc"]
    assert fig.data[0].line.colorbar.title.text == "train acc"
    assert list(fig.data[0].line.color) == [0.7, 0.9]


def test_more_than_the_limit_draws_the_first_1000_runs_and_says_so():
    rows = [
        Row(i, spec_dict(lr=0.001 * (1 + i % 50)), metrics(0.5 + (i % 40) / 100))
        for i in range(pc.MAX_PARCOORDS_RUNS + 1)
    ]
    fig = pc.build_parallel_coordinates(rows)
    assert len(fig.data[0].dimensions[0].values) == pc.MAX_PARCOORDS_RUNS
    assert "the first 1,000 runs of more than 1,000 that match" in fig.layout.title.text
    fig = pc.build_parallel_coordinates(rows[:10], more_matching=True)
    assert "more than 1,000" in fig.layout.title.text
    assert "more than" not in pc.build_parallel_coordinates(rows[:10]).layout.title.text


def test_too_few_runs_and_long_labels():
    fig = pc.build_parallel_coordinates([Row(1, spec_dict(), metrics(0.9))])
    assert not fig.data and "at least 2 runs" in fig.layout.annotations[0].text
    labels = pc.axis_labels(
        [
            "optimizer.learning_rate",
            "dataset.seed",
            "training.seed",
            "dataset.noise",
            "recording.grid_resolution",
        ]
    )
    assert labels["optimizer.learning_rate"] == "learning rate"
    assert labels["dataset.seed"] == "data seed" and labels["training.seed"] == "seed"
    assert max(len(v) for v in labels.values()) <= 14
    labels = pc.axis_labels(["training.seed", "a.seed", "b.seed"])
    assert list(labels.values()) == ["training seed", "a seed", "b seed"]  # made unique


# --------------------------------------------------------------------------- the brush


def _figure_dims():
    rows = [
        Row(10 + i, spec_dict(lr=lr, optimizer=("adam", "sgd")[i % 2]), metrics(0.5 + i / 10))
        for i, lr in enumerate(LEARNING_RATES)
    ]
    return pc.build_parallel_coordinates(rows).to_dict(), [r.id for r in rows]


def test_no_brush_selects_every_run():
    figure, ids = _figure_dims()
    assert pc.selected_runs(figure, ids) == ids
    assert pc.selected_runs(go.Figure(figure), ids) == ids
    assert pc.selected_runs(pc.apply_restyle(pc.dimensions_of(figure), None), ids) == ids


def test_one_constraint_range_selects_the_runs_inside_it():
    figure, ids = _figure_dims()  # dimensions: optimizer, learning rate (log10), metrics
    dims = pc.apply_restyle(
        pc.dimensions_of(figure), [{"dimensions[1].constraintrange": [[-2.1, -1.4]]}, [0]]
    )
    assert pc.selected_runs(dims, ids) == [12, 13]  # lr 0.01 and 0.03
    dims = pc.apply_restyle(
        pc.dimensions_of(figure),  # a bare range, as some clients send
        {"dimensions[1].constraintrange": [-2.1, -1.4]},
    )
    assert pc.selected_runs(dims, ids) == [12, 13]


def test_several_ranges_on_one_axis_and_ranges_on_several_axes():
    figure, ids = _figure_dims()
    two = [{"dimensions[1].constraintrange": [[[-3.1, -2.9], [-1.1, -0.9]]]}, [0]]
    dims = pc.apply_restyle(pc.dimensions_of(figure), two)
    assert pc.selected_runs(dims, ids) == [10, 14]  # lr 0.001 or 0.1
    dims = pc.apply_restyle(dims, [{"dimensions[0].constraintrange": [[-0.2, 0.2]]}, [0]])
    assert pc.selected_runs(dims, ids) == [10, 14]  # and adam (code 0): both are adam
    dims = pc.apply_restyle(dims, [{"dimensions[0].constraintrange": [[0.8, 1.2]]}, [0]])
    assert pc.selected_runs(dims, ids) == []  # sgd runs have lr 0.003 and 0.03
    dims = pc.apply_restyle(dims, [{"dimensions[0].constraintrange": None}, [0]])  # cleared
    assert pc.selected_runs(dims, ids) == [10, 14]
    # the figure itself can carry the ranges (Plotly writes them into the data it was given)
    figure["data"][0]["dimensions"][1]["constraintrange"] = [[-3.1, -2.9], [-1.1, -0.9]]
    assert pc.selected_runs(figure, ids) == [10, 14]


def test_selection_reads_plotly_typed_array_json_and_checks_lengths():
    import base64

    values = np.array([0.0, 1.0, 2.0])
    dims = [
        {
            "label": "x",
            "values": {"dtype": "f8", "bdata": base64.b64encode(values.tobytes()).decode()},
            "constraintrange": [0.5, 2.5],
        }
    ]
    assert pc.selected_runs(dims, [1, 2, 3]) == [2, 3]
    with pytest.raises(ValueError, match="3 values for 2 runs"):
        pc.selected_runs(dims, [1, 2])


# --------------------------------------------------------------------------- storage


def test_overview_rows_filters_in_sql_in_id_order(db):
    ids = add_varied_runs(db, 9)
    rows = runs.overview_rows(db)
    assert [r.id for r in rows] == ids
    assert rows[0].spec["optimizer"]["learning_rate"] == 0.001 and rows[0].dataset == "xor"
    assert rows[6].status == "diverged" and rows[6].final_metrics["val_accuracy"] is None
    assert rows[0].final_metrics["val_accuracy"] == pytest.approx(0.5 + 0.45 / 3 - 0.02)
    assert [r.id for r in runs.overview_rows(db, status="diverged")] == [ids[6]]
    assert [r.id for r in runs.overview_rows(db, name_contains="LORE-8")] == [ids[8]]
    assert len(runs.overview_rows(db, tag="explore")) == 9
    assert runs.overview_rows(db, tag="other") == [] == runs.overview_rows(db, dataset="spiral")
    assert [r.id for r in runs.overview_rows(db, run_ids=[ids[3], ids[1]])] == [ids[1], ids[3]]
    assert [r.id for r in runs.overview_rows(db, limit=2)] == ids[:2]
    base = small_spec(name="sweep")
    specs = [parse_spec(spec_dict(lr=lr) | {"name": f"sweep lr={lr}"}) for lr in (0.01, 0.1)]
    group, _ = groups.create_group(
        db, "sweep", base, [("optimizer.learning_rate", [0.01, 0.1])], specs
    )
    swept = runs.overview_rows(db, group=group)
    assert [r.name for r in swept] == ["sweep lr=0.01", "sweep lr=0.1"]
    assert {r.group_id for r in swept} == {group} and swept[0].id > ids[-1]
    assert runs.overview_rows(db, group=group + 1) == []
    with pytest.raises(ValueError, match="status: 'done' is not one of"):
        runs.overview_rows(db, status="done")
    with pytest.raises(ValueError, match="limit: 0 is out of range"):
        runs.overview_rows(db, limit=0)


# --------------------------------------------------------------------------- the page


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    settings = Settings(home=tmp_path_factory.mktemp("explore"), database_url=None, broker_url=None)
    db = Database.from_settings(settings)
    upgrade(db)
    ids = add_varied_runs(db, 20)
    other = runs.create_run(db, small_spec(name="a spiral", dataset={"name": "spiral"}))
    specs = [
        parse_spec(spec_dict(lr=lr, dataset={"name": "circle"}) | {"name": f"lr={lr}"})
        for lr in (0.01, 0.1, 1.0)
    ]
    group, _ = groups.create_group(
        db, "circle sweep", specs[0], [("optimizer.learning_rate", [0.01, 0.1, 1.0])], specs
    )
    app = create_app(settings, db)
    with app.server.app_context():
        yield {
            "db": db,
            "ids": ids,
            "other": other,
            "group": group,
            "page": sys.modules["pages.explore"],
            "overview": sys.modules["netlens.webapp.views.overview"],
        }


def _find(component, predicate):
    """The first component in a layout tree (or a list of them) that satisfies predicate."""
    if not isinstance(component, list | tuple) and predicate(component):
        return component
    children = (
        component if isinstance(component, list | tuple) else getattr(component, "children", None)
    )
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str | int | float):
            found = _find(child, predicate)
            if found is not None:
                return found
    return None


def _figure(layout) -> dict | None:
    """The parcoords figure the panel hands to its drawing (the figure store's data)."""
    store = _find(
        layout,
        lambda c: (
            isinstance(getattr(c, "id", None), dict) and c.id.get("type") == "overview-figure"
        ),
    )
    return store.data if store is not None else None


def _compare_hrefs(children) -> dict[str, str | None]:
    """{class of the compare button: its href} in the selection view."""
    out = {}
    for cls in ("overview-compare", "overview-best"):
        button = _find(children, lambda c, cls=cls: cls in (getattr(c, "className", "") or ""))
        if button is not None:
            out[cls] = None if getattr(button, "disabled", False) else button.href
    return out


def _run_ids(href: str) -> list[int]:
    return [int(i) for i in parse_qs(urlparse(href).query)["runs"][0].split(",")]


def test_explore_page_draws_the_runs_that_match_the_query_string(web):
    page = web["page"]
    layout = page.layout(dataset="xor")
    fig = go.Figure(_figure(layout))
    assert len(fig.data[0].dimensions[0].values) == 20  # the spiral run is filtered out
    assert [d.label for d in fig.data[0].dimensions][:3] == [
        "hidden widths",
        "optimizer",
        "learning rate",
    ]
    assert "2 runs without final metrics" in fig.layout.title.text  # the 7th and 14th
    text = str(layout)
    assert "20 runs · 3 spec fields that vary" in text  # the caption above the drawing
    assert "2 runs without final metrics (failed, diverged or unfinished)" in text
    labels = fig.layout.meta["run_labels"]  # what each line says under the pointer
    assert len(labels) == 20 and labels[0] == f"#{web['ids'][0]} explore-0 (succeeded)"
    assert "All 20 runs (no brush)" in text and "select at most 8" in text
    hrefs = _compare_hrefs(layout)
    assert hrefs["overview-compare"] is None  # 20 runs: disabled
    assert len(_run_ids(hrefs["overview-best"])) == 8
    swept = page.layout(group=str(web["group"]))  # /explore?group=N
    assert "All 3 runs (no brush)" in str(swept)
    lr = go.Figure(_figure(swept)).data[0].dimensions[0]
    assert lr.label == "learning rate" and list(lr.ticktext) == ["0.01", "0.1", "1"]
    spiral = page.layout(dataset="spiral")
    assert "at least 2 runs; 1 match" in str(spiral)
    assert _figure(spiral) is None  # nothing to draw: the panel says why instead
    for bad, message in (
        (dict(group="abc"), "group: 'abc' must be a run group number"),
        (dict(status="done"), "status: 'done' is not one of"),
        (dict(dataset="nope"), "dataset: 'nope' is not one of"),
    ):
        assert message in str(page.layout(**bad))
    assert page.query_string(name="lr", group=3) == "?name=lr&group=3"
    assert page.apply_filters("", "xor", "", "", None, "") == "?dataset=xor"


def test_brushing_callback_selects_runs_and_links_to_compare_them(web):
    overview, ids = web["overview"], web["ids"]
    figure = _figure(web["page"].layout(dataset="xor"))
    run_ids = ids  # the panel's store: the runs in line order
    # learning rate is the 3rd axis: brush lr = 0.1 (log10 -1), then only adam (code 0)
    restyle = [{"dimensions[2].constraintrange": [[-1.05, -0.95]]}, [0]]
    view = overview.update_selection(restyle, figure, run_ids)
    lr_01 = [i for k, i in enumerate(ids) if k % 5 == 4]
    assert f"{len(lr_01)} runs selected by the brush (of 20)" in str(view)
    assert sorted(_run_ids(_compare_hrefs(view)["overview-compare"])) == lr_01
    # the drawing sends every axis's brushes each time (netlens-parcoords.js)
    restyle = [
        {
            "dimensions[0].constraintrange": [None],
            "dimensions[1].constraintrange": [[[-0.1, 0.1]]],
            "dimensions[2].constraintrange": [[[-1.05, -0.95], [4, 5]]],
        },
        [0],
    ]
    view = overview.update_selection(restyle, figure, run_ids)
    adam = [i for k, i in enumerate(ids) if k % 5 == 4 and (k // 15) % 2 == 0]
    assert f"{len(adam)} runs selected by the brush" in str(view)
    href = _compare_hrefs(view)["overview-compare"]
    assert sorted(_run_ids(href)) == adam
    # best first: the table and the compare list are ordered by validation accuracy
    assert href.startswith("/compare?runs=")
    # a brush on nothing
    view = overview.update_selection(
        [{"dimensions[2].constraintrange": [[5, 6]]}, [0]], figure, run_ids
    )
    assert "0 runs selected by the brush" in str(view)
    assert _compare_hrefs(view)["overview-compare"] is None


def test_runs_page_links_to_explore_with_its_filters(web):
    runs_page = sys.modules["pages.runs"]
    assert runs_page.explore_href(None) == "/explore"
    model = {
        "name": {"filter": "lr 0.1"},
        "dataset": {"filter": "xor"},
        "status": {"filter": "succ"},
    }
    assert runs_page.explore_href(model) == "/explore?name=lr+0.1&dataset=xor"


def test_a_huge_number_like_text_in_a_spec_sorts_as_text():
    """A 5,000-digit label column (found by the callback fuzz test) made int() raise and the
    explore page answer 500 for everyone."""
    from netlens.webapp.figures.parcoords import _sort_key

    assert _sort_key("9" * 5000)[0] == 2 and _sort_key("8-16")[0] == 1
