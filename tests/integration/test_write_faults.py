"""A failure part-way through an epoch write (issue 19 part 5): the chunk's transaction rolls
back whole, so the run stays readable and each epoch is either fully there or absent; the
same chunk written again afterwards is stored once."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy.exc import DBAPIError

from netlens.storage import records, runs
from tests.conftest import small_spec

RNG = np.random.default_rng(3)


def _chunk(epochs: list[int], **extra: np.ndarray) -> records.EpochChunk:
    n = len(epochs)
    return records.EpochChunk(
        epochs=epochs,
        metrics=[{"train_loss": 1.0 / (e + 1)} for e in epochs],
        tensors={
            "params/dense_0/kernel": RNG.normal(size=(n, 4, 3)).astype(np.float32),
            "signatures/dense_0": np.maximum(RNG.normal(size=(n, 50, 3)), 0).astype(np.float32),
            **extra,
        },
        sparse_epochs={},
    )


def _state(db, run_id: int):
    info = runs.get_run(db, run_id)
    epochs = runs.recorded_epoch_numbers(db, run_id)
    tensors = {
        name: records.read_tensor(db, run_id, name)[0].tolist()
        for name in records.tensor_names(db, run_id)
    }
    return info.epochs_recorded, info.last_epoch, info.recorded_bytes, epochs, tensors


def _fails_midway_then_recovers(db, bad: records.EpochChunk, error: type[Exception]) -> None:
    run_id = runs.create_run(db, small_spec())
    records.write_epochs(db, run_id, _chunk([0, 1, 2]))
    before = _state(db, run_id)
    assert before[3] == [0, 1, 2] and all(v == [0, 1, 2] for v in before[4].values())
    with pytest.raises(error):
        records.write_epochs(db, run_id, bad)
    assert _state(db, run_id) == before  # nothing of epochs 3-4: not metrics, not a tensor

    good = _chunk([3, 4])
    assert records.write_epochs(db, run_id, good) == 2
    assert records.write_epochs(db, run_id, good) == 0  # again: stored once
    epochs_recorded, last, _, epochs, tensors = _state(db, run_id)
    assert (epochs_recorded, last, epochs) == (5, 4, [0, 1, 2, 3, 4])
    assert all(v == [0, 1, 2, 3, 4] for v in tensors.values())
    np.testing.assert_array_equal(
        records.read_tensor(db, run_id, "signatures/dense_0", 3, 4)[1],
        good.tensors["signatures/dense_0"],
    )


def test_a_tensor_that_cannot_be_stored_rolls_back_its_whole_chunk(db):
    """Raised in Python after the chunk's metric rows went into the transaction."""
    bad = _chunk([3, 4], **{"z/text": np.array([["a"], ["b"]], dtype=object)})
    _fails_midway_then_recovers(db, bad, TypeError)


def test_a_row_the_database_refuses_rolls_back_its_whole_chunk(pg_db):
    """Refused by PostgreSQL itself (a name over run_tensors.name's 120 characters, which
    SQLite does not enforce) after the metric rows and the other tensors were inserted."""
    bad = _chunk([3, 4], **{"z/" + "x" * 200: np.zeros((2, 3), np.float32)})
    _fails_midway_then_recovers(pg_db, bad, DBAPIError)
