"""One line above every view of the run, signatures and compare pages: what it shows, what to
look for, its words explained on hover (webapp/glossary.py) and the lesson that teaches it.

The texts live here, together, so that they read alike and a test can check every one of them
(each {word} is in the glossary, each lesson exists) whatever run a page happens to show. In a
text, `{key}` shows a glossary word as itself and `{key|shown text}` under another form
("{weight|weights}").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import dash_bootstrap_components as dbc
from dash import html

from netlens.storage.catalog import SATURATED_SHARE
from netlens.webapp.glossary import lesson_link, term

MARKUP = re.compile(r"\{([a-z0-9 -]+)(?:\|([^}]+))?\}")


@dataclass(frozen=True)
class Caption:
    shows: str  # what the view draws
    look_for: str  # what a beginner should watch for in it
    lesson: str  # the slug of the /learn page that explains it


CAPTIONS: dict[tuple[str, ...], Caption] = {
    # ---- run page (webapp/views/run.py tabs); a third key part is a variant of the view
    ("run", "curves"): Caption(
        "How wrong ({loss}) and how often right ({accuracy}) the network is after each "
        "{epoch}, on training and {validation} inputs.",
        "the loss falling then flattening; a validation curve pulling away from the training "
        "one is {overfitting}.",
        "xor",
    ),
    ("run", "curves", "recorder"): Caption(
        "The metrics your training loop logged, after each {epoch}: {loss} on the left, "
        "{accuracy} and the others on the right.",
        "the loss falling then flattening; a {validation} curve pulling away from the "
        "training one is {overfitting}.",
        "xor",
    ),
    ("run", "params"): Caption(
        "Each {weight} and the {bias} of one {neuron} of the chosen {layer}, epoch by epoch "
        "(left), and how all the layer's weights are spread (right).",
        "which values still move and when they settle; the biases often move most.",
        "xor",
    ),
    ("run", "params", "cnn"): Caption(
        "Each {weight} and the {bias} of one {neuron} of the chosen {layer}, epoch by epoch "
        "(left; a {convolution} filter has 3×3 weights per input channel), and how all the "
        "layer's weights are spread (right).",
        "which values still move and when they settle.",
        "xor",
    ),
    ("run", "outputs"): Caption(
        "The network's answer for each {probe input} over the epochs, against the "
        "{class} it should give.",
        "the epoch where every answer settles on the right side: the network has learned.",
        "xor",
    ),
    ("run", "outputs", "recorder"): Caption(
        "Your model's answer for each {probe input} over the epochs (its {logits} turned into "
        "probabilities), against the {class} it should give.",
        "the epoch where every answer settles on the right side: the network has learned.",
        "xor",
    ),
    ("run", "network"): Caption(
        "Every {neuron} as a node, every {weight} as a line (thicker: stronger; colour: its "
        "sign); nodes coloured by their {bias} or by their {activation} for one {probe input}.",
        "the strong paths from inputs to output, and neurons that never light up.",
        "xor",
    ),
    ("run", "network", "modules"): Caption(
        "Your model's {module|modules} in the order they were called, each coloured by the "
        "{weight norm} of its weights.",
        "modules whose weights keep growing or shrinking while the slider moves.",
        "xor",
    ),
    ("run", "network", "cnn"): Caption(
        "The network drawn {neuron} by neuron, {weight|weights} as lines: this view draws dense "
        "layers only, so a run with a {convolution} shows a note instead.",
        "the Parameters and Activations tabs, which show its convolutions.",
        "xor",
    ),
    ("run", "network3d"): Caption(
        "The same network in 3-D, one {layer} behind the other, {weight|weights} as lines; drag "
        "to turn it.",
        "how the connections thicken between layers as the epochs pass.",
        "deeper",
    ),
    ("run", "network3d", "modules"): Caption(
        "Your model's {module|modules} in 3-D, in the order they were called, coloured by the "
        "{weight norm} of their weights; drag to turn it.",
        "modules whose weights keep growing or shrinking while the slider moves.",
        "deeper",
    ),
    ("run", "network3d", "cnn"): Caption(
        "The network in 3-D, {neuron} by neuron: dense layers only, so a run with a "
        "{convolution} shows a note instead.",
        "the Parameters and Activations tabs, which show its convolutions.",
        "deeper",
    ),
    ("run", "activations"): Caption(
        "How strongly the neurons of one {layer} fire ({activation}) on the {probe input|probe "
        "inputs}, epoch by epoch, and the share of {dead unit|dead} or {saturated unit|"
        "saturated} units.",
        "a layer going silent (dead {relu} units) or stuck at its limits ({tanh}, {sigmoid}).",
        "deeper",
    ),
    ("run", "activations", "recorder"): Caption(
        "How strongly one {module} fires ({activation}) on the {probe input|probe inputs}, epoch "
        "by epoch, computed from what it returned, with its {dead unit|dead} or {saturated unit|"
        "saturated} units.",
        "a module going silent or stuck at its limits.",
        "deeper",
    ),
    ("run", "gradients"): Caption(
        "How large each {layer}'s {gradient} is at each {epoch}: how hard training pushes on "
        "its {weight|weights} (the mean over the epoch's batches; in an epoch of more than 32, "
        "over about 32 evenly spaced ones).",
        "norms shrinking towards zero in the first layers (they stop learning) or shooting up "
        "(a {learning rate} too large).",
        "deeper",
    ),
    ("run", "gradients", "recorder"): Caption(
        "How large each {module}'s {gradient} is at each {epoch}, when your loop logs it (as "
        "grad_norm/<module>).",
        "norms shrinking towards zero (the module stops learning) or shooting up.",
        "deeper",
    ),
    ("run", "boundary"): Caption(
        "Which {class} the network gives to every point of the plane, with the "
        "{probe input|probe inputs} on top and the {decision boundary} between the colours.",
        "the boundary bending around the groups of points as the epochs pass.",
        "xor",
    ),
    ("run", "neurons"): Caption(
        "Each hidden {neuron}'s {activation} over the whole input plane, one small map per "
        "neuron, at the grid epoch at or before the slider's: the line or region each neuron "
        "has learned to answer.",
        "how the first layer's maps are straight edges and the next layers combine them "
        "into the shapes the {decision boundary} follows.",
        "xor",
    ),
    ("run", "representation"): Caption(
        "Where each {probe input} lands in one {hidden layer}: its {hidden representation}, "
        "drawn directly for 2 units, by {pca} for more.",
        "the classes pulling apart; once they separate, the last layer can split them.",
        "bottleneck",
    ),
    # ---- signatures page (webapp/pages/signatures.py tabs)
    ("signatures", "separability"): Caption(
        "How easily the classes can be told apart from each layer's {signature|signatures} "
        "({linear probe} accuracy or {silhouette}): by layer at this epoch, and over the epochs.",
        "the first layer where the score jumps: from there on the network keeps the classes apart.",
        "signatures",
    ),
    ("signatures", "clusters"): Caption(
        "{k-means} groups of the layer's {signature|signatures}, K chosen by the best "
        "{silhouette} (left), and which classes fall in each {cluster} (right).",
        "clusters holding one class each, and inputs that sit with another class.",
        "signatures",
    ),
    ("signatures", "flow"): Caption(
        "How the {probe input|probe inputs} travel between the {cluster|clusters} of one layer "
        "and the next (a {sankey} diagram); click a band to see its inputs.",
        "classes splitting into streams of their own, and the layer where they do.",
        "signatures",
    ),
    ("signatures", "projections"): Caption(
        "Every {probe input}'s {signature} at the chosen layer, flattened to 2-D by a "
        "{projection} ({pca}, {t-sne} or {umap}); hover a point to see the input.",
        "one island per class, and where the {unseen class|unseen classes} land.",
        "signatures",
    ),
    ("signatures", "classes"): Caption(
        "Each {class}'s average {signature} (left), how far apart the class {centroid|"
        "centroids} are (right), and each class's most typical and atypical inputs.",
        "units that fire for one class only, and atypical inputs that resemble another class.",
        "signatures",
    ),
    ("signatures", "ood"): Caption(
        "Where the inputs of each {unseen class} land: in which {cluster|clusters}, how far from "
        "the trained classes, and what the network takes them for.",
        "a {distance ratio} above 1 (they land apart) next to a confident prediction: the "
        "network is sure, and wrong.",
        "signatures",
    ),
    ("signatures", "compare"): Caption(
        "Two {probe input|probe inputs}' {signature|signatures}, layer by layer, with their "
        "distance and {cosine similarity}.",
        "the layer where two inputs of different classes stop looking alike.",
        "signatures",
    ),
    # ---- compare page (webapp/pages/compare.py, webapp/views/compare.py tabs)
    ("compare", "curves"): Caption(
        "The {loss} and {accuracy} of every run after each {epoch}, on the same axes; grouped "
        "by a spec field (the {seed}, say), each group's mean in a ±1 std band.",
        "which run learns faster and which ends lower; a gap between the runs' {validation} "
        "curves is what their different settings did.",
        "compare",
    ),
    ("compare", "side"): Caption(
        "The same inside view of 2 to 4 runs at one {epoch}: network graph, "
        "{decision boundary} or {hidden representation}.",
        "runs that reach the same answer in different ways (another {seed}, another shape).",
        "compare",
    ),
    ("compare", "cka"): Caption(
        "How alike the layers of two runs respond to the same {probe input|probe inputs} "
        "({cka}: 1 the same up to a rotation and a scale, near 0 unrelated; a layer against "
        "itself in one run is 1).",
        "a bright diagonal: the two runs learned the same steps in the same order.",
        "compare",
    ),
    ("compare", "distance"): Caption(
        "How far each run's {weight|weights} have moved from their {initial weights|initial "
        "values}, epoch by epoch (‖θ − θ₀‖).",
        "the epoch where a curve flattens: that run has stopped changing.",
        "compare",
    ),
    ("compare", "weights"): Caption(
        "How the chosen {layer}'s {weight|weights}, or its {activation|activations} on the "
        "{probe input|probe inputs}, are spread in each run at this {epoch}.",
        "spreads that differ: another {learning rate} or {seed} can leave very different weights; "
        "activations piled up at 0 or at the ends of their range mean neurons that do little.",
        "compare",
    ),
    ("compare", "units"): Caption(
        "How many {neuron|neurons} of each {hidden layer} are {dead unit|dead} (output 0 for "
        "every probe input) or {saturated unit|saturated} (tanh or sigmoid stuck at its limit "
        f"for at least {SATURATED_SHARE:.0%} of them) in each run at this {{epoch}}.",
        "a run with many more dead or saturated neurons than the others: it uses less of its "
        "network (a {learning rate} too high often does this).",
        "compare",
    ),
}


def terms_of(text: str) -> list[str]:
    """The glossary keys a caption text names."""
    return [m.group(1) for m in MARKUP.finditer(text)]


def _render(text: str, id_prefix: str, first: int) -> list:
    """`text` as strings and `term`s, numbered from `first` (ids unique within a caption)."""
    parts, at, n = [], 0, first
    for m in MARKUP.finditer(text):
        parts.append(text[at : m.start()])
        parts.append(term(m.group(1), m.group(2), id=f"{id_prefix}-t{n}"))
        at, n = m.end(), n + 1
    parts.append(text[at:])
    return [p for p in parts if p != ""]


def caption(page: str, view: str, variant: str | None = None) -> html.P:
    """The caption of `view` on `page` (its `variant` when there is one, else the plain one)."""
    found = CAPTIONS.get((page, view, variant)) if variant else None
    found = found or CAPTIONS[(page, view)]
    prefix = f"cap-{page}-{view}"
    shows = _render(found.shows, prefix, 0)
    look_for = _render(found.look_for, prefix, len(terms_of(found.shows)))
    return html.P(
        [*shows, " ", html.Strong("Look for: "), *look_for, " ", lesson_link(found.lesson)],
        id=prefix,
        className="view-caption",
    )


def captioned_tab(page: str, tab_id: str, label: str, content, variant: str | None = None):
    """A tab whose pane opens with its caption (a test finds every tab of the three pages and
    checks that it has one)."""
    content = content if isinstance(content, list) else [content]
    return dbc.Tab([caption(page, tab_id, variant), *content], label=label, tab_id=tab_id)
