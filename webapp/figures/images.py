"""Probe inputs as small PNG data URIs (hover cards, galleries), with numpy and zlib only."""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def png_bytes(image: np.ndarray, scale: int = 4) -> bytes:
    """An 8-bit greyscale PNG of a 2-D array with values in [0, 1] (dark ink on white),
    each pixel drawn as a scale × scale block so 8×8 digits stay legible."""
    pixels = np.clip(np.nan_to_num(np.asarray(image, np.float64)), 0.0, 1.0)
    grey = (255 - np.round(pixels * 255)).astype(np.uint8)
    grey = np.repeat(np.repeat(grey, scale, axis=0), scale, axis=1)
    height, width = grey.shape
    raw = b"".join(b"\x00" + row.tobytes() for row in grey)  # filter type 0 per row
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw))
        + _chunk(b"IEND", b"")
    )


def png_data_uri(flat: np.ndarray, image_shape: list[int] | tuple[int, ...], scale: int = 4) -> str:
    """A data: URI of one flattened probe image (only its first channel is drawn). The image
    may hold channels beyond `image_shape` (height, width): an RGB probe of an nl.Recorder run
    is (h, w, 3) with image_shape [h, w]."""
    pixels = np.asarray(flat).ravel()
    height, width = int(image_shape[0]), int(image_shape[1])
    if height < 1 or width < 1 or pixels.size % (height * width):
        raise ValueError(f"a probe input of {pixels.size} values is not a {height}x{width} image")
    image = pixels.reshape(height, width, -1)[..., 0]
    return "data:image/png;base64," + base64.b64encode(png_bytes(image, scale)).decode()
