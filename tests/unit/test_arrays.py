"""Array codec: dtype + shape + raw bytes, exact round trip, no pickle."""

from __future__ import annotations

import numpy as np
import pytest

from netlens.storage.arrays import decode, encode


@pytest.mark.parametrize(
    "dtype", ["float16", "float32", "float64", "int8", "int32", "int64", "uint8", "bool"]
)
def test_round_trip_keeps_dtype_shape_and_values(dtype):
    rng = np.random.default_rng(0)
    array = (rng.normal(size=(3, 4, 5)) * 50).astype(dtype)
    back = decode(*encode(array))
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_nan_and_inf_round_trip(dtype):
    array = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.5], dtype=dtype)
    back = decode(*encode(array))
    assert np.isnan(back[0]) and back[1] == np.inf and back[2] == -np.inf
    assert np.signbit(back[4]) and back[5] == 1.5


def test_scalars_empty_and_non_contiguous_arrays():
    for array in (np.float32(3.5), np.zeros((0, 7), np.float32), np.arange(12.0).reshape(3, 4).T):
        back = decode(*encode(array))
        np.testing.assert_array_equal(back, array)
        assert back.shape == np.shape(array)


def test_big_endian_input_is_stored_little_endian():
    array = np.arange(4, dtype=">f4")
    dtype, _, data = encode(array)
    assert dtype == "<f4" and data == np.arange(4, dtype="<f4").tobytes()


def test_objects_are_refused_never_pickled():
    with pytest.raises(TypeError, match="numeric only"):
        encode(np.array([{"a": 1}], dtype=object))


def test_lossy_signatures_halve_only_the_signatures_within_float16s_range():
    from netlens.worker.recorder import lossy_signatures

    rng = np.random.default_rng(0)
    small = rng.normal(size=(3, 50, 8)).astype(np.float32)
    big = small.copy()
    big[1, 2, 3] = 1e6  # beyond float16's 65504: that array stays float32
    odd = small.copy()
    odd[0, 0, :2] = [np.nan, np.inf]  # non-finite values stay what they were
    tensors = {
        "params/dense/kernel": small,
        "signatures/hidden_1": small,
        "signatures/hidden_2": big,
        "signatures/output": odd,
    }
    out = lossy_signatures(tensors)
    assert out["params/dense/kernel"] is small
    assert out["signatures/hidden_2"] is big
    assert out["signatures/hidden_1"].dtype == np.float16
    np.testing.assert_allclose(out["signatures/hidden_1"], small, rtol=2.0**-11, atol=3e-8)
    assert out["signatures/output"].dtype == np.float16
    assert (
        np.isnan(out["signatures/output"][0, 0, 0]) and out["signatures/output"][0, 0, 1] == np.inf
    )
