"""Statements about the larger lessons' runs: the two-regions bottleneck, the digits signatures
and several runs compared. Pure numpy on recorded arrays, like facts.py."""

from __future__ import annotations

import numpy as np

from netlens.webapp.learn.facts import Fact, first_epoch_from_which, pct

GROUP_TARGET = 0.9  # a group counts as isolated once this share of it is classified right
SEPARABLE = 0.95  # a layer "tells the classes apart" from this nearest-centroid accuracy


def predicted(outputs: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Predicted classes from recorded outputs (…, 1) sigmoid or (…, C) softmax."""
    outputs = np.asarray(outputs, float)
    classes = np.asarray(classes)
    if outputs.shape[-1] == 1:
        return classes[(outputs[..., 0] > 0.5).astype(int)]
    return classes[np.argmax(outputs, axis=-1)]


# ---- bottleneck (two regions) ---------------------------------------------------------------


def region_groups(x: np.ndarray, y: np.ndarray, centres) -> np.ndarray:
    """Index of the nearest centre for each positive input, -1 for the others."""
    x = np.asarray(x, float)
    d = np.stack([np.hypot(x[:, 0] - cx, x[:, 1] - cy) for cx, cy in centres], axis=1)
    return np.where(np.asarray(y) == 1, np.argmin(d, axis=1), -1)


def groups_isolated(
    epochs: np.ndarray, outputs: np.ndarray, x: np.ndarray, y: np.ndarray, centres, classes
) -> list[Fact]:
    """For each region: the first epoch from which >= GROUP_TARGET of its inputs are classified
    right, and which region the network got first. outputs: (E, P, out)."""
    groups = region_groups(x, y, centres)
    right = predicted(outputs, classes) == np.asarray(y)[None, :]
    facts, since = [], []
    for g, centre in enumerate(centres):
        members = groups == g
        share = right[:, members].mean(axis=1) if members.any() else np.zeros(len(epochs))
        at = first_epoch_from_which(epochs, share >= GROUP_TARGET)
        since.append(at)
        where = f"({centre[0]:g}, {centre[1]:g})"
        numbers = {"group": g, "epoch": at, "share": float(share[-1]), "n": int(members.sum())}
        if at is None:
            facts.append(
                Fact(
                    f"The region around {where} is not learned: {pct(share[-1])} of its "
                    f"{int(members.sum())} probe inputs are right at the last epoch. Train longer, "
                    "or retrain with another seed.",
                    False,
                    numbers,
                )
            )
        else:
            facts.append(
                Fact(
                    f"The region around {where}: at least {pct(GROUP_TARGET)} of its "
                    f"{int(members.sum())} probe inputs are classified right from epoch {at} "
                    f"({pct(share[-1])} at the end).",
                    True,
                    numbers,
                )
            )
    if all(s is not None for s in since) and since[0] != since[1]:
        first = int(np.argmin(since))
        c = centres[first]
        facts.append(
            Fact(
                f"The network isolates the region around ({c[0]:g}, {c[1]:g}) first.",
                True,
                {"first": first},
            )
        )
    return facts


def collapsed_inputs(codes: np.ndarray, layer: str) -> Fact:
    """How many probe inputs the 2-unit layer maps to exactly (0, 0) (ReLU cuts them off):
    they can no longer be told apart. codes: (P, 2) at one epoch."""
    zero = np.all(np.abs(np.asarray(codes)) <= 1e-7, axis=1)
    n = int(zero.sum())
    return Fact(
        f"{n} of {len(zero)} probe inputs sit exactly at (0, 0) in {layer}: the network cannot "
        "tell those apart any more.",
        True,
        {"n": n, "of": len(zero)},
    )


# ---- signatures (digits 1 vs 7, unseen 3s and 4s) -------------------------------------------


def centroid_accuracy(values: np.ndarray, y: np.ndarray) -> float:
    """Share of inputs closer to their own class's mean signature than to any other's."""
    values, y = np.asarray(values, float).reshape(len(y), -1), np.asarray(y)
    labels = np.unique(y)
    means = np.stack([values[y == c].mean(axis=0) for c in labels])
    nearest = labels[np.argmin(((values[:, None, :] - means[None]) ** 2).sum(-1), axis=1)]
    return float(np.mean(nearest == y))


def first_separating_layer(
    layers: dict[str, np.ndarray], y: np.ndarray, is_ood: np.ndarray
) -> Fact:
    """From which layer the trained classes are told apart: nearest-centroid accuracy of the
    in-distribution probe inputs per layer (forward order)."""
    keep = ~np.asarray(is_ood, bool)
    scores = {name: centroid_accuracy(v[keep], np.asarray(y)[keep]) for name, v in layers.items()}
    first = next((n for n, s in scores.items() if s >= SEPARABLE), None)
    listed = ", ".join(f"{n} {pct(s)}" for n, s in scores.items())
    if first is None:
        return Fact(
            f"No layer tells the classes apart yet (nearest class mean: {listed}). Train longer.",
            False,
            {"scores": scores, "first": None},
        )
    return Fact(
        f"The classes are told apart from {first} on: an input is closer to its own class's "
        f"mean signature than to the other's for {listed}.",
        True,
        {"scores": scores, "first": first},
    )


def confused_inputs(pred: np.ndarray, y: np.ndarray, is_ood: np.ndarray, names: dict) -> Fact:
    """How many trained inputs the network gets wrong, by true class."""
    keep = ~np.asarray(is_ood, bool)
    wrong = {int(c): int(np.sum((pred != y) & keep & (y == c))) for c in np.unique(y[keep])}
    total = {int(c): int(np.sum(keep & (y == c))) for c in wrong}
    parts = [f"{wrong[c]} of {total[c]} {names.get(c, c)}s" for c in wrong]
    return Fact(
        "Wrongly classified at this epoch: " + ", ".join(parts) + ".",
        True,
        {"wrong": wrong, "total": total},
    )


def unseen_destinations(
    pred: np.ndarray, y: np.ndarray, is_ood: np.ndarray, names: dict
) -> list[Fact]:
    """Where the inputs of each class never trained on land: the network's prediction for
    them, counted ('the 3s land mostly in the 7 class (21 of 36)')."""
    facts = []
    ood = np.asarray(is_ood, bool)
    for c in np.unique(np.asarray(y)[ood]):
        mine = ood & (y == c)
        landed, counts = np.unique(pred[mine], return_counts=True)
        order = np.argsort(-counts)
        top = landed[order[0]]
        text = (
            f"The {names.get(int(c), c)}s (never seen in training) land mostly in the "
            f"{names.get(int(top), top)} class ({int(counts[order[0]])} of {int(mine.sum())})"
        )
        if len(order) > 1:
            text += ", the rest in " + ", ".join(
                f"{names.get(int(landed[i]), landed[i])} ({int(counts[i])})" for i in order[1:]
            )
        facts.append(
            Fact(
                text + ".",
                True,
                {
                    "class": int(c),
                    "top": int(top),
                    "count": int(counts[order[0]]),
                    "of": int(mine.sum()),
                },
            )
        )
    return facts


# ---- comparing runs -------------------------------------------------------------------------


def fastest_learner(results: dict[str, int | None]) -> Fact:
    """results: run label -> epoch from which it stays at 100 % (None: never)."""
    learned = {k: v for k, v in results.items() if v is not None}
    failed = [k for k, v in results.items() if v is None]
    numbers = {"learned": learned, "failed": failed}
    if not learned:
        return Fact(
            "None of these runs learned: raise the learning rate, add hidden units or train longer.",
            False,
            numbers,
        )
    best = min(learned, key=learned.get)
    worst = max(learned, key=learned.get)
    if learned[best] == learned[worst]:
        text = f"{' and '.join(learned)} all reach 100 % at epoch {learned[best]}."
    else:
        text = (
            f"{best} learns first (epoch {learned[best]}), {worst} last (epoch {learned[worst]})."
        )
    if failed:
        text += f" {', '.join(failed)} did not learn: the same network, another start."
    return Fact(text, True, numbers)
