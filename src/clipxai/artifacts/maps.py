"""Maps files. Grounding maps files (``clipxai ground``'s .npz, docs/contracts.md) read back, row by row: one reader
for every verb that consumes them (score-grounding, faithfulness), so both refuse the same malformed files the same
way. And the caption columns of ``clipxai attribute``'s maps file (its layout: that verb's docstring)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from clipxai.errors import InputError

DIRECTIONS = ("t2i", "i2t")
_REQUIRED = ("entry_id", "direction", "image_grid", "text", "tokens", "image_size")


@dataclass
class MapRow:
    """One (entry, direction) row of a maps file."""

    path: str
    image_grid: np.ndarray   # [gh, gw]
    text: np.ndarray         # [ctx]
    tokens: np.ndarray       # [ctx]
    image_size: int
    padding: str


def read_maps(paths: Iterable[str | Path]) -> dict[tuple[str, str], MapRow]:
    """Every row of the maps files, keyed by (entry_id, direction); a duplicate key or a malformed file raises."""
    rows: dict[tuple[str, str], MapRow] = {}
    for path in paths:
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except (OSError, ValueError) as err:
            raise InputError(path, "(file)", f"a maps .npz written by `clipxai ground` ({err})") from None
        for key in _REQUIRED:
            if key not in arrays:
                raise InputError(path, key, "an array of the maps file (see docs/contracts.md)")
        ids, directions = arrays["entry_id"], arrays["direction"]
        grid, text, tokens = arrays["image_grid"], arrays["text"], arrays["tokens"]
        n = ids.shape[0] if ids.ndim == 1 else -1
        if n < 0 or directions.shape != (n,) or grid.ndim != 3 or grid.shape[0] != n or text.ndim != 2 \
                or text.shape[0] != n or tokens.shape != text.shape:
            raise InputError(path, "shapes", "entry_id [P], direction [P], image_grid [P,gh,gw], text and tokens "
                             f"[P,ctx]; got {ids.shape}, {directions.shape}, {grid.shape}, {text.shape}, "
                             f"{tokens.shape}")
        if arrays["image_size"].ndim != 0 or int(arrays["image_size"]) < 1:
            raise InputError(path, "image_size", "a positive scalar (the model input side in pixels)")
        padding = str(arrays["padding"]) if "padding" in arrays else "faithful"
        if padding not in ("faithful", "exact"):
            raise InputError(path, "padding", f"'faithful' or 'exact', got {padding!r}")
        image_size = int(arrays["image_size"])
        for i in range(n):
            direction = str(directions[i])
            if direction not in DIRECTIONS:
                raise InputError(path, f"direction[{i}]", f"one of {DIRECTIONS}, got {direction!r}")
            key = (str(ids[i]), direction)
            if key in rows:
                raise InputError(path, f"entry_id[{i}]", f"one row per entry and direction; {key} is also in "
                                 f"{rows[key].path}")
            rows[key] = MapRow(str(path), grid[i], text[i], tokens[i], image_size, padding)
    return rows


def caption_columns(text, tokens) -> np.ndarray:
    """Token-aligned relevance (torch) [P, ctx] -> caption tokens only [P, ctx - 2], NaN-padded; ``text`` None (an
    image-only method): all NaN. ``tokens`` [P, ctx]: each row's end token is its largest id."""
    out = np.full((tokens.shape[0], tokens.shape[1] - 2), np.nan, dtype=np.float32)
    if text is None:
        return out
    for row, end in enumerate(tokens.argmax(dim=-1).tolist()):
        out[row, :end - 1] = text[row, 1:end].numpy()
    return out
