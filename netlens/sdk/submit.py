"""nl.submit: queue an experiment for NetLens's workers, from a script or a notebook.

    run = nl.submit("xor", overrides={"training.epochs": 50})   # a preset, changed
    run = nl.submit(spec)                                         # an ExperimentSpec or a dict
    run = nl.submit(Path("experiment.yaml"))                      # a spec file

While connected (nl.connect) the run is queued on the team server as the token's user
(POST /api/v1/runs) and a RemoteRun is returned; otherwise it is queued in the local database
and broker exactly as `netlens submit` does, and a Run is returned. Either way the spec is
checked here first, with the CLI's and the API's messages, so a bad spec fails before any
request. Training happens in the workers, not in this process (fit and nl.Recorder train
here).
"""

from __future__ import annotations

import copy
import os
from typing import Any

from netlens.storage.spec import ExperimentSpec, SpecError


def submit(spec: ExperimentSpec | dict | str | os.PathLike, overrides: dict | None = None):
    """Queue `spec` for the workers and return its run (nl.get's handle, status queued).

    spec: an ExperimentSpec, a spec as a dict (docs/spec.md), a preset's name (see
    `netlens presets`) or the path (pathlib.Path) of a YAML or JSON spec file. overrides:
    fields to change, nested ({"training": {"epochs": 50}}) or dotted
    ({"training.epochs": 50}). SpecError (a ValueError) names each refused field."""
    from netlens.sdk import reading
    from netlens.sdk.connection import current

    checked = resolve_spec(spec, overrides)
    connection = current()
    if connection is not None:
        from netlens.sdk.remote_run import call

        answer = call(
            connection, "POST", "/runs", json={"spec": checked.model_dump(mode="json")}
        ).json()
        return reading.get(int(answer["id"]))
    from netlens.dispatch.submission import submit_spec
    from netlens.sdk.home import database, settings

    chosen = settings()
    db = database(chosen)
    run_id = submit_spec(db, chosen, checked)
    return reading.get(run_id, database=db)


def resolve_spec(spec, overrides: dict | None = None) -> ExperimentSpec:
    """The spec nl.submit queues: `spec` with `overrides` applied, checked as POST /api/runs
    checks it (a model NetLens can train, a dataset it can load)."""
    from netlens.storage.presets import get_preset
    from netlens.storage.spec import check_submittable, check_trainable, load_spec_file, parse_spec

    if isinstance(spec, ExperimentSpec):
        data = spec.model_dump(mode="json")
    elif isinstance(spec, dict):
        data = copy.deepcopy(spec)
    elif isinstance(spec, str):
        data = get_preset(spec).model_dump(mode="json")
    elif isinstance(spec, os.PathLike):
        data = load_spec_file(spec).model_dump(mode="json")
    else:
        raise TypeError(
            "spec: an ExperimentSpec, a dict, a preset's name or a spec file's path "
            f"(pathlib.Path), got {type(spec).__name__}"
        )
    if overrides is not None:
        if not isinstance(overrides, dict):
            raise TypeError(f"overrides: a dict of spec fields, got {type(overrides).__name__}")
        _apply(data, copy.deepcopy(overrides))
    return check_trainable(check_submittable(parse_spec(data)))


def _apply(data: dict[str, Any], overrides: dict[str, Any], prefix: str = "") -> None:
    """Merge `overrides` into a spec's dict as POST /api/runs does: nested objects merge,
    dotted keys are paths."""
    for key, value in overrides.items():
        *parents, leaf = str(key).split(".")
        target = data
        for depth, part in enumerate(parents):
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                path = prefix + ".".join(parents[: depth + 1])
                raise SpecError([f"overrides.{prefix}{key}: {path} is not an object of fields"])
        if isinstance(value, dict) and isinstance(target.get(leaf), dict):
            _apply(target[leaf], value, f"{prefix}{key}.")
        else:
            target[leaf] = value
