"""Named experiment presets taken from the source documents (see ../shared/MISSION.md)."""

from __future__ import annotations

from typing import Any

from netlens.storage.spec import ExperimentSpec, SpecError, parse_spec

_PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "xor": (
        "XOR 2-3-1: the 4 points of XOR, the master's report's first network",
        {
            "dataset": {"name": "xor", "val_fraction": 0.0},
            "model": {"hidden": [{"units": 3, "activation": "tanh"}]},
            "optimizer": {"name": "adam", "learning_rate": 0.05},
            "training": {"epochs": 2000, "batch_size": 4},
        },
    ),
    "xor-deep": (
        "XOR 2-3-5-1: the report's deeper network",
        {
            "dataset": {"name": "xor", "val_fraction": 0.0},
            "model": {
                "hidden": [{"units": 3, "activation": "tanh"}, {"units": 5, "activation": "tanh"}]
            },
            "optimizer": {"name": "adam", "learning_rate": 0.05},
            "training": {"epochs": 2000, "batch_size": 4},
        },
    ),
    "two-regions": (
        "Two regions, 2-unit bottleneck: 2-100-2-1, the blog post's network",
        {
            "dataset": {"name": "two-regions", "n_samples": 2000},
            "model": {
                "hidden": [{"units": 100, "activation": "relu"}, {"units": 2, "activation": "relu"}]
            },
            "optimizer": {"name": "adam", "learning_rate": 0.01},
            "training": {"epochs": 300, "batch_size": 32},
        },
    ),
    "spiral": (
        "Spiral at TensorFlow Playground scale: 2-8-8-1, tanh",
        {
            "dataset": {"name": "spiral", "n_samples": 1000, "noise": 0.0},
            "model": {
                "hidden": [{"units": 8, "activation": "tanh"}, {"units": 8, "activation": "tanh"}]
            },
            "optimizer": {"name": "adam", "learning_rate": 0.01},
            "training": {"epochs": 500, "batch_size": 10},
        },
    ),
    "digits-1-7": (
        "Digits 1 vs 7, with unseen 3s and 4s in the probe",
        {
            "dataset": {"name": "digits", "classes": [1, 7], "ood_classes": [3, 4]},
            "model": {
                "hidden": [
                    {"units": 32, "activation": "relu"},
                    {"units": 16, "activation": "relu"},
                    {"units": 8, "activation": "relu"},
                ]
            },
            "optimizer": {"name": "adam", "learning_rate": 0.003},
            "training": {"epochs": 100, "batch_size": 32},
        },
    ),
    "mnist-1-7": (
        "MNIST 1 vs 7: unseen 3s and 4s in the probe; get the files with netlens data get mnist",
        {
            "dataset": {"name": "mnist", "classes": [1, 7], "ood_classes": [3, 4]},
            "model": {
                "hidden": [
                    {"units": 32, "activation": "relu"},
                    {"units": 16, "activation": "relu"},
                    {"units": 8, "activation": "relu"},
                ]
            },
            "optimizer": {"name": "adam", "learning_rate": 0.001},
            "training": {"epochs": 20, "batch_size": 128},
        },
    ),
    "digits": (
        "Digits, all ten classes (8x8 images)",
        {
            "dataset": {"name": "digits"},
            "model": {
                "hidden": [{"units": 64, "activation": "relu"}, {"units": 32, "activation": "relu"}]
            },
            "optimizer": {"name": "adam", "learning_rate": 0.003},
            "training": {"epochs": 100, "batch_size": 32},
        },
    ),
}


def preset_names() -> list[str]:
    return list(_PRESETS)


def preset_description(name: str) -> str:
    return _PRESETS[name][0]


def get_preset(name: str) -> ExperimentSpec:
    if name not in _PRESETS:
        raise SpecError([f"preset: {name!r} is not a preset; choose one of {', '.join(_PRESETS)}"])
    description, data = _PRESETS[name]
    return parse_spec({"name": name, "tags": ["preset"], **data})
