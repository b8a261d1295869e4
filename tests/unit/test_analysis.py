"""worker.signatures: clusters, Sankey flow, projections, class signatures, separability, OOD
report, on synthetic signatures whose structure is known by construction."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from netlens.worker import signatures
from netlens.worker.signatures import Probe

CLASSES = np.array([1, 7])


def blobs(sizes: list[int], centers: np.ndarray, spread: float = 0.3, seed: int = 0) -> np.ndarray:
    """Gaussian blobs: sizes[i] points around centers[i], stacked in order."""
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [
            c + spread * rng.normal(size=(n, centers.shape[1]))
            for n, c in zip(sizes, centers, strict=True)
        ]
    )


def far_centers(n: int, units: int, distance: float = 10.0) -> np.ndarray:
    """n centres on the coordinate axes, `distance` apart from the origin (so well apart)."""
    return distance * np.eye(n, units)


def binary_output(values: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A sigmoid output that predicts CLASSES[1] where the first unit is larger than the
    second (blob 0 lies on axis 0, blob 1 on axis 1)."""
    return 1 / (1 + np.exp(-(values[:, 1] - values[:, 0])))[:, None]


def assert_json(summary: dict) -> None:
    json.dumps(summary, allow_nan=False)


@pytest.fixture
def two_classes_and_ood():
    """30 inputs of class 1, 30 of class 7, then 10 OOD inputs of class 9 far from both."""
    units = 6
    centers = np.stack([far_centers(2, units)[0], far_centers(2, units)[1], np.full(units, 40.0)])
    values = blobs([30, 30, 10], centers)
    y = np.array([1] * 30 + [7] * 30 + [9] * 10)
    is_ood = y == 9
    layers = {"hidden_1": np.maximum(values, 0), "hidden_2": np.maximum(values[:, ::-1], 0)}
    return layers, binary_output(values, y), y, is_ood


# -- clusters and separability ----------------------------------------------------------------
def test_three_blobs_give_k3_high_silhouette_and_perfect_probe():
    values = blobs([30, 30, 30], far_centers(3, 8))
    y = np.repeat([1, 7, 3], 30)
    probe = Probe.from_arrays(y, np.zeros(90, bool), [1, 7, 3])
    result, labels = signatures.cluster_layer(values, probe, k_range=(2, 10))
    assert result["k"] == 3
    assert result["k_tried"] == list(range(2, 11))
    assert result["silhouette"] == max(s for s in result["silhouette_by_k"] if s is not None)
    assert adjusted_rand_score(y, labels) == 1.0
    assert all(c["purity"] == 1.0 for c in result["clusters"])
    sep = signatures.separability(values, probe)
    assert sep["silhouette"] > 0.8
    assert sep["probe_accuracy"] == 1.0


def test_random_noise_with_random_labels_is_at_chance():
    # 200 inputs in 100 dimensions: a probe scored on its own training data would reach ~1.0
    rng = np.random.default_rng(1)
    values = rng.normal(size=(200, 100))
    y = rng.permutation(np.repeat([1, 7], 100))
    sep = signatures.separability(values, Probe.from_arrays(y, np.zeros(200, bool), CLASSES))
    assert sep["chance"] == 0.5
    assert abs(sep["probe_accuracy"] - 0.5) < 0.15
    assert abs(sep["silhouette"]) < 0.05


def test_k_is_capped_by_distinct_signatures_and_probe_size():
    values = np.repeat(far_centers(4, 5), 5, axis=0)  # 20 rows, 4 distinct
    probe = Probe.from_arrays(np.repeat([1, 7], 10), np.zeros(20, bool), CLASSES)
    result, labels = signatures.cluster_layer(values, probe, k_range=(2, 10))
    assert result["k_tried"] == [2, 3, 4]
    assert result["k"] == 4 and len(np.unique(labels)) == 4
    tiny = Probe.from_arrays([1, 7, 7], np.zeros(3, bool), CLASSES)
    assert signatures.cluster_layer(np.eye(3), tiny)[0]["k_tried"] == [2]  # P - 1


