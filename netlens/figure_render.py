"""Many plotly figures to images in one headless browser page: the frames of
`netlens figure ... --epochs A:B:STEP -o out.gif|out.mp4`.

kaleido's own calls (`write_image`, `Kaleido.calc_fig`, even with several tabs) cost ~0.25 s
per figure here, most of it kaleido's per-figure round trip rather than drawing, so 100
frames took 25-45 s. This module opens the browser kaleido uses (through choreographer,
kaleido's browser driver) once, loads the plotly.js of the installed `plotly` package (the
one kaleido and the web app draw with) into one page, and asks it for `Plotly.toImage` of
each figure in turn: 0.03-0.12 s a frame (docs/performance.md, "Figures out of NetLens").
Single images still go through kaleido (`fig.write_image`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

import plotly
import plotly.io as pio

STARTUP_S = 60  # for the browser and plotly.js to be ready
TABS = 2  # pages drawing at once (this machine: 2 cores; more only queue)


class RenderError(RuntimeError):
    """The browser could not be started or could not draw a figure."""


def _page(folder: Path) -> Path:
    script = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    page = folder / "frames.html"
    page.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f'<script src="{script.as_uri()}"></script></head><body></body></html>'
    )
    return page


async def _evaluate(tab, expression: str):
    response = await tab.send_command(
        "Runtime.evaluate",
        params={"expression": expression, "awaitPromise": True, "returnByValue": True},
    )
    if "error" in response:
        raise RenderError(f"the browser refused to draw: {response['error']}")
    result = response["result"]
    if "exceptionDetails" in result:
        details = result["exceptionDetails"]
        text = (details.get("exception") or {}).get("description") or details.get("text")
        raise RenderError(f"plotly.js could not draw a frame: {text}")
    return result["result"].get("value")


async def _ready(tab) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP_S
    while await _evaluate(tab, "typeof Plotly") != "object":
        if loop.time() > deadline:
            raise RenderError(f"plotly.js did not load in the browser within {STARTUP_S} s")
        await asyncio.sleep(0.05)


def _decode(value: str, fmt: str) -> bytes:
    head, _, data = value.partition(",")
    if head.endswith(";base64"):
        return base64.b64decode(data)
    from urllib.parse import unquote

    return unquote(data).encode() if fmt == "svg" else data.encode()


async def _render(figures: list[str], fmt: str, width: int, height: int, scale: float):
    import choreographer as choreo

    options = json.dumps({"format": fmt, "width": width, "height": height, "scale": scale})
    out: list[bytes | None] = [None] * len(figures)
    with tempfile.TemporaryDirectory(prefix="netlens-frames-") as folder:
        page = _page(Path(folder)).as_uri()
        try:
            browser = choreo.Browser(headless=True)
        except Exception as exc:  # ChromeNotFoundError and the like
            raise RenderError(f"no browser to draw with: {exc}") from exc
        async with browser:
            tabs = [await browser.create_tab(page) for _ in range(min(TABS, len(figures)))]
            await asyncio.gather(*(_ready(tab) for tab in tabs))
            queue = list(enumerate(figures))[::-1]

            async def work(tab) -> None:
                while queue:
                    i, figure = queue.pop()
                    expression = f"Plotly.toImage(JSON.parse({json.dumps(figure)}), {options})"
                    out[i] = _decode(await _evaluate(tab, expression), fmt)

            await asyncio.gather(*(work(tab) for tab in tabs))
    return out


def render_frames(
    figures: Sequence, fmt: str = "png", width: int = 1200, height: int = 700, scale: float = 1
) -> list[bytes]:
    """Each figure as image bytes (PNG, JPEG, WebP or SVG), in order, drawn at width x height
    CSS pixels times `scale`."""
    if fmt not in ("png", "jpeg", "webp", "svg"):
        raise ValueError(f"format: {fmt!r} is not one of png, jpeg, webp, svg")
    if not figures:
        return []
    specs = [pio.to_json(f, validate=False) for f in figures]
    return _run_coroutine(_render(specs, fmt, width, height, scale))


def _run_coroutine(coroutine):
    """asyncio.run, also from a thread whose event loop is already running (a notebook, or
    Playwright's sync API in the same process): then in a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # the usual case: no loop here
        return asyncio.run(coroutine)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="figure-render") as pool:
        return pool.submit(asyncio.run, coroutine).result()
