"""Which epochs a thinned run keeps (storage/retention.py select_epochs, best_epoch) and how
policy and age input is checked: every error names the field and its limit."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pytest

from netlens.storage import retention as R


def test_every_kth_log_spaced_first_best_and_last_are_kept():
    epochs = list(range(0, 1000))
    policy = R.RetentionPolicy(keep_days=30, every=100, log_points=6)
    kept = R.select_epochs(epochs, policy, best=437, also=[999, 5000])  # 5000: not recorded
    every = set(range(0, 1000, 100))
    log_spaced = {round(p) for p in np.geomspace(1, 999, 6)}
    assert set(kept) == every | log_spaced | {0, 437, 999}
    assert kept == sorted(kept) and 5000 not in kept
    # log-spaced: dense early (where training changes fastest), sparse late
    assert {1, 4, 16, 63, 251, 999} <= set(kept)


def test_positions_not_numbers_when_epochs_are_recorded_sparsely():
    epochs = [0, 5, 10, 15, 20, 25, 30]  # recorded every 5th epoch
    kept = R.select_epochs(epochs, R.RetentionPolicy(every=3, log_points=0))
    assert kept == [0, 15, 30]  # every 3rd recorded epoch, and the last


def test_k_of_one_keeps_everything_and_small_runs_stay_whole():
    epochs = list(range(50))
    assert R.select_epochs(epochs, R.RetentionPolicy(every=1, log_points=0)) == epochs
    assert R.select_epochs([0, 1], R.RetentionPolicy(every=10, log_points=20)) == [0, 1]
    assert R.select_epochs([7], R.RetentionPolicy()) == [7]
    assert R.select_epochs([], R.RetentionPolicy()) == []


def test_the_best_epoch_is_the_lowest_validation_loss_else_training_loss():
    epochs = [0, 1, 2, 3]
    with_val = [{"val_loss": 3.0}, {"val_loss": 1.0}, {"val_loss": None}, {"val_loss": 1.0}]
    assert R.best_epoch(epochs, with_val) == 1  # ties: the earliest; None skipped
    no_val = [{"train_loss": 2.0}, {"train_loss": 0.5}, {"train_loss": math.nan}, {}]
    assert R.best_epoch(epochs, no_val) == 1
    assert R.best_epoch(epochs, [{}, {}, {}, {"train_loss": math.inf}]) is None


def test_nearest_at_or_before_is_what_a_page_shows_at_each_kept_epoch():
    grid = np.array([0, 4, 8, 12])
    assert R.nearest_at_or_before(grid, [0, 3, 5, 13]) == {0, 4, 12}
    assert R.nearest_at_or_before(np.array([5]), [1]) == set()


@pytest.mark.parametrize(
    ("values", "field", "limit"),
    [
        ({"every": 0}, "every", "from 1 to 1,000,000"),
        ({"every": "-3"}, "every", "from 1 to 1,000,000"),
        ({"every": 2.5}, "every", "whole number"),
        ({"every": True}, "every", "whole number"),
        ({"log_points": "abc"}, "log_points", "from 0 to 10,000"),
        ({"keep_days": 10**9}, "keep_days", "from 0 to 36,500"),
        ({"colour": 1}, "colour", "not a policy field"),
    ],
)
def test_bad_policy_values_are_refused_naming_field_and_limit(values, field, limit):
    with pytest.raises(R.RetentionError) as caught:
        R.parse_policy(values)
    assert str(caught.value).startswith(field) and limit in str(caught.value)


def test_policy_values_from_forms_and_partial_updates():
    base = R.RetentionPolicy(keep_days=7, every=5, log_points=3)
    assert R.parse_policy({"every": " 20 "}, base) == R.RetentionPolicy(7, 20, 3)
    assert R.parse_policy({"log_points": 0.0, "keep_days": None}, base).log_points == 0


def test_ages():
    assert R.parse_age("30d") == timedelta(days=30) and R.parse_age("12h") == timedelta(hours=12)
    assert R.parse_age("2w") == timedelta(days=14) and R.parse_age("3") == timedelta(days=3)
    for bad in ("abc", "-1d", "30x", "", "1e3d", "99999999d"):
        with pytest.raises(R.RetentionError, match=r"^older-than: .* from 0 to 36500 days"):
            R.parse_age(bad)
