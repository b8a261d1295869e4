"""The Learn section's lessons as data: narrative, the run each one trains, its 'try this' choices.

The narrative here never states a fact about a run: the sentences about a run come from
webapp/learn/facts.py at display time. A lesson's run is a preset (storage/presets.py) changed
only through the bounded choices below, so whatever a learner clicks stays a small, quick run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from netlens.storage.presets import get_preset
from netlens.storage.spec import ExperimentSpec, parse_spec

# The 'try this' controls: the only values a lesson accepts (checked server-side).
CHOICES: dict[str, list[str]] = {
    "learning_rate": ["0.005", "0.01", "0.03", "0.05", "0.1", "0.3"],
    "units": ["1", "2", "3", "4", "5", "8", "16", "32", "100"],
    "activation": ["tanh", "sigmoid", "relu"],
    "epochs": ["50", "100", "200", "300", "500", "1000", "2000"],
    "seed": [str(s) for s in range(10)],
    "vary": ["seed", "learning_rate"],
}
LABELS = {
    "learning_rate": "Learning rate",
    "units": "Hidden units (first layer)",
    "activation": "Activation",
    "epochs": "Epochs",
    "seed": "Seed",
    "vary": "Vary",
}


@dataclass(frozen=True)
class Section:
    heading: str
    text: str  # the narrative: what to look at (never a fact about the run)
    view: str  # which views and facts the page draws here (see pages/learn_lesson.py)


@dataclass(frozen=True)
class Lesson:
    slug: str
    title: str
    question: str
    preset: str
    intro: str
    defaults: dict[str, str]
    sections: tuple[Section, ...]
    baseline: dict[str, Any] | None = None  # a second, contrasting run: spec overrides
    baseline_label: str = ""
    baseline_text: str = ""
    controls: tuple[str, ...] = ("learning_rate", "units", "activation", "epochs", "seed")
    extra: dict[str, Any] = field(default_factory=dict)


LESSONS: dict[str, Lesson] = {
    lesson.slug: lesson
    for lesson in (
        Lesson(
            "xor",
            "XOR: one neuron cannot, three can",
            "Why does XOR need a hidden layer, and when has the network learned?",
            "xor",
            "XOR outputs 1 when exactly one of its two inputs is 1. The master's report starts "
            "here: four points, a tiny network, and every number it learns, epoch by epoch.",
            {
                "learning_rate": "0.05",
                "units": "3",
                "activation": "tanh",
                "epochs": "1000",
                "seed": "0",
            },
            (
                Section(
                    "The error, epoch by epoch",
                    "Training lowers the error on the four points. Accuracy only counts how "
                    "many of the four are on the right side of 0.5.",
                    "curves",
                ),
                Section(
                    "The four outputs against their targets",
                    "Each line is the network's output for one input; the dashed lines are "
                    "the targets. The report calls the network trained when the outputs "
                    "settle on their targets.",
                    "outputs",
                ),
                Section(
                    "Follow one hidden neuron",
                    "Pick a neuron: its two weights and its bias over the epochs. Move the "
                    "slider to see where each was at that epoch.",
                    "params",
                ),
                Section(
                    "The lines the hidden layer draws",
                    "Each hidden neuron draws one line in the input square (where its input "
                    "crosses zero). The output neuron combines the sides.",
                    "lines",
                ),
            ),
            baseline={"hidden": []},
            baseline_label="Train a single neuron",
            baseline_text="First, a network with no hidden layer: one neuron, one line.",
        ),
        Lesson(
            "deeper",
            "Deeper: 2-3-5-1 and what depth changes",
            "What does a second hidden layer add on XOR?",
            "xor-deep",
            "The report's second network puts a layer of five units after the three. Its units "
            "see the three lines of the first layer, not the raw inputs.",
            {
                "learning_rate": "0.05",
                "units": "3",
                "activation": "tanh",
                "epochs": "1000",
                "seed": "0",
            },
            (
                Section("The error, epoch by epoch", "The deeper network's curves.", "curves"),
                Section("The four outputs", "The outputs against their targets.", "outputs"),
                Section(
                    "Lines of the first layer, regions of the second",
                    "A unit of the second layer works on the first layer's outputs: it can "
                    "separate what no single line in the input square can.",
                    "deep-lines",
                ),
            ),
            baseline={"hidden": [{"units": 3, "activation": "tanh"}]},
            baseline_label="Train the 2-3-1 to compare",
            baseline_text="The same data with the shallower 2-3-1, for comparison.",
        ),
        Lesson(
            "bottleneck",
            "Two regions through two units",
            "How does a 2-unit layer come to separate two regions?",
            "two-regions",
            "The blog post's task: points in [-5, 5]², inside one of two discs (around (0, 0) "
            "and (3, 3)) or not. The network 2-100-2-1 must squeeze everything through two units: "
            "we can plot those two numbers for every input.",
            {
                "learning_rate": "0.01",
                "units": "100",
                "activation": "relu",
                "epochs": "100",
                "seed": "0",
            },
            (
                Section(
                    "Accuracy over the epochs",
                    "The blog's run went from 36 % to 82 %; here is this run's.",
                    "curves",
                ),
                Section(
                    "The 2-unit representation",
                    "Every probe input at the slider's epoch, placed by its two bottleneck "
                    "values. Play the slider: the classes pull apart.",
                    "bottleneck",
                ),
                Section(
                    "The decision boundary", "What the network answers over the square.", "boundary"
                ),
            ),
            extra={"target": 0.9},  # a disc's edge is hard: the blog's run ended at 82 %
        ),
        Lesson(
            "signatures",
            "Signatures: from which layer is a 1 not a 7?",
            "From which layer does a network tell 1 from 7, and where do unseen 3s and 4s go?",
            "digits-1-7",
            "The defence's study: train on 1s and 7s only, record every hidden layer's output "
            "(its signature) for each input, then show the network 3s and 4s it never saw.",
            {
                "learning_rate": "0.01",
                "units": "32",
                "activation": "relu",
                "epochs": "50",
                "seed": "0",
            },
            (
                Section("Accuracy", "Training on 1s and 7s.", "curves"),
                Section(
                    "Separability by layer",
                    "For each layer: how often an input's signature is closer to its own "
                    "class's mean signature than to the other's.",
                    "separability",
                ),
                Section(
                    "Where the unseen classes land",
                    "The network must answer 1 or 7 for a 3 or a 4 too.",
                    "unseen",
                ),
            ),
        ),
        Lesson(
            "compare",
            "Compare: same network, three starts",
            "Does the same network learn the same way from another seed or learning rate?",
            "xor",
            "Three runs of XOR 2-3-1 that differ in one thing only, trained together and drawn "
            "side by side.",
            {
                "learning_rate": "0.05",
                "units": "3",
                "activation": "tanh",
                "epochs": "1000",
                "seed": "0",
                "vary": "seed",
            },
            (Section("Three runs side by side", "Accuracy and error of each run.", "compare"),),
            controls=("vary", "learning_rate", "units", "activation", "epochs", "seed"),
        ),
    )
}
SLUGS = tuple(LESSONS)


class ChoiceError(ValueError):
    """A 'try this' value outside its list (a crafted callback): the message names the field."""


def checked_choices(lesson: Lesson, values: dict[str, Any]) -> dict[str, str]:
    """The lesson's defaults overridden by `values`, each checked against CHOICES."""
    out = dict(lesson.defaults)
    for name in lesson.controls:
        value = values.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or value not in CHOICES[name]:
            raise ChoiceError(f"{name}: must be one of {', '.join(CHOICES[name])}")
        out[name] = value
    return out


