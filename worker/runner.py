"""Run one stored experiment: load its data, train with a recorder, mark the outcome."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

from storage import records, runs
from storage.db import Database
from storage.sizing import estimate_recorded_bytes
from storage.spec import LIMITS, ExperimentSpec, parse_spec
from worker.datasets import Dataset, DatasetError, load_dataset
from worker.recorder import Recorder
from worker.train import Chunk, Diverged, StopTraining, Trainer

ProgressFn = Callable[[Chunk], None]


def enable_compile_cache(folder: Path) -> None:
    """Keep compiled XLA programs on disk: the same architecture starts ~1 s sooner next time."""
    folder.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def describe_device() -> str:
    device = jax.devices()[0]
    return f"{device.platform}:{getattr(device, 'device_kind', '') or device.platform}"


def data_info(data: Dataset) -> dict:
    return {"classes": [int(c) for c in data.classes], "class_names": list(data.class_names),
            "image_shape": list(data.image_shape) if data.image_shape else None,
            "n_features": data.n_features, "n_train": len(data.x_train), "n_val": len(data.x_val),
            "n_probe": len(data.probe_x), "n_probe_ood": int(np.sum(data.probe_is_ood)),
            "source_path": data.source_path, "sha256": data.source_sha256}


def _check_real_size(spec: ExperimentSpec, data: Dataset) -> None:
    size = estimate_recorded_bytes(spec, data.n_features, data.n_classes,
                                   data.image_shape[0] if data.image_shape else None,
                                   len(data.probe_x))
    if size > LIMITS["max_recorded_bytes"]:
        raise DatasetError(
            f"recording: with the loaded data ({data.n_features} features, {len(data.probe_x)} "
            f"probe inputs) the run would record {size / 1024**2:,.0f} MiB, above the limit of "
            f"{LIMITS['max_recorded_bytes'] / 1024**2:,.0f} MiB")


def _static_arrays(trainer: Trainer, data: Dataset) -> dict[str, np.ndarray]:
    arrays = {"probe/x": data.probe_x, "probe/y": data.probe_y,
              "probe/is_ood": data.probe_is_ood, "classes": np.asarray(data.classes, np.int64)}
    if trainer.grid_x is not None:
        arrays["grid/x"] = trainer.grid_x
    return arrays


def run_experiment(db: Database, run_id: int, data_dir: Path | None = None,
                   on_progress: ProgressFn | None = None,
                   should_stop: Callable[[], bool] | None = None) -> str:
    """Train run `run_id` to its end; return its final status. Never raises for a bad run:
    the reason is stored on the run, and every epoch recorded so far is kept."""
    spec = parse_spec(runs.get_run(db, run_id).spec)
    try:
        data = load_dataset(spec, data_dir)
        _check_real_size(spec, data)
        trainer = Trainer(spec, data)
    except (DatasetError, ValueError) as exc:
        runs.finish_run(db, run_id, "failed", str(exc))
        return "failed"
    runs.mark_started(db, run_id, layers=[layer.to_dict() for layer in trainer.layer_infos],
                      device=describe_device(), data_info=data_info(data),
                      architecture=spec.model.describe(data.n_features,
                                                       trainer.layer_infos[-1].units))
    records.write_arrays(db, run_id, _static_arrays(trainer, data))
    recorder = Recorder(db, run_id)

    def on_chunk(chunk: Chunk) -> None:
        recorder.put(chunk)
        if on_progress:
            on_progress(chunk)
        if should_stop and should_stop():
            raise StopTraining

    return _train_and_finish(db, run_id, trainer, recorder, on_chunk)


def _train_and_finish(db: Database, run_id: int, trainer: Trainer, recorder: Recorder,
                      on_chunk: Callable[[Chunk], None]) -> str:
    status, error = "succeeded", None
    try:
        trainer.run(on_chunk)
    except Diverged as exc:
        status, error = "diverged", str(exc)
    except StopTraining:
        status, error = "cancelled", "cancelled by the user"
    except Exception as exc:  # the run fails, with the reason kept; the process goes on
        status, error = "failed", f"{exc}\n\n{traceback.format_exc()}"
    try:
        recorder.close()
    except Exception as exc:
        status, error = "failed", f"{exc}\n\n{traceback.format_exc()}"
    runs.finish_run(db, run_id, status, error)
    return status
