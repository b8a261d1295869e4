"""Analyses of one epoch's probe signatures (see epoch.py)."""

from netlens.worker.signatures.epoch import *  # noqa: F403 - split by analysis in the next commit
from netlens.worker.signatures.epoch import (  # noqa: F401 - the private names tests use
    KMEANS_N_INIT,
    THREADS,
    TSNE_MAX_ITER,
)
