"""Statements about one recorded run, each computed from its arrays (never written in advance).

Every function takes plain numpy arrays as the run recorded them (metrics per epoch, parameters,
probe signatures) and returns a Fact: the sentence a lesson shows, whether the run did what the
lesson expects (`ok`; when not, the sentence says so and what to change), and the numbers behind
the sentence, so that a test can check each one against the arrays. Pure numpy: no storage, no
Dash, no JAX.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

ALWAYS_FROM = "and stays there"
# Pre-activation threshold of each activation: a unit's "line" is where its input crosses it.
SETTLE_TOLERANCE = 0.1  # an output "has learned" its target once within this distance of it


@dataclass(frozen=True)
class Fact:
    text: str
    ok: bool = True  # the run shows what the lesson expects
    numbers: dict[str, Any] = field(default_factory=dict)


def first_epoch_from_which(epochs: np.ndarray, holds: np.ndarray) -> int | None:
    """The first recorded epoch from which `holds` is true at every later recorded epoch, or
    None when it is false at the last one. `holds`: one bool per recorded epoch."""
    holds = np.asarray(holds, bool)
    if not len(holds) or not holds[-1]:
        return None
    failing = np.flatnonzero(~holds)
    start = 0 if not len(failing) else int(failing[-1]) + 1
    return int(epochs[start])


def point_name(x: np.ndarray) -> str:
    """'(0, 1)': a 2-D probe input as the lessons write it."""
    return "(" + ", ".join(f"{v:g}" for v in np.asarray(x, float).ravel()) + ")"


def pct(value: float) -> str:
    return f"{100 * value:.0f} %"


# ---- curves ---------------------------------------------------------------------------------


def accuracy_reached(epochs: np.ndarray, accuracy: np.ndarray, target: float = 1.0) -> Fact:
    """'accuracy reaches 100 % at epoch N': the first epoch from which train accuracy stays at
    (or above) `target` until the last recorded epoch."""
    epochs, accuracy = np.asarray(epochs), np.asarray(accuracy, float)
    at = first_epoch_from_which(epochs, accuracy >= target - 1e-6)
    last, best = float(accuracy[-1]), float(np.max(accuracy))
    numbers = {"epoch": at, "last": last, "best": best, "last_epoch": int(epochs[-1])}
    if at is not None:
        return Fact(
            f"Training accuracy reaches {pct(target)} at epoch {at} {ALWAYS_FROM}.", True, numbers
        )
    return Fact(
        f"Training accuracy does not stay at {pct(target)}: it ends at {pct(last)} at epoch "
        f"{int(epochs[-1])} (best {pct(best)}). This run has not learned; try another seed, a "
        "higher learning rate, more hidden units or more epochs.",
        False,
        numbers,
    )


def loss_fall(epochs: np.ndarray, loss: np.ndarray) -> Fact:
    """The error at the first and last recorded epochs, and by how much it fell."""
    loss = np.asarray(loss, float)
    first, last = float(loss[0]), float(loss[-1])
    ratio = first / last if last > 0 else float("inf")
    numbers = {
        "first": first,
        "last": last,
        "first_epoch": int(epochs[0]),
        "last_epoch": int(epochs[-1]),
    }
    if last < first:
        return Fact(
            f"The error (cross-entropy) falls from {first:.3g} at epoch {int(epochs[0])} to "
            f"{last:.3g} at epoch {int(epochs[-1])}, {ratio:,.0f} times smaller.",
            True,
            numbers | {"ratio": ratio},
        )
    return Fact(
        f"The error does not fall: {first:.3g} at epoch {int(epochs[0])}, {last:.3g} at epoch "
        f"{int(epochs[-1])}. Try a smaller learning rate.",
        False,
        numbers,
    )


def best_accuracy_of_single_neuron(epochs: np.ndarray, accuracy: np.ndarray, n_points: int) -> Fact:
    """A network without hidden layer draws one line: on XOR it gets at most 3 of 4 right."""
    accuracy = np.asarray(accuracy, float)
    best = float(np.max(accuracy))
    right = int(round(best * n_points))
    numbers = {
        "best": best,
        "right": right,
        "n": n_points,
        "epoch": int(epochs[int(np.argmax(accuracy))]),
    }
    if best < 1.0:
        return Fact(
            f"The single neuron never gets all {n_points} points right: at best {right} of "
            f"{n_points} ({pct(best)}, first at epoch {numbers['epoch']}). One line cannot put "
            "(0, 1) and (1, 0) on one side and (0, 0) and (1, 1) on the other.",
            True,
            numbers,
        )
    return Fact(
        f"The single neuron got all {n_points} points right (epoch {numbers['epoch']}): this "
        "data is not XOR as the lesson expects.",
        False,
        numbers,
    )


# ---- outputs against targets ----------------------------------------------------------------


def outputs_settled(
    epochs: np.ndarray,
    outputs: np.ndarray,
    targets: np.ndarray,
    x: np.ndarray,
    tolerance: float = SETTLE_TOLERANCE,
) -> Fact:
    """'Has it learned?': the first epoch from which every output stays within `tolerance` of its
    target (the master's report reads it off the outputs' curves). outputs: (E, P)."""
    outputs = np.asarray(outputs, float).reshape(len(epochs), -1)
    targets = np.asarray(targets, float)
    distance = np.abs(outputs - targets[None, :])
    at = first_epoch_from_which(epochs, np.all(distance <= tolerance, axis=1))
    worst = int(np.argmax(distance[-1]))
    numbers = {
        "epoch": at,
        "tolerance": tolerance,
        "worst": worst,
        "worst_value": float(outputs[-1, worst]),
    }
    if at is not None:
        return Fact(
            f"All {len(targets)} outputs are within {tolerance:g} of their targets from epoch {at} "
            f"and stay there: by the report's criterion, the network has learned at epoch {at}.",
            True,
            numbers,
        )
    return Fact(
        f"At the last epoch ({int(epochs[-1])}) the output for {point_name(x[worst])} is "
        f"{outputs[-1, worst]:.2f}, target {targets[worst]:g}: the outputs have not settled. "
        "Train for more epochs, or retrain with a higher learning rate or another seed.",
        False,
        numbers,
    )


# ---- hidden units and their lines -----------------------------------------------------------


def pre_activations(kernel: np.ndarray, bias: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """z = inputs @ W + b per epoch: kernel (E, in, units), bias (E, units), inputs (E, P, in)
    or (P, in); returns (E, P, units). Its sign says on which side of the unit's line (the
    hyperplane W.x + b = 0) each input lies, whatever the activation."""
    inputs = np.asarray(inputs, float)
    if inputs.ndim == 2:
        inputs = np.broadcast_to(inputs, (len(kernel), *inputs.shape))
    return (
        np.einsum("epi,eiu->epu", inputs, np.asarray(kernel, float)) + np.asarray(bias)[:, None, :]
    )


def side_split(z: np.ndarray) -> np.ndarray:
    """(E, P) bool: which side of its line each input is on (canonical: input 0 is False)."""
    side = np.asarray(z) > 0
    return side ^ side[:, :1]


def separates_classes(side: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(E,) bool: the unit's line has all of one class on one side and the other class on the
    other."""
    y = np.asarray(y).astype(bool)
    return np.all(side == y[None, :], axis=1) | np.all(side == ~y[None, :], axis=1)


