"""NetLens: see inside neural networks as they train."""

__version__ = "0.1.0"
