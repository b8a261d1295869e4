"""`netlens figure RUN VIEW -o out.png|svg|html`: a view of the run page, drawn as the page
draws it (netlens.sdk.figures, the page's own builders), written to a file for a paper or a
talk. PNG and SVG go through kaleido at publication size; HTML is one self-contained file
(plotly.js inside, opens offline). Animations over epochs (.gif/.mp4) are not here yet."""

from __future__ import annotations

from pathlib import Path

import click

from netlens.storage.settings import Settings

FORMATS = (".png", ".svg", ".html")
WIDTH, HEIGHT, SCALE = 1200, 700, 2  # pixels before scale: a full-width figure of a paper


@click.command()
@click.argument("run_id", type=int, required=False)
@click.argument("view", required=False)
@click.option("--epoch", type=int, help="The epoch to draw (default: the last recorded).")
@click.option("--layer", help="Layer, for views that show one (trajectories, weights, ...).")
@click.option("--neuron", type=int, help="Neuron (from 0), for the trajectories view.")
@click.option("--input", "input_index", type=int, help="Probe input, for the network view.")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="out.png, out.svg or out.html."
)
@click.option("--width", type=click.IntRange(200, 4000), default=WIDTH, show_default=True)
@click.option("--height", type=click.IntRange(200, 4000), default=HEIGHT, show_default=True)
@click.option("--list", "list_views", is_flag=True, help="List the views and exit.")
@click.pass_obj
def figure(
    settings: Settings,
    run_id,
    view,
    epoch,
    layer,
    neuron,
    input_index,
    output,
    width,
    height,
    list_views,
) -> None:
    """Write VIEW of run RUN_ID to a PNG, SVG or HTML file (`--list`: the views)."""
    from netlens.cli import _fail, _open_db
    from netlens.sdk.figures import VIEWS

    if list_views:
        for name, text in VIEWS.items():
            click.echo(f"{name:15s} {text}")
        return
    if run_id is None or view is None:
        _fail("RUN_ID and VIEW: both are needed (netlens figure 3 network -o net.png)")
    if not output:
        _fail("--output: give the file to write, e.g. -o figure.png (.png, .svg or .html)")
    path = Path(output)
    if path.suffix.lower() not in FORMATS:
        _fail(f"--output: {path.suffix or 'no extension'} is not one of {', '.join(FORMATS)}")
    options = {
        key: value
        for key, value in (("layer", layer), ("neuron", neuron), ("input_index", input_index))
        if value is not None
    }
    from netlens.sdk.reading import get

    db = _open_db(settings)
    try:
        fig = get(run_id, database=db).figure(view, epoch, **options)
    except LookupError as exc:
        _fail(f"RUN_ID: {exc}")
    except (TypeError, ValueError) as exc:  # the view's own message names the argument
        _fail(str(exc).replace("input_index", "--input"))
    import plotly.graph_objects as go

    fig = go.Figure(fig)  # some builders hand back a plain dict
    margin = fig.layout.margin  # the page's figures sit in cards; a file needs its edges
    fig.update_layout(
        width=width,
        height=height,
        margin={
            "l": max(margin.l or 0, 60),
            "r": max(margin.r or 0, 40),
            "t": max(margin.t or 0, 60),
            "b": max(margin.b or 0, 50),
        },
        title_x=0.02,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".html":
        fig.write_html(path, include_plotlyjs=True, full_html=True)
    else:
        fig.write_image(path, width=width, height=height, scale=SCALE)
    click.echo(str(path))