def unit_lines(
    epochs: np.ndarray, z: np.ndarray, y: np.ndarray, x: np.ndarray, layer: str
) -> list[Fact]:
    """One fact per unit of a layer (counted from 0, as the run page and its neuron maps do): the split of the probe inputs its line makes at the last
    epoch and since when it has made it, and whether that split separates the two classes.
    z: (E, P, units) pre-activations."""
    facts = []
    for k in range(z.shape[2]):
        side = side_split(z[:, :, k])
        final = side[-1]
        since = first_epoch_from_which(epochs, np.all(side == final[None, :], axis=1))
        alone = [point_name(x[i]) for i in np.flatnonzero(final)]
        rest = [point_name(x[i]) for i in np.flatnonzero(~final)]
        separating = first_epoch_from_which(epochs, separates_classes(side, y))
        numbers = {
            "unit": k,
            "since": since,
            "separates_from": separating,
            "split": final.tolist(),
        }
        if not alone:
            text = f"{layer} unit {k} has all {len(rest)} inputs on one side of its line."
        else:
            small, big = (alone, rest) if len(alone) <= len(rest) else (rest, alone)
            text = (
                f"{layer} unit {k} puts {', '.join(small)} on one side of its line and "
                f"{', '.join(big)} on the other, from epoch {since}."
            )
        if separating is not None:
            text += f" That split separates the two classes, from epoch {separating}."
        facts.append(Fact(text, True, numbers))
    return facts


def no_unit_separates(epochs: np.ndarray, z: np.ndarray, y: np.ndarray, layer: str) -> Fact:
    """Whether any unit of a layer separates the two classes on its own at the last epoch."""
    alone = [k for k in range(z.shape[2]) if separates_classes(side_split(z[-1:, :, k]), y)[0]]
    numbers = {"units": alone}
    if not alone:
        return Fact(
            f"No unit of {layer} separates the two classes on its own at epoch "
            f"{int(epochs[-1])}: each draws one line, and XOR needs two. The next layer "
            "combines them.",
            True,
            numbers,
        )
    names = ", ".join(str(k) for k in alone)
    return Fact(f"{layer} unit(s) {names} separate the two classes on their own.", True, numbers)


def biggest_movers(params_first: dict[str, np.ndarray], params_last: dict[str, np.ndarray]) -> Fact:
    """Mean absolute change of biases against weights between two epochs (the report found the
    biases move most)."""

    def moved(kind: str) -> float:
        parts = [
            np.abs(params_last[n] - params_first[n]).ravel()
            for n in params_first
            if n.endswith(kind)
        ]
        return float(np.mean(np.concatenate(parts))) if parts else 0.0

    bias, kernel = moved("/bias"), moved("/kernel")
    numbers = {"bias": bias, "kernel": kernel}
    more, less = ("biases", "weights") if bias > kernel else ("weights", "biases")
    return Fact(
        f"On average each of the {more} moved {max(bias, kernel):.2f} from its initial value, "
        f"each of the {less} {min(bias, kernel):.2f}.",
        True,
        numbers,
    )
