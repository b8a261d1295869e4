"""Network output for each probe input over the epochs, against its expected value."""

from __future__ import annotations

import warnings

import numpy as np
import plotly.graph_objects as go

from netlens.webapp.figures.common import (
    OOD_COLOR,
    add_epoch_line,
    base_layout,
    class_color,
    downsample_indices,
    empty_figure,
    with_alpha,
)

OOD_NAME = "out of distribution"


def _class_positions(labels: np.ndarray, classes: list[int], is_ood) -> np.ndarray:
    """Each input's position in `classes` (its output index), -1 for out-of-distribution inputs."""
    lookup = {int(c): k for k, c in enumerate(classes)}
    pos = np.array([lookup.get(int(label), -1) for label in labels], dtype=int)
    if is_ood is not None:
        pos[np.asarray(is_ood, dtype=bool)] = -1
    return pos


def _plotted_values(outputs: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, bool]:
    """(E, P) values to plot and whether the output is binary.

    Binary (one sigmoid output, or two softmax outputs): P(second class). More classes:
    P(true class), and for out-of-distribution inputs the largest class probability.
    """
    if outputs.ndim == 2:
        return outputs, True
    if outputs.shape[2] <= 2:
        return outputs[:, :, outputs.shape[2] - 1], True
    true_class = outputs[:, np.arange(pos.size), np.maximum(pos, 0)]
    return np.where(pos[None, :] >= 0, true_class, outputs.max(axis=2)), False


def _group_style(group: int, names: list[str]) -> tuple[str, str]:
    """(legend name, colour) of a class position, -1 meaning out of distribution."""
    if group < 0:
        return OOD_NAME, OOD_COLOR
    return names[group], class_color(group)


def _add_targets(fig: go.Figure, x: np.ndarray, groups, names, binary: bool) -> None:
    """Dotted target lines: 0/1 per class for binary outputs, one line at 1 otherwise."""
    span = [x[0], x[-1]]
    if not binary:
        fig.add_trace(
            go.Scatter(
                x=span,
                y=[1, 1],
                mode="lines",
                name="target (true class)",
                line={"color": "#222222", "dash": "dot", "width": 1.5},
            )
        )
        return
    for g in groups:
        if g >= 0:
            name, color = _group_style(g, names)
            fig.add_trace(
                go.Scatter(
                    x=span,
                    y=[g, g],
                    mode="lines",
                    name=f"target {name}",
                    legendgroup=name,
                    showlegend=False,
                    hoverinfo="skip",
                    line={"color": color, "dash": "dot", "width": 2},
                )
            )


def _add_lines(fig: go.Figure, x, values, pos, names) -> None:
    """One line per probe input coloured by its class (legend entry once per class)."""
    seen = set()
    for p in range(values.shape[1]):
        name, color = _group_style(pos[p], names)
        fig.add_trace(
            go.Scatter(
                x=x,
                y=values[:, p],
                mode="lines",
                name=name,
                legendgroup=name,
                showlegend=name not in seen,
                line={"color": color, "width": 1.5},
                hovertemplate=f"input #{p} ({name})<br>epoch %{{x}}<br>%{{y:.3f}}<extra></extra>",
            )
        )
        seen.add(name)


def _add_bands(fig: go.Figure, x, values, pos, groups, names) -> None:
    """Per class: the mean output and a filled band between the 10th and 90th percentiles."""
    for g in groups:
        name, color = _group_style(g, names)
        members = values[:, pos == g]
        with warnings.catch_warnings():  # epochs where every output is NaN stay gaps
            warnings.simplefilter("ignore", RuntimeWarning)
            low, high = np.nanpercentile(members, [10, 90], axis=1)
            mean = np.nanmean(members, axis=1)
        fig.add_trace(
            go.Scatter(
                x=x,
                y=high,
                mode="lines",
                line={"width": 0},
                legendgroup=name,
                showlegend=False,
                hoverinfo="skip",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=low,
                mode="lines",
                line={"width": 0},
                fill="tonexty",
                fillcolor=with_alpha(color, 0.2),
                legendgroup=name,
                showlegend=False,
                hoverinfo="skip",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=mean,
                mode="lines",
                legendgroup=name,
                name=f"{name} (n={members.shape[1]})",
                line={"color": color, "width": 2.5},
                hovertemplate=f"{name} mean<br>epoch %{{x}}<br>%{{y:.3f}}<extra></extra>",
            )
        )


