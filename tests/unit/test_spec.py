"""Spec validation: every limit refused with the field, the value and the limit named."""

from __future__ import annotations

import json

import pytest

from netlens.storage.presets import get_preset, preset_names
from netlens.storage.sizing import estimate_recorded_bytes, recorded_epochs
from netlens.storage.spec import LIMITS, SpecError, load_spec_file, parse_spec

# (path in the spec, a value over the limit, words the message must contain)
OVER_LIMITS = [
    (("model", "hidden"), [{"units": 4}] * (LIMITS["max_hidden_layers"] + 1), "at most 8"),
    (("model", "hidden"), [{"units": LIMITS["max_units"] + 1}], "at most 1024"),
    (("model", "hidden"), [{"units": 0}], "at least 1"),
    (("model", "conv_channels"), [LIMITS["max_conv_channels"] + 1], "at most 64"),
    (("training", "epochs"), LIMITS["max_epochs"] + 1, "at most 100000"),
    (("training", "epochs"), 0, "at least 1"),
    (("training", "batch_size"), LIMITS["max_batch_size"] + 1, "at most 65536"),
    (("dataset", "n_samples"), LIMITS["max_samples"] + 1, "at most 200000"),
    (("dataset", "noise"), 0.9, "at most 0.5"),
    (("dataset", "val_fraction"), 0.7, "at most 0.5"),
    (("recording", "probe_size"), LIMITS["max_probe_size"] + 1, "at most 5000"),
    (("recording", "grid_resolution"), LIMITS["max_grid_resolution"] + 1, "at most 100"),
    (("recording", "every"), 0, "at least 1"),
    (("optimizer", "learning_rate"), 0, "above 0"),
    (("optimizer", "learning_rate"), 11, "at most 10"),
    (("optimizer", "momentum"), 1.0, "below 1"),
]


def _with(path, value) -> dict:
    data: dict = {}
    node = data
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return data


@pytest.mark.parametrize(("path", "value", "words"), OVER_LIMITS)
def test_each_limit_is_refused_naming_field_value_and_limit(path, value, words):
    with pytest.raises(SpecError) as exc:
        parse_spec(_with(path, value))
    message = str(exc.value)
    assert ".".join(path) in message
    assert words in message
    shown = (
        len(value) if isinstance(value, list) and path[-1] == "hidden" and len(value) > 1 else None
    )
    assert str(shown if shown is not None else "") in message


def test_values_at_the_limit_are_accepted():
    spec = parse_spec(
        {
            "training": {"epochs": 10, "batch_size": LIMITS["max_batch_size"]},
            "model": {"hidden": [{"units": LIMITS["max_units"]}]},
            "recording": {"probe_size": 100},
        }
    )
    assert spec.model.hidden[0].units == LIMITS["max_units"]


def test_unknown_fields_and_bad_choices_are_named():
    with pytest.raises(SpecError) as exc:
        parse_spec(
            {
                "optimiser": {},
                "optimizer": {"name": "lbfgs"},
                "model": {"hidden": [{"units": 3, "activation": "swish2"}]},
            }
        )
    errors = exc.value.errors
    assert any(e.startswith("optimiser: unknown field") for e in errors)
    assert any(e.startswith("optimizer.name: 'lbfgs' is not allowed") for e in errors)
    assert any(e.startswith("model.hidden.0.activation: 'swish2'") for e in errors)


def test_cross_field_rules():
    with pytest.raises(SpecError, match="model.kind: 'cnn' needs an image dataset"):
        parse_spec({"model": {"kind": "cnn"}, "dataset": {"name": "spiral"}})
    with pytest.raises(SpecError, match=r"dataset.ood_classes: \[7\] also in dataset.classes"):
        parse_spec({"dataset": {"name": "digits", "classes": [1, 7], "ood_classes": [7]}})
    with pytest.raises(SpecError, match="dataset.ood_classes: set dataset.classes"):
        parse_spec({"dataset": {"name": "digits", "ood_classes": [3]}})
    with pytest.raises(SpecError, match="dataset.path"):
        parse_spec({"dataset": {"name": "csv"}})
    with pytest.raises(SpecError, match="recording.grid_every: 15 must be a multiple"):
        parse_spec({"recording": {"every": 10, "grid_every": 15}})


def test_recorded_bytes_limit_is_checked_before_anything_runs():
    data = {
        "dataset": {"name": "mnist"},
        "training": {"epochs": 50_000},
        "model": {"hidden": [{"units": 512}, {"units": 512}]},
    }
    with pytest.raises(SpecError) as exc:
        parse_spec(data)
    assert "recording:" in str(exc.value) and "MiB" in str(exc.value)
    data["recording"] = {"every": 1000, "probe_size": 100}
    spec = parse_spec(data)
    assert estimate_recorded_bytes(spec) <= LIMITS["max_recorded_bytes"]


