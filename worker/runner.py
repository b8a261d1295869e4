"""Run one stored experiment: load its data, train with a recorder, mark the outcome."""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

from netlens.storage import jobs, records, runs
from netlens.storage.catalog import DATASETS
from netlens.storage.db import Database, with_retry
from netlens.storage.sizing import estimate_recorded_bytes
from netlens.storage.spec import LIMITS, ExperimentSpec, parse_spec
from netlens.worker.datasets import Dataset, DatasetError, load_dataset
from netlens.worker.datasets.arrays import dataset_from_arrays
from netlens.worker.datasets.base import data_info  # noqa: F401 - fit and the worker store it
from netlens.worker.events import events
from netlens.worker.recorder import Recorder
from netlens.worker.train import Chunk, Diverged, StopTraining, Trainer, TrainState

ProgressFn = Callable[[Chunk], None]


def enable_compile_cache(folder: Path) -> None:
    """Keep compiled XLA programs on disk: the same architecture starts ~1 s sooner next time.
    JAX's own JAX_COMPILATION_CACHE_DIR, when set, wins over `folder` (NETLENS_HOME's), so
    that processes with different homes (the test suite's, a user's other JAX programs) can
    share one cache instead of each compiling everything again."""
    folder = Path(os.environ.get("JAX_COMPILATION_CACHE_DIR") or folder)
    folder.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def describe_device() -> str:
    device = jax.devices()[0]
    return f"{device.platform}:{getattr(device, 'device_kind', '') or device.platform}"


def load_run_data(
    db: Database, run_id: int, spec: ExperimentSpec, data_dir: Path | None = None
) -> Dataset:
    """The run's data: loaded by name, or read from the run itself when its dataset is
    stored with it (arrays: `data/...`, worker.datasets.arrays)."""
    if DATASETS[spec.dataset.name].stored:
        return dataset_from_arrays(spec, records.read_arrays(db, run_id, records.DATA_PREFIX))
    check_upload_reachable(spec)
    return load_dataset(spec, data_dir)


def check_upload_reachable(spec: ExperimentSpec) -> None:
    """An uploaded file is stored by the web app in its own data folder and the spec names
    it there; a worker on another machine sees it only through a folder shared at the same
    path. Say so, rather than that the path does not exist."""
    ds = spec.dataset
    if ds.upload is None or not ds.path or Path(ds.path).is_file():
        return
    import socket

    raise DatasetError(
        f"dataset.upload: the file of upload {ds.upload} ({ds.path}) is not on this worker's "
        f"host ({socket.gethostname()}): the web app keeps uploads in its NETLENS_DATA_DIR; "
        "with workers on other machines, mount one shared data folder at the same path on "
        'the web and worker hosts (README, "Several machines")'
    )


def check_real_size(spec: ExperimentSpec, data: Dataset) -> None:
    size = estimate_recorded_bytes(
        spec,
        data.n_features,
        data.n_classes,
        data.image_shape[0] if data.image_shape else None,
        len(data.probe_x),
    )
    if size > LIMITS["max_recorded_bytes"]:
        raise DatasetError(
            f"recording: with the loaded data ({data.n_features} features, {len(data.probe_x)} "
            f"probe inputs) the run would record {size / 1024**2:,.0f} MiB, above the limit of "
            f"{LIMITS['max_recorded_bytes'] / 1024**2:,.0f} MiB"
        )


def static_arrays(trainer: Trainer, data: Dataset) -> dict[str, np.ndarray]:
    arrays = {
        "probe/x": data.probe_x,
        "probe/y": data.probe_y,
        "probe/is_ood": data.probe_is_ood,
        "classes": np.asarray(data.classes, np.int64),
    }
    if trainer.grid_x is not None:
        arrays["grid/x"] = trainer.grid_x
    return arrays


class TimeLimitReached(Exception):
    pass


class ReleaseJob(Exception):
    """Raised after a chunk when the worker is shutting down: the job goes back to the queue
    and resumes elsewhere from the checkpoint written when the recorder closes."""


RELEASED = "released"  # run_experiment's outcome then: the caller gives the job back


def _resume_state(db: Database, run_id: int, trainer: Trainer) -> TrainState | None:
    """The stored checkpoint (parameters, optimizer state, epoch), if this run has one."""
    from netlens.worker.checkpoint import state_from_bytes

    stored = jobs.load_checkpoint(db, run_id)
    if stored is None:
        return None
    return state_from_bytes(stored[1], trainer.initial_state())


