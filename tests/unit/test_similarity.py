"""Linear CKA and the other numbers the compare page shows, on data with a known answer."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group

from netlens.webapp.similarity import cka_matrix, distance_from_init, linear_cka, shared_rows


@pytest.fixture
def rep() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(size=(500, 12)) @ rng.normal(size=(12, 12))  # correlated units


def test_cka_of_a_representation_with_itself_is_one(rep):
    assert linear_cka(rep, rep) == pytest.approx(1.0, abs=1e-9)


def test_cka_ignores_rotation_scaling_and_translation(rep):
    rotation = ortho_group.rvs(12, random_state=1)
    assert linear_cka(rep, 3.5 * rep @ rotation + 7.0) == pytest.approx(1.0, abs=1e-9)


def test_cka_of_independent_noise_is_near_zero(rep):
    noise = np.random.default_rng(2).normal(size=(500, 12))
    value = linear_cka(rep, noise)
    assert 0 <= value < 0.08  # expected about sqrt(12 * 12) / 500 = 0.024


def test_cka_of_a_partly_shared_representation_is_in_between(rep):
    noise = np.random.default_rng(3).normal(size=rep.shape) * rep.std(axis=0)
    value = linear_cka(rep, np.hstack([rep[:, :6], noise[:, 6:]]))
    assert 0.2 < value < 0.95


def test_cka_in_gram_space_agrees_with_feature_space():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(30, 50)), rng.normal(size=(30, 50))  # more units than inputs
    y[:, :20] = x[:, :20]
    xc, yc = x - x.mean(0), y - y.mean(0)
    feature = np.linalg.norm(yc.T @ xc) ** 2 / (
        np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc)
    )
    assert linear_cka(x, y) == pytest.approx(feature, rel=1e-9)


def test_cka_of_a_dead_layer_is_undefined_not_a_number(rep):
    assert np.isnan(linear_cka(rep, np.zeros((500, 4))))
    assert np.isnan(linear_cka(np.ones((500, 3)), rep))


def test_cka_refuses_different_inputs(rep):
    with pytest.raises(ValueError, match="same inputs"):
        linear_cka(rep, rep[:-1])


def test_cka_matrix_is_layers_of_a_by_layers_of_b(rep):
    other = np.random.default_rng(5).normal(size=(500, 3))
    matrix = cka_matrix([rep, other], [other, rep, rep @ ortho_group.rvs(12, random_state=6)])
    assert matrix.shape == (2, 3)
    assert matrix[0, 1] == pytest.approx(1) and matrix[0, 2] == pytest.approx(1)
    assert matrix[1, 0] == pytest.approx(1) and matrix[0, 0] < 0.1


def test_shared_rows_match_inputs_by_value():
    a = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    b = a[[3, 1, 2]]  # a subset, in another order
    ia, ib = shared_rows(a, b)
    assert ia.tolist() == [1, 2, 3] and ib.tolist() == [1, 2, 0]
    assert np.array_equal(a[ia], b[ib])
    none_a, _ = shared_rows(a, np.zeros((3, 3), np.float32))  # another input width
    assert len(none_a) == 0


def test_distance_from_init_starts_at_zero_and_measures_the_move():
    kernel = np.zeros((3, 2, 2))
    kernel[1, 0, 0], kernel[2, 0, 0] = 3.0, 3.0
    bias = np.ones((3, 2))
    bias[2] = [1.0, 5.0]
    distance, initial_norm = distance_from_init([kernel, bias])
    assert distance.tolist() == pytest.approx([0.0, 3.0, 5.0])
    assert initial_norm == pytest.approx(np.sqrt(2))