def build_probe_outputs(
    epochs,
    outputs: np.ndarray,
    labels: np.ndarray,
    classes: list[int],
    *,
    class_names: list[str] | None = None,
    is_ood: np.ndarray | None = None,
    current_epoch=None,
    max_inputs: int = 12,
    max_points: int = 1000,
    note: str | None = None,
) -> go.Figure:
    """Each probe input's network output over the epochs against its target (0/1 or 1).
    `note` (e.g. how logits were turned into probabilities) is shown under the title."""
    epochs = np.asarray(epochs).reshape(-1)
    outputs = np.asarray(outputs, dtype=float)
    if epochs.size == 0 or outputs.size == 0 or outputs.ndim not in (2, 3):
        return empty_figure("No network outputs recorded for the probe inputs")
    names = list(class_names) if class_names is not None else [f"class {c}" for c in classes]
    pos = _class_positions(np.asarray(labels).reshape(-1), list(classes), is_ood)
    values, binary = _plotted_values(outputs, pos)
    idx = downsample_indices(epochs.size, max_points)
    x, values = epochs[idx], values[idx]
    groups = sorted(set(pos.tolist()), key=lambda g: (g < 0, g))
    fig = go.Figure()
    _add_targets(fig, x, groups, names, binary)
    title = "Network output for each probe input"
    if values.shape[1] > max_inputs:
        _add_bands(fig, x, values, pos, groups, names)
        title = f"Network output: mean and 10–90 % band per class ({values.shape[1]} inputs)"
    else:
        _add_lines(fig, x, values, pos, names)
    second = names[1] if len(names) > 1 else "class 1"
    y_title = f"P({second})" if binary else "P(true class)"
    if not binary and (pos < 0).any():
        y_title += " · OOD: largest P"
    if note:
        title += f" · {note}"
    base_layout(fig, title, "epoch", y_title)
    fig.update_yaxes(range=[-0.05, 1.05])
    return add_epoch_line(fig, current_epoch)


LOGITS_NOTE = "raw outputs read as logits: shown after a {}"


def as_probabilities(values: np.ndarray, tolerance: float = 1e-3) -> tuple[np.ndarray, str | None]:
    """Recorded outputs (..., K) as probabilities, and a note saying how when they were not.

    NetLens' own runs record probabilities (sigmoid or softmax); a user's model often returns
    logits. Values outside [0, 1], or K > 1 rows that do not sum to 1, are read as logits and
    passed through a sigmoid (K == 1) or a softmax (K > 1); the note says which."""
    values = np.asarray(values, dtype=float)
    finite = values[np.isfinite(values)]
    if not finite.size:
        return values, None
    outside = finite.min() < -tolerance or finite.max() > 1 + tolerance
    k = values.shape[-1] if values.ndim else 1
    if not outside and k > 1:
        sums = np.sum(values, axis=-1)
        sums = sums[np.isfinite(sums)]
        outside = bool(sums.size) and bool(np.any(np.abs(sums - 1) > 1e-2))
    if not outside:
        return values, None
    if k == 1:
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(-values)), LOGITS_NOTE.format("sigmoid")
    shifted = values - np.nanmax(values, axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=-1, keepdims=True), LOGITS_NOTE.format("softmax")


def predicted_classes(outputs: np.ndarray, classes) -> np.ndarray:
    """Each probe input's predicted class from (P, K) outputs, probabilities or logits."""
    probs, _ = as_probabilities(np.asarray(outputs, dtype=float).reshape(len(outputs), -1))
    classes = np.asarray(classes)
    if probs.shape[1] == 1:
        index = (probs[:, 0] > 0.5).astype(int)
    else:
        index = np.nan_to_num(probs, nan=-1.0).argmax(1)
    return classes[np.clip(index, 0, len(classes) - 1)]
