"""Plain-language definitions of the words NetLens' pages use, and `term`, the component that
shows one of them with a dotted underline and its definition on hover or focus.

Written for the non-expert audience of the mission's first document: a page should never use a
word that its reader cannot look up where it stands. One or two sentences each, no formulas
beyond what the page itself shows.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

GLOSSARY: dict[str, str] = {
    # the network and its parameters
    "neuron": "One small calculator of the network (also called a unit): it adds up its "
    "inputs, each multiplied by a weight, adds its bias, and passes the sum through its "
    "activation function.",
    "layer": "A row of neurons that all read the same inputs and compute at the same time; "
    "the output of one layer is the input of the next.",
    "hidden layer": "Any layer between the inputs and the output: nobody tells it what to "
    "compute, it learns whatever helps the output.",
    "weight": "The strength of one connection between two neurons: a number that multiplies "
    "the signal passing along it. Training adjusts the weights.",
    "bias": "A neuron's own offset, added to its weighted inputs: it decides how easily the "
    "neuron fires, whatever the inputs are.",
    "initial weights": "The random weights a network starts from, before any training; the "
    "seed decides which random values they are.",
    "weight norm": "One number for the size of a whole set of weights (the square root of the "
    "sum of their squares): it grows when weights grow.",
    "module": "A building block of your own model code (a layer, or a group of layers); an "
    "nl.Recorder run shows your modules as they were called.",
    "convolution": "A layer that slides small filters (here 3×3 pixels) over an image and "
    "answers, at every position, how much that patch looks like each filter.",
    # what a neuron computes
    "activation": "What a neuron outputs for one input: its weighted sum passed through its "
    "activation function (ReLU, tanh, sigmoid…).",
    "relu": "ReLU, an activation function: negative sums become 0, positive ones pass "
    "unchanged. Cheap and common in hidden layers.",
    "tanh": "tanh, an activation function that squashes any sum into -1…1.",
    "sigmoid": "sigmoid, an activation function that squashes any sum into 0…1, read as a "
    "probability.",
    "logits": "A model's raw output scores before they are turned into probabilities (by a "
    "softmax or a sigmoid).",
    "dead unit": "A neuron that outputs 0 for every input (a ReLU stuck below zero): it no "
    "longer passes anything on and no longer learns.",
    "saturated unit": "A neuron stuck at the limit of its activation (near ±1 for tanh, 0 or 1 "
    "for sigmoid): small changes of its inputs no longer change its output.",
    # training
    "epoch": "One pass of training over the whole training set. The slider moves through "
    "epochs: what the network looked like after each one.",
    "loss": "How wrong the network is, as one number (lower is better); training changes the "
    "weights to make it smaller.",
    "accuracy": "The share of inputs the network classifies correctly (1 = all of them).",
    "validation": "Inputs kept apart from training, used only to check the network: if it "
    "does well on training data but not here, it memorised instead of learning.",
    "overfitting": "When the network learns its training inputs by heart: training loss keeps "
    "falling while validation loss rises.",
    "gradient": "For each weight, which way and how strongly the loss changes if the weight "
    "changes: training moves every weight a small step against its gradient.",
    "learning rate": "The size of the step training takes along the gradient at each update: "
    "too small learns slowly, too large overshoots.",
    "seed": "The number that fixes the random choices of a run (initial weights, data order): "
    "the same seed gives the same run.",
    # what NetLens records
    "class": "The answer an input should get (a digit, a colour): what the network learns to "
    "predict.",
    "probe input": "A fixed set of inputs that NetLens shows to the network after every epoch, "
    "always the same ones, so that you can watch how its answers and activations change.",
    "signature": "Everything one hidden layer outputs for one probe input (its activations as "
    "a list of numbers): how the network represents that input at that layer.",
    "decision boundary": "The line (or curve) where the network's answer switches from one "
    "class to the other, drawn over the plane of 2-D inputs.",
    "hidden representation": "Where a hidden layer places each input: its activations, read "
    "as coordinates. Inputs the network finds alike land close together.",
    # analyses
    "separability": "How easily the classes can be told apart from a layer's signatures: "
    "high means the layer already keeps the classes apart.",
    "linear probe": "A straight-line classifier fitted on a layer's signatures; its accuracy "
    "says how well that layer alone separates the classes.",
    "cluster": "A group of inputs whose signatures lie close together.",
    "k-means": "A method that splits points into K clusters, each gathered around its mean.",
    "silhouette": "A score from -1 to 1 of how well points sit in their own group rather than "
    "the nearest other one: near 1, tight and well-separated groups.",
    "centroid": "The average signature of a group of inputs (a class or a cluster): its centre.",
    "sankey": "A flow diagram: bands whose width is the number of inputs going from a cluster "
    "of one layer to a cluster of the next.",
    "unseen class": "A class that never appeared in training (out-of-distribution), shown to "
    "the network afterwards to see where it lands and what it is taken for.",
    "distance ratio": "How far unseen inputs land from the nearest trained class, divided by "
    "how far trained inputs lie from their own class centre: above 1, they land apart.",
    "cosine similarity": "How much two signatures point the same way, from -1 to 1, whatever "
    "their lengths: 1 means the same pattern of activations.",
    "projection": "A flattening of many-dimensional signatures onto a 2-D picture that keeps "
    "as much of their layout as it can (PCA, t-SNE, UMAP).",
    "pca": "PCA, a projection onto the directions along which the points vary most; straight "
    "and faithful to distances, but may overlap groups.",
    "t-sne": "t-SNE, a projection that keeps near neighbours near; good at showing groups, "
    "but distances between groups mean little.",
    "umap": "UMAP, a projection like t-SNE that keeps neighbours near, and more of the overall "
    "layout.",
    "cka": "CKA (centered kernel alignment): a score from 0 to 1 of how alike two layers "
    "respond to the same inputs, even if their neurons are ordered or scaled differently.",
}

# How a word is written in a sentence where that differs from its key.
SPELLED = {
    "relu": "ReLU",
    "pca": "PCA",
    "t-sne": "t-SNE",
    "umap": "UMAP",
    "cka": "CKA",
    "sankey": "Sankey",
    "k-means": "K-means",
}

# The lessons of /learn/<slug>, each with the title its link shows.
LESSONS: dict[str, str] = {
    "xor": "weights, biases and outputs on XOR",
    "deeper": "deeper networks",
    "bottleneck": "the hidden representation",
    "signatures": "activation signatures",
    "compare": "comparing runs",
}


def lesson_link(slug: str) -> dcc.Link:
    """A link to the lesson that explains a view ("Learn: …"); an unknown slug is a bug."""
    return dcc.Link(f"Learn: {LESSONS[slug]} →", href=f"/learn/{slug}", className="lesson-link")


def term(key: str, text: str | None = None, *, id: str) -> html.Span:  # noqa: A002
    """`text` (by default the word as spelled in a sentence) underlined with dots, its definition shown on hover and on
    keyboard focus. `id` must be unique on the page: the tooltip finds its word by it."""
    return html.Span(
        [
            html.Span(text or SPELLED.get(key, key), id=id, className="gloss-term", tabIndex="0"),
            dbc.Tooltip(GLOSSARY[key], target=id, placement="top", className="gloss-tip"),
        ]
    )
