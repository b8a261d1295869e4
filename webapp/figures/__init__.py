"""Plotly figure builders for the NetLens web app: pure functions, numpy in, Figure out."""

from netlens.webapp.figures.boundary import build_decision_boundary
from netlens.webapp.figures.common import base_layout, empty_figure
from netlens.webapp.figures.curves import build_activation_stats_figure, build_metric_curves
from netlens.webapp.figures.dataset import build_architecture_sketch, build_dataset_preview
from netlens.webapp.figures.network import build_network_3d, build_network_graph
from netlens.webapp.figures.outputs import build_probe_outputs
from netlens.webapp.figures.params import build_neuron_trajectories, build_weight_histogram_heatmap
from netlens.webapp.figures.representation import (
    Projection,
    build_hidden_representation,
    fit_projection,
    stable_range,
)

__all__ = [
    "Projection",
    "base_layout",
    "build_activation_stats_figure",
    "build_architecture_sketch",
    "build_dataset_preview",
    "build_decision_boundary",
    "build_hidden_representation",
    "build_metric_curves",
    "build_network_3d",
    "build_network_graph",
    "build_neuron_trajectories",
    "build_probe_outputs",
    "build_weight_histogram_heatmap",
    "empty_figure",
    "fit_projection",
    "stable_range",
]
