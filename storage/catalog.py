"""What a spec may name, declared once: datasets, activations, optimizers, losses, model and
layer kinds, schedules and devices.

Everything else reads these tables: the spec's validation (storage/spec.py builds its Literal
types and checks from them), the new-experiment form (its options, and which controls show
for a dataset), the run views (which views apply to 2-D datasets), storage/sizing.py, the
upload checks (which upload kind a dataset reads), the worker's loader registry
(worker/datasets/loader.py refuses to import unless it has a loader for every dataset here
and no other) and the worker's activations (worker/models.py, the same check). The dataset
table of docs/datasets.md is `dataset_table()` (tests/unit/test_catalog.py compares them).

Adding a dataset: an entry in DATASETS, its loader in worker/datasets/, its section in
docs/datasets.md (and the table: paste `dataset_table()`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DatasetKind = Literal["2-D", "image", "tabular", "arrays", "external"]
DATASET_KINDS: dict[str, str] = {
    "2-D": "points of the plane, 2 inputs and 2 classes; the run page draws decision "
    "boundaries over a grid",
    "image": "square grey images flattened row by row, pixels in [0, 1]; a cnn may train on them",
    "tabular": "rows of a CSV file: the features and the number of classes come from the file",
    "arrays": "arrays given to the Python API (model.fit) and stored with the run; the "
    "model's input shape and output layer say their shape",
    "external": "data only the user's own training code holds (nl.Recorder); NetLens keeps "
    "the probe it was given and cannot load or retrain on the rest",
}


@dataclass(frozen=True)
class DatasetInfo:
    name: str  # the spec's dataset.name
    kind: DatasetKind
    title: str  # display name
    description: str  # one line, for the docs table
    n_inputs: int | None  # input features when fixed; None: read from the file
    n_classes: int | None  # classes when fixed; None: read from the file
    image_side: int | None = None  # images: H = W
    uses_n_samples: bool = False  # dataset.n_samples and dataset.noise apply (generated sets)
    fixed_size: int | None = None  # inputs in the whole set when fixed (xor: 4, digits: 1797)
    upload: str | None = None  # the storage.uploads kind it reads (the form's upload box)
    reads_path: bool = False  # dataset.path names its file or folder
    needs_file: bool = False  # dataset.path or dataset.upload is required
    ood: bool = False  # has classes to leave out of training and show the probe (ood_classes)
    # (inputs, classes) storage/sizing.py assumes when the set does not fix them; the worker
    # checks the recording size again with the real numbers once the file is read
    size_guess: tuple[int, int] | None = None
    # the data is stored with the run (run_arrays `data/...`, written by the Python API) and
    # read back from there by the worker, never generated or read from a file
    stored: bool = False
    form: bool = True  # the new-experiment form offers it (it cannot give in-memory arrays)

    @property
    def is_2d(self) -> bool:
        return self.kind == "2-D"

    @property
    def is_image(self) -> bool:
        return self.kind == "image"

    def shape(self) -> tuple[int, int, int | None]:
        """(input features, classes, image side), the guess where the file decides."""
        inputs, classes = self.size_guess or (None, None)
        return self.n_inputs or inputs, self.n_classes or classes, self.image_side


def _plane(
    name: str,
    title: str,
    description: str,
    *,
    fixed_size: int | None = None,
) -> DatasetInfo:
    return DatasetInfo(
        name,
        "2-D",
        title,
        description,
        n_inputs=2,
        n_classes=2,
        uses_n_samples=fixed_size is None,
        fixed_size=fixed_size,
    )


def _mnist(name: str, title: str, what: str) -> DatasetInfo:
    return DatasetInfo(
        name,
        "image",
        title,
        f"{what}, read from a local .npz or IDX files (`netlens data get {name}`) or an upload",
        n_inputs=784,
        n_classes=10,
        image_side=28,
        upload="mnist",
        reads_path=True,
        ood=True,
    )


_DATASET_LIST = [
    _plane("xor", "XOR", "the four corners of the unit square, labelled by XOR", fixed_size=4),
    _plane(
        "two-regions",
        "Two regions",
        "uniform points of [-5, 5]², inside either of two discs or not",
    ),
    _plane("circle", "Circle", "TensorFlow Playground's circle: a disc inside a ring"),
    _plane(
        "xor-quadrants",
        "XOR quadrants",
        "TensorFlow Playground's XOR: opposite quadrants share a class",
    ),
    _plane("gaussian", "Gaussian", "TensorFlow Playground's two Gaussian blobs"),
    _plane("spiral", "Spiral", "TensorFlow Playground's two interleaved spirals"),
    _plane("moons", "Moons", "scikit-learn's make_moons: two interleaving half circles"),
    _plane(
        "sk-circles",
        "Circles (scikit-learn)",
        "scikit-learn's make_circles: two concentric circles",
    ),
    DatasetInfo(
        "digits",
        "image",
        "Digits",
        "scikit-learn's 1,797 handwritten digits (shipped with scikit-learn)",
        n_inputs=64,
        n_classes=10,
        image_side=8,
        fixed_size=1797,
        ood=True,
    ),
    _mnist("mnist", "MNIST", "handwritten digits"),
    _mnist("fashion-mnist", "Fashion-MNIST", "Zalando's clothing images"),
    DatasetInfo(
        "csv",
        "tabular",
        "CSV file",
        "a CSV file with a header row: numeric "
        "features and a label column, from dataset.path or an upload",
        n_inputs=None,
        n_classes=None,
        upload="csv",
        reads_path=True,
        needs_file=True,
        ood=True,
        size_guess=(100, 10),
    ),
    DatasetInfo(
        "arrays",
        "arrays",
        "Arrays (Python API)",
        "numpy or JAX arrays given to nl.Sequential.fit, stored with the run (data/...)",
        n_inputs=None,
        n_classes=None,
        size_guess=(100, 10),
        stored=True,
        form=False,
    ),
    DatasetInfo(
        "external",
        "external",
        "Your own data",
        "held by your own training code (nl.Recorder runs); only the probe is stored",
        n_inputs=None,
        n_classes=None,
        form=False,
    ),
]
DATASETS: dict[str, DatasetInfo] = {d.name: d for d in _DATASET_LIST}


def dataset_names(kind: DatasetKind | None = None) -> tuple[str, ...]:
    """Every dataset name in catalog order, or those of one kind."""
    return tuple(n for n, d in DATASETS.items() if kind is None or d.kind == kind)


def form_dataset_names() -> tuple[str, ...]:
    """The datasets the new-experiment form offers (not those only the Python API gives)."""
    return tuple(n for n, d in DATASETS.items() if d.form)


def names_where(flag: str) -> tuple[str, ...]:
    """The datasets whose DatasetInfo field `flag` is set (e.g. "ood", "upload")."""
    return tuple(n for n, d in DATASETS.items() if getattr(d, flag))


@dataclass(frozen=True)
class Choice:
    """One value of a spec field that picks from a fixed list, with what it means."""

    name: str
    description: str


def _choices(*pairs: tuple[str, str]) -> dict[str, Choice]:
    return {name: Choice(name, description) for name, description in pairs}


# Hidden and conv layer activations (model.hidden[].activation, model.conv_activation); the
# worker's functions are worker/models.py:ACTIVATIONS.
ACTIVATIONS = _choices(
    ("relu", "max(0, x)"),
    ("tanh", "hyperbolic tangent, in (-1, 1)"),
    ("sigmoid", "1 / (1 + e^-x), in (0, 1)"),
    ("gelu", "Gaussian error linear unit (JAX's tanh approximation)"),
    ("linear", "the identity"),
    ("leaky_relu", "x for x >= 0, 0.01 x below (JAX's default slope)"),
    ("elu", "x for x > 0, e^x - 1 below"),
    ("silu", "x * sigmoid(x)"),
)

# Dead and saturated units, defined once (docs/views.md "Dead and saturated units"): what the
# worker records each epoch (worker/train.py activation_stats: act/<layer>/dead, /saturated)
# and what the compare page counts from the recorded signatures (webapp/comparison.py).
# A unit is dead when |its output| <= DEAD_ABS for every probe input (a ReLU stuck below 0);
# saturated when its output is in the flat tails of its activation, <= low or >= high, for at
# least SATURATED_SHARE of the probe inputs (only the activations that have such tails).
DEAD_ABS = 1e-7
SATURATION: dict[str, tuple[float, float]] = {"tanh": (-0.99, 0.99), "sigmoid": (0.01, 0.99)}
SATURATED_SHARE = 0.95

# optimizer.name; the worker's Optax transformations are worker/optim.py:make_optimizer.
OPTIMIZERS = _choices(
    ("sgd", "plain stochastic gradient descent"),
    ("momentum", "SGD with momentum (optimizer.momentum)"),
    ("adam", "Adam"),
    ("adamw", "Adam with decoupled weight decay"),
    ("rmsprop", "RMSProp"),
)

# optimizer.schedule
SCHEDULES = _choices(
    ("constant", "the learning rate throughout"),
    ("cosine", "cosine decay to 0 over the run"),
    ("exponential", "exponential decay by optimizer.decay_rate over the run"),
    ("warmup_cosine", "linear warm-up over optimizer.warmup_epochs, then cosine decay"),
)

# training.device (the job queue's choice)
DEVICES = _choices(
    ("cpu", "a CPU worker"),
    ("gpu", "a GPU worker"),
    ("any", "whichever worker is free"),
)


@dataclass(frozen=True)
class LossInfo:
    """The training loss; not a spec field: the number of classes picks it."""

    name: str
    description: str
    output_activation: str  # of the output layer, as recorded
    binary: bool  # two classes, one output unit

    def output_units(self, n_classes: int) -> int:
        return 1 if self.binary else n_classes


LOSSES: dict[str, LossInfo] = {
    loss.name: loss
    for loss in [
        LossInfo(
            "sigmoid_binary_cross_entropy",
            "two classes: one sigmoid output unit",
            "sigmoid",
            binary=True,
        ),
        LossInfo(
            "softmax_cross_entropy",
            "three classes or more: one softmax unit per class",
            "softmax",
            binary=False,
        ),
    ]
}


def loss_for(n_classes: int) -> LossInfo:
    """The loss (and output layer) a network of `n_classes` trains with."""
    return LOSSES["sigmoid_binary_cross_entropy" if n_classes == 2 else "softmax_cross_entropy"]


# Layers as recorded (worker/models.py:LayerInfo.kind)
LAYER_KINDS = _choices(
    ("dense", "a fully connected layer and its activation"),
    ("conv", "a 3x3 convolution, its activation and a 2x2 max-pool"),
    ("module", "a module of a user's Flax model (nl.Recorder): what its __call__ returns"),
)
# Layers as recorded by model kind sequential: a Conv2D layer is recorded as kind "conv" with
# its own output (convolution and activation; a MaxPooling2D after it is a layer of its own).

# model.layers[].kind of model kind sequential (the Python API's nl.layers), in the order the
# docs list them; storage/spec.py has one pydantic class per entry, worker/models.py builds
# them. Only dense and conv2d have parameters and are recorded (LAYER_KINDS dense / conv).
SEQUENTIAL_LAYERS = _choices(
    ("dense", "fully connected: units, activation (the output layer: sigmoid or softmax)"),
    ("conv2d", "2-D convolution: filters, kernel_size, strides, padding (valid, same), activation"),
    ("max_pool2d", "2-D max-pooling: pool_size, strides (default pool_size)"),
    ("flatten", "flattens (height, width, channels) to one vector"),
    ("dropout", "sets a fraction `rate` of its inputs to 0 while training (identity otherwise)"),
)
# The output layer's activation names the loss (LOSSES): a sequential model's last layer is
# a dense layer with one of these.
OUTPUT_ACTIVATIONS = ("sigmoid", "softmax")


@dataclass(frozen=True)
class ModelKind:
    """model.kind."""

    name: str
    description: str
    layers: tuple[str, ...]  # LAYER_KINDS it is built of, in forward order
    needs_image: bool  # only for image datasets
    form: bool = True  # the new-experiment form builds it (sequential: a layer list, no)
    # False: the user's own code defines and trains the model (nl.Recorder); NetLens records
    # it but can neither queue nor retry it (TRAINED_ELSEWHERE), and it needs the "external"
    # dataset kind
    trainable: bool = True


# Why a run of a non-trainable model kind cannot be queued, retried or requeued.
TRAINED_ELSEWHERE = "trained by the user's code; NetLens cannot retrain it"


MODEL_KINDS: dict[str, ModelKind] = {
    m.name: m
    for m in [
        ModelKind("mlp", "dense hidden layers", ("dense",), needs_image=False),
        ModelKind(
            "cnn",
            "conv blocks (model.conv_channels), then dense hidden layers",
            ("conv", "dense"),
            needs_image=True,
        ),
        ModelKind(
            "sequential",
            "an explicit list of layers (model.layers: dense, conv2d, max_pool2d, flatten, "
            "dropout; the output dense layer last) on model.input_shape: the Python API's "
            "nl.Sequential",
            ("conv", "dense"),
            needs_image=False,
            form=False,
        ),
        ModelKind(
            "flax",
            "any Flax NNX model defined and trained by the user's own code, recorded by "
            "nl.Recorder (dataset external)",
            ("dense", "module"),
            needs_image=False,
            trainable=False,
            form=False,
        ),
    ]
}


def form_model_kinds() -> tuple[str, ...]:
    """The model kinds the new-experiment form builds."""
    return tuple(n for n, m in MODEL_KINDS.items() if m.form)


def _check() -> None:
    for d in DATASETS.values():
        if d.kind == "external":  # nothing is loaded: the Recorder sizes what it records
            continue
        if (d.n_inputs is None or d.n_classes is None) and d.size_guess is None:
            raise ValueError(f"catalog: dataset {d.name!r} fixes no shape and has no size_guess")
        if d.is_image and d.image_side is None:
            raise ValueError(f"catalog: image dataset {d.name!r} has no image_side")
    for m in MODEL_KINDS.values():
        if not set(m.layers) <= set(LAYER_KINDS):
            raise ValueError(f"catalog: model kind {m.name!r} uses unknown layer kinds")


_check()


def _cell(value: object, d: DatasetInfo | None = None) -> str:
    if value is None:
        return "from the model and data" if d is not None and d.stored else "from the file"
    return str(value)


def dataset_table() -> str:
    """The markdown table of docs/datasets.md, one row per dataset in catalog order."""
    rows = [
        "| name | kind | inputs | classes | reads a file | description |",
        "|---|---|---|---|---|---|",
    ]
    for d in DATASETS.values():
        file = (
            f"yes (path or {d.upload} upload)"
            if d.upload and d.reads_path
            else "yes (path)"
            if d.reads_path
            else "no"
        )
        inputs = (
            f"{d.n_inputs} ({d.image_side}×{d.image_side})"
            if d.image_side
            else _cell(d.n_inputs, d)
        )
        classes = _cell(d.n_classes, d)
        if d.kind == "external":
            inputs = classes = "the probe's"
        rows.append(f"| `{d.name}` | {d.kind} | {inputs} | {classes} | {file} | {d.description} |")
    return "\n".join(rows) + "\n"


def spoken_list(names: tuple[str, ...] | list[str], word: str = "or") -> str:
    """'a, b or c' (messages name the choices this way)."""
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {word} {names[-1]}"
