"""The run and compare pages in a real browser on runs recorded by nl.Recorder (issue 15
part 3): a small NNX CNN with a residual block, trained by its own loop in this process into
the server's database. Every tab draws a figure or says in a sentence why it has none; none
shows a failure."""

from __future__ import annotations

import json

import numpy as np
import pytest

from netlens.storage.catalog import TRAINED_ELSEWHERE
from tests.browser.conftest import shot

pytestmark = pytest.mark.browser

jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")
nnx = pytest.importorskip("flax.nnx")

EPOCHS = 5
TABS = [
    ("curves", "Loss & accuracy"),
    ("params", "Parameters"),
    ("outputs", "Outputs per input"),
    ("network", "Network graph"),
    ("network3d", "3D network"),
    ("activations", "Activations"),
    ("gradients", "Gradients"),
    ("representation", "Hidden representation"),
]
# Tabs whose every panel must draw data for this run (the rest may explain in a sentence).
MUST_DRAW = {"curves", "params", "outputs", "network", "network3d", "activations", "representation"}
FAILURE_TEXT = ("could not be drawn", "Traceback", "Error:", "nothing recorded yet")

DESCRIBE_PANE = """() => {
  const pane = document.querySelector('.tab-content > .tab-pane.active');
  if (!pane) return null;
  return Array.from(pane.querySelectorAll('.dash-graph')).map(div => {
    const gd = div.querySelector('.js-plotly-plot');
    const full = (gd && gd._fullData) || [];
    const layout = (gd && gd.layout) || {};
    const title = typeof layout.title === 'string' ? layout.title : ((layout.title || {}).text || '');
    return {
      id: div.id,
      loading: div.getAttribute('data-dash-is-loading'),
      traces: full.filter(t => t.visible !== false).length,
      drawn: gd ? gd.querySelectorAll(
        '.scatterlayer g.trace, .barlayer g.trace, .heatmaplayer g.hm, .sankey-link, ' +
        '.gl-container canvas').length : 0,
      annotations: (layout.annotations || []).map(a => a.text),
      title: title,
    };
  });
}"""


class Residual(nnx.Module):
    def __init__(self, channels: int, rngs):
        self.conv1 = nnx.Conv(channels, channels, (3, 3), rngs=rngs)
        self.conv2 = nnx.Conv(channels, channels, (3, 3), rngs=rngs)

    def __call__(self, x):
        return nnx.relu(x + self.conv2(nnx.relu(self.conv1(x))))


class SmallCNN(nnx.Module):
    def __init__(self, rngs):
        self.stem = nnx.Conv(1, 4, (3, 3), rngs=rngs)
        self.block = Residual(4, rngs)
        self.hidden = nnx.Linear(4, 8, rngs=rngs)
        self.head = nnx.Linear(8, 3, rngs=rngs)

    def __call__(self, x):
        x = self.block(nnx.relu(self.stem(x)))
        return self.head(nnx.relu(self.hidden(x.mean(axis=(1, 2)))))  # logits


class SmallMLP(nnx.Module):
    def __init__(self, rngs):
        self.hidden_1 = nnx.Linear(2, 5, rngs=rngs)
        self.hidden_2 = nnx.Linear(5, 3, rngs=rngs)
        self.out = nnx.Linear(3, 1, rngs=rngs)

    def __call__(self, x):
        x = jax.numpy.tanh(self.hidden_1(x))
        return self.out(jax.numpy.tanh(self.hidden_2(x)))  # one logit


