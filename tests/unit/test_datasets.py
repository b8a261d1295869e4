"""Unit tests of worker.datasets: every set, splits, probe, MNIST/CSV files, import hygiene."""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from netlens.storage.spec import DatasetSpec, ExperimentSpec, RecordingSpec
from netlens.worker.datasets import Dataset, DatasetError, grid_points, load_dataset
from netlens.worker.datasets.synthetic import two_regions_label

ROOT = Path(__file__).resolve().parents[2]

TWO_D = [
    "xor",
    "two-regions",
    "circle",
    "xor-quadrants",
    "gaussian",
    "spiral",
    "moons",
    "sk-circles",
]


def load(probe_size: int = 1000, data_dir: Path | None = None, **dataset) -> Dataset:
    spec = ExperimentSpec(
        dataset=DatasetSpec(**dataset), recording=RecordingSpec(probe_size=probe_size)
    )
    return load_dataset(spec, data_dir=data_dir)


def check_types(ds: Dataset, n_features: int) -> None:
    assert ds.x_train.dtype == np.float32 and ds.x_train.shape[1] == n_features
    assert ds.x_val.dtype == np.float32 and ds.x_val.shape[1] == n_features
    assert ds.probe_x.dtype == np.float32 and ds.probe_x.shape[1] == n_features
    assert ds.y_train.dtype == np.int32 and ds.y_val.dtype == np.int32
    assert ds.probe_y.dtype == np.int64 and ds.probe_is_ood.dtype == np.bool_
    assert len(ds.probe_x) == len(ds.probe_y) == len(ds.probe_is_ood)
    assert ds.n_features == n_features and ds.n_classes == len(ds.classes) == len(ds.class_names)
    for y in (ds.y_train, ds.y_val):
        assert y.size == 0 or (y.min() >= 0 and y.max() < ds.n_classes)


# --- 2-D sets ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", TWO_D)
def test_2d_sets_shapes_and_bounds(name):
    ds = load(name=name, n_samples=500, val_fraction=0.2, noise=0.1)
    check_types(ds, 2)
    assert ds.classes == [0, 1] and ds.image_shape is None and ds.source_path is None
    if name != "xor":
        assert (len(ds.x_train), len(ds.x_val)) == (400, 100)
    xmin, xmax, ymin, ymax = ds.grid_bounds
    x = np.concatenate([ds.x_train, ds.x_val])
    assert xmin <= x[:, 0].min() and x[:, 0].max() <= xmax
    assert ymin <= x[:, 1].min() and x[:, 1].max() <= ymax
    assert set(np.unique(ds.probe_y)) == {0, 1} and not ds.probe_is_ood.any()


@pytest.mark.parametrize("name", [n for n in TWO_D if n != "xor"] + ["digits"])
def test_same_seed_same_arrays_other_seed_differs(name):
    a, b = load(name=name, seed=3, n_samples=200), load(name=name, seed=3, n_samples=200)
    c = load(name=name, seed=4, n_samples=200)
    for field in ("x_train", "y_train", "x_val", "y_val", "probe_x", "probe_y"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.x_train, c.x_train)
    assert not np.array_equal(a.probe_x, c.probe_x)


