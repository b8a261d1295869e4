"""Sweeps: grid expansion, typed values, and errors that name the field and the limit."""

from __future__ import annotations

import pytest

from netlens.storage.presets import get_preset
from netlens.storage.spec import LIMITS, SpecError
from netlens.storage.sweep import (
    MAX_SWEEP_RUNS,
    SweepError,
    describe_axes,
    expand_grid,
    field_kind,
    grid_size,
    parse_axes,
    parse_grid_option,
    split_values,
    sweep_fields,
)


@pytest.fixture
def base():
    return get_preset("xor-deep")  # two hidden layers of 3 and 5 tanh units


def _errors(base, axes) -> list[str]:
    with pytest.raises(SweepError) as info:
        expand_grid(base, axes)
    assert isinstance(info.value, SpecError)  # callers that catch spec errors catch these
    return info.value.errors


def test_grid_is_expanded_first_axis_outermost_and_named_after_the_values(base):
    specs = expand_grid(
        base,
        [
            ("optimizer.learning_rate", ["0.001", "1e-2"]),
            ("model.width", ["4", "8"]),
            ("training.seed", ["0", "1", "2"]),
        ],
    )
    assert len(specs) == 12
    points = [
        (s.optimizer.learning_rate, [layer.units for layer in s.model.hidden], s.training.seed)
        for s in specs
    ]
    assert points[:4] == [
        (0.001, [4, 4], 0),
        (0.001, [4, 4], 1),
        (0.001, [4, 4], 2),
        (0.001, [8, 8], 0),
    ]
    assert points[-1] == (0.01, [8, 8], 2)
    assert specs[0].name == "xor-deep · lr=0.001 · width=4 · seed=0"
    # Everything not swept is the base spec's.
    assert {(s.training.epochs, s.dataset.name, tuple(s.tags)) for s in specs} == {
        (base.training.epochs, "xor", ("preset",))
    }
    assert all(s.model.hidden[0].activation == "tanh" for s in specs)


def test_values_take_the_fields_type(base):
    axes = parse_axes(
        base,
        [
            ("optimizer.learning_rate", ["1e-3", "0.5", "2"]),
            ("training.epochs", ["100", "1e3"]),
            ("model.hidden.1.activation", ["relu", " tanh "]),
        ],
    )
    assert axes == [
        ("optimizer.learning_rate", [0.001, 0.5, 2.0]),
        ("training.epochs", [100, 1000]),
        ("model.hidden.1.activation", ["relu", "tanh"]),
    ]
    assert [type(v) for v in axes[0][1]] == [float] * 3 and type(axes[1][1][1]) is int
    assert describe_axes(axes)[1] == {"field": "training.epochs", "values": [100, 1000]}
    # Typed values (from an API) pass through unchanged; ints become floats for float fields.
    assert parse_axes(base, [("optimizer.learning_rate", [1, 0.1])]) == [
        ("optimizer.learning_rate", [1.0, 0.1])
    ]
    assert field_kind(base, "dataset.name")[0] == "choice"


def test_one_hidden_layer_is_swept_by_its_index(base):
    specs = expand_grid(base, [("model.hidden.1.units", [2, 7])])
    assert [[layer.units for layer in s.model.hidden] for s in specs] == [[3, 2], [3, 7]]
    assert specs[1].name == "xor-deep · units2=7"
    one_layer = expand_grid(get_preset("xor"), [("model.hidden.0.units", [8])])
    assert one_layer[0].name == "xor · units=8"


def test_sweepable_fields_follow_the_base_spec(base):
    fields = sweep_fields(base)
    assert "model.hidden.1.units" in fields and "model.hidden.2.units" not in fields
    assert fields.index("model.width") == fields.index("model.hidden.0.units") - 1
    assert not {"name", "version", "tags", "dataset.classes"} & set(fields)
    assert "dataset.path" not in sweep_fields(base, ("int", "float", "choice"))


def test_grid_option_and_value_lists_are_parsed():
    assert parse_grid_option("optimizer.learning_rate=0.001, 0.01,0.1") == (
        "optimizer.learning_rate",
        ["0.001", "0.01", "0.1"],
    )
    assert split_values(" 4 , ,8 ") == ["4", "8"]
    with pytest.raises(SweepError, match=r"grid: 'lr' must be FIELD=V1,V2"):
        parse_grid_option("lr")
    assert grid_size([("a", [1, 2]), ("b", [1, 2, 3])]) == 6 and grid_size([]) == 0


