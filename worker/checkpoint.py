"""TrainState <-> bytes: an .npz of the parameter and optimizer-state leaves (never pickle)."""

from __future__ import annotations

import io

import jax
import numpy as np

from netlens.worker.train import TrainState


def state_to_bytes(state: TrainState) -> bytes:
    leaves = jax.device_get(jax.tree.leaves((state.params, state.opt_state)))
    buffer = io.BytesIO()
    np.savez(
        buffer,
        epoch=np.int64(state.epoch),
        **{f"leaf_{i}": np.asarray(v) for i, v in enumerate(leaves)},
    )
    return buffer.getvalue()


def state_from_bytes(data: bytes, like: TrainState) -> TrainState:
    """Rebuild a state with the structure of `like` (a fresh initial state of the same spec)."""
    treedef = jax.tree.structure((like.params, like.opt_state))
    with np.load(io.BytesIO(data), allow_pickle=False) as f:
        leaves = [f[f"leaf_{i}"] for i in range(treedef.num_leaves) if f"leaf_{i}" in f.files]
        epoch = int(f["epoch"])
    if len(leaves) != treedef.num_leaves:
        raise ValueError("checkpoint does not match this run's model and optimizer")
    params, opt_state = jax.tree.unflatten(treedef, [jax.numpy.asarray(v) for v in leaves])
    return TrainState(epoch=epoch, params=params, opt_state=opt_state)
