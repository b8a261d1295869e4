"""`netlens figure`: every view in `--list`, of the run page and of the signatures page, as
SVG, and the most different of them as PNG; animations over epochs as GIF (frame count) and
MP4; the errors it answers.

The command runs in this process (click's CliRunner on netlens.cli.main, the real command
over real runs in a SQLite home) rather than as ~50 subprocesses: with kaleido's sync server
started once, the figures share one browser instead of starting Chromium each (~2-4 s on the
busy 2-core machine). tests/integration/test_cli.py runs `netlens figure` as a subprocess.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from netlens.cli import main
from netlens.sdk.figures import VIEWS
from netlens.storage.db import Database
from netlens.storage.migrate import upgrade
from netlens.storage.presets import get_preset
from netlens.storage.runs import create_run
from netlens.storage.spec import parse_spec
from netlens.webapp.views.signatures import FIGURE_VIEWS
from netlens.worker.analyze import run_analysis
from netlens.worker.runner import run_experiment

PNG = b"\x89PNG\r\n\x1a\n"
DIGITS_EPOCHS = 4  # analysed at 2 (an epoch analysis) and 4 (the last: epoch and timeline)


@pytest.fixture(scope="module")
def kaleido_browser():
    """One kaleido browser for every PNG and SVG of the module (plotly's write_image uses
    kaleido's sync server when one is running)."""
    import kaleido

    kaleido.start_sync_server(silence_warnings=True)
    yield
    kaleido.stop_sync_server(silence_warnings=True)


def _train(db: Database, preset: str, epochs: int, **recording) -> int:
    data = get_preset(preset).model_dump()
    data["training"]["epochs"] = epochs
    if recording:
        data["recording"] = recording
    run_id = create_run(db, parse_spec(data))
    assert run_experiment(db, run_id, None) == "succeeded"
    return run_id


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A SQLite home with an xor run (2-D: boundary and neuron maps) and a digits-1-7 run (1s
    vs 7s, unseen 3s and 4s, three hidden layers) analysed at epochs 2 and 4 (+ timeline),
    with the t-SNE projection (computed only when asked for) of epoch 4."""
    home = tmp_path_factory.mktemp("home")
    db = Database(f"sqlite:///{home / 'netlens.db'}")
    upgrade(db)
    xor = _train(db, "xor", 40)
    digits = _train(db, "digits-1-7", DIGITS_EPOCHS, probe_size=80)
    for kind, epoch in (
        ("epoch", DIGITS_EPOCHS),
        ("timeline", DIGITS_EPOCHS),
        ("epoch", 2),
        ("tsne", DIGITS_EPOCHS),
    ):
        run_analysis(db, digits, kind, epoch)
    db.dispose()
    return home, xor, digits


def _figure(home, *args: str, ok: bool = True):
    env = {"NETLENS_HOME": str(home[0]), "NETLENS_DATABASE_URL": "", "NETLENS_BROKER_URL": ""}
    result = CliRunner().invoke(main, ["figure", *args], env=env, catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, (args, result.output)
    return result


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


# Every view is drawn as SVG (its title checked); PNG, the same figure through the same
# renderer in another format, for the views whose drawing differs most: WebGL (3-D), heatmaps,
# a Sankey diagram and a projection (each render costs seconds on the busy 2-core machine).
PNG_VIEWS = {"network3d", "boundary", "representation", "flow", "projection"}


def _check_png_and_svg(home, run_id: int, view: str, tmp_path, *options: str) -> None:
    png, svg = tmp_path / f"{view}.png", tmp_path / f"{view}.svg"
    if view in PNG_VIEWS:
        size = ("--width", "600", "--height", "400")
        _figure(home, str(run_id), view, *options, "-o", str(png), *size)
        assert _png_size(png.read_bytes()) == (1200, 800), view  # scale 2
    _figure(home, str(run_id), view, *options, "-o", str(svg))
    text = svg.read_text()
    assert text.lstrip().startswith("<svg") and text.rstrip().endswith("</svg>"), view
    assert 'width="1200"' in text and 'height="700"' in text, view
    assert 'class="gtitle"' in text, f"{view}: no title in the file"


def test_list_names_every_view_of_both_pages(home):
    listed = _figure(home, "--list").output
    names = [line.split()[0] for line in listed.splitlines()]
    assert names == [*VIEWS, *FIGURE_VIEWS]
    assert all("signatures page" in line for line in listed.splitlines()[len(VIEWS) :])


@pytest.mark.parametrize("view", list(VIEWS))
def test_every_run_page_view_as_png_and_svg(home, kaleido_browser, tmp_path, view):
    _, xor, digits = home
    options = {"trajectories": ("--layer", "hidden_1", "--neuron", "1")}.get(view, ())
    # xor (2-D) draws the boundary and neuron maps; the digits run, a representation of a
    # 16-unit layer
    run_id = digits if view == "representation" else xor
    _check_png_and_svg(home, run_id, view, tmp_path, *options)


@pytest.mark.parametrize("view", list(FIGURE_VIEWS))
def test_every_signatures_view_as_png_and_svg(home, kaleido_browser, tmp_path, view):
    options = {
        "projection": ("--method", "tsne", "--color-by", "correct", "--layer", "hidden_2"),
        "compare-inputs": ("--input", "3", "--input-b", "70"),
        "separability-epochs": ("--metric", "silhouette"),
    }.get(view, ())
    _check_png_and_svg(home, home[2], view, tmp_path, *options)


def test_signatures_views_read_the_epochs_analysis_or_say_how_to_store_it(
    home, kaleido_browser, tmp_path
):
    _, _, digits = home
    out = tmp_path / "c.svg"
    _figure(home, str(digits), "clusters", "--epoch", "2", "--layer", "hidden_1", "-o", str(out))
    assert "hidden_1 at epoch 2" in out.read_text()
    # an epoch of the timeline without an epoch analysis: the timeline's own PCA frame
    _figure(home, str(digits), "projection", "--epoch", "3", "-o", str(out))
    assert "PCA at epoch 3" in out.read_text()
    refused = _figure(home, str(digits), "flow", "--epoch", "3", "-o", str(out), ok=False)
    assert refused.exit_code == 2
    assert "no stored signature analysis at epoch 3" in refused.output
    assert f"netlens analyze {digits} --epoch 3" in refused.output
    for args, says in (
        (["projection", "--method", "tsne", "--epoch", "1"], f"netlens analyze {digits} --epoch 1"),
        (
            ["projection", "--method", "umap"],
            f"netlens analyze {digits} --epoch {DIGITS_EPOCHS} --methods umap",
        ),
        (["projection", "--color-by", "size"], "color_by: 'size' is not one of"),
        (["clusters", "--layer", "output"], "layer: 'output' is not a hidden layer"),
        (["clusters", "--neuron", "2"], "--neuron: not an option of view 'clusters'"),
        (["compare-inputs", "--input-b", "999"], "--input-b: 999 is out of range"),
        (["flow", "--epoch", "99"], "epoch: 99 is not recorded"),
    ):
        bad = _figure(home, str(digits), *args, "-o", str(out), ok=False)
        assert bad.exit_code == 2 and says in bad.output, (args, bad.output)


def test_a_gif_has_one_frame_per_epoch_asked_and_an_mp4_plays(home, tmp_path):
    import imageio.v3 as iio

    _, xor, digits = home
    gif = tmp_path / "boundary.gif"
    _figure(home, str(xor), "boundary", "--epochs", "0:40:5", "-o", str(gif), "--width", "400")
    frames = iio.imread(gif, index=None)
    assert frames.shape[0] == len(range(0, 41, 5)) == 9
    assert frames.shape[1:3] == (480, 400)  # the default frame height; the width asked
    assert len({frame.tobytes() for frame in frames}) > 1  # the boundary moves
    # signatures: the frames are the analysed epochs in the range (2 and 4 for flow)
    gif = tmp_path / "flow.gif"
    _figure(home, str(digits), "flow", "--epochs", "0:4:1", "-o", str(gif))
    assert iio.imread(gif, index=None).shape[0] == 2
    mp4 = tmp_path / "loss.mp4"
    _figure(home, str(xor), "loss", "--epochs", "0:40:1", "-o", str(mp4), "--fps", "12")
    data = mp4.read_bytes()
    assert data[4:8] == b"ftyp" and len(data) > 2000
    import imageio.v2 as imageio

    with imageio.get_reader(mp4, format="FFMPEG") as reader:
        assert sum(1 for _ in reader) == 41


def test_animation_options_are_checked_and_named(home, tmp_path):
    _, xor, _ = home
    gif = str(tmp_path / "x.gif")
    for args, says in (
        (["loss", "-o", gif], "--epochs: a .gif is an animation over epochs"),
        (["loss", "--epochs", "5:1", "-o", gif], "--epochs: the last epoch (1) is before"),
        (["loss", "--epochs", "0:10:0", "-o", gif], "--epochs: the step must be 1 or more"),
        (["loss", "--epochs", "a:b", "-o", gif], "--epochs: 'a:b' is not A:B:STEP"),
        (["loss", "--epochs", "0:1000:1", "-o", gif], "asks for 1001 frames; the limit is 500"),
        (["loss", "--epochs", "100:200", "-o", gif], "--epochs: no recorded epoch in 100..200"),
        (["loss", "--epochs", "0:10", "-o", str(tmp_path / "x.png")], "--epochs: only for"),
        (["loss", "--epochs", "0:10", "--epoch", "3", "-o", gif], "--epoch and --epochs"),
    ):
        bad = _figure(home, str(xor), *args, ok=False)
        assert bad.exit_code == 2 and says in bad.output, (args, bad.output)


def test_frames_render_from_a_thread_whose_event_loop_runs():
    """A notebook (or Playwright's sync API in the same process) keeps an event loop running
    in the main thread: the animation's renderer must not call asyncio.run inside it."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    import plotly.graph_objects as go

    from netlens.figure_render import render_frames

    async def inside_a_loop() -> list[bytes]:
        return render_frames([go.Figure(go.Scatter(y=[1, 3, 2]))], "png", 200, 100)

    # a thread of its own: this test's thread may already run a loop (Playwright's)
    with ThreadPoolExecutor(max_workers=1) as pool:
        (image,) = pool.submit(asyncio.run, inside_a_loop()).result()
    assert image[:8] == b"\x89PNG\r\n\x1a\n"
