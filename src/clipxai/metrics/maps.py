"""The one resampling of patch-grid maps to pixels: bilinear, ``align_corners=False`` (what every original code
base used, via ``F.interpolate``). How a map is then normalised is the protocol's own choice (min-max with
constancy on the grid for attribution, on the pixels for PNG grounding, clamped for ImageNet-segmentation), so
the normalisations stay with their protocols."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bilinear(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[B, gh, gw] -> [B, H, W], or [B, C, gh, gw] -> [B, C, H, W]."""
    if maps.ndim == 3:
        return F.interpolate(maps[:, None], size=tuple(size), mode="bilinear", align_corners=False)[:, 0]
    if maps.ndim == 4:
        return F.interpolate(maps, size=tuple(size), mode="bilinear", align_corners=False)
    raise ValueError(f"expected maps [B, gh, gw] or [B, C, gh, gw], got shape {tuple(maps.shape)}")