def test_separability_is_cheap_for_1000_by_128():
    rng = np.random.default_rng(2)
    y = rng.permutation(np.repeat(CLASSES, 500))
    layer = np.maximum(rng.normal(size=(1000, 128)) + (y == 7)[:, None] * 0.5, 0)
    signatures.separability_by_layer(
        {"h": layer}, y=y, is_ood=np.zeros(1000, bool), classes=CLASSES
    )  # imports, thread pools
    start = time.perf_counter()
    rows = signatures.separability_by_layer(
        {"h": layer}, y=y, is_ood=np.zeros(1000, bool), classes=CLASSES
    )
    assert time.perf_counter() - start < 1.0
    assert rows[0]["probe_accuracy"] > 0.9


def test_separability_by_layer_orders_input_layers_output(two_classes_and_ood):
    layers, output, y, is_ood = two_classes_and_ood
    x = np.random.default_rng(0).normal(size=(len(y), 3))
    rows = signatures.separability_by_layer(
        layers, output, y=y, is_ood=is_ood, classes=CLASSES, x=x
    )
    assert [r["layer"] for r in rows] == ["input", "hidden_1", "hidden_2", "output"]
    assert [r["units"] for r in rows] == [3, 6, 6, 1]
    assert rows[1]["probe_accuracy"] == 1.0 and rows[0]["probe_accuracy"] < 0.8


# -- OOD inputs -------------------------------------------------------------------------------
def test_ood_inputs_never_count_as_a_trained_class(two_classes_and_ood):
    layers, output, y, is_ood = two_classes_and_ood
    n_in = int((~is_ood).sum())  # the OOD inputs come last
    full = signatures.analyze_epoch(layers, output, y=y, is_ood=is_ood, classes=CLASSES, methods=())
    alone = signatures.analyze_epoch(
        {k: v[:n_in] for k, v in layers.items()},
        output[:n_in],
        y=y[:n_in],
        is_ood=is_ood[:n_in],
        classes=CLASSES,
        methods=(),
    )
    s = full.summary
    assert s["classes"] == [1, 7]
    assert s["groups"] == [
        {"label": 1, "ood": False, "count": 30},
        {"label": 7, "ood": False, "count": 30},
        {"label": 9, "ood": True, "count": 10},
    ]
    for name in layers:
        means = full.arrays[f"class_means/{name}"]
        np.testing.assert_allclose(means[:2], alone.arrays[f"class_means/{name}"])
        np.testing.assert_allclose(means[2], layers[name][is_ood].mean(axis=0), rtol=1e-6)
        assert s["class_signatures"][name] == alone.summary["class_signatures"][name]
        assert np.isnan(full.arrays[f"margin/{name}"][is_ood]).all()
    strip = [
        {k: r[k] for k in ("layer", "silhouette", "probe_accuracy")} for r in s["separability"]
    ]
    assert strip == [
        {k: r[k] for k in ("layer", "silhouette", "probe_accuracy")}
        for r in alone.summary["separability"]
    ]
    assert alone.summary["ood"] == []
    [report] = s["ood"]
    assert report["label"] == 9 and report["count"] == 10
    assert sum(report["predicted"].values()) == 10 and set(report["predicted"]) == {"1", "7"}
    for name in layers:
        at = report["layers"][name]
        assert [c["dominant_class"] for c in at["clusters"]] == [None]  # a cluster of its own
        assert at["distance_ratio"] > 5
        assert sum(at["nearest_class"].values()) == 10
        in_dist = s["clusters"][name]["clusters"]
        assert all("9" not in c["trained"] for c in in_dist)
        assert sum(c["ood"]["9"] for c in in_dist) == 10
    assert_json(s)
    assert "OOD class 9 (10 inputs)" in signatures.describe(s)


def test_probe_rejects_in_distribution_labels_outside_classes():
    with pytest.raises(ValueError, match="not in classes"):
        Probe.from_arrays([1, 7, 3], [False, False, False], CLASSES)


