"""One face for every labelled image set (ImageNet val, ImageNet-segmentation, Waterbirds, their shapes worlds):
row ``i`` has an ``id`` (a string that finds the image again), a ``label`` (class index, -1 where the set has
none) and, for Waterbirds, a ``place``. A format's reader (named in clipxai.data.kinds.FORMATS) returns one."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from clipxai.errors import InputError


@dataclass
class LabelledImages:
    """Rows of one split of a labelled image set; ``image(i)`` loads row ``i`` as RGB."""

    format: str
    root: Path
    split: str
    ids: list[str]
    labels: np.ndarray  # int64 [n], -1 where unknown
    classnames: list[str]
    load: Callable[[int], Image.Image] = field(repr=False)
    places: np.ndarray | None = None  # int64 [n] (Waterbirds: 0 land, 1 water)
    place_names: tuple[str, ...] = ()
    load_mask: Callable[[int], np.ndarray] | None = field(default=None, repr=False)  # ImageNet-seg: uint8 [H, W]

    def __len__(self) -> int:
        return len(self.ids)

    def image(self, index: int) -> Image.Image:
        return self.load(index)

    def mask(self, index: int) -> np.ndarray:
        if self.load_mask is None:
            raise InputError(self.root, "masks", f"a segmentation data set, got format {self.format}")
        return self.load_mask(index)

    def index_of(self) -> dict[str, int]:
        """id -> row index."""
        return {image_id: index for index, image_id in enumerate(self.ids)}


def read_json(path: Path, what: str) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(path, "(file)", f"a JSON file of {what} ({err.__class__.__name__})") from None


def check_split(format_: str, root: Path, split: str, allowed: tuple[str, ...]) -> None:
    if split not in allowed:
        raise InputError(root, "split", f"one of {', '.join(allowed)} for format {format_}, got {split!r}")