def lesson_spec(lesson: Lesson, choices: dict[str, str], baseline: bool = False) -> ExperimentSpec:
    """The lesson's preset with the learner's choices, named and tagged for the lesson."""
    data = get_preset(lesson.preset).model_dump(mode="json")
    data["name"] = f"learn {lesson.slug}" + (" baseline" if baseline else "")
    data["tags"] = ["learn", f"learn:{lesson.slug}"] + (["learn:baseline"] if baseline else [])
    data["optimizer"]["learning_rate"] = float(choices["learning_rate"])
    data["training"]["epochs"] = int(choices["epochs"])
    data["training"]["seed"] = int(choices["seed"])
    hidden = data["model"]["hidden"]
    if hidden:
        hidden[0] = {"units": int(choices["units"]), "activation": choices["activation"]}
    if baseline and lesson.baseline is not None:
        data["model"]["hidden"] = lesson.baseline["hidden"]
    if lesson.slug == "signatures":
        data["recording"]["probe_size"] = 300  # the lesson's views need no more
    return parse_spec(data)


def sweep_axes(choices: dict[str, str]) -> list[tuple[str, list[Any]]]:
    """The compare lesson's three runs: three seeds, or the learning rate /3, x1 and x3."""
    if choices.get("vary") == "learning_rate":
        lr = float(choices["learning_rate"])
        return [("optimizer.learning_rate", [round(lr / 3, 6), lr, min(10.0, lr * 3)])]
    seed = int(choices["seed"])
    return [("training.seed", [seed, seed + 1, seed + 2])]
