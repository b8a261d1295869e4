"""`netlens figure RUN VIEW -o out.png|svg|html|gif|mp4`: a view of the run page or of the
signatures page, drawn as the page draws it, written to a file for a paper or a talk.

- The run page's views: netlens.sdk.figures (the page's own builders, as Run.figure()).
- The signatures page's views: webapp/views/signatures.py (figure_of: the page's own data
  preparation over the stored analyses; an epoch without one is refused with the
  `netlens analyze` command that stores it).
- PNG and SVG go through kaleido at publication size (1200 x 700, PNG at scale 2); HTML is one
  self-contained file (plotly.js inside, opens offline).
- GIF and MP4 (`--epochs A:B:STEP`): the view at each epoch of the range
  (netlens/figure_animation.py), drawn in one browser page (netlens/figure_render.py).
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from netlens.storage.settings import Settings

IMAGE_FORMATS = (".png", ".svg", ".html")
FORMATS = IMAGE_FORMATS + (".gif", ".mp4")
WIDTH, HEIGHT, SCALE = 1200, 700, 2  # pixels before scale: a full-width figure of a paper
FRAME_WIDTH, FRAME_HEIGHT = 800, 480  # an animation's default frame (scale 1)


def _views():
    """{name: description} of every view: the run page's, then the signatures page's."""
    from netlens.sdk.figures import VIEWS
    from netlens.webapp.views.signatures import FIGURE_VIEWS

    return {
        **VIEWS,
        **{name: f"signatures page: {text}" for name, (text, _) in FIGURE_VIEWS.items()},
    }


def for_file(fig, width: int, height: int):
    """A page's figure made a file's: its size, and room at its edges (the page's figures sit
    in cards with thin margins)."""
    import plotly.graph_objects as go

    fig = go.Figure(fig)  # some builders hand back a plain dict
    margin = fig.layout.margin
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
    return fig


@click.command()
@click.argument("run_id", type=int, required=False)
@click.argument("view", required=False)
@click.option("--epoch", type=int, help="The epoch to draw (default: the last recorded).")
@click.option(
    "--epochs",
    "epoch_range",
    metavar="A:B:STEP",
    help="An animation (-o .gif or .mp4): the view at each epoch A, A+STEP, ... B "
    "(the nearest recorded one; for signatures views, the nearest analysed one).",
)
@click.option("--fps", type=click.FloatRange(0.5, 60), default=8, show_default=True)
@click.option("--layer", help="Layer, for views that show one (trajectories, weights, ...).")
@click.option("--neuron", type=int, help="Neuron (from 0), for the trajectories view.")
@click.option(
    "--input",
    "input_index",
    type=int,
    help="Probe input: for the network view, and input A of compare-inputs.",
)
@click.option("--input-b", type=int, help="Probe input B of compare-inputs.")
@click.option(
    "--method",
    type=click.Choice(["pca", "tsne", "umap"]),
    help="The projection's method (projection view; default pca).",
)
@click.option(
    "--color-by",
    help="Colour the points by: class, cluster, correct, ood (projection); class, correct "
    "(representation); bias, activation (network).",
)
@click.option(
    "--metric",
    type=click.Choice(["probe", "silhouette"]),
    help="separability-epochs: linear-probe accuracy (probe, default) or silhouette.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="out.png, out.svg, out.html, or with --epochs out.gif or out.mp4.",
)
@click.option(
    "--width",
    type=click.IntRange(200, 4000),
    help=f"Pixels (default {WIDTH}; an animation's frames {FRAME_WIDTH}).",
)
@click.option(
    "--height",
    type=click.IntRange(200, 4000),
    help=f"Pixels (default {HEIGHT}; an animation's frames {FRAME_HEIGHT}).",
)
@click.option("--list", "list_views", is_flag=True, help="List the views and exit.")
@click.pass_obj
def figure(
    settings: Settings,
    run_id,
    view,
    epoch,
    epoch_range,
    fps,
    layer,
    neuron,
    input_index,
    input_b,
    method,
    color_by,
    metric,
    output,
    width,
    height,
    list_views,
) -> None:
    """Write VIEW of run RUN_ID to a PNG, SVG or HTML file, or over a range of epochs
    (--epochs A:B:STEP) to an animated GIF or MP4 (`--list`: the views)."""
    from netlens.cli import _fail, _open_db
    from netlens.sdk.figures import VIEWS
    from netlens.webapp.views.signatures import FIGURE_VIEWS

    if list_views:
        for name, text in _views().items():
            click.echo(f"{name:20s} {text}")
        return
    if run_id is None or view is None:
        _fail("RUN_ID and VIEW: both are needed (netlens figure 3 network -o net.png)")
    if view not in VIEWS and view not in FIGURE_VIEWS:
        _fail(
            f"view: {view!r} is not a view; choose from {', '.join(_views())} "
            "(netlens figure --list says what each shows)"
        )
    if not output:
        _fail("--output: give the file to write, e.g. -o figure.png (.png, .svg or .html)")
    path = Path(output)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        _fail(f"--output: {path.suffix or 'no extension'} is not one of {', '.join(FORMATS)}")
    animated = suffix in (".gif", ".mp4")
    if animated and epoch_range is None:
        _fail(
            f"--epochs: a {suffix} is an animation over epochs; give the range, e.g. "
            "--epochs 0:200:5 (for one epoch write a .png or .svg with --epoch)"
        )
    if epoch_range is not None and not animated:
        _fail(f"--epochs: only for -o .gif or .mp4 (for one epoch: --epoch N -o out{suffix})")
    if epoch_range is not None and epoch is not None:
        _fail("--epoch and --epochs: give one (--epoch draws one epoch, --epochs animates)")
    options = _options(view, layer, neuron, input_index, input_b, method, color_by, metric)
    if isinstance(options, str):
        _fail(options)
    db = _open_db(settings)
    draw, available = _drawer(settings, db, run_id, view, options, cached=animated)
    if not animated:
        fig = _draw(draw, epoch)
        fig = for_file(fig, width or WIDTH, height or HEIGHT)
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".html":
            fig.write_html(path, include_plotlyjs=True, full_html=True)
        else:
            fig.write_image(path, width=fig.layout.width, height=fig.layout.height, scale=SCALE)
        click.echo(str(path))
        return
    _animate(draw, available, epoch_range, path, fps, width, height, view)


def _options(view, layer, neuron, input_index, input_b, method, color_by, metric):
    """The options given, under the names the view's code takes; a message when one does not
    apply to the view."""
    from netlens.sdk.figures import VIEWS

    given = {
        "--layer": ("layer", layer),
        "--neuron": ("neuron", neuron),
        "--input": ("input_a" if view == "compare-inputs" else "input_index", input_index),
        "--input-b": ("input_b", input_b),
        "--method": ("method", method),
        "--color-by": ("color_by", color_by),
        "--metric": ("metric", metric),
    }
    if view in VIEWS:
        from netlens.sdk.figures import _OPTIONS as accepted
    else:
        from netlens.webapp.views.signatures import FIGURE_VIEWS

        accepted = {name: options for name, (_, options) in FIGURE_VIEWS.items()}
    out = {}
    for flag, (name, value) in given.items():
        if value is None:
            continue
        if name not in accepted[view]:
            takes = sorted("--" + o.replace("_", "-") for o in accepted[view])
            takes = ["--input" if t in ("--input-index", "--input-a") else t for t in takes]
            return f"{flag}: not an option of view {view!r} (its options: {', '.join(takes) or 'none'})"
        out[name] = value
    return out


def _drawer(settings, db, run_id, view, options, cached: bool):
    """(draw(epoch) -> figure, the epochs it can draw) for view `view` of run `run_id`."""
    from netlens.cli import _fail
    from netlens.sdk.figures import VIEWS
    from netlens.storage.runs import RunNotFound, get_run

    try:
        get_run(db, run_id)
    except RunNotFound as exc:
        _fail(f"RUN_ID: {exc}")
    if view in VIEWS:
        from netlens.figure_animation import CachedRun
        from netlens.sdk.reading import Run

        run = CachedRun(run_id, db) if cached else Run(run_id, db)
        return (lambda epoch: run.figure(view, epoch, **options)), lambda: run.epochs
    from netlens.webapp.context import WebContext
    from netlens.webapp.data import RunData
    from netlens.webapp.views import signatures as sd

    web = WebContext(settings, db, RunData(db))

    def draw(epoch):
        return sd.figure_of(sd.load_at(web, run_id, epoch), view, **options)

    def available():
        return sd.drawable_epochs(sd.load_at(web, run_id, None), view, options.get("method", "pca"))

    return draw, available


def _draw(draw, epoch):
    from netlens.cli import _fail

    try:
        return draw(epoch)
    except (TypeError, ValueError) as exc:  # the view's own message names the argument
        _fail(
            str(exc)
            .replace("input_index", "--input")
            .replace("input_a", "--input")
            .replace("input_b", "--input-b")
            .replace("input A", "--input")
            .replace("input B", "--input-b")
        )


def _animate(draw, available, epoch_range, path, fps, width, height, view) -> None:
    from netlens.cli import _fail
    from netlens.figure_animation import encode, frame_epochs, parse_epochs
    from netlens.figure_render import RenderError, render_frames
    from netlens.webapp.figures.animation import steady
    from netlens.webapp.views.signatures import FIGURE_VIEWS

    started = time.perf_counter()
    try:
        first, last, step = parse_epochs(epoch_range)
        what = "analysed" if view in FIGURE_VIEWS and view != "compare-inputs" else "recorded"
        epochs = frame_epochs(first, last, step, available(), what)
    except ValueError as exc:
        _fail(str(exc))
    width, height = width or FRAME_WIDTH, height or FRAME_HEIGHT
    if path.suffix.lower() == ".mp4":  # H.264 in yuv420p: even sides
        width, height = width - width % 2, height - height % 2
    figures = [_draw(draw, e) for e in epochs]
    frames = [for_file(f, width, height) for f in steady(figures, epochs)]
    try:
        images = render_frames(frames, "png", width, height, 1)
    except RenderError as exc:
        _fail(str(exc), code=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    encode(images, path, fps)
    click.echo(
        f"wrote {len(images)} frames (epochs {epochs[0]} to {epochs[-1]}) of {view} at "
        f"{width}x{height} in {time.perf_counter() - started:.1f} s",
        err=True,
    )
    click.echo(str(path))
