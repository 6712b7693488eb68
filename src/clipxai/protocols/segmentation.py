"""The ImageNet-segmentation protocol of the TextSpan paper (docs/protocols.md), for the decomposition and for every
attribution method that gives image maps, in two modes.

Geometry. Faithful (the original evaluation): the image goes through the model's own preprocessing (shorter side
to the input size, centre crop) while the label is the whole, uncropped mask resized to the square input with
nearest neighbour, so on a non-square image the two disagree (the label's object is squashed, the image's cropped).
Corrected: the image is resized to the square input without a crop, exactly as its mask, so they stay aligned. The
label is the same in both modes; only the image the model sees differs.

Maps. The decomposition's map: per-patch contributions summed over every layer and head, scored by the zero-shot
classifier, the predicted class minus the mean over classes (``clipxai.models.decompose.class_maps``). An
attribution method explains the same predicted class: its text is that class's prompt ("a photo of a {class}." for
the papers' models). Every map is kept at patch-grid resolution; scoring upsamples it (bilinear) to the input size,
clamps it at 0, min-max normalises it (a constant map: NaN in faithful mode, zeros in corrected mode,
clipxai.metrics.segmentation), predicts foreground where it exceeds its mean, and accumulates pixAcc and two-class
mIoU over the data set and AP per image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from clipxai.metrics.maps import bilinear
from clipxai.metrics.segmentation import MODES, BinarySegmentationAccumulator, minmax_relevance
from clipxai.protocols.datasets import square_input, square_mask

DECOMPOSITION = "decomposition"  # the registry-free method name of the TextSpan map


def image_input(loaded, mode: str) -> Callable[[Image.Image], torch.Tensor]:
    """How an image enters the model in ``mode``: the model's own eval transform (resize the shorter side, centre
    crop: faithful) or a square resize without crop, aligned with the label (corrected)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return loaded.preprocess if mode == "faithful" else square_input(loaded)


def label_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """The label of both modes: the whole mask resized (nearest) to ``size`` x ``size``."""
    return square_mask(mask, size)


@torch.no_grad()
def predicted_classes(loaded, images: torch.Tensor, classifier: torch.Tensor) -> torch.Tensor:
    """Zero-shot predictions [B] (argmax of normalised image embedding @ classifier)."""
    embedding = F.normalize(loaded.model.encode_image(images.to(loaded.device)).float(), dim=-1)
    return (embedding @ classifier.to(embedding.device)).argmax(-1).cpu()


def decomposition_maps(loaded, images: torch.Tensor, classifier: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """TextSpan maps [B, gh, gw] at patch-grid resolution and the predicted classes [B]."""
    from clipxai.models.decompose import class_maps, decompose, patch_terms, tower_shape

    layers = tuple(range(tower_shape(loaded.model)["layers"]))
    parts = decompose(loaded.model, images.to(loaded.device), spatial_layers=layers)
    maps, predicted = class_maps(patch_terms(parts.spatial), classifier.to(parts.spatial.device), parts.embedding,
                                 loaded.grid)
    return maps.cpu().numpy().astype(np.float32), predicted.cpu().numpy().astype(np.int64)


def attribution_maps(method, loaded, images: torch.Tensor, classifier: torch.Tensor, classnames: Sequence[str],
                     prompt: str) -> tuple[np.ndarray, np.ndarray]:
    """Maps [B, gh, gw] of a registry method explaining each image's predicted class, and those classes [B]."""
    return batch_maps([SegmentationMethod(method.name, {}, method.name, method)], loaded, images, classifier,
                      classnames, prompt)[0]


@dataclass
class SegmentationMethod:
    """One method of a segment-imagenet run: ``name`` "decomposition" (``method`` None) or a registry name with
    its built ``method``; ``label`` names it in the tables."""

    name: str
    params: dict
    label: str
    method: object = None


def batch_maps(methods: Sequence[SegmentationMethod], loaded, images: torch.Tensor, classifier: torch.Tensor,
               classnames: Sequence[str], prompt: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(maps [B, gh, gw], predicted classes [B]) of every method for one batch of images, in order.

    Each method gets what :func:`decomposition_maps` / :func:`attribution_maps` give it alone: the registry
    methods explain the same predicted classes (computed once, as each would compute them) with the same prompt
    tokens and image tensor, so methods that need the same forward (and backward) share it
    (:func:`clipxai.attribution.base.shared_traces`).
    """
    from clipxai.attribution.base import shared_traces

    results: list = [None] * len(methods)
    registry = [i for i, spec in enumerate(methods) if spec.method is not None]
    for i, spec in enumerate(methods):
        if spec.method is None:
            results[i] = decomposition_maps(loaded, images, classifier)
    if registry:
        predicted = predicted_classes(loaded, images, classifier)
        tokens = loaded.tokenizer([prompt.format(classnames[int(c)]) for c in predicted]).to(loaded.device)
        on_device = images.to(loaded.device)
        with shared_traces():
            for i in registry:
                result = methods[i].method.attribute(loaded, on_device, tokens)
                if result.image is None:
                    raise ValueError(f"method {methods[i].method.name} gives no image maps")
                results[i] = (result.image.detach().float().cpu().numpy(), predicted.numpy().astype(np.int64))
    return results


def upsampled(grid: np.ndarray, size: int, mode: str = "corrected") -> np.ndarray:
    """One grid map [gh, gw] -> [size, size]: bilinear, clamped at 0, min-max normalised (the protocol's map; a
    constant map gives NaN in faithful mode, zeros in corrected mode)."""
    tensor = torch.as_tensor(np.asarray(grid, dtype=np.float32))[None, None]
    big = bilinear(tensor, (size, size))[0, 0].numpy()
    return minmax_relevance(big, mode)


def score(grids: Iterable[np.ndarray], masks: Iterable[np.ndarray], size: int, mode: str = "corrected") -> dict:
    """pixAcc, mIoU (two classes, accumulated over the set), mAP (mean over images) of grid maps against binary
    masks already at ``size`` x ``size``, with ``mode``'s normalisation of a constant map."""
    accumulator = BinarySegmentationAccumulator()
    for grid, mask in zip(grids, masks, strict=True):
        accumulator.update(upsampled(grid, size, mode), mask)
    return accumulator.result()