# -- Sankey flow ------------------------------------------------------------------------------
def test_sankey_flows_sum_to_p_and_links_partition_the_probe(two_classes_and_ood):
    layers, output, y, is_ood = two_classes_and_ood
    result = signatures.analyze_epoch(
        layers, output, y=y, is_ood=is_ood, classes=CLASSES, methods=()
    )
    flow, p = result.summary["flow"], len(y)
    assert flow["stages"] == ["true class", "hidden_1", "hidden_2", "predicted class"]
    nodes = {n["id"]: n for n in flow["nodes"]}
    for stage in range(len(flow["stages"])):
        assert sum(n["count"] for n in nodes.values() if n["stage"] == stage) == p
    for stage in range(len(flow["stages"]) - 1):
        links = [link for link in flow["links"] if link["stage"] == stage]
        assert sum(link["value"] for link in links) == p
        indices = np.concatenate([link["indices"] for link in links])
        assert sorted(indices.tolist()) == list(range(p))
        for link in links:
            assert link["value"] == len(link["indices"])
            assert link["n_ood"] == int(is_ood[link["indices"]].sum())
            assert nodes[link["source"]]["stage"] == stage
            assert nodes[link["target"]]["stage"] == stage + 1
    last = len(flow["stages"]) - 1
    for node in nodes.values():  # what flows into a node flows out of it
        into = sum(link["value"] for link in flow["links"] if link["target"] == node["id"])
        out = sum(link["value"] for link in flow["links"] if link["source"] == node["id"])
        assert into == (node["count"] if node["stage"] > 0 else 0)
        assert out == (node["count"] if node["stage"] < last else 0)
    true_nodes = [n for n in nodes.values() if n["stage"] == 0]
    assert [(n["kind"], n["class"], n["count"], n["n_ood"]) for n in true_nodes] == [
        ("true_class", 1, 30, 0),
        ("true_class", 7, 30, 0),
        ("true_ood", 9, 10, 10),
    ]
    predicted = [n for n in nodes.values() if n["kind"] == "predicted"]
    got = {n["class"]: n["count"] for n in predicted}
    assert got == {int(c): int((result.arrays["predicted"] == c).sum()) for c in CLASSES}
    assert sum(n["n_ood"] for n in predicted) == 10
    assert_json(result.summary)


# -- projections ------------------------------------------------------------------------------
def similarity(points: np.ndarray, angle: float, scale: float, reflect: bool) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    rotation = np.array([[c, -s], [s, c]]) @ (np.diag([1, -1]) if reflect else np.eye(2))
    return scale * points @ rotation + np.array([3.0, -2.0])


@pytest.mark.parametrize("reflect", [False, True])
def test_procrustes_undoes_rotation_reflection_scale_and_shift(reflect):
    points = np.random.default_rng(3).normal(size=(40, 2))
    moved = similarity(points, angle=1.1, scale=2.5, reflect=reflect)
    np.testing.assert_allclose(signatures.procrustes_align(moved, points), points, atol=1e-5)


def test_pca_projection_is_aligned_to_a_reference(two_classes_and_ood):
    layers, output, y, is_ood = two_classes_and_ood
    values = layers["hidden_1"]
    plain, mode = signatures.project(values, "pca")
    assert mode == "fitted"
    reference = similarity(plain, angle=2.0, scale=0.5, reflect=True)
    aligned, _ = signatures.project(values, "pca", reference=reference)
    np.testing.assert_allclose(aligned, reference, atol=1e-4)
    result = signatures.analyze_epoch(
        layers,
        output,
        y=y,
        is_ood=is_ood,
        classes=CLASSES,
        methods=("pca",),
        reference={"projection/pca/hidden_1": reference},
    )
    np.testing.assert_allclose(result.arrays["projection/pca/hidden_1"], reference, atol=1e-4)
    assert result.summary["projections"]["pca"] == {
        "hidden_1": {"mode": "fitted", "aligned": True},
        "hidden_2": {"mode": "fitted", "aligned": False},
    }


def test_pca_fixed_basis_keeps_unchanged_inputs_in_place():
    rng = np.random.default_rng(4)
    last = rng.normal(size=(50, 6)) * np.arange(1, 7)
    first = last.copy()
    first[:25] = rng.normal(size=(25, 6)) * 5  # half the inputs moved during training
    frames = signatures.pca_fixed_basis([first, last])
    assert frames.shape == (2, 50, 2) and frames.dtype == np.float32
    np.testing.assert_allclose(frames[0, 25:], frames[1, 25:])
    np.testing.assert_allclose(frames[1], signatures.project(last, "pca")[0], atol=1e-5)
    # the fitted axes carry the most variance: the last unit has the largest spread
    assert np.var(frames[1, :, 0]) >= np.var(last[:, 5]) * 0.9


