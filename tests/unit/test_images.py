"""Probe images as PNG data URIs (webapp/figures/images.py): grey images as spec runs store
them, and RGB probes of nl.Recorder runs, whose image_shape is [h, w] for (h, w, 3) inputs."""

from __future__ import annotations

import base64
import struct

import numpy as np
import pytest

from netlens.webapp.figures.images import png_data_uri


def _size(uri: str) -> tuple[int, int]:
    data = base64.b64decode(uri.split(",", 1)[1])
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])  # IHDR: width, height


@pytest.mark.parametrize("channels", [None, 1, 3])
def test_an_image_of_any_channel_count_is_drawn_at_its_height_and_width(channels):
    shape = (6, 4) if channels is None else (6, 4, channels)
    flat = np.random.default_rng(0).random(shape).ravel()
    assert _size(png_data_uri(flat, [6, 4], scale=2)) == (4 * 2, 6 * 2)


def test_values_that_are_not_an_image_of_that_shape_are_refused():
    with pytest.raises(ValueError, match="not a 6x4 image"):
        png_data_uri(np.zeros(25), [6, 4])
