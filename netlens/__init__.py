"""NetLens: see inside neural networks as they train.

The Python API (docs/python-api.md) is reached from here, loaded on first use so that
`import netlens` (which every part of NetLens does, the web app included) never imports JAX:

    import netlens as nl
    model = nl.Sequential([...]); model.compile(...); model.fit(x, y, epochs=...)
    with nl.Recorder(my_flax_model, probe=x_probe) as rec: ...
    nl.runs(); nl.get(run_id); nl.submit("xor")
    nl.connect(url, token)  # read from, submit to and record into a team server
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> (module under netlens.sdk, attribute or None for the module itself)
_LAZY: dict[str, tuple[str, str | None]] = {
    "Sequential": ("model", "Sequential"),
    "layers": ("layers", None),
    "optimizers": ("optimizers", None),
    "datasets": ("datasets", None),
    "Recorder": ("recorder", "Recorder"),
    "runs": ("reading", "runs"),
    "get": ("reading", "get"),
    "submit": ("submit", "submit"),
    "connect": ("connection", "connect"),
    "disconnect": ("connection", "disconnect"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'netlens' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    loaded = importlib.import_module(f"netlens.sdk.{module}")
    value = loaded if attribute is None else getattr(loaded, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