@pytest.mark.parametrize("units", [1, 2])
def test_narrow_layers_are_their_raw_units(units):
    values = np.random.default_rng(5).normal(size=(20, units))
    for method in signatures.METHODS:
        points, mode = signatures.project(values, method)
        assert mode == "raw" and points.shape == (20, 2)
        np.testing.assert_allclose(points[:, :units], values, rtol=1e-6)
        assert not points[:, units:].any()


def test_tsne_and_umap_are_seeded_and_keep_blobs_apart():
    values = blobs([25, 25], far_centers(2, 10))
    y = np.repeat([0, 1], 25)
    signatures.warm_up()
    for method in ("tsne", "umap"):
        first, mode = signatures.project(values, method, seed=3)
        again, _ = signatures.project(values, method, seed=3)
        assert mode == "fitted" and first.shape == (50, 2) and np.isfinite(first).all()
        np.testing.assert_array_equal(first, again)
        distances = np.linalg.norm(first[:, None] - first[None], axis=2)
        np.fill_diagonal(distances, np.inf)
        assert (y[distances.argmin(axis=1)] == y).all()  # nearest neighbour: same blob


# -- degenerate layers ------------------------------------------------------------------------
def test_dead_layer_gives_one_cluster_and_no_exception(two_classes_and_ood):
    layers, output, y, is_ood = two_classes_and_ood
    layers = {
        **layers,
        "dead": np.zeros((len(y), 8), np.float32),
        "one_unit": layers["hidden_1"][:, :1],
    }
    result = signatures.analyze_epoch(
        layers, output, y=y, is_ood=is_ood, classes=CLASSES, methods=("pca", "tsne")
    )
    dead = result.summary["clusters"]["dead"]
    assert dead["k"] == 1 and dead["silhouette"] is None and "identical" in dead["reason"]
    assert dead["k_tried"] == [] and dead["clusters"][0]["size"] == len(y)
    assert not result.arrays["clusters/dead"].any()
    for method in ("pca", "tsne"):
        assert result.summary["projections"][method]["dead"]["mode"] == "constant"
        assert not result.arrays[f"projection/{method}/dead"].any()
        assert result.summary["projections"][method]["one_unit"]["mode"] == "raw"
    row = next(r for r in result.summary["separability"] if r["layer"] == "dead")
    assert row["probe_accuracy"] <= row["chance"] + 0.05
    assert result.summary["class_signatures"]["dead"]["centroid_distances"] == [[0, 0], [0, 0]]
    assert_json(result.summary)
    assert "dead: K=1" in signatures.describe(result.summary)


# -- class signatures -------------------------------------------------------------------------
def test_inputs_placed_near_the_other_class_are_the_most_atypical():
    centers = far_centers(2, 5)
    values = blobs([30, 30], centers)
    values[[4, 11, 17]] = centers[1] * 0.8  # three 1s that look like 7s
    y = np.repeat(CLASSES, 30)
    probe = Probe.from_arrays(y, np.zeros(60, bool), CLASSES)
    summary, means, margin = signatures.class_signatures(values, probe, n_examples=3)
    ones = summary["classes"]["1"]
    assert summary["score"] == "margin"
    assert sorted(e["index"] for e in ones["atypical"]) == [4, 11, 17]
    assert all(e["nearest_class"] == 7 and e["score"] > 0 for e in ones["atypical"])
    assert not {4, 11, 17} & {e["index"] for e in ones["typical"]}
    assert all(e["score"] < 0 for e in summary["classes"]["7"]["typical"])
    assert ones["selective_units"][0]["unit"] == 0  # class 1's blob lies on unit 0
    np.testing.assert_allclose(means[1], values[30:].mean(axis=0), rtol=1e-6)
    distance = summary["centroid_distances"][0][1]
    assert distance == pytest.approx(np.linalg.norm(means[0] - means[1]), rel=1e-5)
    assert margin.shape == (60,) and (margin[[4, 11, 17]] > 0).all()


