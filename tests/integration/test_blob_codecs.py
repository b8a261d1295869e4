"""Stored tensors are compressed losslessly (issue 19 part 1): a codec per row, zstd where it
pays, raw where it does not; rows written before migration 0007 (raw) stay readable; a
stored frame that claims another size is refused before anything is allocated."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zstandard
from alembic import command
from sqlalchemy import func, select, text

from netlens.storage import records, runs
from netlens.storage.arrays import (
    MIN_PACKED_BYTES,
    decode_stored,
    encode,
    pack,
    unpack,
)
from netlens.storage.export import export_run
from netlens.storage.migrate import alembic_config, current_revision, head_revision, upgrade
from netlens.storage.models import RunArray, RunTensor
from tests.conftest import small_spec

RNG = np.random.default_rng(7)


def _relu(*shape: int) -> np.ndarray:
    """Signature-like values: half of them exact zeros, as ReLU layers record."""
    return np.maximum(RNG.normal(size=shape), 0).astype(np.float32)


# -- the codec ------------------------------------------------------------------------------


def test_pack_keeps_small_and_incompressible_blobs_raw_and_compresses_the_rest():
    small = np.arange(MIN_PACKED_BYTES // 8, dtype=np.float32).tobytes()
    noise = RNG.bytes(10_000)  # nothing to gain
    zeros_and_floats = _relu(200, 64).tobytes()
    assert pack(small) == ("raw", small)
    assert pack(noise) == ("raw", noise)
    codec, packed = pack(zeros_and_floats)
    assert codec == "zstd" and len(packed) < 0.9 * len(zeros_and_floats)
    assert unpack(codec, packed, len(zeros_and_floats)) == zeros_and_floats
    assert unpack("raw", noise) == noise and unpack(None, noise) == noise


def test_a_stored_frame_that_lies_about_its_size_or_codec_is_refused():
    values = _relu(100, 32)
    dtype, shape, raw = encode(values)
    codec, packed = pack(raw)
    np.testing.assert_array_equal(decode_stored(codec, dtype, shape, packed), values)
    bigger = zstandard.ZstdCompressor().compress(raw + raw)  # declares twice the size
    with pytest.raises(ValueError, match="declares 25600 bytes, expected 12800"):
        decode_stored("zstd", dtype, shape, bigger)
    with pytest.raises(ValueError, match="unknown stored codec 'lz77'"):
        decode_stored("lz77", dtype, shape, packed)
    with pytest.raises(zstandard.ZstdError):
        decode_stored("zstd", dtype, shape, packed[:-9])  # truncated


# -- stored runs ----------------------------------------------------------------------------


def _chunk(epochs: list[int], kernel: np.ndarray, signature: np.ndarray) -> records.EpochChunk:
    return records.EpochChunk(
        epochs=epochs,
        metrics=[{"train_loss": 1.0 / e} for e in epochs],
        tensors={"params/dense_0/kernel": kernel, "signatures/dense_0": signature},
        sparse_epochs={},
    )


def test_recorded_tensors_are_compressed_where_it_pays_and_read_back_exactly(db, tmp_path):
    run_id = runs.create_run(db, small_spec())
    kernel = RNG.normal(size=(3, 64, 128)).astype(np.float32)  # weights: raw
    signature = _relu(3, 400, 128)  # activations: zstd
    records.write_epochs(db, run_id, _chunk([1, 2, 3], kernel, signature))
    records.write_arrays(db, run_id, {"probe/x": _relu(400, 128), "probe/y": np.arange(3)})
    with db.session() as s:
        stored = dict(s.execute(select(RunTensor.name, RunTensor.codec)).all())
        sizes = dict(s.execute(select(RunTensor.name, func.length(RunTensor.data))).all())
        array_codecs = dict(s.execute(select(RunArray.name, RunArray.codec)).all())
    assert stored == {"params/dense_0/kernel": "raw", "signatures/dense_0": "zstd"}
    assert array_codecs == {"probe/x": "zstd", "probe/y": "raw"}
    assert sizes["signatures/dense_0"] < 0.8 * signature.nbytes
    # the run's recorded bytes stay the logical size (what limits and estimates count)
    assert runs.get_run(db, run_id).recorded_bytes == kernel.nbytes + signature.nbytes
    used = records.footprint(db, run_id)
    assert used.rows == 2 and used.packed_rows == 1
    assert used.raw_bytes == kernel.nbytes + signature.nbytes
    assert used.stored_bytes == sum(sizes.values()) and used.ratio > 1.2

    epochs, back = records.read_tensor(db, run_id, "signatures/dense_0", 2, 3)
    assert epochs.tolist() == [2, 3]
    np.testing.assert_array_equal(back, signature[1:])
    np.testing.assert_array_equal(
        records.read_tensor(db, run_id, "params/dense_0/kernel")[1], kernel
    )
    np.testing.assert_array_equal(records.read_arrays(db, run_id)["probe/x"].shape, (400, 128))
    with np.load(export_run(db, run_id, tmp_path / "run.npz")) as npz:
        np.testing.assert_array_equal(npz["signatures/dense_0"], signature)
        np.testing.assert_array_equal(npz["params/dense_0/kernel"], kernel)


def test_rows_written_before_codecs_stay_readable_and_the_downgrade_keeps_packed_rows(db):
    cfg = alembic_config(db)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0006")
    old = _relu(2, 50, 8)
    dtype, shape, raw = encode(old[0])
    with db.engine.begin() as conn:  # a run as revision 0006 wrote it: no codec column
        conn.execute(
            text(
                "INSERT INTO runs (name, status, spec, spec_version, dataset, architecture, "
                "optimizer, epochs_total, epochs_recorded, recorded_bytes, layers, tags, notes, "
                "data_info, created_at) VALUES ('old', 'succeeded', :spec, 1, 'xor', '2-3-1', "
                "'adam', 5, 2, 0, '[]', '[]', '', '{}', '2026-01-01 00:00:00')"
            ),
            {"spec": json.dumps(small_spec().model_dump(mode="json"))},
        )
        run_id = conn.execute(text("SELECT max(id) FROM runs")).scalar()
        conn.execute(
            text(
                "INSERT INTO run_tensors (run_id, name, epoch_start, epoch_stop, count, epochs, "
                "dtype, shape, data) VALUES (:r, 'signatures/dense_0', 1, 2, 2, :e, :d, :s, :b)"
            ),
            {
                "r": run_id,
                "e": np.array([1, 2], "<i4").tobytes(),
                "d": dtype,
                "s": json.dumps(list(old.shape[1:])),
                "b": old.tobytes(),
            },
        )
    upgrade(db)
    assert current_revision(db) == head_revision(db)
    epochs, back = records.read_tensor(db, run_id, "signatures/dense_0")
    assert epochs.tolist() == [1, 2]
    np.testing.assert_array_equal(back, old)

    packed = _relu(400, 16)
    records.write_arrays(db, run_id, {"probe/x": packed})  # a zstd row
    with db.engine.begin() as conn, pytest.raises(RuntimeError, match="compressed rows"):
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0006")
    # later revisions' downgrades may have run (SQLite commits DDL as it goes); 0007 stands
    assert current_revision(db) >= "0007"
    upgrade(db)
    np.testing.assert_array_equal(records.read_arrays(db, run_id)["probe/x"], packed)
