"""Data files in bounded memory (issue 13 point 7): CSV caps on rows, columns and classes
checked while reading, previews that read only the first rows, one-hot targets without an
identity matrix, and error messages that never quote the file's contents (point 5)."""

from __future__ import annotations

import gzip
import io
import tracemalloc
import zipfile

import numpy as np
import pytest

from netlens.storage.spec import LIMITS, DatasetSpec, ExperimentSpec, RecordingSpec
from netlens.storage.upload_checks import FileCheckError, check_csv, check_npz
from netlens.worker.datasets import Dataset, DatasetError, csv_file, load_dataset
from netlens.worker.datasets.mnist import load_mnist

SECRET = "s3cr3t-patient-0042"


def load(path, max_rows=None, **dataset) -> Dataset:
    spec = ExperimentSpec(
        dataset=DatasetSpec(name="csv", path=str(path), **dataset),
        recording=RecordingSpec(probe_size=4),
    )
    return load_dataset(spec, max_rows=max_rows)


def write(tmp_path, text: str, name: str = "t.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_limits_are_in_the_spec_table():
    assert LIMITS["max_classes"] == 1000 and LIMITS["max_csv_columns"] == 4096
    assert csv_file.MAX_ROWS == LIMITS["max_samples"]


def test_too_many_classes_stop_the_read_at_that_row(tmp_path, monkeypatch):
    monkeypatch.setattr(csv_file, "MAX_CLASSES", 50)
    path = write(tmp_path, "x,label\n" + "".join(f"{i},{SECRET}{i}\n" for i in range(100)))
    with pytest.raises(DatasetError) as exc:
        load(path)
    message = str(exc.value)
    assert message.startswith("dataset.label_column: column 2 of ")
    assert "more than 50 distinct labels (the limit, max_classes); at row 51 (line 52)" in message
    assert SECRET not in message


def test_the_default_class_cap_holds_for_100_000_labels(tmp_path):
    """The issue's case: 100,000 distinct labels once asked np.eye for 40 GB. Now the read
    stops at label 1,001, and little memory was used on the way."""
    path = write(tmp_path, "x,label\n" + "".join(f"{i},{i}\n" for i in range(100_000)))
    tracemalloc.start()
    try:
        with pytest.raises(DatasetError, match=r"more than 1000 distinct labels .*at row 1001 "):
            load(path)
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, peak


def test_too_many_rows_and_columns_are_refused_naming_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(csv_file, "MAX_ROWS", 10)
    path = write(tmp_path, "a,label\n" + "".join(f"{i},{i % 2}\n" for i in range(11)))
    with pytest.raises(
        DatasetError,
        match=r"more than 10 data rows, over the limit "
        r"\(max_samples\); at line 12",
    ):
        load(path)
    wide = write(
        tmp_path, ",".join(f"c{i}" for i in range(4097)) + "\n" + "1," * 4096 + "0\n", "wide.csv"
    )
    with pytest.raises(
        DatasetError,
        match=r"has 4097 columns, over the limit of 4096 "
        r"\(max_csv_columns\)",
    ):
        load(wide)


def test_rows_grow_an_array_and_labels_keep_their_meaning(tmp_path):
    rows = "".join(f"{i},{-i},{['b', 'a', 'c'][i % 3]}\n" for i in range(5000))  # > FIRST_ROWS
    data = load(write(tmp_path, "x,y,kind\n" + rows), val_fraction=0.0)
    assert data.class_names == ["a", "b", "c"] and len(data.x_train) == 5000
    np.testing.assert_array_equal(data.x_train[:, 1], -data.x_train[:, 0])
    expected = np.array([[1, 0, 2][int(v) % 3] for v in data.x_train[:, 0]])
    np.testing.assert_array_equal(data.y_train, expected)


def test_a_preview_reads_only_the_first_rows(tmp_path):
    path = write(
        tmp_path, "x,label\n" + "".join(f"{i},{i % 2}\n" for i in range(5000)) + "not a number,0\n"
    )  # past the preview: never read
    data = load(path, max_rows=100, val_fraction=0.0)
    assert len(data.x_train) == 100 and data.x_train[:, 0].max() == 99
    with pytest.raises(DatasetError, match=r"column 1, row 5001 \(line 5002\)"):
        load(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,b,label\n1,2,0\n3," + SECRET + ",1\n", r"column 2, row 2 \(line 3\) is not a finite"),
        ("a,b,label\n1,2,0\n3,4\n" + SECRET + ",1,1\n", r"row 2 \(line 3\) has 2 cells"),
        ("a,b,label\n1,2," + SECRET + "\n", r"holds only 1 distinct label"),
        (
            "a,b,label\n1,2,0\n3," + SECRET * 10_000 + ",1\n",
            r"line \d+ is not valid CSV .*a field "
            r"over 131072 characters",
        ),
    ],
)
def test_csv_errors_name_rows_and_columns_never_contents(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(DatasetError, match=message) as exc:
        load(path)
    assert SECRET not in str(exc.value)
    with pytest.raises(DatasetError) as exc:
        load(path, label_column=SECRET[::-1])
    assert "label" not in str(exc.value).split(":", 1)[1].replace("label_column", "")


def test_upload_checks_never_quote_contents(tmp_path):
    bad_utf8 = tmp_path / "b.csv"
    bad_utf8.write_bytes(b"a,b\n" + SECRET.encode() + b",\xff\xfe\n")
    with pytest.raises(FileCheckError) as exc:
        check_csv(bad_utf8)
    assert str(exc.value).startswith("file: not UTF-8 text (near line ") and SECRET not in str(
        exc.value
    )
    npz = tmp_path / "m.npz"
    with zipfile.ZipFile(npz, "w") as archive:  # a .npy header that is not a literal
        for key in ("x_train", "y_train", "x_test", "y_test"):
            header = f"{{'descr': {SECRET!r}, 'shape': ({SECRET}), }}".encode()
            archive.writestr(
                key + ".npy", b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header
            )
    with pytest.raises(FileCheckError) as exc:
        check_npz(npz, 2**20)
    assert str(exc.value) == (
        "file: an array of the .npz cannot be read: x_train is not an .npy array of numbers"
    )


def test_the_upload_check_reads_npy_headers_not_arrays(tmp_path):
    """A 60,000-image .npz is checked without loading its 47 MB of pixels."""
    path = tmp_path / "mnist.npz"
    np.savez(
        path,
        x_train=np.zeros((60_000, 28, 28), np.uint8),
        y_train=np.zeros(60_000, int),
        x_test=np.zeros((10, 28, 28), np.uint8),
        y_test=np.zeros(10, int),
    )
    tracemalloc.start()
    try:
        check_npz(path, 64 * 2**20)
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**20, peak


def test_mnist_preview_reads_the_first_images_of_npz_and_idx(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (300, 28, 28), dtype=np.uint8)
    y = np.arange(300) % 10
    np.savez(tmp_path / "m.npz", x_train=x, y_train=y, x_test=x[:50], y_test=y[:50])
    head = load_mnist("mnist", str(tmp_path / "m.npz"), tmp_path, max_rows=20)
    assert head.x.shape == (20, 784) and head.x_test.shape == (20, 784)
    np.testing.assert_allclose(head.x, x[:20].reshape(20, -1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(head.y, y[:20])
    folder = tmp_path / "idx"
    folder.mkdir()
    for name, array in (
        ("train-images-idx3-ubyte", x),
        ("train-labels-idx1-ubyte", y),
        ("t10k-images-idx3-ubyte", x[:50]),
        ("t10k-labels-idx1-ubyte", y[:50]),
    ):
        dims = b"".join(int(d).to_bytes(4, "big") for d in array.shape)
        raw = bytes([0, 0, 0x08, array.ndim]) + dims + array.astype(np.uint8).tobytes()
        (folder / (name + ".gz")).write_bytes(gzip.compress(raw))
    head = load_mnist("mnist", str(folder), tmp_path, max_rows=7)
    assert head.x.shape == (7, 784) and head.y.tolist() == list(range(7))


def test_one_hot_costs_the_batch_not_classes_squared():
    classes = list(range(1000))
    data = Dataset(
        x_train=np.zeros((3, 2), np.float32),
        y_train=np.array([0, 999, 5], np.int32),
        x_val=np.zeros((0, 2), np.float32),
        y_val=np.zeros(0, np.int32),
        probe_x=np.zeros((0, 2), np.float32),
        probe_y=np.zeros(0, np.int64),
        probe_is_ood=np.zeros(0, bool),
        classes=classes,
        class_names=[str(c) for c in classes],
    )
    tracemalloc.start()
    try:
        out = data.one_hot(data.y_train)
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.shape == (3, 1000) and out.dtype == np.float32
    assert out.sum() == 3 and out[1, 999] == 1 and out[2, 5] == 1
    assert peak < 100_000  # an identity of 1000 classes alone is 4 MB


def test_export_streams_the_same_arrays_as_collect_run(tmp_path):
    """storage.export writes chunk by chunk what collect_run builds in memory."""
    from netlens.storage import runs
    from netlens.storage.db import Database
    from netlens.storage.export import collect_run, write_export
    from netlens.storage.migrate import upgrade
    from netlens.storage.settings import Settings
    from netlens.worker.runner import run_experiment

    settings = Settings(home=tmp_path, database_url=None, broker_url=None)
    db = Database.from_settings(settings)
    upgrade(db)
    spec = ExperimentSpec.model_validate(
        {"training": {"epochs": 5}, "recording": {"grid_resolution": 5}}
    )
    run_id = runs.create_run(db, spec)
    assert run_experiment(db, run_id) == "succeeded"
    out = io.BytesIO()
    write_export(db, run_id, out)
    expected = collect_run(db, run_id)
    with np.load(io.BytesIO(out.getvalue()), allow_pickle=False) as npz:
        assert set(npz.files) == set(expected)
        for name, value in expected.items():
            np.testing.assert_array_equal(npz[name], value, err_msg=name)
    db.dispose()