def test_xor_is_exact_and_never_split():
    ds = load(name="xor", val_fraction=0.5, n_samples=100, seed=9)
    np.testing.assert_array_equal(ds.x_train, [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(ds.y_train, [0, 1, 1, 0])
    assert ds.x_val.shape == (0, 2) and ds.y_val.shape == (0,)
    np.testing.assert_array_equal(ds.probe_x, ds.x_train)
    np.testing.assert_array_equal(ds.probe_y, [0, 1, 1, 0])
    assert ds.grid_bounds == (-0.5, 1.5, -0.5, 1.5)


def test_two_regions_labels_match_definition():
    ds = load(name="two-regions", n_samples=2000, noise=0.0, val_fraction=0.0)
    x = ds.x_train.astype(np.float64)
    inside = (np.hypot(x[:, 0], x[:, 1]) <= 2) | (np.hypot(x[:, 0] - 3, x[:, 1] - 3) <= 2)
    np.testing.assert_array_equal(ds.y_train, inside.astype(np.int32))
    assert np.abs(x).max() <= 5 and 0.2 < ds.y_train.mean() < 0.3  # area 8*pi/100 = 0.251
    np.testing.assert_array_equal(
        two_regions_label(np.array([[0, 0], [3, 3], [2, 0], [-3, 3]])), [1, 1, 1, 0]
    )
    noisy = load(name="two-regions", n_samples=4000, noise=0.2, val_fraction=0.0)
    flipped = noisy.y_train != two_regions_label(noisy.x_train.astype(np.float64))
    assert 0.17 < flipped.mean() < 0.23


def test_playground_sets_without_noise():
    circle = load(name="circle", n_samples=400, noise=0.0, val_fraction=0.0)
    r = np.hypot(*circle.x_train.T)
    np.testing.assert_array_equal(circle.y_train == 1, r < 2.5)
    assert r.max() <= 5 and not ((r > 2.5) & (r < 3.5)).any()
    quad = load(name="xor-quadrants", n_samples=400, noise=0.0, val_fraction=0.0)
    np.testing.assert_array_equal(quad.y_train == 1, quad.x_train[:, 0] * quad.x_train[:, 1] >= 0)
    assert np.abs(quad.x_train).min() >= 0.3 - 1e-6 and np.abs(quad.x_train).max() <= 5.3 + 1e-6
    gauss = load(name="gaussian", n_samples=2000, noise=0.0, val_fraction=0.0)
    blue = gauss.x_train[gauss.y_train == 1]
    np.testing.assert_allclose(blue.mean(axis=0), [2, 2], atol=0.1)
    np.testing.assert_allclose(blue.var(axis=0), [0.5, 0.5], atol=0.07)  # variance 0.5 at 0
    spiral = load(name="spiral", n_samples=400, noise=0.0, val_fraction=0.0)
    assert np.bincount(spiral.y_train).tolist() == [200, 200]
    assert np.hypot(*spiral.x_train.T).max() < 5


def test_sklearn_sets_bounds_padded():
    ds = load(name="moons", n_samples=300, val_fraction=0.0)
    x = ds.x_train
    expected = (x[:, 0].min() - 0.5, x[:, 0].max() + 0.5, x[:, 1].min() - 0.5, x[:, 1].max() + 0.5)
    np.testing.assert_allclose(ds.grid_bounds, expected, atol=1e-5)
    circles = load(name="sk-circles", n_samples=300, noise=0.0, val_fraction=0.0)
    radii = np.round(np.hypot(*circles.x_train.T), 4)
    assert set(radii[circles.y_train == 1]) == {0.5} and set(radii[circles.y_train == 0]) == {1.0}


# --- split, cap and probe ---------------------------------------------------------------


def test_split_is_stratified_and_zero_fraction_empties_validation():
    ds = load(name="two-regions", n_samples=1000, val_fraction=0.3)
    assert (len(ds.y_train), len(ds.y_val)) == (700, 300)
    total = np.bincount(np.concatenate([ds.y_train, ds.y_val]), minlength=2)
    assert abs(np.bincount(ds.y_val, minlength=2)[1] - total[1] * 0.3) <= 1
    train_rows = {tuple(r) for r in ds.x_train}
    assert not any(tuple(r) in train_rows for r in ds.x_val)  # disjoint
    empty = load(name="spiral", n_samples=100, val_fraction=0.0)
    assert len(empty.x_train) == 100 and empty.x_val.shape == (0, 2)
    assert len(empty.probe_x) == 100  # probe falls back to the training inputs


def test_max_train_caps_with_stratification():
    full = load(name="two-regions", n_samples=2000, val_fraction=0.0)
    capped = load(name="two-regions", n_samples=2000, val_fraction=0.0, max_train=200)
    assert len(capped.y_train) == 200
    assert abs(capped.y_train.mean() - full.y_train.mean()) < 0.006


def test_probe_is_balanced_capped_and_drawn_from_validation():
    ds = load(name="two-regions", n_samples=2000, val_fraction=0.5, probe_size=100)
    assert len(ds.probe_x) == 100 and np.bincount(ds.probe_y).tolist() == [50, 50]
    val_rows = {tuple(r) for r in ds.x_val}
    assert all(tuple(r) in val_rows for r in ds.probe_x)
    big = load(name="two-regions", n_samples=400, val_fraction=0.1, probe_size=5000)
    assert len(big.probe_x) == 40 and sorted(map(tuple, big.probe_x)) == sorted(
        map(tuple, big.x_val)
    )
    # few blue points: blue gets all it has, orange fills the rest
    odd = load(name="two-regions", n_samples=200, val_fraction=0.5, probe_size=90, seed=1)
    n_blue = int((odd.y_val == 1).sum())
    assert n_blue < 45 and np.bincount(odd.probe_y).tolist() == [90 - n_blue, n_blue]
    none = load(name="digits", classes=[1, 7], ood_classes=[3], probe_size=0)
    assert none.probe_x.shape == (0, 64) and none.probe_y.shape == none.probe_is_ood.shape == (0,)


def test_digits_subset_with_ood_probe():
    ds = load(name="digits", classes=[7, 1], ood_classes=[4, 3], probe_size=50, val_fraction=0.2)
    check_types(ds, 64)
    assert ds.classes == [1, 7] and ds.class_names == ["1", "7"] and ds.image_shape == (8, 8)
    assert set(np.unique(ds.y_train)) == set(np.unique(ds.y_val)) == {0, 1}
    n = len(ds.y_train) + len(ds.y_val)
    assert n == 182 + 179  # digits has 182 ones and 179 sevens
    assert 0 <= ds.x_train.min() and ds.x_train.max() == 1.0
    in_d, ood = ~ds.probe_is_ood, ds.probe_is_ood
    assert np.bincount(ds.probe_y[in_d]).tolist()[1::6] == [25, 25]
    assert ds.probe_y[ood].tolist() == [3] * 25 + [4] * 25
    assert not ood[: in_d.sum()].any() and ood[in_d.sum() :].all()  # OOD appended after
    train_rows = {r.tobytes() for r in np.concatenate([ds.x_train, ds.x_val])}
    assert not any(r.tobytes() in train_rows for r in ds.probe_x[ood])


def test_unknown_class_is_an_error():
    with pytest.raises(DatasetError, match="dataset.classes"):
        load(name="digits", classes=[1, 12])
    with pytest.raises(DatasetError, match="dataset.ood_classes"):
        load(name="digits", classes=[1, 2], ood_classes=[11])


def test_one_hot_and_grid_points():
    ds = load(name="xor")
    np.testing.assert_array_equal(ds.one_hot(np.array([1, 0])), [[0, 1], [1, 0]])
    assert ds.one_hot(ds.y_train).dtype == np.float32
    with pytest.raises(ValueError):
        ds.one_hot(np.array([2]))
    grid = grid_points((-5, 5, -2, 2), 11)
    assert grid.shape == (121, 2) and grid.dtype == np.float32
    np.testing.assert_array_equal(grid[0], [-5, -2])
    np.testing.assert_array_equal(grid[10], [5, -2])  # x varies fastest
    np.testing.assert_allclose(grid[11], [-5, -1.6], rtol=1e-6)
    np.testing.assert_array_equal(grid[-1], [5, 2])
    assert grid_points((0, 1, 0, 1), 0).shape == (0, 2)


# --- MNIST files -----------------------------------------------------------------------


def fake_mnist(rng_seed: int = 0):
    rng = np.random.default_rng(rng_seed)
    x_tr = rng.integers(0, 256, size=(60, 28, 28), dtype=np.uint8)
    x_te = rng.integers(0, 256, size=(30, 28, 28), dtype=np.uint8)
    return x_tr, np.arange(60, dtype=np.uint8) % 10, x_te, np.arange(30, dtype=np.uint8) % 10


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def test_mnist_from_npz(tmp_path):
    x_tr, y_tr, x_te, y_te = fake_mnist()
    path = tmp_path / "anything.npz"
    np.savez(path, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)
    ds = load(name="mnist", path=str(path), classes=[0, 1], ood_classes=[2], probe_size=4)
    check_types(ds, 784)
    assert ds.source_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert ds.source_path == str(path) and ds.image_shape == (28, 28)
    np.testing.assert_allclose(ds.x_train, x_tr[y_tr <= 1].reshape(-1, 784) / 255.0, rtol=1e-6)
    np.testing.assert_allclose(ds.x_val, x_te[y_te <= 1].reshape(-1, 784) / 255.0, rtol=1e-6)
    assert ds.y_train.tolist() == [0, 1] * 6
    assert ds.probe_y.tolist() == [0, 1, 0, 1, 2, 2]  # validation order kept, then OOD
    assert ds.probe_is_ood.tolist() == [False] * 4 + [True] * 2
    ood = x_te[y_te == 2].reshape(-1, 784) / 255.0
    assert all(any(np.allclose(p, o) for o in ood) for p in ds.probe_x[4:])


def test_mnist_from_idx_files_in_data_dir(tmp_path):
    x_tr, y_tr, x_te, y_te = fake_mnist(1)
    folder = tmp_path / "mnist"
    folder.mkdir()
    names = [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ]
    files = []
    for name, array in zip(names, (x_tr, y_tr, x_te, y_te), strict=True):
        data = idx_bytes(array)
        if name.startswith("train-images"):  # one gzipped, as downloaded
            name, data = name + ".gz", gzip.compress(data)
        (folder / name).write_bytes(data)
        files.append(folder / name)
    ds = load(name="mnist", data_dir=tmp_path, max_train=20, val_fraction=0.1)
    check_types(ds, 784)
    assert len(ds.y_train) == 20 and np.bincount(ds.y_train).tolist() == [2] * 10
    np.testing.assert_allclose(ds.x_val, x_te.reshape(-1, 784) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.y_val, y_te)
    digests = "".join(hashlib.sha256(f.read_bytes()).hexdigest() for f in files)
    assert ds.source_sha256 == hashlib.sha256(digests.encode()).hexdigest()
    assert ds.source_path == str(folder)


def test_fashion_mnist_npz_in_data_dir_and_no_validation(tmp_path):
    x_tr, y_tr, x_te, y_te = fake_mnist(2)
    (tmp_path / "fashion-mnist").mkdir()
    np.savez(
        tmp_path / "fashion-mnist" / "fashion-mnist.npz",
        x_train=x_tr,
        y_train=y_tr,
        x_test=x_te,
        y_test=y_te,
    )
    ds = load(name="fashion-mnist", data_dir=tmp_path, val_fraction=0.0, probe_size=10)
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"
    assert ds.x_val.shape == (0, 784) and len(ds.y_train) == 60
    assert sorted(ds.probe_y.tolist()) == list(range(10))


def test_missing_mnist_names_the_folder(tmp_path):
    with pytest.raises(DatasetError) as err:
        load(name="mnist", data_dir=tmp_path)
    message = str(err.value)
    assert message.startswith("dataset.path:")
    assert str(tmp_path / "mnist" / "mnist.npz") in message
    assert f"in {tmp_path / 'mnist'}/ or set dataset.path" in message
    with pytest.raises(DatasetError, match="does not exist"):
        load(name="mnist", path=str(tmp_path / "nope.npz"))


def test_truncated_idx_file_is_an_error(tmp_path):
    from netlens.worker.datasets.mnist import parse_idx

    good = idx_bytes(np.zeros((2, 3, 3), dtype=np.uint8))
    assert parse_idx(good).shape == (2, 3, 3)
    with pytest.raises(DatasetError, match="truncated"):
        parse_idx(good[:-1])


# --- CSV -------------------------------------------------------------------------------


def test_csv_integer_labels(tmp_path):
    path = tmp_path / "t.csv"
    rows = [f"{i},{i * 0.5},{[2, 5, 9][i % 3]}" for i in range(30)]
    path.write_text("a,b,label\n" + "\n".join(rows) + "\n")
    ds = load(
        name="csv", path=str(path), val_fraction=0.2, classes=[2, 5], ood_classes=[9], probe_size=4
    )
    check_types(ds, 2)
    assert ds.classes == [2, 5] and ds.class_names == ["2", "5"] and ds.grid_bounds is None
    assert (len(ds.y_train), len(ds.y_val)) == (16, 4)
    raw = {(r[0], r[1]): r[2] for r in (list(map(float, row.split(","))) for row in rows)}
    for x, y in zip(ds.x_train, ds.y_train, strict=True):
        assert raw[(float(x[0]), float(x[1]))] == ds.classes[y]  # raw values, not standardised
    assert ds.probe_y.tolist()[-2:] == [9, 9] and ds.probe_is_ood.tolist() == [0] * 4 + [1] * 2
    assert ds.source_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_csv_string_labels_and_label_column(tmp_path):
    path = tmp_path / "s.csv"
    rows = [f"{'cat' if i % 2 else 'ant'},{i},{-i}" for i in range(20)]
    path.write_text("kind,x,y\n" + "\n".join(rows) + "\n")
    ds = load(name="csv", path=str(path), label_column="kind", val_fraction=0.0)
    assert ds.classes == [0, 1] and ds.class_names == ["ant", "cat"]
    np.testing.assert_array_equal(ds.y_train, ds.x_train[:, 0].astype(int) % 2)
    np.testing.assert_array_equal(ds.x_train[:, 1], -ds.x_train[:, 0])


def test_csv_bad_cell_names_column_and_row(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("a,b,label\n1,2,0\n3,oops,1\n")
    with pytest.raises(DatasetError, match=r"column 2, row 2 \(line 3\) is not a finite") as exc:
        load(name="csv", path=str(path))
    assert "oops" not in str(exc.value)  # file contents never reach an error message
    with pytest.raises(DatasetError, match="dataset.label_column: 'c'") as exc:
        load(name="csv", path=str(path), label_column="c")
    assert "'a'" not in str(exc.value) and "label'" not in str(exc.value)
    path.write_text("a,b,label\n1,2,0\n3,4,1\nnan,5,1\n")
    with pytest.raises(DatasetError, match=r"column 1, row 3 \(line 4\)"):
        load(name="csv", path=str(path))


def test_csv_missing_file(tmp_path):
    with pytest.raises(DatasetError, match=r"^dataset\.path: .*missing\.csv does not exist"):
        load(name="csv", path=str(tmp_path / "missing.csv"))


# --- import hygiene --------------------------------------------------------------------


def test_import_does_not_load_jax():
    code = (
        "import sys, netlens.worker.datasets\n"
        "from netlens.storage.spec import ExperimentSpec, DatasetSpec\n"
        "for name in ('moons', 'digits'):\n"
        "    netlens.worker.datasets.load_dataset(ExperimentSpec(dataset=DatasetSpec(name=name)))\n"
        "bad = [m for m in ('jax', 'flax', 'optax') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_unseen_classes_get_an_average_trained_class_share_of_the_probe():
    spec = ExperimentSpec.model_validate(
        {
            "dataset": {"name": "digits", "classes": [1, 7], "ood_classes": [3, 4]},
            "recording": {"probe_size": 1000},
        }
    )
    data = load_dataset(spec)
    n_in = int((~data.probe_is_ood).sum())
    assert n_in < 1000  # the validation split has fewer 1s and 7s than probe_size
    for label in (3, 4):
        assert int((data.probe_y[data.probe_is_ood] == label).sum()) == n_in // 2
