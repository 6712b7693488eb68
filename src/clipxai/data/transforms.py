"""Padding images and masks to a square, the way CLIP-grounding (seed 000) did before CLIP's preprocessing.

CLIP-grounding pads centred, with ``(long - short) // 2`` pixels on *each* side of the short axis (its
``clip_grounding/utils/image.py``). When ``long - short`` is odd the result is one pixel short of square (640x427 ->
640x639); CLIP's resize of the shorter side then squashes it to SxS, and the ground-truth mask went through the same
padding and an SxS resize, so image and mask stay aligned. ``"faithful"`` reproduces that geometry; ``"exact"`` puts
the odd pixel on the bottom/right so the result is square. Image and mask must use the same geometry.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

PADDINGS = ("faithful", "exact")


def square_padding(height: int, width: int, padding: str = "faithful") -> tuple[int, int, int, int]:
    """Pixels to add ``(top, bottom, left, right)`` to centre a ``height`` x ``width`` image in a square."""
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    side = max(height, width)
    vertical, horizontal = side - height, side - width
    if padding == "faithful":
        return vertical // 2, vertical // 2, horizontal // 2, horizontal // 2
    return vertical // 2, vertical - vertical // 2, horizontal // 2, horizontal - horizontal // 2


def pad_to_square(image: Image.Image, padding: str = "faithful", fill: int | tuple = 0) -> Image.Image:
    """Centre ``image`` on a black (``fill``) canvas that is square (see the module docstring for ``padding``)."""
    top, bottom, left, right = square_padding(image.height, image.width, padding)
    if not (top or bottom or left or right):
        return image.copy()
    if isinstance(fill, int) and len(image.getbands()) > 1:
        fill = (fill,) * len(image.getbands())
    canvas = Image.new(image.mode, (image.width + left + right, image.height + top + bottom), fill)
    canvas.paste(image, (left, top))
    return canvas


def pad_array_to_square(array: np.ndarray, padding: str = "faithful", fill=0) -> np.ndarray:
    """The same padding for a [H, W] (or [H, W, C]) array: what a mask needs to stay aligned with its image."""
    top, bottom, left, right = square_padding(array.shape[0], array.shape[1], padding)
    widths = [(top, bottom), (left, right)] + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, widths, mode="constant", constant_values=fill)