def bars(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """6x6 images of three classes: a row bar, a column bar, a square."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(0, 0.3, (n, 6, 6, 1)).astype(np.float32)
    for i, label in enumerate(y):
        if label == 0:
            x[i, 2, :, 0] += 1.5
        elif label == 1:
            x[i, :, 2, 0] += 1.5
        else:
            x[i, 1:5, 1:5, 0] += 1.0
    return x, y


def record_cnn(name: str, seed: int) -> int:
    import netlens as nl

    x, y = bars(128, seed)
    x_probe, y_probe = bars(30, 100)
    model = SmallCNN(nnx.Rngs(seed))
    graphdef, params = nnx.split(model, nnx.Param)
    tx = optax.adam(0.01)
    opt_state = tx.init(params)

    @jax.jit
    def step(params, opt_state, xb, yb):
        def loss_fn(p):
            logits = nnx.merge(graphdef, p)(xb)
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()
            return loss, logits

        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        accuracy = (logits.argmax(1) == yb).mean()
        return optax.apply_updates(params, updates), opt_state, loss, accuracy

    rec = nl.Recorder(model, probe=x_probe, probe_labels=y_probe, name=name, epochs=EPOCHS)
    with rec:
        rec.log(0, params=params)
        for epoch in range(1, EPOCHS + 1):
            params, opt_state, loss, acc = step(params, opt_state, x, y)
            rec.log(epoch, params=params, loss=float(loss), accuracy=float(acc), lr=0.01)
    return rec.run_id


def record_mlp(name: str) -> int:
    """A dense chain returning one logit, its parameters updated in place by nnx.Optimizer."""
    import netlens as nl

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 2)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
    model = SmallMLP(nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, optax.adam(0.05), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer, xb, yb):
        def loss_fn(model):
            logits = model(xb)[:, 0]
            return optax.sigmoid_binary_cross_entropy(logits, yb).mean()

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    rec = nl.Recorder(model, probe=x[:20], probe_labels=y[:20], name=name, epochs=EPOCHS)
    with rec:
        for epoch in range(1, EPOCHS + 1):
            rec.log(epoch, train_loss=float(step(model, optimizer, x, y.astype(np.float32))))
    return rec.run_id


@pytest.fixture(scope="module")
def mlp_run(server):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NETLENS_HOME", str(server.home))
        mp.delenv("NETLENS_DATABASE_URL", raising=False)
        return record_mlp("recorder mlp")


@pytest.fixture(scope="module")
def cnn_runs(server):
    """Two recorder runs (two seeds) in the server's own SQLite database."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NETLENS_HOME", str(server.home))
        mp.delenv("NETLENS_DATABASE_URL", raising=False)
        return [record_cnn("recorder cnn seed 0", 0), record_cnn("recorder cnn seed 1", 1)]


def _settled(graphs) -> bool:
    return bool(graphs) and all(
        g["loading"] in (None, "false") and (g["traces"] > 0 or g["annotations"]) for g in graphs
    )


def _wait_pane(page, must_draw: bool, timeout_s: float = 20) -> list[dict]:
    graphs = []
    for _ in range(int(timeout_s * 10)):
        graphs = page.evaluate(DESCRIBE_PANE) or []
        if _settled(graphs) and (not must_draw or all(g["traces"] > 0 for g in graphs)):
            return graphs
        page.wait_for_timeout(100)
    return graphs


def _problems(label: str, graphs: list[dict], must_draw: bool) -> list[str]:
    found = []
    if not graphs:
        return [f"{label}: no graph in the pane"]
    for g in graphs:
        texts = g["annotations"] + [g["title"]]
        bad = [t for t in texts if any(f.lower() in (t or "").lower() for f in FAILURE_TEXT)]
        if bad:
            found.append(f"{label}: {g['id']} shows a failure: {bad}")
        elif g["traces"] == 0 and not any(len(t or "") > 20 for t in g["annotations"]):
            found.append(f"{label}: {g['id']} is empty without a sentence: {json.dumps(g)}")
        elif must_draw and (g["traces"] == 0 or g["drawn"] == 0):
            found.append(f"{label}: {g['id']} draws no data: {json.dumps(g)}")
    return found


def test_every_tab_of_a_recorder_cnn_run_draws_or_explains(page, server, cnn_runs):
    run_id = cnn_runs[0]
    page.goto(f"{server.url}/runs/{run_id}")
    page.wait_for_function(
        "document.querySelector('#run-epoch-label')?.innerText.trim() === 'epoch 5'"
    )
    subtitle = page.locator("#run-header p").first.inner_text()
    assert subtitle.count("external") == 1 and "own training loop" in subtitle, subtitle
    for button in ("#run-cancel", "#run-retry", "#run-retry-scratch"):  # the server says 409
        assert page.locator(button).is_disabled(), button
        assert TRAINED_ELSEWHERE in page.locator(button).get_attribute("title"), button
    failures = []
    for tab_id, label in TABS:
        page.get_by_role("tab", name=label, exact=True).click()
        graphs = _wait_pane(page, tab_id in MUST_DRAW)
        shot(page, f"recorder-run-{tab_id}")
        failures += _problems(label, graphs, tab_id in MUST_DRAW)
        if tab_id == "curves":
            names = {g["id"]: g for g in graphs}
            assert names["fig-loss"]["traces"] >= 1, names  # the user's "loss"
            assert names["fig-accuracy"]["traces"] >= 2, names  # "accuracy" and "lr"
        if tab_id == "gradients":
            (grad,) = graphs
            assert any("trained by the user's own loop" in t for t in grad["annotations"]), grad
        if tab_id == "outputs":
            (out,) = graphs
            assert "logits" in out["title"], out  # the model returns logits: softmax applied
        if tab_id == "network":
            # the module graph: no bias/activation choice, and the residual block's skip
            assert not page.locator("#net-color-by").is_visible()
            skip = page.evaluate(
                "(() => { const gd = document.querySelector('#fig-network .js-plotly-plot');"
                " const t = gd._fullData.find(t => t.name === 'skip');"
                " return t && {dash: t.line.dash, text: t.text[0]}; })()"
            )
            assert skip and skip["dash"] == "dash", skip
            assert "input of block (the output of stem)" in skip["text"], skip
    # the convolutional modules' outputs (E, P, 6, 6, 4) in the representation, flattened
    for layer in ("stem", "block", "block.conv1", "hidden"):
        page.select_option("#rep-layer", layer)
        page.wait_for_function(
            "l => (document.querySelector('#fig-representation .js-plotly-plot')?.layout"
            "?.title?.text || '').startsWith(l + ' at epoch')",
            arg=layer,
        )
        graphs = _wait_pane(page, True)
        failures += _problems(f"representation of {layer}", graphs, True)
    shot(page, "recorder-run-representation-hidden")
    page.get_by_role("tab", name="Activations", exact=True).click()
    page.select_option("#act-layer", "block")
    page.wait_for_function(
        "(document.querySelector('#fig-act-stats .js-plotly-plot')?.layout?.title?.text || '')"
        ".includes('block')"
    )
    failures += _problems("activations of block", _wait_pane(page, True), True)
    page.get_by_role("tab", name="Parameters", exact=True).click()
    page.select_option("#param-layer", "block")  # a container: no weights of its own
    page.wait_for_function(
        "(document.querySelector('#fig-trajectory .js-plotly-plot')?.layout?.annotations || [])"
        ".some(a => a.text.includes('no weights of its own'))"
    )
    failures += _problems("parameters of block", _wait_pane(page, False), False)
    shot(page, "recorder-run-params-block")
    assert not failures, "\n".join(failures)


def test_compare_side_by_side_of_recorder_runs(page, server, cnn_runs):
    page.goto(f"{server.url}/compare?runs={','.join(map(str, cnn_runs))}")
    page.wait_for_selector("text=Comparing 2 runs")
    # the runs' own "loss" and "accuracy" are drawn as their training curves
    page.wait_for_selector("#compare-loss .scatterlayer g.trace")
    assert page.locator("#compare-loss .scatterlayer g.trace").count() == 2
    assert page.locator("#compare-accuracy .scatterlayer g.trace").count() == 2
    # the user's loss is theirs, not necessarily a cross-entropy
    assert page.locator("#compare-loss .ytitle").text_content() == "loss"
    # the final/best table reads each run's own "loss" and "accuracy"
    import netlens as nl

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NETLENS_HOME", str(server.home))
        mp.delenv("NETLENS_DATABASE_URL", raising=False)
        recorded = [nl.get(i).metrics() for i in cnn_runs]
    rows = page.locator(".compare-table tbody tr")
    for k, metrics in enumerate(recorded):
        cells = rows.nth(k).locator("td").all_inner_texts()
        assert cells[3] == f"{metrics['loss'].iloc[-1]:.4g}", cells  # final train loss
        assert cells[5] == f"{metrics['accuracy'].iloc[-1]:.4g}", cells  # final train acc
        best = metrics["loss"].idxmin()
        assert cells[7] == f"{metrics['loss'][best]:.4g} at epoch {best} (train)", cells
    failures = []
    # the module graph (lines and markers+text), then the representation (markers alone)
    for view, mode in (("network", "markers+text"), ("representation", "markers")):
        page.select_option("#cmp-side-view", view)
        for i in range(2):
            page.wait_for_function(
                f"(() => {{ const gd = document.querySelector('#cmp-fig-side-{i} .js-plotly-plot');"
                " return gd && gd._fullData && gd._fullData.length > 0"
                f" && gd._fullData.some(t => t.mode === '{mode}'); }})()"
            )
        shot(page, f"recorder-compare-{view}")
        for i in range(2):
            texts = page.evaluate(
                f"(() => {{ const gd = document.querySelector('#cmp-fig-side-{i} .js-plotly-plot');"
                " return [(gd.layout.title || {}).text || ''].concat("
                "(gd.layout.annotations || []).map(a => a.text)); })()"
            )
            if any(f.lower() in t.lower() for t in texts for f in FAILURE_TEXT):
                failures.append(f"side {i} {view}: {texts}")
    assert not failures, "\n".join(failures)


def test_a_recorder_mlp_has_the_neuron_level_graph_and_its_logit_read_through_a_sigmoid(
    page, server, mlp_run
):
    page.goto(f"{server.url}/runs/{mlp_run}")
    page.wait_for_function(
        "document.querySelector('#run-epoch-label')?.innerText.trim() === 'epoch 5'"
    )
    failures = []
    for tab_id, label in TABS:
        page.get_by_role("tab", name=label, exact=True).click()
        # no gradient norms, and no accuracy logged: those panels explain in a sentence
        must = tab_id not in ("gradients", "curves")
        graphs = _wait_pane(page, must)
        shot(page, f"recorder-mlp-{tab_id}")
        failures += _problems(label, graphs, must)
        if tab_id == "curves":
            found = {g["id"]: g for g in graphs}
            assert found["fig-loss"]["traces"] == 1, found
            assert "no metric named like an accuracy" in found["fig-accuracy"]["annotations"][0]
        if tab_id == "network":
            (net,) = graphs
            # the neuron-level graph of the dense chain, not the module graph
            assert not net["title"].startswith("modules in call order"), net
        if tab_id == "outputs":
            (out,) = graphs
            assert "sigmoid" in out["title"], out
    assert not failures, "\n".join(failures)


SIGNATURE_TABS = [
    "Separability",
    "Clusters",
    "Flow",
    "Projections",
    "Class signatures",
    "Unseen classes",
    "Compare two inputs",
]


def test_signatures_page_of_a_recorder_cnn_run(page, server, web_db, cnn_runs):
    """The worker's analyses of every module's flattened output (conv ones included)."""
    from netlens.storage import analyses

    run_id = cnn_runs[0]

    def done(kind: str) -> bool:
        found = analyses.get(web_db, run_id, kind, EPOCHS)
        assert found is None or found.state != "failed", found.error
        return found is not None and found.state == "done"

    page.goto(f"{server.url}/runs/{run_id}/signatures")
    page.wait_for_function(
        f"document.querySelector('#sig-epoch-label')?.innerText.startsWith('epoch {EPOCHS}')"
    )
    if not (done("epoch") and done("timeline")):
        page.get_by_role("button", name="Analyse this epoch").click()
        for _ in range(600):
            if done("epoch") and done("timeline"):
                break
            page.wait_for_timeout(250)
        assert done("epoch") and done("timeline"), "the worker never analysed the run"
        page.reload()
    failures = []
    for i, label in enumerate(SIGNATURE_TABS):
        page.get_by_role("tab", name=label, exact=True).click()
        page.wait_for_timeout(1500)
        shot(page, f"recorder-signatures-{i}-{label.lower().replace(' ', '-')}")
        pane = page.locator(".tab-content > .tab-pane.active").last.inner_text()
        graphs = page.evaluate(DESCRIBE_PANE) or []
        failures += [
            f"{label}: {f!r} on the page" for f in FAILURE_TEXT if f.lower() in pane.lower()
        ]
        failures += _problems(label, graphs, label not in ("Unseen classes",)) if graphs else []
    assert not failures, "\n".join(failures)
