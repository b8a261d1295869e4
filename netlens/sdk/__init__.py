"""The Python API behind `import netlens as nl` (docs/python-api.md): a Keras-like model
(model.py, layers.py, optimizers.py, datasets.py), a recorder for any Flax NNX model in the
user's own loop (recorder.py), and reading runs from scripts and notebooks (reading.py).
home.py opens the database every part of it writes to. It sits in the CLI layer: it may
import storage, dispatch and worker (tests/unit/test_layers.py)."""
