"""Record your own Flax NNX model, trained by your own loop, with nl.Recorder.

    python examples/own_flax_model.py          # a few seconds on a laptop CPU

A small CNN with a residual block learns to tell three kinds of 8x8 images apart (horizontal
bars, vertical bars, a centred blob) with a plain optax loop. The Recorder records, at every
epoch, every parameter and what each module returned on 60 probe images; then the script
reads the run back (nl.get) and prints where to see it (`netlens serve`, then run.url).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import netlens as nl


def images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n noisy 8x8 images of 3 classes: 0 horizontal bar, 1 vertical bar, 2 centred blob."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(0.0, 0.3, (n, 8, 8, 1)).astype(np.float32)
    for i, label in enumerate(y):
        k = rng.integers(1, 7)
        if label == 0:
            x[i, k, :, 0] += 1.5
        elif label == 1:
            x[i, :, k, 0] += 1.5
        else:
            x[i, 2:6, 2:6, 0] += 1.0
    return x, y


class Residual(nnx.Module):
    def __init__(self, channels: int, rngs: nnx.Rngs):
        self.conv1 = nnx.Conv(channels, channels, (3, 3), rngs=rngs)
        self.conv2 = nnx.Conv(channels, channels, (3, 3), rngs=rngs)

    def __call__(self, x):
        return nnx.relu(x + self.conv2(nnx.relu(self.conv1(x))))


class SmallCNN(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.stem = nnx.Conv(1, 8, (3, 3), rngs=rngs)
        self.block = Residual(8, rngs)
        self.head = nnx.Linear(8, 3, rngs=rngs)

    def __call__(self, x):
        x = self.block(nnx.relu(self.stem(x)))
        return self.head(x.mean(axis=(1, 2)))  # global average pooling, then logits


def main(epochs: int = 30) -> int:
    x, y = images(600, seed=0)
    x_probe, y_probe = images(60, seed=1)
    model = SmallCNN(nnx.Rngs(0))
    tx = optax.adam(3e-3)
    graphdef, params = nnx.split(model, nnx.Param)  # the loop keeps the parameters itself
    opt_state = tx.init(params)

    @jax.jit
    def step(params, opt_state, xb, yb):
        def loss_fn(p):
            logits = nnx.merge(graphdef, p)(xb)
            return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean(), logits

        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        accuracy = jnp.mean(jnp.argmax(logits, -1) == yb)
        return optax.apply_updates(params, updates), opt_state, loss, accuracy

    rec = nl.Recorder(
        model,
        probe=x_probe,
        probe_labels=y_probe,
        name="own-flax-cnn",
        tags=["example"],
        epochs=epochs,
        config={"optimizer": "adam", "learning_rate": 3e-3, "batch_size": 60},
    )
    with rec:
        rec.log(0, params=params)  # the initial parameters
        for epoch in range(1, epochs + 1):
            order = np.random.default_rng(epoch).permutation(len(x))
            losses, accuracies = [], []
            for batch in np.array_split(order, 10):
                params, opt_state, loss, accuracy = step(params, opt_state, x[batch], y[batch])
                losses.append(loss)
                accuracies.append(accuracy)
            rec.log(
                epoch,
                params=params,
                loss=float(np.mean(losses)),
                accuracy=float(np.mean(accuracies)),
            )

    run = nl.get(rec.run.id)
    metrics = run.metrics()  # a DataFrame with pandas installed, else a dict of arrays
    loss, accuracy = np.asarray(metrics["loss"])[-1], np.asarray(metrics["accuracy"])[-1]
    print(f"run {run.id}: {run.info.epochs_recorded} epochs recorded, modules {rec.layers}")
    print(f"last epoch: loss {loss:.3f}, accuracy {accuracy:.2f}")
    print(f"head kernel over the epochs: {run.tensor('params/head/kernel').shape}")
    print(f"see it: netlens serve, then {run.url}")
    print(run.id)
    return run.id


if __name__ == "__main__":
    main()
