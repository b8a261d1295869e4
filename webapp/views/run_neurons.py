"""The run page's Neuron maps view: each hidden unit's output over the input plane (2-D
datasets), at the grid epoch at or before the slider's; the network graph's thumbnails."""

from __future__ import annotations

from dash import Input, Output, State, callback, dcc

from netlens.storage.runs import RunInfo
from netlens.webapp import context
from netlens.webapp.authz import rule
from netlens.webapp.figures import neurons
from netlens.webapp.figures.common import empty_figure
from netlens.webapp.views.common import active, friendly, graph_config

NEURONS = "fig-neurons"


def neurons_graph() -> dcc.Graph:
    """No fixed height: the figure's own grows with its rows of maps."""
    config = graph_config("neuron-maps", "Neuron maps", responsive=False, height=None)
    return dcc.Graph(id=NEURONS, config=config)


def maps_at(info: RunInfo, epoch: int):
    """(grid epoch found, grid/x, {layer: (G, units)}, activations, colour ranges, probe x, y)
    at the latest grid epoch <= epoch, or a sentence saying why there is none."""
    data = context.current().data
    names = data.tensor_names(info)
    if (problem := neurons.why_no_maps(info.layers, info.spec, names)) is not None:
        return problem
    hidden = list(info.layers[:-1])
    arrays = data.arrays(info.id)
    found, maps = None, {}
    for layer in hidden:
        found, values = data.at_epoch(info, f"grid/{layer['name']}", epoch)
        if values is None:
            return "No neuron maps recorded yet at or before this epoch"
        maps[layer["name"]] = values
    grid_epochs = data.tensor_epochs(info, f"grid/{hidden[0]['name']}")

    def read(name: str, e: int):
        return data.at_epoch(info, f"grid/{name}", e)[1]

    ranges = data.cached(
        ("neuron-ranges", info.id, info.last_epoch),
        lambda: neurons.run_color_ranges(hidden, grid_epochs, read),
    )
    activations = {x["name"]: x["activation"] for x in hidden}
    return (
        found,
        arrays["grid/x"],
        maps,
        activations,
        ranges,
        arrays.get("probe/x"),
        arrays.get("probe/y"),
    )


@callback(
    Output(NEURONS, "figure"),
    Input("run-tabs", "active_tab"),
    Input("run-epoch", "value"),
    State("run-id", "data"),
)
@friendly(1)
@rule("member")
def neurons_view(tab, index, run_id):
    from netlens.webapp.views.run import _context

    active(tab, "neurons")
    info, epochs, epoch = _context(run_id, index)
    if not len(epochs):
        return empty_figure("No epoch recorded yet")
    return maps_figure(info, epoch)


def maps_figure(info: RunInfo, epoch: int):
    """The Neuron maps figure at the grid epoch at or before `epoch` (the run page's tab and
    the xor lesson), or a figure with the sentence saying why there is none."""
    found = maps_at(info, epoch)
    if isinstance(found, str):
        return empty_figure(found)
    grid_epoch, grid_x, maps, activations, ranges, px, py = found
    return neurons.neuron_maps_figure(
        grid_x,
        maps,
        activations,
        color_ranges=ranges,
        points_x=px,
        points_y=py,
        title=neurons.maps_title(grid_epoch, epoch),
    )


def thumbnails_at(info: RunInfo, epoch: int) -> dict[str, list[str]] | None:
    """The network graph's node thumbnails at `epoch` (None without maps, or for layers of
    more than neurons.THUMBNAIL_UNITS units)."""
    if any(x["units"] > neurons.THUMBNAIL_UNITS for x in info.layers[:-1]):
        return None
    found = maps_at(info, epoch)
    if isinstance(found, str):
        return None
    _, grid_x, maps, activations, ranges, _, _ = found
    return neurons.thumbnail_uris(grid_x, maps, activations, ranges)