def test_size_estimate_counts_params_probe_and_grid():
    spec = parse_spec(
        {
            "dataset": {"name": "xor"},
            "training": {"epochs": 10},
            "model": {"hidden": [{"units": 3}]},
            "recording": {"probe_size": 4, "grid_resolution": 10},
        }
    )
    params = 2 * 3 + 3 + 3 * 1 + 1
    signatures = 4 * (3 + 1)
    grid = 10 * 10 * (1 + 3)  # grid/output and grid/hidden_1's 3 maps
    assert estimate_recorded_bytes(spec) == 4 * (11 * (params + signatures) + 11 * grid)


@pytest.mark.parametrize(("epochs", "every", "expected"), [(10, 1, 11), (10, 5, 3), (10, 3, 5)])
def test_recorded_epochs_include_zero_and_the_last(epochs, every, expected):
    assert recorded_epochs(epochs, every) == expected


def test_yaml_and_json_files(tmp_path):
    (tmp_path / "a.yaml").write_text("name: a\ntraining:\n  epochs: 7\n")
    (tmp_path / "b.json").write_text(json.dumps({"name": "b", "training": {"epochs": 8}}))
    assert load_spec_file(tmp_path / "a.yaml").training.epochs == 7
    assert load_spec_file(tmp_path / "b.json").training.epochs == 8
    (tmp_path / "bad.yaml").write_text("training: [unclosed\n")
    with pytest.raises(SpecError, match="not valid"):
        load_spec_file(tmp_path / "bad.yaml")
    with pytest.raises(SpecError, match="does not exist"):
        load_spec_file(tmp_path / "missing.yaml")


def test_spec_is_versioned_and_round_trips_through_json():
    spec = get_preset("two-regions")
    assert spec.version == 1
    assert parse_spec(json.loads(spec.to_json())) == spec
    with pytest.raises(SpecError, match="version"):
        parse_spec({"version": 2})


def test_every_preset_is_valid_and_named():
    assert set(preset_names()) >= {
        "xor",
        "xor-deep",
        "two-regions",
        "spiral",
        "digits-1-7",
        "digits",
    }
    for name in preset_names():
        assert get_preset(name).name == name
    assert [layer.units for layer in get_preset("xor-deep").model.hidden] == [3, 5]
    assert [layer.units for layer in get_preset("two-regions").model.hidden] == [100, 2]
    assert get_preset("digits-1-7").dataset.ood_classes == [3, 4]
    with pytest.raises(SpecError, match="preset: 'nope'"):
        get_preset("nope")


@pytest.mark.parametrize(
    "data",
    [
        {"name": "a\x00b"},
        {"tags": ["fine", "not\x00fine"]},
        {"dataset": {"name": "csv", "path": "x\x00.csv"}},
    ],
)
def test_a_nul_character_in_any_text_of_a_spec_is_refused_naming_the_field(data):
    """PostgreSQL cannot read a NUL back out of stored JSON (a 500 the contract fuzzer found
    on DELETE /uploads, whose query reads dataset.upload out of every spec)."""
    with pytest.raises(SpecError, match="must not contain a NUL character") as caught:
        parse_spec(data)
    assert caught.value.errors[0].split(":")[0] in ("name", "tags", "dataset.path")


def test_float16_signatures_halve_the_signatures_share_of_the_estimate():
    from netlens.storage.sizing import dataset_shape, layer_units, probe_inputs

    spec = get_preset("digits-1-7")
    half = spec.model_copy(
        update={"recording": spec.recording.model_copy(update={"signature_dtype": "float16"})}
    )
    features, classes, side = dataset_shape(spec)
    units = sum(u for _, u in layer_units(spec, features, classes, side))
    signature_bytes = probe_inputs(spec, classes) * units * 4
    epochs = recorded_epochs(spec.training.epochs, spec.recording.every)
    saved = estimate_recorded_bytes(spec) - estimate_recorded_bytes(half)
    assert saved == epochs * signature_bytes // 2 > 0


def test_a_huge_rejected_value_is_cut_short_in_the_message():
    for data in (
        {"recording": {"signature_dtype": ["x"] * 100_000}},
        {"recording": {"probe_size": "9" * 100_000}},
        {"name": {"a": "b" * 100_000}},
    ):
        with pytest.raises(SpecError) as exc:
            parse_spec(data)
        message = str(exc.value)
        assert len(message) < 400 and "characters" in message, message[:500]
    with pytest.raises(SpecError, match=r"recording.signature_dtype: 'float64' is not allowed"):
        parse_spec({"recording": {"signature_dtype": "float64"}})


def test_grad_norm_steps_is_a_bounded_integer_named_in_its_errors():
    assert parse_spec({}).recording.grad_norm_steps == 32
    assert parse_spec({"recording": {"grad_norm_steps": 0}}).recording.grad_norm_steps == 0
    for value, says in (
        (-1, "must be at least 0"),
        (10**9, "must be at most 100000"),
        (2.5, "valid integer"),
        ([1], "valid integer"),
    ):
        with pytest.raises(SpecError, match=rf"recording.grad_norm_steps: .*{says}"):
            parse_spec({"recording": {"grad_norm_steps": value}})