def run_experiment(
    db: Database,
    run_id: int,
    data_dir: Path | None = None,
    on_progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
    attempt: int | None = None,
    resume: bool = False,
    time_limit_s: float | None = None,
    checkpoint_seconds: float = 5.0,
    should_release: Callable[[], bool] | None = None,
) -> str:
    """Train run `run_id` to its end; return its final status. Never raises for a bad run:
    the reason is stored on the run, and every epoch recorded so far is kept.

    With `attempt` (a queued job), every write is fenced by that attempt and the outcome goes
    to the job; `resume` continues from the run's checkpoint when there is one. When
    `should_release()` turns true (the worker is shutting down), training stops after the
    current chunk, every epoch so far and a checkpoint of the last one are written, and
    RELEASED is returned with the job left running for the caller to give back.
    """
    finish = _finisher(db, run_id, attempt)
    spec = parse_spec(runs.get_run(db, run_id).spec)
    try:
        data = load_run_data(db, run_id, spec, data_dir)
        check_real_size(spec, data)
        trainer = Trainer(spec, data)
    except (DatasetError, ValueError) as exc:
        return finish("failed", str(exc), None)
    except Exception as exc:  # e.g. out of memory while loading: the run says why
        return finish("failed", describe_failure(exc), traceback.format_exc())
    runs.mark_started(
        db,
        run_id,
        layers=[layer.to_dict() for layer in trainer.layer_infos],
        device=describe_device(),
        data_info=data_info(data),
        architecture=spec.model.describe(data.n_features, trainer.layer_infos[-1].units),
    )
    records.write_arrays(db, run_id, static_arrays(trainer, data))
    state = _resume_state(db, run_id, trainer) if resume else None
    recorder = Recorder(
        db,
        run_id,
        attempt=attempt,
        checkpoint_seconds=checkpoint_seconds,
        signature_dtype=spec.recording.signature_dtype,
    )
    deadline = None if time_limit_s is None else time.monotonic() + time_limit_s
    started = []  # the first epoch this attempt computed: a resume says where it picked up

    def on_chunk(chunk: Chunk) -> None:
        if not started and state is not None:
            started.append(chunk.epochs[0])
            events.info(
                "run %s resumed from its checkpoint at epoch %s: first epoch trained %s",
                run_id,
                state.epoch,
                chunk.epochs[0],
            )
        recorder.put(chunk)
        if on_progress:
            on_progress(chunk)
        if should_release and should_release():
            raise ReleaseJob
        if should_stop and should_stop():
            raise StopTraining
        if deadline is not None and time.monotonic() > deadline:
            raise TimeLimitReached(
                f"time limit of {time_limit_s:g} s reached at epoch "
                f"{chunk.epochs[-1]}; epochs so far are kept"
            )

    status, error, tb = train_outcome(trainer, on_chunk, state)
    try:
        recorder.close()  # the last chunks and a checkpoint of the last epoch
    except Exception as exc:
        if isinstance(exc.__cause__, jobs.LeaseLost):
            return "lost"
        status, error, tb = "failed", f"recording failed: {exc}", traceback.format_exc()
    if status == RELEASED:
        return RELEASED
    return finish(status, error, tb)


def train_outcome(
    trainer: Trainer, on_chunk: Callable[[Chunk], None], state: TrainState | None
) -> tuple[str, str | None, str | None]:
    """Train, and say how it ended: (status, error, traceback), as runs store them."""
    try:
        trainer.run(on_chunk, state)
    except Diverged as exc:
        return "diverged", str(exc), None
    except ReleaseJob:
        return RELEASED, None, None
    except StopTraining:
        return "cancelled", "cancelled by the user", None
    except TimeLimitReached as exc:
        return "failed", str(exc), None
    except Exception as exc:  # the run fails with the reason kept; the process goes on
        return "failed", describe_failure(exc), traceback.format_exc()
    return "succeeded", None, None


def describe_failure(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, MemoryError) or "Out of memory" in text or "RESOURCE_EXHAUSTED" in text:
        return (
            "out of memory: the model, batch or data do not fit in this worker's memory; "
            "lower training.batch_size, the layer widths, dataset.n_samples or "
            f"recording.probe_size ({type(exc).__name__}: {text[:200]})"
        )
    return f"{type(exc).__name__}: {text}"


def _finisher(db: Database, run_id: int, attempt: int | None):
    def finish(status: str, error: str | None, tb: str | None) -> str:
        if attempt is None:
            runs.finish_run(db, run_id, status, error if not tb else f"{error}\n\n{tb}")
            return status
        try:
            with_retry(jobs.finish, db, run_id, attempt, status, error, tb)
        except jobs.LeaseLost:
            return "lost"
        return status

    return finish