@pytest.mark.parametrize(
    ("axes", "expected"),
    [
        ([], "grid: no axis; a sweep varies 1 to 3 spec fields"),
        (
            [("training.seed", [0])] * 2
            + [("optimizer.learning_rate", [0.1]), ("training.epochs", [5])],
            "grid: 4 axes is above the limit of 3 axes per sweep",
        ),
        ([("training.seed", [])], "training.seed: no values; give 1 or more"),
        (
            [("optimizer.learning_rate", ["0.01", "1e-2"])],
            "optimizer.learning_rate: 0.01 is given twice (values 1 and 2); each value once",
        ),
        (
            [("training.seed", [1]), ("training.seed", [2])],
            "training.seed: appears in 2 axes; one axis per field",
        ),
        (
            [("model.width", [4]), ("model.hidden.0.units", [5])],
            "model.width: sets every hidden layer's units, so model.hidden.0.units cannot be swept",
        ),
        (
            [("learning_rate", [0.1])],
            "learning_rate: not a field of the spec; did you mean optimizer.learning_rate?",
        ),
        ([("lr", [0.1])], "lr: not a field of the spec; did you mean optimizer.learning_rate?"),
        (
            [("model.hidden.2.units", [4])],
            "model.hidden.2.units: not a field of the spec; did you mean model.hidden.0.units, "
            "model.hidden.1.units",
        ),
        ([("optimizer", [4])], "optimizer: is a group of fields; sweep one of optimizer.name"),
        ([("name", ["a"])], "name: cannot be swept"),
        (
            [("training.epochs", ["10", "2.5"])],
            "training.epochs: '2.5' is not a whole number (sweep value 2 of 2)",
        ),
        (
            [("optimizer.learning_rate", ["fast"])],
            "optimizer.learning_rate: 'fast' is not a number (sweep value 1 of 1)",
        ),
        (
            [("optimizer.learning_rate", ["inf"])],
            "optimizer.learning_rate: 'inf' is not a finite number (sweep value 1 of 1)",
        ),
        (
            [("model.hidden.0.activation", ["tanh", "rleu"])],
            "model.hidden.0.activation: 'rleu' is not one of relu, tanh, sigmoid",
        ),
    ],
)
def test_every_error_names_the_field_and_the_limit(base, axes, expected):
    errors = _errors(base, axes)
    assert any(line.startswith(expected) for line in errors), errors


def test_an_out_of_range_value_says_which_value_and_which_limit(base):
    errors = _errors(base, [("optimizer.learning_rate", ["0.01", "0.1", "50", "1"])])
    assert errors == [
        f"optimizer.learning_rate: 50.0 is out of range: must be at most "
        f"{LIMITS['max_learning_rate']} (sweep value 3 of 4)"
    ]
    # A width that breaks the units limit is reported once, as the swept field.
    assert _errors(base, [("model.width", [4, 5000])]) == [
        "model.width: 5000 is out of range: must be at most 1024 (sweep value 2 of 2)"
    ]
    # A value that breaks a rule of another field names both.
    grid_every = base.model_copy(
        update={"recording": base.recording.model_copy(update={"grid_every": 10})}
    )
    assert _errors(grid_every, [("recording.every", [5, 3])]) == [
        "recording.every: recording.grid_every: 10 must be a multiple of recording.every (3) "
        "(sweep value 2 of 2)"
    ]


def test_every_bad_value_is_reported_and_nothing_is_returned(base):
    errors = _errors(
        base, [("optimizer.learning_rate", ["0.1", "-1"]), ("training.epochs", ["0", "10"])]
    )
    assert [e.split(":")[0] for e in errors] == ["optimizer.learning_rate", "training.epochs"]
    assert "-1.0 is out of range: must be above 0.0 (sweep value 2 of 2)" in errors[0]
    assert "must be at least 1 (sweep value 1 of 2)" in errors[1]


def test_a_combination_over_a_limit_names_the_run():
    # Each value is fine alone (668 MiB, 22 MiB); together they record 2.2 GiB, over 2 GiB.
    errors = _errors(
        get_preset("two-regions"), [("model.width", [2, 256]), ("training.epochs", [300, 1000])]
    )
    assert len(errors) == 1 and errors[0].startswith("recording: the run would record about")
    assert errors[0].endswith("(sweep run 4 of 4: width=256 · epochs=1000)")


def test_at_most_200_runs(base):
    assert (
        len(
            expand_grid(
                base, [("training.seed", list(range(20))), ("dataset.seed", list(range(10)))]
            )
        )
        == MAX_SWEEP_RUNS
    )
    errors = _errors(
        base,
        [
            ("training.seed", list(range(20))),
            ("dataset.seed", list(range(10))),
            ("training.epochs", [5, 6]),
        ],
    )
    assert errors == ["grid: 20 × 10 × 2 = 400 runs is above the limit of 200 runs per sweep"]


def test_names_stay_within_the_spec_limit(base):
    long_name = base.model_copy(update={"name": "n" * 200})
    specs = expand_grid(long_name, [("training.seed", [1])])
    assert len(specs[0].name) == 200 and specs[0].name.endswith(" · seed=1")
    unnamed = base.model_copy(update={"name": ""})
    assert expand_grid(unnamed, [("dataset.seed", [3])])[0].name == "sweep · data_seed=3"