# -- predictions, comparison, whole epoch -----------------------------------------------------
def test_predictions_map_outputs_to_original_labels():
    labels, confidence = signatures.predictions(np.array([[0.2], [0.9]]), CLASSES)
    assert labels.tolist() == [1, 7]
    np.testing.assert_allclose(confidence, [0.8, 0.9])
    labels, confidence = signatures.predictions(np.array([[0.1, 0.7, 0.2]]), [3, 5, 8])
    assert labels.tolist() == [5] and confidence.tolist() == [0.7]
    with pytest.raises(ValueError, match="columns"):
        signatures.predictions(np.ones((2, 3)), CLASSES)


def test_compare_inputs_side_by_side():
    layers = {"h": np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0], [0.0, 0.0]])}
    same_direction, orthogonal, to_zero = (
        signatures.compare_inputs(layers, 0, b)[0] for b in (1, 2, 3)
    )
    assert same_direction["a"] == [1.0, 0.0] and same_direction["b"] == [2.0, 0.0]
    assert same_direction["distance"] == 1.0 and same_direction["cosine"] == pytest.approx(1)
    assert orthogonal["cosine"] == pytest.approx(0)
    assert to_zero["cosine"] is None


def test_the_default_analysis_fills_every_key_and_projects_by_pca_only(two_classes_and_ood):
    layers, output, y, is_ood = two_classes_and_ood
    told: list[str] = []
    result = signatures.analyze_epoch(
        layers,
        output,
        y=y,
        is_ood=is_ood,
        classes=CLASSES,
        x=np.ones((len(y), 2)),
        progress=told.append,
    )
    s, p = result.summary, len(y)
    assert signatures.DEFAULT_METHODS == ("pca",)
    for name, values in layers.items():
        assert result.arrays[f"clusters/{name}"].shape == (p,)
        assert result.arrays[f"class_means/{name}"].shape == (3, values.shape[1])
        assert result.arrays[f"projection/pca/{name}"].shape == (p, 2)
        assert result.arrays[f"projection/pca/{name}"].dtype == np.float32
    assert not [k for k in result.arrays if k.startswith(("projection/tsne", "projection/umap"))]
    assert set(s["projections"]) == {"pca"}
    parts = {"clusters", "class_signatures", "flow", "separability", "ood", "total"}
    assert set(s["timings"]) == parts | {"projection/pca"}
    n = len(layers)
    assert told[0] == f"clustering layer 1 of {n}…"
    assert f"computing PCA for layer {n} of {n}…" in told
    assert s["accuracy"] == 1.0 and s["n_probe"] == p and s["n_ood"] == 10
    assert [r["layer"] for r in s["separability"]] == ["input", "hidden_1", "hidden_2", "output"]
    assert_json(s)
    text = signatures.describe(s)
    for name in layers:
        assert f"{name}  " in text


def test_tsne_and_umap_on_demand_fill_their_keys_and_tell_their_progress(two_classes_and_ood):
    layers, _, y, _ = two_classes_and_ood
    for method, name in (("tsne", "t-SNE"), ("umap", "UMAP")):
        told: list[str] = []
        result = signatures.project_epoch(layers, method, progress=told.append)
        assert set(result.arrays) == {f"projection/{method}/{n}" for n in layers}
        for points in result.arrays.values():
            assert points.shape == (len(y), 2) and points.dtype == np.float32
            assert np.isfinite(points).all()
        assert set(result.summary["projections"]) == {method}
        assert told == [f"computing {name} for layer {i} of 2…" for i in (1, 2)]
        assert set(result.summary["timings"]) == {f"projection/{method}", "total"}
        assert_json(result.summary)
        # the same as the projection analyze_epoch computes when asked for it
        full = signatures.analyze_epoch(
            layers,
            two_classes_and_ood[1],
            y=y,
            is_ood=two_classes_and_ood[3],
            classes=CLASSES,
            methods=(method,),
        )
        for key, points in result.arrays.items():
            np.testing.assert_allclose(points, full.arrays[key], atol=1e-5)
    with pytest.raises(ValueError, match="unknown projection method"):
        signatures.project_epoch(layers, "isomap")
