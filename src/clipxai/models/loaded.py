"""What every model loader returns (:class:`LoadedModel`), the tower facts it is built from, and the one place a
model config is handed to open_clip by name.

Below both loaders (open_clip's in :mod:`clipxai.models.registry`, CLIPpy's in :mod:`clipxai.models.clippy`), so
that neither imports the other to share it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import open_clip
import torch

from clipxai.errors import InputError


@dataclass
class LoadedModel:
    """A CLIP model and everything needed to feed and explain it."""

    model: torch.nn.Module
    preprocess: Callable  # PIL image -> float tensor [3, H, W] (the model's own open_clip eval transform)
    tokenizer: Callable  # list[str] -> LongTensor [B, context_length]
    name: str
    image_size: int
    grid: tuple[int, int]
    context_length: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    device: torch.device

    @property
    def is_vit(self) -> bool:
        return isinstance(self.model.visual, open_clip.transformer.VisionTransformer)


def grid_of(visual: torch.nn.Module, image_size: int) -> tuple[int, int]:
    """The patch grid of an open_clip image tower."""
    if hasattr(visual, "grid_size"):  # open_clip VisionTransformer
        return tuple(int(g) for g in visual.grid_size)
    return (image_size // 32, image_size // 32)  # ModifiedResNet: stride 32 before attention pooling


def image_size_of(visual: torch.nn.Module) -> int:
    """The (square) input size of an open_clip image tower."""
    size = visual.image_size
    if isinstance(size, (tuple, list)):
        if size[0] != size[1]:
            raise InputError("model", "vision_cfg.image_size", f"a square input, got {tuple(size)}")
        size = size[0]
    return int(size)


def add_open_clip_config(name: str, cfg: dict) -> str:
    """Make ``name`` an open_clip model name for ``cfg`` (replacing an earlier entry); returns ``name``.

    Called when a model is loaded, never on import. open_clip's ``add_model_config`` only scans folders and keys
    by file stem, so its registry dict is written directly.
    """
    open_clip.factory._MODEL_CONFIGS[name] = cfg
    return name
